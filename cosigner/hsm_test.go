package cosigner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/cosigner/softsign"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/testhsm"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
)

// TestHSMAdmin: status lists chains whose key is in the device, and
// readiness reports the device away.
func TestHSMAdmin(t *testing.T) {
	sim := testkit.Sim(t)
	h := testhsm.Dial(t, sim, 300*time.Millisecond)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 5, "", testkit.Key.Seed(), false); err != nil {
		t.Fatal(err)
	}
	state := teststate.New(t, signstate.Mark{Height: 3})
	key, err := hsm.NewKey(ctx, h, 5, 300*time.Millisecond, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	hs := softsign.New(testkit.Log, nil, softsign.Options{})
	if err := hs.AddChainKey(testChain, key, state); err != nil {
		t.Fatal(err)
	}
	backend := &softsignBackend{signer: hs, tracker: admin.NewTracker(nil), version: "test"}
	st := backend.Status(ctx)
	if len(st.Chains) != 1 || !st.Ready {
		t.Fatalf("status: %+v", st)
	}
	sim.Stop()
	if _, err := hs.Sign(ctx, testkit.Vote(4, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0))); err == nil {
		t.Fatal("signed without a device")
	}
	if err := backend.Ready(); err == nil || !strings.Contains(err.Error(), "yubihsm") {
		t.Fatalf("ready with the device away: %v", err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Sign(ctx, testkit.Vote(4, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0))); err != nil {
		t.Fatal(err)
	}
	if err := backend.Ready(); err != nil {
		t.Fatalf("ready after the device came back: %v", err)
	}
}
