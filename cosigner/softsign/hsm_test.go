package softsign

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/testhsm"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
)

var _ ChainKey = (*hsm.Key)(nil)

// TestHSMSoftsign signs votes with the key in the simulator under the sign
// state rules; while the device is away a request fails and the state does
// not move; afterwards signing resumes where it stopped.
func TestHSMSoftsign(t *testing.T) {
	sim := testkit.Sim(t)
	h := testhsm.Dial(t, sim, 500*time.Millisecond)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 5, testkit.Chain, testkit.Key.Seed(), false); err != nil {
		t.Fatal(err)
	}
	state := teststate.New(t, signstate.Mark{Height: 1})
	path := state.Path()
	key, err := hsm.NewKey(ctx, h, 5, 500*time.Millisecond, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	if !pub.Equal(testkit.Key.Public()) {
		t.Fatalf("public key %x", pub)
	}
	if _, err := hsm.NewKey(ctx, h, 6, 500*time.Millisecond, testkit.Log); !errors.Is(err, hsm.ErrNotFound) {
		t.Fatalf("unknown key id: %v", err)
	}
	s := New(testkit.Log, nil, Options{})
	if err := s.AddChainKey(testkit.Chain, key, state); err != nil {
		t.Fatal(err)
	}
	if err := s.AddChainKey(testkit.Chain, key, state); err == nil {
		t.Fatal("added a chain twice")
	}
	t0 := time.Unix(1700000000, 0).UTC()
	req := testkit.Vote(5, 0, privval.StepPrecommit, "A", t0)
	req.ExtSignBytes = []byte("extension")
	resp, err := s.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) || !ed25519.Verify(pub, req.ExtSignBytes, resp.ExtSignature) {
		t.Fatal("signature or extension signature does not verify")
	}
	if _, err := s.Sign(ctx, testkit.Vote(5, 0, privval.StepPrecommit, "B", t0)); !errors.Is(err, signstate.ErrConflict) {
		t.Fatalf("conflicting precommit: %v, want ErrConflict", err)
	}

	sim.Stop()
	if _, err := s.Sign(ctx, testkit.Vote(6, 0, privval.StepPrevote, "A", t0)); !errors.Is(err, hsm.ErrUnreachable) {
		t.Fatalf("sign while the device is away: %v", err)
	}
	if m, err := signstate.ReadMark(path, testkit.Chain); err != nil || m.Height != 5 {
		t.Fatalf("state after a failed sign: %+v, %v; want height 5", m, err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	req = testkit.Vote(6, 0, privval.StepPrevote, "A", t0)
	resp, err = s.Sign(ctx, req)
	if err != nil {
		t.Fatalf("sign after restart: %v", err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
		t.Fatal("signature after restart does not verify")
	}
	if m, _ := signstate.ReadMark(path, testkit.Chain); m.Height != 6 {
		t.Fatalf("state height %d after signing 6", m.Height)
	}
}
