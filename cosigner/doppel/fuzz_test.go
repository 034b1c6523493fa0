package doppel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// FuzzCommit feeds arbitrary answers to /commit: the client never panics,
// and what it accepts is a commit of the asked height whose present
// entries all carry a 20-byte address and a 64-byte signature.
func FuzzCommit(f *testing.F) {
	seed, err := os.ReadFile("testdata/commit.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"result":{}}`))
	f.Add([]byte(`{"result":{"signed_header":{"header":{"chain_id":"kira-1","height":"42"},"commit":{"height":"42","signatures":[]}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
		defer srv.Close()
		cm, err := NewClient([]string{srv.URL}, "kira-1", time.Second).Commit(context.Background(), 42)
		if err != nil {
			return
		}
		if cm.Height != 42 || len(cm.BlockHash) != 32 || len(cm.Sigs) == 0 {
			t.Fatalf("accepted a malformed commit: %+v", cm)
		}
		for _, s := range cm.Sigs {
			if s.Flag != FlagAbsent && (len(s.Address) != 20 || len(s.Signature) != 64) {
				t.Fatalf("accepted a malformed entry: %+v", s)
			}
		}
	})
}
