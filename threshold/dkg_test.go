package threshold

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
)

// newCeremony returns n DKG participants with threshold m.
func newCeremony(t testing.TB, m, n int, id string) []*DKG {
	t.Helper()
	secrets := make([][]byte, n)
	pubs := make([][]byte, n)
	for i := range n {
		var err error
		if secrets[i], pubs[i], err = GenerateLongterm(nil); err != nil {
			t.Fatal(err)
		}
	}
	ps := make([]*DKG, n)
	for i := range n {
		var err error
		if ps[i], err = NewDKG(i+1, secrets[i], pubs, m, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	return ps
}

// deliver routes msgs (and their replies) through the wire encoding until
// none are left, skipping those drop says to; it returns every message
// delivered and the first error each participant returned.
func deliver(t testing.TB, ps []*DKG, msgs []*DKGMessage, drop func(*DKGMessage) bool) ([]*DKGMessage, map[uint16]error) {
	t.Helper()
	errs := map[uint16]error{}
	var all []*DKGMessage
	for len(msgs) > 0 {
		msg := msgs[0]
		msgs = msgs[1:]
		if drop != nil && drop(msg) {
			continue
		}
		all = append(all, msg)
		for i, p := range ps {
			id := uint16(i + 1)
			if id == msg.From || (msg.To != 0 && msg.To != id) {
				continue
			}
			wire, err := DecodeDKGMessage(msg.Bytes())
			if err != nil {
				t.Fatalf("decode own encoding: %v", err)
			}
			out, err := p.Handle(wire)
			if err != nil && errs[id] == nil {
				errs[id] = err
			}
			msgs = append(msgs, out...)
		}
	}
	return all, errs
}

func start(t testing.TB, ps []*DKG) []*DKGMessage {
	t.Helper()
	var msgs []*DKGMessage
	for _, p := range ps {
		out, err := p.Start()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, out...)
	}
	return msgs
}

func runDKG(t testing.TB, m, n int) ([]*KeyShare, *GroupKey, []*DKGMessage) {
	t.Helper()
	ps := newCeremony(t, m, n, "test")
	all, errs := deliver(t, ps, start(t, ps), nil)
	if len(errs) > 0 {
		t.Fatalf("ceremony errors: %v", errs)
	}
	var shares []*KeyShare
	var group *GroupKey
	for i, p := range ps {
		ks, g, err := p.Result()
		if err != nil {
			t.Fatalf("participant %d: %v", i+1, err)
		}
		if ks.ID() != uint16(i+1) {
			t.Fatalf("participant %d got share id %d", i+1, ks.ID())
		}
		if group == nil {
			group = g
		} else if !group.Equal(g) {
			t.Fatalf("participant %d has another group key", i+1)
		}
		shares = append(shares, ks)
	}
	return shares, group, all
}

// signWith signs msg with the given shares through FROST and returns the
// aggregate signature.
func signWith(t testing.TB, group *GroupKey, signers []*KeyShare, msg []byte) []byte {
	t.Helper()
	var nonces []*Nonce
	var list []Commitment
	for _, s := range signers {
		nonce, err := NewNonce(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		nonces = append(nonces, nonce)
		list = append(list, nonce.Commitment())
	}
	pkg, err := NewSigningPackage(group, msg, list)
	if err != nil {
		t.Fatal(err)
	}
	var sigShares []SignatureShare
	for i, s := range signers {
		ss, err := SignShare(s, nonces[i], pkg)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifySignatureShare(pkg, ss); err != nil {
			t.Fatal(err)
		}
		sigShares = append(sigShares, ss)
	}
	sig, err := Aggregate(pkg, sigShares)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestDKGEverySubsetSigns(t *testing.T) {
	for _, tc := range []struct{ m, n int }{{2, 3}, {3, 5}, {4, 7}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			shares, group, _ := runDKG(t, tc.m, tc.n)
			pub := group.PublicKey()
			if len(pub) != ed25519.PublicKeySize || group.Threshold() != tc.m || group.N() != tc.n {
				t.Fatalf("group: %d-byte key, %d-of-%d", len(pub), group.Threshold(), group.N())
			}
			for _, s := range shares {
				if err := VerifyShare(s, pub); err != nil {
					t.Fatalf("share %d: %v", s.ID(), err)
				}
			}
			msg := []byte("precommit sign bytes")
			count := 0
			for subset := range combinations(tc.n, tc.m) {
				var signers []*KeyShare
				for _, i := range subset {
					signers = append(signers, shares[i])
				}
				if sig := signWith(t, group, signers, msg); !ed25519.Verify(pub, msg, sig) {
					t.Fatalf("subset %v: signature does not verify under the group key", subset)
				}
				count++
			}
			if count == 0 {
				t.Fatal("no subsets")
			}
		})
	}
}

func TestDKGCheatingDealerNamed(t *testing.T) {
	ps := newCeremony(t, 3, 5, "cheat")
	ps[1].corrupt = func(to uint16) bool { return to == 4 } // participant 2 cheats participant 4
	_, errs := deliver(t, ps, start(t, ps), nil)
	var de *DealerError
	if !errors.As(errs[4], &de) || de.Dealer != 2 || de.Accuser != 4 {
		t.Fatalf("participant 4: error %v, want a DealerError naming dealer 2", errs[4])
	}
	if !strings.Contains(errs[4].Error(), "participant 2") {
		t.Fatalf("error does not name the dealer: %v", errs[4])
	}
	// Policy: abort, not disqualify. Nobody gets a share: participant 4
	// failed, and the others never receive its response on dealer 2's deal.
	for i, p := range ps {
		if ks, g, err := p.Result(); err == nil || ks != nil || g != nil {
			t.Fatalf("participant %d got a share from an aborted ceremony (err %v)", i+1, err)
		}
	}
	if _, _, err := ps[3].Result(); !errors.As(err, &de) || de.Dealer != 2 {
		t.Fatalf("participant 4's Result: %v, want the DealerError", err)
	}
}

func TestDKGComplaintAborts(t *testing.T) {
	// A complaint broadcast by a participant names the dealer everywhere.
	ps := newCeremony(t, 2, 3, "complaint")
	msgs := start(t, ps)
	var resp *DKGMessage
	_, _ = deliver(t, ps, msgs, func(m *DKGMessage) bool {
		if m.Kind == KindResponse && m.From == 3 && resp == nil {
			resp = m
			return true
		}
		return false
	})
	r, err := decodeResponse(resp.payload)
	if err != nil {
		t.Fatal(err)
	}
	dealer := uint16(r.Index + 1)
	r.Response.Status = false
	// The complaint must be validly signed by participant 3 (kyber checks).
	sig, err := signResponse(ps[2], r)
	if err != nil {
		t.Fatal(err)
	}
	r.Response.Signature = sig
	forged, err := ps[2].seal(KindResponse, 0, encodeResponse(r))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if uint16(i+1) == 3 || uint16(i+1) == dealer {
			continue
		}
		_, err := p.Handle(forged)
		var de *DealerError
		if !errors.As(err, &de) || de.Dealer != dealer || de.Accuser != 3 {
			t.Fatalf("participant %d: %v, want a DealerError naming %d accused by 3", i+1, err, dealer)
		}
		if _, _, err := p.Result(); err == nil {
			t.Fatalf("participant %d: result after a complaint", i+1)
		}
	}
}

func TestDKGMissingParticipantFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop func(*DKGMessage) bool
	}{
		{"silent dealer", func(m *DKGMessage) bool { return m.From == 3 && m.Kind == KindDeal }},
		{"no responses", func(m *DKGMessage) bool { return m.From == 3 && m.Kind == KindResponse }},
		{"one deal lost", func(m *DKGMessage) bool { return m.From == 1 && m.To == 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := newCeremony(t, 2, 3, tc.name)
			_, _ = deliver(t, ps, start(t, ps), tc.drop)
			failed := 0
			for i, p := range ps {
				ks, _, err := p.Result()
				if err != nil {
					if ks != nil {
						t.Fatalf("participant %d: share with error", i+1)
					}
					failed++
				}
			}
			if failed == 0 {
				t.Fatal("every participant completed without the missing messages")
			}
		})
	}
	// Before Start, nothing.
	ps := newCeremony(t, 2, 3, "unstarted")
	if _, _, err := ps[0].Result(); err == nil {
		t.Fatal("result before start")
	}
}

func TestDKGRefusesReplayAndWrongSession(t *testing.T) {
	ps := newCeremony(t, 2, 3, "run 1")
	old := newCeremony(t, 2, 3, "run 1") // other keys, same ID
	msgs := start(t, ps)
	oldMsgs := start(t, old)
	// Replays: deliver once, then again.
	all, errs := deliver(t, ps, msgs, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, m := range all {
		to := m.To
		if to == 0 {
			to = m.From%3 + 1
		}
		if _, err := ps[to-1].Handle(m); err == nil || !strings.Contains(err.Error(), "replay") {
			t.Fatalf("replayed %v from %d to %d: %v", m.Kind, m.From, to, err)
		}
	}
	// The ceremony survived the replays.
	for i, p := range ps {
		if _, _, err := p.Result(); err != nil {
			t.Fatalf("participant %d after replays: %v", i+1, err)
		}
	}
	// Another session's messages are refused.
	fresh := newCeremony(t, 2, 3, "run 2")
	for _, m := range oldMsgs {
		if _, err := fresh[m.To-1].Handle(m); err == nil || !strings.Contains(err.Error(), "another session") {
			t.Fatalf("message of another session: %v", err)
		}
	}
	// A message re-wrapped into this session fails the signature.
	m := *oldMsgs[0]
	m.Session = fresh[0].Session()
	if _, err := fresh[m.To-1].Handle(&m); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("re-wrapped message: %v", err)
	}
}

