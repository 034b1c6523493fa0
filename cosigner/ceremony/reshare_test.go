package ceremony

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/threshold"
)

// TestRunReshare runs a resharing through Run, as `cosigner reshare` will:
// participants are the union of an old 2-of-3 group (cosigners 1, 2, 3 with
// identifiers 1, 2, 3) and a new 2-of-3 group (cosigners 2, 3, 4 with new
// identifiers 1, 2, 3); old 1 and 2 deal, cosigner 1 retires, cosigner 4
// joins. Every new member gets a share of the same group key, and the
// retiring one an error wrapping threshold.ErrRetired.
func TestRunReshare(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	old, err := threshold.Deal(key.Seed(), 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldIDs := []int{1, 2, 3} // cosigner of old identifier i+1
	newIDs := []int{2, 3, 4} // cosigner of new identifier i+1
	dealers := []uint16{1, 2}
	params := fmt.Appendf(nil, "kind: reshare\nold: 2-of-3 %X\nnew: 2-of-3\n", old.Group.PublicKey())
	idmap := func(ids []int) map[uint16]int {
		m := map[uint16]int{}
		for i, id := range ids {
			m[uint16(i+1)] = id
		}
		return m
	}
	newProto := func(cosigner int) NewProtocol {
		return func(s Setup) (*Protocol, error) {
			var oldPubs, newPubs [][]byte
			for _, id := range oldIDs {
				oldPubs = append(oldPubs, s.Longterms[id])
			}
			for _, id := range newIDs {
				newPubs = append(newPubs, s.Longterms[id])
			}
			var own *threshold.KeyShare
			if cosigner <= 3 {
				own = old.Shares[cosigner-1]
			}
			d, err := threshold.NewReshare(own, old.Group, s.Longterm, oldPubs, newPubs, dealers, 2, s.CeremonyID)
			if err != nil {
				return nil, err
			}
			return &Protocol{DKG: d, Dealers: idmap(oldIDs), Members: idmap(newIDs)}, nil
		}
	}
	c := newCluster(t, 4)
	var opts []Options
	var protos []NewProtocol
	for i := 1; i <= 4; i++ {
		opts = append(opts, c.opts(i, params))
		protos = append(protos, newProto(i))
	}
	res := runAll(opts, protos)
	if !errors.Is(res[0].err, threshold.ErrRetired) || res[0].share != nil {
		t.Fatalf("retiring cosigner 1: %v", res[0].err)
	}
	var shares []*threshold.KeyShare
	for i, r := range res[1:] {
		if r.err != nil {
			t.Fatalf("cosigner %d: %v", i+2, r.err)
		}
		if !ed25519.PublicKey(r.group.PublicKey()).Equal(old.Group.PublicKey()) {
			t.Fatalf("cosigner %d: the group key changed", i+2)
		}
		if int(r.share.ID()) != i+1 {
			t.Fatalf("cosigner %d has new identifier %d, want %d", i+2, r.share.ID(), i+1)
		}
		shares = append(shares, r.share)
	}
	for _, pair := range [][2]int{{0, 1}, {0, 2}, {1, 2}} {
		s, err := threshold.Reassemble([]*threshold.KeyShare{shares[pair[0]], shares[pair[1]]})
		if err != nil {
			t.Fatal(err)
		}
		if pub := new(edwards25519.Point).ScalarBaseMult(s).Bytes(); !ed25519.PublicKey(pub).Equal(old.Group.PublicKey()) {
			t.Fatalf("new shares %v rebuild another key", pair)
		}
	}
}
