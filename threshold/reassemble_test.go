package threshold

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

func TestReassemble(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	d, err := Deal(seed, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first *edwards25519.Scalar
	for subset := range combinations(5, 3) {
		var shares []*KeyShare
		for _, i := range subset {
			shares = append(shares, d.Shares[i])
		}
		s, err := Reassemble(shares)
		if err != nil {
			t.Fatalf("subset %v: %v", subset, err)
		}
		if got := new(edwards25519.Point).ScalarBaseMult(s).Bytes(); !bytes.Equal(got, pub) {
			t.Fatalf("subset %v: public key %x, want %x", subset, got, pub)
		}
		if first == nil {
			first = s
		} else if s.Equal(first) != 1 {
			t.Fatalf("subset %v gives another scalar", subset)
		}
	}
	if all, err := Reassemble(d.Shares); err != nil || all.Equal(first) != 1 {
		t.Fatalf("all five shares: %v", err)
	}

	other, _ := Deal(seed, 3, 5, nil) // same key, another polynomial
	tampered, _ := NewKeyShare(2, scalarOne(), d.Group)
	tests := []struct {
		name   string
		shares []*KeyShare
		want   string
	}{
		{"none", nil, "no key shares"},
		{"fewer than M", d.Shares[:2], "2 key shares, the group needs 3"},
		{"duplicate", []*KeyShare{d.Shares[0], d.Shares[1], d.Shares[0]}, "key share 1 given twice"},
		{"another group", []*KeyShare{d.Shares[0], d.Shares[1], other.Shares[2]}, "key share 3 belongs to another group"},
		{"tampered", []*KeyShare{d.Shares[0], tampered, d.Shares[2]}, "key share 2 is tampered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Reassemble(tt.shares)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// DealScalar of a reassembled scalar gives a new sharding of the same key.
func TestDealScalarReshards(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	d, _ := Deal(seed, 2, 3, nil)
	s, err := Reassemble(d.Shares[1:])
	if err != nil {
		t.Fatal(err)
	}
	d2, err := DealScalar(s, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d2.Group.PublicKey(), d.Group.PublicKey()) {
		t.Fatal("DealScalar changed the public key")
	}
	if again, err := Reassemble(d2.Shares[2:]); err != nil || again.Equal(s) != 1 {
		t.Fatalf("reassembling the new sharding: %v", err)
	}
	if _, err := DealScalar(edwards25519.NewScalar(), 2, 3, nil); err == nil {
		t.Fatal("zero scalar dealt")
	}
	if _, err := DealScalar(s, 1, 3, nil); err == nil {
		t.Fatal("1-of-3 dealt")
	}
}
