package softsign

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cosigner/cosigner/privval"
)

func TestSoftsign(t *testing.T) {
	s, _ := newTestState(t, Mark{Height: 1})
	ss := NewSoftsign(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := ss.AddChain(testChain, testKey, s); err != nil {
		t.Fatal(err)
	}
	if err := ss.AddChain(testChain, testKey, s); err == nil {
		t.Fatal("added a chain twice")
	}
	ctx := context.Background()
	pub, err := ss.PubKey(ctx, testChain)
	if err != nil || !pub.Equal(testKey.Public()) {
		t.Fatalf("PubKey = %x, %v", pub, err)
	}
	if _, err := ss.PubKey(ctx, "other"); err == nil {
		t.Fatal("PubKey of an unknown chain")
	}

	t0 := time.Unix(1700000000, 0).UTC()
	req := vote(5, 0, privval.StepPrecommit, "A", t0)
	req.ExtSignBytes = []byte("extension sign bytes")
	resp, err := ss.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) || !ed25519.Verify(pub, req.ExtSignBytes, resp.ExtSignature) {
		t.Fatal("signature or extension signature does not verify")
	}

	// No extension signature unless asked.
	resp, err = ss.Sign(ctx, vote(6, 0, privval.StepPrevote, "A", t0))
	if err != nil || resp.ExtSignature != nil {
		t.Fatalf("prevote: ext sig %x, err %v", resp.ExtSignature, err)
	}

	// Conflicts and unknown chains are errors, not signatures.
	if _, err := ss.Sign(ctx, vote(6, 0, privval.StepPrevote, "B", t0)); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	other := vote(7, 0, privval.StepPrevote, "A", t0)
	other.ChainID = "other"
	if _, err := ss.Sign(ctx, other); err == nil {
		t.Fatal("signed for an unknown chain")
	}
}
