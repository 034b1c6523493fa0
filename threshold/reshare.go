package threshold

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
)

// NewReshare returns a participant's state for resharing the key of an
// M-of-N group (oldGroup, whose participants' long-term keys are
// oldParticipants, index i being participant i+1) to a newM-of-N' group
// (newParticipants), keeping the group public key. dealers lists the old
// identifiers that deal: at least M of them, each holding its share; every
// one of them must complete, or the resharing fails. A participant may be in
// both lists, in the old only (it deals and retires: Result gives it no
// share), or in the new only (own is nil). own is this participant's old
// share, or nil for a newcomer. The new polynomial is fresh: an old share is
// of no use with the new ones. The DKG then runs as NewDKG's does; message
// senders are old identifiers for deals and new identifiers for responses.
func NewReshare(own *KeyShare, oldGroup *GroupKey, longterm []byte, oldParticipants, newParticipants [][]byte, dealers []uint16, newM int, ceremonyID []byte) (*DKG, error) {
	if oldGroup == nil {
		return nil, errors.New("reshare: the old group key is missing")
	}
	if len(oldParticipants) != oldGroup.N() {
		return nil, fmt.Errorf("reshare: %d old participants listed, the old group has %d", len(oldParticipants), oldGroup.N())
	}
	n := len(newParticipants)
	if err := CheckThreshold(newM, n); err != nil {
		return nil, fmt.Errorf("reshare: %w", err)
	}
	if len(dealers) < oldGroup.Threshold() {
		return nil, fmt.Errorf("reshare: %d dealers, the old group needs at least %d", len(dealers), oldGroup.Threshold())
	}
	long := suite.Scalar()
	if len(longterm) != LongtermSize || long.UnmarshalBinary(longterm) != nil {
		return nil, errors.New("reshare: long-term secret is not a 32-byte canonical scalar")
	}
	me := suite.Point().Mul(long, nil)
	h := sha256.New()
	h.Write([]byte("cosigner reshare v1"))
	h.Write(oldGroup.Bytes())
	h.Write([]byte{byte(newM), byte(n), byte(len(dealers))})
	parse := func(what string, list [][]byte) ([]kyber.Point, uint16, error) {
		pts := make([]kyber.Point, len(list))
		var self uint16
		seen := map[string]bool{}
		for i, p := range list {
			pt := suite.Point()
			if _, err := decodeElement(p); err != nil || pt.UnmarshalBinary(p) != nil {
				return nil, 0, fmt.Errorf("reshare: %s participant %d's public key is not a valid 32-byte point", what, i+1)
			}
			if seen[string(p)] {
				return nil, 0, fmt.Errorf("reshare: %s participant %d's public key is listed twice", what, i+1)
			}
			seen[string(p)] = true
			pts[i] = pt
			if pt.Equal(me) {
				self = uint16(i + 1)
			}
			h.Write(p)
		}
		return pts, self, nil
	}
	oldPubs, oldSelf, err := parse("old", oldParticipants)
	if err != nil {
		return nil, err
	}
	newPubs, self, err := parse("new", newParticipants)
	if err != nil {
		return nil, err
	}
	if oldSelf == 0 && self == 0 {
		return nil, errors.New("reshare: the long-term key is in neither the old nor the new participant list")
	}
	seen := map[uint16]bool{}
	for _, x := range dealers {
		if x < 1 || int(x) > len(oldPubs) || seen[x] {
			return nil, fmt.Errorf("reshare: dealer %d is not one of 1..%d, or listed twice", x, len(oldPubs))
		}
		seen[x] = true
		h.Write([]byte{byte(x >> 8), byte(x)})
	}
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(ceremonyID)))
	h.Write(l[:])
	h.Write(ceremonyID)

	var oldCommits []kyber.Point
	for _, c := range oldGroup.Commitments() {
		k, err := pointToKyber(c)
		if err != nil {
			return nil, fmt.Errorf("reshare: %w", err)
		}
		oldCommits = append(oldCommits, k)
	}
	cfg := &pedersen.Config{
		Suite: suite, Longterm: long, OldNodes: oldPubs, NewNodes: newPubs,
		PublicCoeffs: oldCommits, Threshold: newM, OldThreshold: oldGroup.Threshold(),
	}
	dealing := oldSelf != 0 && seen[oldSelf]
	if dealing {
		if own == nil || own.ID() != oldSelf || !own.Group().Equal(oldGroup) {
			return nil, fmt.Errorf("reshare: dealer %d needs its own share of the old group", oldSelf)
		}
		if err := VerifyShare(own, oldGroup.PublicKey()); err != nil {
			return nil, fmt.Errorf("reshare: our own share does not match the old group, dealing it would abort the resharing: %w", err)
		}
		v, err := scalarToKyber(&own.secret)
		if err != nil {
			return nil, fmt.Errorf("reshare: %w", err)
		}
		cfg.Share = &pedersen.DistKeyShare{Commits: oldCommits, Share: &share.PriShare{I: int(oldSelf) - 1, V: v}}
	} else if self == 0 {
		return nil, fmt.Errorf("reshare: old participant %d is neither a dealer nor in the new group: it has no part", oldSelf)
	}
	gen, err := pedersen.NewDistKeyHandler(cfg)
	if err != nil {
		return nil, fmt.Errorf("reshare: %w", err)
	}
	d := &DKG{self: self, oldSelf: oldSelf, reshare: true, m: newM, n: n, long: long,
		pubs: newPubs, oldPubs: oldPubs, dealers: append([]uint16(nil), dealers...),
		oldPub: oldGroup.PublicKey(), gen: gen,
		deals: map[uint16]bool{}, responses: map[[2]uint16]bool{}, pending: map[[2]uint16]*pedersen.Response{}}
	if !dealing {
		d.oldSelf = 0 // deals from ourselves are never expected
	}
	copy(d.session[:], h.Sum(nil))
	if dkgHook != nil {
		dkgHook(d)
	}
	return d, nil
}
