package test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmtprivval "github.com/cometbft/cometbft/privval"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"

	"github.com/cosigner/cosigner/cosigner/softsign"
)

// TestSoftsignHeightBound turns on [softsign] max_height_ahead in the real
// binary and asks, as a node would, for one jump of (limit − 1), then for
// another: the first is signed, the second refused with the mark unmoved,
// and the next height within the bound is signed.
func TestSoftsignHeightBound(t *testing.T) {
	bin := requireCosigner(t)
	t.Parallel()
	const chainID = "bound-1"
	node := newFakeNode(t, chainID)
	cs, pub := newKeyedCosigner(t, bin, chainID, node.Addr)
	path := filepath.Join(cs.Home, "cosigner.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "max_height_ahead = 0\n", "max_height_ahead = 100\n", 1)
	// A rate this slow adds no height during the test.
	cfg = strings.Replace(cfg, "max_height_rate = 10\n", "max_height_rate = 0.0001\n", 1)
	if cfg == string(data) || !strings.Contains(cfg, "max_height_ahead = 100\n") {
		t.Fatalf("cosigner init wrote no [softsign] bound to change:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	proc := cs.Start()
	if err := node.Client.WaitForConnection(20 * time.Second); err != nil {
		t.Fatalf("cosigner did not dial the fake node: %v", err)
	}
	ts := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

	// The state starts at height 0: the limit is 100 for the whole test.
	v := testVote(cmtproto.PrevoteType, 99, 0, 0xA0, ts, pub)
	if err := node.Client.SignVote(chainID, v); err != nil {
		t.Fatalf("first jump to 99: %v", err)
	}
	checkVoteSigned(t, chainID, pub, v)

	far := testVote(cmtproto.PrevoteType, 198, 0, 0xA0, ts, pub)
	err = node.Client.SignVote(chainID, far)
	var rse *cmtprivval.RemoteSignerError
	if !errors.As(err, &rse) || !strings.Contains(err.Error(), "too far ahead") {
		t.Fatalf("second jump to 198: %v, want a too-far-ahead RemoteSignerError", err)
	}
	t.Logf("error returned: %v", err)
	if len(far.Signature) != 0 {
		t.Fatal("a signature came back with the error")
	}
	if st := cs.StateShow(); st.Height != 99 {
		t.Fatalf("state moved to %s", st.Raw)
	}
	waitRefusal(t, proc, 0, 198, softsign.LogRefusedTooFarAhead)

	next := testVote(cmtproto.PrevoteType, 100, 0, 0xA0, ts, pub)
	if err := node.Client.SignVote(chainID, next); err != nil {
		t.Fatalf("height 100, within the bound: %v", err)
	}
	checkVoteSigned(t, chainID, pub, next)
	if st := cs.StateShow(); st.Height != 100 {
		t.Fatalf("state after 100: %s", st.Raw)
	}
}
