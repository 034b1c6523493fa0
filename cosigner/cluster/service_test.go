package cluster

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"filippo.io/edwards25519"
	"google.golang.org/protobuf/proto"

	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/threshold"
)

// TestCommitmentFromProto checks the wire form of a nonce commitment both
// ways: with the eighths a cosigner sends now (no prime-order check), and
// without them, as a cosigner that predates them sends (each point's order
// checked). Whatever the eighths, the commitment used is the hiding and
// binding the message names, or none.
func TestCommitmentFromProto(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	d, err := threshold.Deal(key.Seed(), 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := NewBootID()
	pool := NewNoncePool(d.Shares[1], boot, 0)
	defer pool.Close()
	cs, err := pool.Generate(2)
	if err != nil {
		t.Fatal(err)
	}
	want, other := cs[0], cs[1]
	wire := commitmentToProto(want)
	if len(wire.GetHidingEighth()) != threshold.ElementSize || len(wire.GetBindingEighth()) != threshold.ElementSize {
		t.Fatalf("a new commitment is sent without its eighths: %v", wire)
	}
	// small is a point of order 8; torsion adds it to an encoding.
	small, err := new(edwards25519.Point).SetBytes(mustHexBytes(t, "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"))
	if err != nil {
		t.Fatal(err)
	}
	torsion := func(b []byte) []byte {
		p, err := new(edwards25519.Point).SetBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		return p.Add(p, small).Bytes()
	}
	edit := func(f func(p *cosignerv1.NonceCommitment)) *cosignerv1.NonceCommitment {
		p := proto.Clone(wire).(*cosignerv1.NonceCommitment)
		f(p)
		return p
	}
	for _, tc := range []struct {
		name string
		p    *cosignerv1.NonceCommitment
		ok   bool
	}{
		{"with eighths", wire, true},
		{"without eighths (an older sender)", edit(func(p *cosignerv1.NonceCommitment) { p.HidingEighth, p.BindingEighth = nil, nil }), true},
		// [8] clears a torsion component of an eighth: the same D.
		{"eighth with a small-order component", edit(func(p *cosignerv1.NonceCommitment) { p.HidingEighth = torsion(p.HidingEighth) }), true},
		{"hiding is not 8 times its eighth", edit(func(p *cosignerv1.NonceCommitment) { p.Hiding = commitmentToProto(other).Hiding }), false},
		{"eighths of another commitment", edit(func(p *cosignerv1.NonceCommitment) {
			o := commitmentToProto(other)
			p.HidingEighth, p.BindingEighth = o.HidingEighth, o.BindingEighth
		}), false},
		{"one eighth only", edit(func(p *cosignerv1.NonceCommitment) { p.BindingEighth = nil }), false},
		{"small-order eighth", edit(func(p *cosignerv1.NonceCommitment) { p.HidingEighth = small.Bytes() }), false},
		// Without eighths a torsion component in D itself is refused.
		{"without eighths, D with a small-order component", edit(func(p *cosignerv1.NonceCommitment) {
			p.HidingEighth, p.BindingEighth = nil, nil
			p.Hiding = torsion(p.Hiding)
		}), false},
		{"with eighths, D with a small-order component", edit(func(p *cosignerv1.NonceCommitment) { p.Hiding = torsion(p.Hiding) }), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := commitmentFromProto(tc.p)
			if !tc.ok {
				if err == nil {
					t.Fatalf("accepted: %x", got.Commitment.Bytes())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Commitment.Equal(want.Commitment) || got.BootID != want.BootID || got.Handle != want.Handle {
				t.Fatalf("decoded %x, want %x", got.Commitment.Bytes(), want.Commitment.Bytes())
			}
			// What a leader forwards carries the eighths it got, if any.
			again := commitmentToProto(got)
			if !bytes.Equal(again.GetHiding(), wire.GetHiding()) || !bytes.Equal(again.GetHidingEighth(), tc.p.GetHidingEighth()) {
				t.Fatalf("forwarded as %v", again)
			}
		})
	}
}

func mustHexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
