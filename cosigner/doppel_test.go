package cosigner

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
)

// rpcNode serves /status and /commit of a chain at height 10 whose commits
// carry signer's signature.
func rpcNode(t *testing.T, network, signer string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/status":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":-1,"result":{"node_info":{"network":%q},"sync_info":{"latest_block_height":"10","catching_up":false}}}`, network)
		case "/commit":
			h := r.URL.Query().Get("height")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":-1,"result":{"signed_header":{"header":{"chain_id":%q,"height":%q},`+
				`"commit":{"height":%q,"round":0,"block_id":{"hash":"5D8C1C1F6A0E2C3B4A59687766554433221100FFEEDDCCBBAA99887766554433"},`+
				`"signatures":[{"block_id_flag":2,"validator_address":%q,"timestamp":"2026-12-01T22:00:01Z","signature":"q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJCrze8SNFZ4kA=="}]}},"canonical":true}}`,
				network, h, h, signer)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// softsignHome writes a softsign home for testkit.Chain at mark height 5
// whose chain reads rpc.
func softsignHome(t *testing.T, rpc string) *config.Config {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{"keys", "state"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(home, "keys", "k.json"), keys.MarshalPrivValidatorKey(testkit.Key), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := signstate.WriteMark(signstate.StatePath(filepath.Join(home, "state"), testChain), testChain, signstate.Mark{Height: 5}, false); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.Chains = []config.ChainConfig{{ID: testChain, Key: "keys/k.json", Nodes: []string{"tcp://127.0.0.1:1"}, RPC: []string{rpc}}}
	if err := os.WriteFile(filepath.Join(home, config.FileName), cfg.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

// TestSoftsignDoppelganger: a softsign cosigner whose chain's commits
// already carry its validator's signature refuses to run (Run returns the
// DetectedError); an rpc of another chain is an error too.
func TestSoftsignDoppelganger(t *testing.T) {
	ours := keys.Address(testkit.Key.Public().(ed25519.PublicKey))
	for _, tc := range []struct {
		name, network, signer string
		want                  func(error) bool
	}{
		{"our signature in the chain", testChain, ours, func(err error) bool {
			var det *doppel.DetectedError
			return errors.As(err, &det) && det.Height == 10
		}},
		{"rpc of another chain", "other-1", ours, func(err error) bool { return errors.Is(err, doppel.ErrWrongChain) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := softsignHome(t, rpcNode(t, tc.network, tc.signer))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := New(ctx, cfg, testkit.Key, Options{Log: testkit.Log})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Run(ctx); !tc.want(err) {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}
