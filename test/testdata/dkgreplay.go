// This file is not part of cosigner. The DKG end-to-end tests compile it
// into package ceremony with `go build -overlay` (as
// cosigner/ceremony/zz_e2e_dkgreplay.go), so a test binary can replay a
// ceremony message without any switch in the product.

package ceremony

import (
	"os"
	"sync"
)

// init: with COSIGNER_TEST_DKG_REPLAY=1, this process sends its first DKG
// message to each peer twice; with COSIGNER_TEST_DKG_HOLD=1 it sends no DKG
// message at all (it confirms the transcript, then the others wait for its
// deals: the test kills it there, mid-ceremony).
func init() {
	if os.Getenv("COSIGNER_TEST_DKG_HOLD") == "1" {
		testHookSend = func(self, to int, f frame) []frame {
			if f.typ == frameDKG {
				return nil
			}
			return []frame{f}
		}
		return
	}
	if os.Getenv("COSIGNER_TEST_DKG_REPLAY") != "1" {
		return
	}
	var mu sync.Mutex
	sent := map[int]bool{}
	testHookSend = func(self, to int, f frame) []frame {
		mu.Lock()
		defer mu.Unlock()
		if f.typ != frameDKG || sent[to] {
			return []frame{f}
		}
		sent[to] = true
		return []frame{f, f}
	}
}
