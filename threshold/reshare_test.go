package threshold

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.dedis.ch/kyber/v3"
	"go.dedis.ch/kyber/v3/share"
	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
)

// deliverReshare routes deals by new identifier and responses to everyone
// but their sender, through the wire encoding.
func deliverReshare(t *testing.T, ps []*DKG, msgs []*DKGMessage) {
	t.Helper()
	if errs := deliverReshareErrs(t, ps, msgs, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// deliverReshareErrs is deliverReshare that drops the messages drop says
// to and returns each participant's (by index in ps) first error.
func deliverReshareErrs(t *testing.T, ps []*DKG, msgs []*DKGMessage, drop func(*DKGMessage) bool) map[int]error {
	t.Helper()
	errs := map[int]error{}
	for len(msgs) > 0 {
		msg := msgs[0]
		msgs = msgs[1:]
		if drop != nil && drop(msg) {
			continue
		}
		for i, p := range ps {
			switch {
			case msg.Kind == KindDeal && (p.self == 0 || p.self != msg.To):
				continue
			case msg.Kind == KindResponse && p.self != 0 && p.self == msg.From:
				continue
			}
			wire, err := DecodeDKGMessage(msg.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Handle(wire)
			if err != nil && errs[i] == nil {
				errs[i] = fmt.Errorf("participant (old %d, new %d), %v from %d: %w", p.oldSelf, p.self, msg.Kind, msg.From, err)
			}
			msgs = append(msgs, out...)
		}
	}
	return errs
}

func TestReshareKeepsGroupKey(t *testing.T) {
	for _, tc := range []struct {
		name       string
		oldM, oldN int
		keep       []int // old identifiers that stay, in new order
		newcomers  int
		newM       int
		dealers    []uint16
	}{
		{"2-of-3 to 3-of-5, one host retired", 2, 3, []int{1, 3}, 3, 3, []uint16{1, 2, 3}},
		{"2-of-3 to 3-of-4, two dealers", 2, 3, []int{1, 2, 3}, 1, 3, []uint16{2, 3}},
		{"3-of-5 to 2-of-3", 3, 5, []int{5, 4, 1}, 0, 2, []uint16{1, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			oldCer := newCeremony(t, tc.oldM, tc.oldN, "old")
			deliver(t, oldCer, start(t, oldCer), nil)
			oldShares := make([]*KeyShare, tc.oldN)
			var oldGroup *GroupKey
			for i, p := range oldCer {
				var err error
				if oldShares[i], oldGroup, err = p.Result(); err != nil {
					t.Fatal(err)
				}
			}
			oldPubs := make([][]byte, tc.oldN)
			oldSecrets := make([][]byte, tc.oldN)
			for i, p := range oldCer {
				oldSecrets[i], _ = p.long.MarshalBinary()
				oldPubs[i], _ = suite.Point().Mul(p.long, nil).MarshalBinary()
			}
			var newPubs, newSecrets [][]byte
			for _, k := range tc.keep {
				newPubs = append(newPubs, oldPubs[k-1])
				newSecrets = append(newSecrets, oldSecrets[k-1])
			}
			for range tc.newcomers {
				sec, pub, err := GenerateLongterm(nil)
				if err != nil {
					t.Fatal(err)
				}
				newPubs = append(newPubs, pub)
				newSecrets = append(newSecrets, sec)
			}
			// Every old participant that deals or stays, and every newcomer.
			var ps []*DKG
			add := func(own *KeyShare, sec []byte) {
				p, err := NewReshare(own, oldGroup, sec, oldPubs, newPubs, tc.dealers, tc.newM, []byte("reshare"))
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			inNew := map[int]bool{}
			for _, k := range tc.keep {
				inNew[k] = true
			}
			isDealer := map[int]bool{}
			for _, x := range tc.dealers {
				isDealer[int(x)] = true
			}
			for i := range tc.oldN {
				if isDealer[i+1] || inNew[i+1] {
					add(oldShares[i], oldSecrets[i])
				}
			}
			for i := len(tc.keep); i < len(newPubs); i++ {
				add(nil, newSecrets[i])
			}
			deliverReshare(t, ps, start(t, ps))

			newShares := make([]*KeyShare, len(newPubs))
			var group *GroupKey
			for _, p := range ps {
				if len(p.Missing()) != 0 {
					t.Fatalf("participant (old %d, new %d) misses %v", p.oldSelf, p.self, p.Missing())
				}
				ks, g, err := p.Result()
				if p.self == 0 {
					if err == nil || ks != nil {
						t.Fatal("a retiring participant got a share")
					}
					continue
				}
				if err != nil {
					t.Fatalf("participant %d: %v", p.self, err)
				}
				if err := VerifyShare(ks, oldGroup.PublicKey()); err != nil {
					t.Fatal(err)
				}
				if group != nil && !group.Equal(g) {
					t.Fatal("two new group keys")
				}
				group = g
				newShares[ks.ID()-1] = ks
			}
			if string(group.PublicKey()) != string(oldGroup.PublicKey()) || group.Threshold() != tc.newM || group.N() != len(newPubs) {
				t.Fatal("new group key differs from the old one, or has the wrong shape")
			}
			msg := []byte("after the reshare")
			for subset := range combinations(len(newPubs), tc.newM) {
				var signers []*KeyShare
				for _, i := range subset {
					signers = append(signers, newShares[i])
				}
				if !ed25519.Verify(group.PublicKey(), msg, signWith(t, group, signers, msg)) {
					t.Fatalf("subset %v does not sign", subset)
				}
			}
			// An old share is of no use with the new ones: as a member of
			// the new group it does not verify against the new commitments.
			for _, old := range oldShares {
				if int(old.ID()) > group.N() {
					continue
				}
				imposter, err := NewKeyShare(old.ID(), &old.secret, group)
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifyShare(imposter, group.PublicKey()); err == nil {
					t.Fatalf("old share %d verifies in the new group", old.ID())
				}
			}
		})
	}
}

// TestReshareFailures: 2-of-3 to 2-of-3 among the same hosts, dealers 1
// and 2, with a cheating dealer, a silent dealer, too few dealers, and a
// participant that disagrees on the new threshold.
func TestReshareFailures(t *testing.T) {
	setup := func(t *testing.T, newM int, dealers []uint16) ([]*DKG, *GroupKey, []*KeyShare, [][]byte, [][]byte) {
		cer := newCeremony(t, 2, 3, "old")
		deliver(t, cer, start(t, cer), nil)
		var shares []*KeyShare
		var group *GroupKey
		var pubs, secs [][]byte
		for _, p := range cer {
			ks, g, err := p.Result()
			if err != nil {
				t.Fatal(err)
			}
			shares, group = append(shares, ks), g
			sec, _ := p.long.MarshalBinary()
			pub, _ := suite.Point().Mul(p.long, nil).MarshalBinary()
			secs, pubs = append(secs, sec), append(pubs, pub)
		}
		var ps []*DKG
		for i := range 3 {
			p, err := NewReshare(shares[i], group, secs[i], pubs, pubs, dealers, newM, []byte("r"))
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		return ps, group, shares, pubs, secs
	}
	noShares := func(t *testing.T, ps []*DKG) {
		t.Helper()
		for i, p := range ps {
			if ks, _, err := p.Result(); err == nil || ks != nil {
				t.Fatalf("participant %d got a share", i+1)
			}
		}
	}
	t.Run("cheating dealer", func(t *testing.T) {
		ps, _, _, _, _ := setup(t, 2, []uint16{1, 2})
		ps[0].corrupt = func(to uint16) bool { return to == 3 }
		errs := deliverReshareErrs(t, ps, start(t, ps), nil)
		var de *DealerError
		if !errors.As(errs[2], &de) || de.Dealer != 1 || de.Accuser != 3 {
			t.Fatalf("participant 3: %v, want dealer 1 named", errs[2])
		}
		noShares(t, ps)
	})
	t.Run("inconsistent share", func(t *testing.T) {
		// Dealer 2 deals a secret that is not its share: its deals are
		// self-consistent but contradict the old group's commitments, so
		// kyber answers with complaints.
		ps, group, _, _, _ := setup(t, 2, []uint16{1, 2})
		var commits []kyber.Point
		for _, c := range group.Commitments() {
			k, _ := pointToKyber(c)
			commits = append(commits, k)
		}
		gen, err := pedersen.NewDistKeyHandler(&pedersen.Config{
			Suite: suite, Longterm: ps[1].long, OldNodes: ps[1].oldPubs, NewNodes: ps[1].pubs,
			PublicCoeffs: commits, Threshold: 2, OldThreshold: 2,
			Share: &pedersen.DistKeyShare{Commits: commits, Share: &share.PriShare{I: 1, V: suite.Scalar().Pick(suite.RandomStream())}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ps[1].gen = gen
		ps[1].self = 0 // a cheater does not check its own deal (ours would: DealerError from Start)
		errs := deliverReshareErrs(t, ps, start(t, ps), nil)
		var de *DealerError
		for _, i := range []int{0, 2} {
			if !errors.As(errs[i], &de) || de.Dealer != 2 || !strings.Contains(de.Error(), "does not match") {
				t.Fatalf("participant %d: %v, want dealer 2 named for a share that does not match", i+1, errs[i])
			}
		}
		noShares(t, ps)
	})
	t.Run("own share corrupt", func(t *testing.T) {
		_, group, shares, pubs, secs := setup(t, 2, []uint16{1, 2})
		bad, err := NewKeyShare(1, &shares[1].secret, group)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewReshare(bad, group, secs[0], pubs, pubs, []uint16{1, 2}, 2, nil); err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("a corrupt own share: %v", err)
		}
	})
	t.Run("silent dealer", func(t *testing.T) {
		ps, _, _, _, _ := setup(t, 2, []uint16{1, 2})
		errs := deliverReshareErrs(t, ps, start(t, ps), func(m *DKGMessage) bool { return m.Kind == KindDeal && m.From == 2 })
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		noShares(t, ps)
	})
	t.Run("too few dealers", func(t *testing.T) {
		_, group, shares, pubs, secs := setup(t, 2, []uint16{1, 2})
		if _, err := NewReshare(shares[0], group, secs[0], pubs, pubs, []uint16{1}, 2, nil); err == nil {
			t.Fatal("one dealer of a 2-of-3 group accepted")
		}
		if _, err := NewReshare(shares[1], group, secs[0], pubs, pubs, []uint16{1, 2}, 2, nil); err == nil {
			t.Fatal("another participant's share accepted")
		}
	})
	t.Run("other threshold", func(t *testing.T) {
		ps, group, shares, pubs, secs := setup(t, 2, []uint16{1, 2})
		odd, err := NewReshare(shares[2], group, secs[2], pubs, pubs, []uint16{1, 2}, 3, []byte("r"))
		if err != nil {
			t.Fatal(err)
		}
		ps[2] = odd
		errs := deliverReshareErrs(t, ps, start(t, ps), nil)
		if len(errs) == 0 {
			t.Fatal("a participant with another threshold was accepted")
		}
		for _, err := range errs {
			if !strings.Contains(err.Error(), "another session") {
				t.Fatalf("%v, want another session", err)
			}
		}
		noShares(t, ps)
	})
}
