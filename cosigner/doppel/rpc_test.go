package doppel

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/types"
)

// The testdata JSON is written in CometBFT v0.38's shapes
// (rpc/core/types ResultStatus and ResultCommit); TestTestdataIsCometBFT
// keeps it honest by decoding it with CometBFT's own types.
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTestdataIsCometBFT(t *testing.T) {
	var cm struct {
		Result struct {
			SignedHeader types.SignedHeader `json:"signed_header"`
		} `json:"result"`
	}
	if err := cmtjson.Unmarshal([]byte(readTestdata(t, "commit.json")), &cm); err != nil {
		t.Fatalf("commit.json: %v", err)
	}
	if err := cm.Result.SignedHeader.Commit.ValidateBasic(); err != nil {
		t.Fatalf("commit.json is not a valid CometBFT commit: %v", err)
	}
	if cm.Result.SignedHeader.ChainID != "kira-1" || cm.Result.SignedHeader.Height != 42 {
		t.Fatalf("commit.json header = %+v", cm.Result.SignedHeader.Header)
	}
}

// fakeNode serves /status and /commit from templates an individual test
// edits.
type fakeNode struct {
	mu     sync.Mutex
	status string
	commit string
}

func newFakeNode(t *testing.T) (*fakeNode, *httptest.Server) {
	n := &fakeNode{status: readTestdata(t, "status.json"), commit: readTestdata(t, "commit.json")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		defer n.mu.Unlock()
		switch r.URL.Path {
		case "/status":
			_, _ = w.Write([]byte(n.status))
		case "/commit":
			h := r.URL.Query().Get("height")
			_, _ = w.Write([]byte(strings.ReplaceAll(n.commit, `"height": "42"`, `"height": "`+h+`"`)))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return n, srv
}

func (n *fakeNode) edit(status, commit func(string) string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if status != nil {
		n.status = status(n.status)
	}
	if commit != nil {
		n.commit = commit(n.commit)
	}
}

func replace(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("test template lacks " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
}

func TestClientReadsCometBFT(t *testing.T) {
	_, srv := newFakeNode(t)
	c := NewClient([]string{srv.URL}, "kira-1", time.Second)
	ctx := context.Background()
	h, err := c.Latest(ctx)
	if err != nil || h != 42 {
		t.Fatalf("Latest = %d, %v; want 42", h, err)
	}
	cm, err := c.Commit(ctx, 41)
	if err != nil {
		t.Fatal(err)
	}
	if cm.Height != 41 || cm.Round != 0 || hex.EncodeToString(cm.BlockHash) != "5d8c1c1f6a0e2c3b4a59687766554433221100ffeeddccbbaa99887766554433" || len(cm.Sigs) != 3 {
		t.Fatalf("commit = %+v", cm)
	}
	ours, _ := hex.DecodeString("3E1D2C4B5A69788796A5B4C3D2E1F00F1E2D3C4B")
	if s, ok := cm.Find(ours); !ok || s.Flag != FlagCommit {
		t.Fatalf("Find(ours) = %+v, %v; want a commit flag", s, ok)
	}
	nilVoter, _ := hex.DecodeString("7B6A594837261504F3E2D1C0B9A8978675645342")
	if s, ok := cm.Find(nilVoter); !ok || s.Flag != FlagNil {
		t.Fatalf("Find(nil voter) = %+v, %v; want a nil flag", s, ok)
	}
	if _, ok := cm.Find(make([]byte, 20)); ok {
		t.Fatal("an absent entry was found")
	}
}

// TestClientRefusesLies: every answer that is not a correct one of this
// chain is an error, never an empty commit.
func TestClientRefusesLies(t *testing.T) {
	for _, tc := range []struct {
		name           string
		status, commit func(string) string
		latest         bool // the error shows in Latest, else in Commit
		want           error
		wantText       string
	}{
		{name: "status of another chain", status: replace(`"network": "kira-1"`, `"network": "kira-2"`), latest: true, want: ErrWrongChain, wantText: `network "kira-2", want "kira-1"`},
		{name: "commit of another chain", commit: replace(`"chain_id": "kira-1"`, `"chain_id": "kira-2"`), want: ErrWrongChain, wantText: `chain_id "kira-2"`},
		{name: "status not json", status: func(string) string { return "<html>bad gateway</html>" }, latest: true, want: ErrMalformed},
		{name: "status height not a number", status: replace(`"latest_block_height": "42"`, `"latest_block_height": 42`), latest: true, want: ErrMalformed},
		{name: "status height zero", status: replace(`"latest_block_height": "42"`, `"latest_block_height": "0"`), latest: true, want: ErrMalformed},
		{name: "status catching up", status: replace(`"catching_up": false`, `"catching_up": true`), latest: true, wantText: "catching up"},
		{name: "rpc error", commit: func(string) string {
			return `{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"Internal error","data":"height 99 must be less than or equal to the current blockchain height 42"}}`
		}, wantText: "must be less than or equal"},
		{name: "no result", commit: func(string) string { return `{"jsonrpc":"2.0","id":-1}` }, want: ErrMalformed},
		{name: "no commit", commit: replace(`"commit": {`, `"commit": null, "x": {`), want: ErrMalformed},
		{name: "header of another height", commit: func(s string) string { return strings.Replace(s, `"height": "42"`, `"height": "7"`, 1) }, want: ErrMalformed},
		{name: "bad block hash", commit: replace(`"hash": "5D8C1C1F6A0E2C3B4A59687766554433221100FFEEDDCCBBAA99887766554433"`, `"hash": "5D8C"`), want: ErrMalformed},
		{name: "no signatures", commit: func(s string) string {
			i := strings.Index(s, `"signatures": [`)
			j := strings.Index(s[i:], "]\n") + i
			return s[:i] + `"signatures": []` + s[j+1:]
		}, want: ErrMalformed},
		{name: "unknown flag", commit: replace(`"block_id_flag": 2`, `"block_id_flag": 7`), want: ErrMalformed, wantText: "block_id_flag = 7"},
		{name: "short signature", commit: replace(`"signature": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kA=="`, `"signature": "AA=="`), want: ErrMalformed, wantText: "signature is 1 bytes"},
		{name: "short address", commit: replace(`"validator_address": "3E1D2C4B5A69788796A5B4C3D2E1F00F1E2D3C4B"`, `"validator_address": "3E1D"`), want: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, srv := newFakeNode(t)
			n.edit(tc.status, tc.commit)
			c := NewClient([]string{srv.URL}, "kira-1", time.Second)
			var err error
			if tc.latest {
				_, err = c.Latest(context.Background())
			} else {
				var cm *Commit
				cm, err = c.Commit(context.Background(), 42)
				if err == nil {
					t.Fatalf("accepted: %+v", cm)
				}
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v is not %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q lacks %q", err, tc.wantText)
			}
		})
	}
}

func TestClientHeightGoesBack(t *testing.T) {
	n, srv := newFakeNode(t)
	c := NewClient([]string{srv.URL}, "kira-1", time.Second)
	if _, err := c.Latest(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.edit(replace(`"latest_block_height": "42"`, `"latest_block_height": "41"`), nil)
	if h, err := c.Latest(context.Background()); !errors.Is(err, ErrHeightBack) {
		t.Fatalf("Latest = %d, %v; want ErrHeightBack", h, err)
	}
}

// TestClientFallsBack: a down address is skipped for the next; all down is
// an error naming each; another chain on the first address is not skipped.
func TestClientFallsBack(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	_, srv := newFakeNode(t)
	c := NewClient([]string{down.URL, srv.URL}, "kira-1", time.Second)
	if h, err := c.Latest(context.Background()); err != nil || h != 42 {
		t.Fatalf("Latest = %d, %v; want 42 from the second address", h, err)
	}
	if _, err := c.Commit(context.Background(), 42); err != nil {
		t.Fatal(err)
	}
	c = NewClient([]string{down.URL}, "kira-1", time.Second)
	if _, err := c.Latest(context.Background()); err == nil || !strings.Contains(err.Error(), down.URL) {
		t.Fatalf("all down: %v; want an error naming %s", err, down.URL)
	}
	other, osrv := newFakeNode(t)
	other.edit(replace(`"network": "kira-1"`, `"network": "kira-2"`), nil)
	c = NewClient([]string{osrv.URL, srv.URL}, "kira-1", time.Second)
	if _, err := c.Latest(context.Background()); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("another chain first: %v; want ErrWrongChain", err)
	}
}
