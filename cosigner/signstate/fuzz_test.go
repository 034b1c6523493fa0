package signstate

import (
	"bytes"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// FuzzParseMark: state files from disk never panic the decoder, and what
// decodes re-encodes to a file that decodes to the same mark.
func FuzzParseMark(f *testing.F) {
	v := vote(7, 1, privval.StepPrecommit, "A", time.Unix(1700000000, 0).UTC())
	good := encodeState(testChain, Mark{Height: 7, Round: 1, Step: privval.StepPrecommit, SignBytes: v.SignBytes, Signature: make([]byte, 64)})
	slotted := make([]byte, 2*slotSize)
	if err := encodeSlot(slotted, 3, good); err != nil {
		f.Fatal(err)
	}
	// A new file: sequence 1 in slot 1, slot 0 empty.
	fresh := make([]byte, 2*slotSize)
	if err := encodeSlot(fresh[slotSize:], 1, good); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(slotted)
	f.Add(fresh)
	f.Add([]byte(`{"chain_id":"test-chain","height":"5","round":0,"step":0}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMark(data, testChain)
		if err != nil {
			return
		}
		again, err := parseMark(encodeState(testChain, m), testChain)
		if err != nil {
			t.Fatalf("re-encoded mark does not decode: %v", err)
		}
		if again.Height != m.Height || again.Round != m.Round || again.Step != m.Step ||
			!bytes.Equal(again.SignBytes, m.SignBytes) || !bytes.Equal(again.Signature, m.Signature) {
			t.Fatalf("round trip changed the mark: %+v -> %+v", m, again)
		}
	})
}
