package threshold

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"filippo.io/edwards25519"
)

// publicShares returns the public shares of the dealing's participants ids,
// in the order given.
func publicShares(t *testing.T, d *Dealing, ids ...uint16) []PublicShare {
	t.Helper()
	out := make([]PublicShare, len(ids))
	for i, id := range ids {
		out[i] = PublicShare{ID: id, Point: d.Shares[id-1].PublicShare()}
	}
	return out
}

func allIDs(n int) []uint16 {
	ids := make([]uint16, n)
	for i := range ids {
		ids[i] = uint16(i + 1)
	}
	return ids
}

func newSeed(t *testing.T) ([]byte, ed25519.PublicKey) {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		t.Fatal(err)
	}
	return seed, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

// TestGroupKeyFromPublicShares rebuilds dealt groups from their public
// shares alone: the group equals the dealt one, with every share or only
// M of them, in any order, and every dealt key share verifies against it.
func TestGroupKeyFromPublicShares(t *testing.T) {
	for _, shape := range []struct{ m, n int }{{2, 2}, {2, 3}, {3, 4}, {3, 5}, {4, 5}, {5, 7}, {7, 13}} {
		t.Run(fmt.Sprintf("%d-of-%d", shape.m, shape.n), func(t *testing.T) {
			seed, pub := newSeed(t)
			d, err := Deal(seed, shape.m, shape.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			all := allIDs(shape.n)
			reversed := slices.Clone(all)
			slices.Reverse(reversed)
			for name, ids := range map[string][]uint16{
				"all":      all,
				"reversed": reversed,
				"last M":   all[shape.n-shape.m:],
			} {
				g, err := GroupKeyFromPublicShares(pub, shape.m, shape.n, publicShares(t, d, ids...))
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !g.Equal(d.Group) {
					t.Errorf("%s: rebuilt group differs from the dealt one", name)
				}
				for _, s := range d.Shares {
					ks, err := NewKeyShare(s.ID(), &s.secret, g)
					if err != nil {
						t.Fatal(err)
					}
					if err := VerifyShare(ks, pub); err != nil {
						t.Errorf("%s: dealt share does not verify against the rebuilt group: %v", name, err)
					}
				}
			}
		})
	}
}

// TestGroupKeyFromPublicSharesRefuses feeds sets that are not the public
// shares of one dealing of the key, and checks each is refused, naming the
// odd share where one is.
func TestGroupKeyFromPublicSharesRefuses(t *testing.T) {
	seed, pub := newSeed(t)
	d, err := Deal(seed, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	d35, err := Deal(seed, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	redealt, err := Deal(seed, 2, 3, nil) // the same key, another polynomial
	if err != nil {
		t.Fatal(err)
	}
	otherSeed, otherPub := newSeed(t)
	other, err := Deal(otherSeed, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}

	swap := func(shares []PublicShare, id uint16, p *edwards25519.Point) []PublicShare {
		out := slices.Clone(shares)
		for i := range out {
			if out[i].ID == id {
				out[i].Point = p
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		pub    ed25519.PublicKey
		m, n   int
		shares []PublicShare
		want   string
		odd    []uint16 // a *PublicShareError with these odd ids; nil: another error
	}{
		{"share of another key", pub, 2, 3, swap(publicShares(t, d, 1, 2, 3), 3, other.Shares[2].PublicShare()),
			"participant(s) 3 does not lie", []uint16{3}},
		{"first share odd", pub, 2, 3, swap(publicShares(t, d, 1, 2, 3), 1, other.Shares[0].PublicShare()),
			"participant(s) 1 does not lie", []uint16{1}},
		{"share of another dealing of the key", pub, 2, 3, swap(publicShares(t, d, 1, 2, 3), 2, redealt.Shares[1].PublicShare()),
			"participant(s) 2 does not lie", []uint16{2}},
		{"odd share in 3-of-5", pub, 3, 5, swap(publicShares(t, d35, 1, 2, 3, 4, 5), 2, other.Shares[1].PublicShare()),
			"participant(s) 2 does not lie", []uint16{2}},
		{"two odd shares in 3-of-5", pub, 3, 5, swap(swap(publicShares(t, d35, 1, 2, 3, 4, 5), 2, other.Shares[1].PublicShare()), 5, other.Shares[2].PublicShare()),
			"participant(s) 2, 5 does not lie", []uint16{2, 5}},
		{"another key's public key", otherPub, 2, 3, publicShares(t, d, 1, 2, 3),
			"no 2 of the 3 public shares interpolate", []uint16{}},
		{"wrong threshold", pub, 3, 3, publicShares(t, d, 1, 2, 3),
			"no 3 of the 3 public shares interpolate", []uint16{}},
		{"exactly M, one odd", pub, 2, 3, swap(publicShares(t, d, 1, 3), 3, other.Shares[2].PublicShare()),
			"no 2 of the 2 public shares interpolate", []uint16{}},
		{"fewer than M", pub, 2, 3, publicShares(t, d, 2), "at least 2 are needed", nil},
		{"duplicate id", pub, 2, 3, append(publicShares(t, d, 1, 2), PublicShare{ID: 2, Point: d.Shares[2].PublicShare()}),
			"participant 2 has two public shares", nil},
		{"id 0", pub, 2, 3, append(publicShares(t, d, 1, 2), PublicShare{ID: 0, Point: d.Shares[2].PublicShare()}),
			"participant 0 is not one of 1..3", nil},
		{"id above N", pub, 2, 3, append(publicShares(t, d, 1, 2), PublicShare{ID: 4, Point: d.Shares[2].PublicShare()}),
			"participant 4 is not one of 1..3", nil},
		{"identity point", pub, 2, 3, swap(publicShares(t, d, 1, 2, 3), 2, edwards25519.NewIdentityPoint()),
			"identity", nil},
		{"missing point", pub, 2, 3, swap(publicShares(t, d, 1, 2, 3), 2, nil), "is missing", nil},
		{"half threshold", pub, 2, 4, publicShares(t, d, 1, 2, 3), "disjoint quorums", nil},
		{"short public key", pub[:31], 2, 3, publicShares(t, d, 1, 2, 3), "31 bytes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := GroupKeyFromPublicShares(tc.pub, tc.m, tc.n, tc.shares)
			if err == nil {
				t.Fatalf("accepted, group key %x", g.PublicKey())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one containing %q", err, tc.want)
			}
			var pe *PublicShareError
			switch {
			case tc.odd == nil && errors.As(err, &pe):
				t.Errorf("got a PublicShareError %v, want an input error", pe)
			case tc.odd != nil && !errors.As(err, &pe):
				t.Errorf("got %v, want a PublicShareError", err)
			case tc.odd != nil && !slices.Equal(pe.Odd, tc.odd):
				t.Errorf("odd shares %v, want %v", pe.Odd, tc.odd)
			}
		})
	}
}

func TestCombinations(t *testing.T) {
	var got []string
	for c := range combinations(4, 2) {
		got = append(got, fmt.Sprint(c))
	}
	want := []string{"[0 1]", "[0 2]", "[0 3]", "[1 2]", "[1 3]", "[2 3]"}
	if !slices.Equal(got, want) {
		t.Errorf("combinations(4, 2) = %v, want %v", got, want)
	}
	n := 0
	for range combinations(3, 0) {
		n++
	}
	if n != 1 {
		t.Errorf("combinations(3, 0) yields %d subsets, want 1 (the empty one)", n)
	}
}

func BenchmarkGroupKeyFromPublicShares(b *testing.B) {
	seed := make([]byte, ed25519.SeedSize)
	d, err := Deal(seed, 3, 5, nil)
	if err != nil {
		b.Fatal(err)
	}
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	shares := make([]PublicShare, 5)
	for i, s := range d.Shares {
		shares[i] = PublicShare{ID: s.ID(), Point: s.PublicShare()}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := GroupKeyFromPublicShares(pub, 3, 5, shares); err != nil {
			b.Fatal(err)
		}
	}
}