func TestDKGMismatchedParameters(t *testing.T) {
	secrets := make([][]byte, 4)
	pubs := make([][]byte, 4)
	for i := range pubs {
		secrets[i], pubs[i], _ = GenerateLongterm(nil)
	}
	a, err := NewDKG(1, secrets[0], pubs[:3], 2, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    int
		pubs [][]byte
	}{
		{"other M", 3, pubs[:3]},
		{"other N", 3, pubs[:4]},
		{"other order", 2, [][]byte{pubs[0], pubs[2], pubs[1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewDKG(1, secrets[0], tc.pubs, tc.m, []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if b.Session() == a.Session() {
				t.Fatal("same session")
			}
			out, err := b.Start()
			if err != nil {
				t.Fatal(err)
			}
			peer, err := NewDKG(2, secrets[1], pubs[:3], 2, []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out {
				if m.To != 2 {
					continue
				}
				if _, err := peer.Handle(m); err == nil || !strings.Contains(err.Error(), "another session") {
					t.Fatalf("%s: %v", tc.name, err)
				}
			}
		})
	}
	for _, tc := range []struct {
		name string
		self int
		sec  []byte
		pubs [][]byte
		m    int
	}{
		{"threshold too low", 1, secrets[0], pubs[:3], 1},
		{"half", 1, secrets[0], pubs[:4], 2},
		{"self out of range", 4, secrets[0], pubs[:3], 2},
		{"wrong secret", 1, secrets[1], pubs[:3], 2},
		{"short secret", 1, secrets[0][:31], pubs[:3], 2},
		{"duplicate key", 1, secrets[0], [][]byte{pubs[0], pubs[1], pubs[1]}, 2},
		{"bad point", 1, secrets[0], [][]byte{pubs[0], pubs[1], bytes.Repeat([]byte{0xff}, 32)}, 2},
	} {
		if _, err := NewDKG(tc.self, tc.sec, tc.pubs, tc.m, nil); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestDecodeDKGMessageStrict(t *testing.T) {
	_, _, all := runDKG(t, 2, 3)
	for _, m := range all {
		b := m.Bytes()
		if _, err := DecodeDKGMessage(b); err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeDKGMessage(append(b, 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
		if _, err := DecodeDKGMessage(b[:len(b)-1]); err == nil {
			t.Fatal("truncated message accepted")
		}
		bad := append([]byte(nil), b...)
		bad[0] = 2
		if _, err := DecodeDKGMessage(bad); err == nil {
			t.Fatal("version 2 accepted")
		}
		bad[0], bad[1] = 1, 9
		if _, err := DecodeDKGMessage(bad); err == nil {
			t.Fatal("kind 9 accepted")
		}
		if m.Kind == KindResponse {
			bad = append([]byte(nil), b...)
			bad[dkgHeaderSize+40] = 2
			if _, err := DecodeDKGMessage(bad); err == nil {
				t.Fatal("status 2 accepted")
			}
		}
	}
}

func FuzzDecodeDKGMessage(f *testing.F) {
	_, _, all := runDKG(f, 2, 3)
	for _, m := range all {
		f.Add(m.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeDKGMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("decoded message does not re-encode to its input")
		}
	})
}

// signResponse signs r as its verifier would (kyber's vss response hash).
func signResponse(p *DKG, r *pedersen.Response) ([]byte, error) {
	return schnorr.Sign(suite, p.long, r.Response.Hash(suite))
}

// TestDKGAnyDeliveryOrder delivers the newest message first, so that
// responses on a deal reach some participants before the deal itself does.
func TestDKGAnyDeliveryOrder(t *testing.T) {
	ps := newCeremony(t, 3, 5, "order")
	msgs := start(t, ps)
	early := 0
	for len(msgs) > 0 {
		msg := msgs[len(msgs)-1]
		msgs = msgs[:len(msgs)-1]
		for i, p := range ps {
			id := uint16(i + 1)
			if id == msg.From || (msg.To != 0 && msg.To != id) {
				continue
			}
			if msg.Kind == KindResponse {
				r, _ := decodeResponse(msg.payload)
				if dealer := uint16(r.Index + 1); dealer != id && !p.deals[dealer] {
					early++
				}
			}
			out, err := p.Handle(msg)
			if err != nil {
				t.Fatalf("participant %d, %v from %d: %v", id, msg.Kind, msg.From, err)
			}
			msgs = append(msgs, out...)
		}
	}
	if early == 0 {
		t.Fatal("no response arrived before its deal: the test does not test the order")
	}
	var group *GroupKey
	for i, p := range ps {
		ks, g, err := p.Result()
		if err != nil {
			t.Fatalf("participant %d: %v", i+1, err)
		}
		if err := VerifyShare(ks, g.PublicKey()); err != nil {
			t.Fatal(err)
		}
		if group != nil && !group.Equal(g) {
			t.Fatalf("participant %d: another group key", i+1)
		}
		group = g
	}
}
