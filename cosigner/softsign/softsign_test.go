package softsign

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/internal/testkit/teststate"
	"github.com/cosigner/cosigner/privval"
)

func TestSoftsign(t *testing.T) {
	s := teststate.New(t, signstate.Mark{Height: 1})
	ss := New(testkit.Log, nil)
	if err := ss.AddChain(testkit.Chain, testkit.Key, s); err != nil {
		t.Fatal(err)
	}
	if err := ss.AddChain(testkit.Chain, testkit.Key, s); err == nil {
		t.Fatal("added a chain twice")
	}
	ctx := context.Background()
	pub, err := ss.PubKey(ctx, testkit.Chain)
	if err != nil || !pub.Equal(testkit.Key.Public()) {
		t.Fatalf("PubKey = %x, %v", pub, err)
	}
	if _, err := ss.PubKey(ctx, "other"); err == nil {
		t.Fatal("PubKey of an unknown chain")
	}

	t0 := time.Unix(1700000000, 0).UTC()
	req := testkit.Vote(5, 0, privval.StepPrecommit, "A", t0)
	req.ExtSignBytes = []byte("extension sign bytes")
	resp, err := ss.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) || !ed25519.Verify(pub, req.ExtSignBytes, resp.ExtSignature) {
		t.Fatal("signature or extension signature does not verify")
	}

	// No extension signature unless asked.
	resp, err = ss.Sign(ctx, testkit.Vote(6, 0, privval.StepPrevote, "A", t0))
	if err != nil || resp.ExtSignature != nil {
		t.Fatalf("prevote: ext sig %x, err %v", resp.ExtSignature, err)
	}

	// Conflicts and unknown chains are errors, not signatures.
	if _, err := ss.Sign(ctx, testkit.Vote(6, 0, privval.StepPrevote, "B", t0)); !errors.Is(err, signstate.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	other := testkit.Vote(7, 0, privval.StepPrevote, "A", t0)
	other.ChainID = "other"
	if _, err := ss.Sign(ctx, other); err == nil {
		t.Fatal("signed for an unknown chain")
	}
}
