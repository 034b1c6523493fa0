package threshold

import (
	cryptorand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"

	"go.dedis.ch/kyber/v3"
	pedersen "go.dedis.ch/kyber/v3/share/dkg/pedersen"
	vss "go.dedis.ch/kyber/v3/share/vss/pedersen"
	"go.dedis.ch/kyber/v3/sign/schnorr"
)

// LongtermSize is the size of a DKG participant's long-term secret scalar
// and of its public point.
const LongtermSize = 32

// GenerateLongterm returns a fresh long-term key pair for a DKG participant:
// a 32-byte secret scalar and the 32-byte public point. Every participant
// must know every other's public point before the ceremony; deals are
// encrypted to it and every message is signed with the secret.
func GenerateLongterm(rand io.Reader) (secret, public []byte, err error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	var buf [64]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return nil, nil, fmt.Errorf("generate DKG long-term key: %w", err)
	}
	s := suite.Scalar().SetBytes(buf[:])
	secret, err = s.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	public, err = suite.Point().Mul(s, nil).MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	return secret, public, nil
}

// DealerError names a participant that dealt inconsistent or undecryptable
// shares, or that a participant accused of doing so. The ceremony is aborted:
// this package never disqualifies a dealer and goes on, since a cheating
// participant is reason enough to stop and look.
type DealerError struct {
	Dealer  uint16 // the accused dealer, 1..N
	Accuser uint16 // who found the deal bad, 1..N
	Reason  string
}

func (e *DealerError) Error() string {
	return fmt.Sprintf("DKG aborted: participant %d dealt a bad share to participant %d (%s); do not use participant %d's host until it is understood, then rerun the ceremony", e.Dealer, e.Accuser, e.Reason, e.Dealer)
}

// ErrRetired is Result's error for a participant of a resharing that deals
// but has no place in the new group, once the resharing has completed: it
// has no share, by design.
var ErrRetired = errors.New("DKG: this participant retires: the resharing completed, and it has no share in the new group")

// dkgHook, when set, is called with every DKG that NewDKG and NewReshare
// return. Only tests set it (a test file of this package, or a file added
// with `go build -overlay`, as the end-to-end cheating-dealer test does);
// the product never does.
var dkgHook func(*DKG)

// MessageKind is the phase a DKG message belongs to.
type MessageKind uint8

const (
	// KindDeal carries one dealer's encrypted share to one recipient.
	KindDeal MessageKind = 1
	// KindResponse carries one participant's verdict on one dealer's deal,
	// broadcast to every other participant.
	KindResponse MessageKind = 2
)

// DKGMessage is one message of the ceremony. From and To are identifiers
// 1..N (To is 0 for a broadcast). Every message is bound to the ceremony's
// session (which covers M, N, the participants' keys and the ceremony ID)
// and signed with the sender's long-term key.
type DKGMessage struct {
	Kind    MessageKind
	Session [32]byte
	From    uint16
	To      uint16
	payload []byte // encoded kyber Deal or Response
	sig     []byte
}

// DKG is one participant's state in a distributed key generation among N
// participants with threshold M (kyber's Pedersen DKG over edwards25519).
// It does no I/O: Start returns the deals to send, Handle consumes a message
// and returns those to send in reply, and Result returns the share once
// every deal of every participant was approved by every participant.
//
// Policy: any failure is fatal and sticky. A bad deal or a complaint names
// the dealer in a *DealerError and aborts; a participant that never sends
// its deals or responses leaves Result failing (the caller times out and
// discards the DKG). No share is ever returned from a ceremony that did not
// complete with all N participants. Justifications are never used: a
// complaint aborts instead of being answered.
//
// A DKG is not safe for concurrent use.
type DKG struct {
	self    uint16 // identifier in the new group, 0 for a retiring participant
	oldSelf uint16 // identifier in the dealing group, 0 for a newcomer
	reshare bool
	oldPubs []kyber.Point // dealers' keys; pubs for a fresh DKG
	dealers []uint16      // old identifiers that deal
	oldPub  []byte        // resharing: the group public key to keep
	m, n    int
	long    kyber.Scalar
	pubs    []kyber.Point
	session [32]byte
	gen     *pedersen.DistKeyGenerator

	started   bool
	deals     map[uint16]bool                  // dealers whose deal to us we processed
	responses map[[2]uint16]bool               // (dealer, verifier) responses processed
	pending   map[[2]uint16]*pedersen.Response // responses that came before their deal
	failed    error
	corrupt   func(to uint16) bool // test hook: corrupt our deal to these
}

// NewDKG returns participant self's (1..N) state for a ceremony among the
// participants whose long-term public points are participants (index i is
// participant i+1), with threshold m. longterm is self's secret scalar.
// ceremonyID is any value all participants agree on for this run (a fresh
// random value per run); it goes into the session, so that no message of an
// earlier run is accepted.
func NewDKG(self int, longterm []byte, participants [][]byte, m int, ceremonyID []byte) (*DKG, error) {
	n := len(participants)
	if err := CheckThreshold(m, n); err != nil {
		return nil, fmt.Errorf("DKG: %w", err)
	}
	if self < 1 || self > n {
		return nil, fmt.Errorf("DKG: participant %d is not one of 1..%d", self, n)
	}
	long := suite.Scalar()
	if len(longterm) != LongtermSize || long.UnmarshalBinary(longterm) != nil {
		return nil, errors.New("DKG: long-term secret is not a 32-byte canonical scalar")
	}
	h := sha256.New()
	h.Write([]byte("cosigner DKG v1"))
	h.Write([]byte{byte(m), byte(n)})
	pubs := make([]kyber.Point, n)
	seen := map[string]bool{}
	for i, p := range participants {
		pt := suite.Point()
		if _, err := decodeElement(p); err != nil || pt.UnmarshalBinary(p) != nil {
			return nil, fmt.Errorf("DKG: participant %d's public key is not a valid 32-byte point", i+1)
		}
		if seen[string(p)] {
			return nil, fmt.Errorf("DKG: participant %d's public key is listed twice", i+1)
		}
		seen[string(p)] = true
		pubs[i] = pt
		h.Write(p)
	}
	if !suite.Point().Mul(long, nil).Equal(pubs[self-1]) {
		return nil, fmt.Errorf("DKG: the long-term secret is not participant %d's listed public key", self)
	}
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(ceremonyID)))
	h.Write(l[:])
	h.Write(ceremonyID)
	d := &DKG{self: uint16(self), oldSelf: uint16(self), m: m, n: n, long: long, pubs: pubs, oldPubs: pubs,
		deals: map[uint16]bool{}, responses: map[[2]uint16]bool{}, pending: map[[2]uint16]*pedersen.Response{}}
	for i := range n {
		d.dealers = append(d.dealers, uint16(i+1))
	}
	copy(d.session[:], h.Sum(nil))
	gen, err := pedersen.NewDistKeyHandler(&pedersen.Config{
		Suite: suite, Longterm: long, NewNodes: pubs, Threshold: m,
	})
	if err != nil {
		return nil, fmt.Errorf("DKG: %w", err)
	}
	d.gen = gen
	if dkgHook != nil {
		dkgHook(d)
	}
	return d, nil
}

// Session returns the ceremony's session identifier; every participant with
// the same M, participants and ceremony ID has the same one.
func (d *DKG) Session() [32]byte { return d.session }

func (d *DKG) fail(err error) error {
	if d.failed == nil {
		d.failed = err
	}
	return d.failed
}

// Start returns this participant's N-1 deals, one per other participant.
// It may be called once.
func (d *DKG) Start() ([]*DKGMessage, error) {
	if d.failed != nil {
		return nil, d.failed
	}
	if d.started {
		return nil, errors.New("DKG: deals were already made")
	}
	d.started = true
	deals, err := d.gen.Deals()
	if err != nil {
		return nil, d.fail(fmt.Errorf("DKG: make deals: %w", err))
	}
	var out []*DKGMessage
	for i := 0; i < d.n; i++ {
		dl, ok := deals[i]
		if !ok {
			continue // our own
		}
		to := uint16(i + 1)
		if d.reshare && to == d.self {
			// Our deal to ourselves as a member of the new group.
			out2, err := d.processDeal(d.oldSelf, dl)
			if err != nil {
				return nil, err
			}
			out = append(out, out2...)
			continue
		}
		if d.corrupt != nil && d.corrupt(to) {
			dl.Deal.Cipher[0] ^= 1
			buf, err := dl.MarshalBinary()
			if err != nil {
				return nil, d.fail(err)
			}
			if dl.Signature, err = schnorr.Sign(suite, d.long, buf); err != nil {
				return nil, d.fail(err)
			}
		}
		msg, err := d.seal(KindDeal, to, encodeDeal(dl))
		if err != nil {
			return nil, d.fail(err)
		}
		out = append(out, msg)
	}
	if err := d.flush(d.oldSelf); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *DKG) seal(kind MessageKind, to uint16, payload []byte) (*DKGMessage, error) {
	from := d.self
	if kind == KindDeal {
		from = d.oldSelf
	}
	m := &DKGMessage{Kind: kind, Session: d.session, From: from, To: to, payload: payload}
	sig, err := schnorr.Sign(suite, d.long, m.signed())
	if err != nil {
		return nil, fmt.Errorf("DKG: sign message: %w", err)
	}
	m.sig = sig
	return m, nil
}

// Handle consumes one message from another participant and returns the
// messages to send in reply (broadcasts have To == 0). A message of another
// session, not signed by its sender, not addressed to this participant, or
// already seen is refused with an error that leaves the ceremony intact; a
// bad deal or a complaint aborts it with a *DealerError.
func (d *DKG) Handle(msg *DKGMessage) ([]*DKGMessage, error) {
	if d.failed != nil {
		return nil, d.failed
	}
	if msg == nil {
		return nil, errors.New("DKG: nil message")
	}
	if msg.Session != d.session {
		return nil, fmt.Errorf("DKG: message from participant %d is of another session (another run, or a different M, N or participant list): refused", msg.From)
	}
	keys, me := d.pubs, d.self
	if msg.Kind == KindDeal {
		keys, me = d.oldPubs, d.oldSelf
	}
	if msg.From < 1 || int(msg.From) > len(keys) || msg.From == me {
		return nil, fmt.Errorf("DKG: message from participant %d: not another participant of 1..%d", msg.From, len(keys))
	}
	if err := schnorr.Verify(suite, keys[msg.From-1], msg.signed(), msg.sig); err != nil {
		return nil, fmt.Errorf("DKG: message from participant %d: bad signature: refused", msg.From)
	}
	switch msg.Kind {
	case KindDeal:
		return d.handleDeal(msg)
	case KindResponse:
		return nil, d.handleResponse(msg)
	}
	return nil, fmt.Errorf("DKG: message kind %d unknown", msg.Kind)
}

func (d *DKG) handleDeal(msg *DKGMessage) ([]*DKGMessage, error) {
	if msg.To != d.self || d.self == 0 {
		return nil, fmt.Errorf("DKG: deal from participant %d is addressed to %d, not to us (%d): refused", msg.From, msg.To, d.self)
	}
	if d.deals[msg.From] {
		return nil, fmt.Errorf("DKG: second deal from participant %d: refused (replay?)", msg.From)
	}
	dl, err := decodeDeal(msg.payload)
	if err != nil || dl.Index != uint32(msg.From-1) {
		return nil, fmt.Errorf("DKG: deal from participant %d is malformed: refused", msg.From)
	}
	if !d.isDealer(msg.From) {
		return nil, fmt.Errorf("DKG: participant %d is not one of the dealers %v: refused", msg.From, d.dealers)
	}
	return d.processDeal(msg.From, dl)
}

func (d *DKG) isDealer(id uint16) bool {
	for _, x := range d.dealers {
		if x == id {
			return true
		}
	}
	return false
}

func (d *DKG) processDeal(from uint16, dl *pedersen.Deal) ([]*DKGMessage, error) {
	d.deals[from] = true
	resp, err := d.gen.ProcessDeal(dl)
	if err != nil {
		return nil, d.fail(&DealerError{Dealer: from, Accuser: d.self, Reason: err.Error()})
	}
	if resp.Response.Status != vss.StatusApproval {
		return nil, d.fail(&DealerError{Dealer: from, Accuser: d.self, Reason: "the share does not match the dealer's commitments"})
	}
	d.responses[[2]uint16{from, d.self}] = true
	if err := d.flush(from); err != nil {
		return nil, err
	}
	out, err := d.seal(KindResponse, 0, encodeResponse(resp))
	if err != nil {
		return nil, d.fail(err)
	}
	return []*DKGMessage{out}, nil
}

func (d *DKG) handleResponse(msg *DKGMessage) error {
	if msg.To != 0 {
		return fmt.Errorf("DKG: response from participant %d is not a broadcast: refused", msg.From)
	}
	r, err := decodeResponse(msg.payload)
	if err != nil || r.Response.Index != uint32(msg.From-1) || r.Index >= uint32(len(d.oldPubs)) {
		return fmt.Errorf("DKG: response from participant %d is malformed: refused", msg.From)
	}
	dealer := uint16(r.Index + 1)
	if !d.isDealer(dealer) {
		return fmt.Errorf("DKG: response from participant %d on participant %d, who does not deal: refused", msg.From, dealer)
	}
	key := [2]uint16{dealer, msg.From}
	if d.responses[key] {
		return fmt.Errorf("DKG: second response from participant %d on participant %d's deal: refused (replay?)", msg.From, dealer)
	}
	if _, ok := d.pending[key]; ok {
		return fmt.Errorf("DKG: second response from participant %d on participant %d's deal: refused (replay?)", msg.From, dealer)
	}
	if r.Response.Status != vss.StatusApproval {
		return d.fail(&DealerError{Dealer: dealer, Accuser: msg.From, Reason: "complaint"})
	}
	if (dealer == d.oldSelf && !d.started) || (d.self != 0 && dealer != d.oldSelf && !d.deals[dealer]) {
		// kyber needs the deal before its responses: keep this one until
		// the deal arrives (the network may reorder).
		d.pending[key] = r
		return nil
	}
	return d.processResponse(key, r)
}

func (d *DKG) processResponse(key [2]uint16, r *pedersen.Response) error {
	if _, err := d.gen.ProcessResponse(r); err != nil {
		return fmt.Errorf("DKG: response from participant %d on participant %d's deal: %v: refused", key[1], key[0], err)
	}
	d.responses[key] = true
	return nil
}

// flush processes the responses on dealer's deal that arrived before it.
func (d *DKG) flush(dealer uint16) error {
	for v := uint16(1); int(v) <= d.n; v++ {
		key := [2]uint16{dealer, v}
		r, ok := d.pending[key]
		if !ok {
			continue
		}
		delete(d.pending, key)
		if err := d.processResponse(key, r); err != nil {
			return d.fail(err)
		}
	}
	return nil
}

// Missing lists the participants whose deal to us, or whose response on
// some deal, has not arrived yet. A caller that times out reports them.
func (d *DKG) Missing() []uint16 {
	var out []uint16
	if d.self != 0 {
		for _, dealer := range d.dealers {
			if dealer != d.oldSelf && !d.deals[dealer] {
				out = append(out, dealer)
			}
		}
	}
	for v := uint16(1); int(v) <= d.n; v++ {
		for _, dealer := range d.dealers {
			if !d.reshare && dealer == v {
				continue
			}
			if !d.responses[[2]uint16{dealer, v}] {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

// Result returns this participant's key share (identifier self) and the
// group key, once every participant's deal was approved by every
// participant. Before that, or after a failure, it returns an error and no
// share.
func (d *DKG) Result() (*KeyShare, *GroupKey, error) {
	if d.failed != nil {
		return nil, nil, d.failed
	}
	if miss := d.Missing(); len(miss) > 0 || !d.started {
		return nil, nil, fmt.Errorf("DKG: not complete, still waiting for participants %v (started: %v); a participant that left aborts the ceremony: rerun it", miss, d.started)
	}
	if d.self == 0 {
		return nil, nil, ErrRetired
	}
	if !d.gen.ThresholdCertified() || len(d.gen.QUAL()) != len(d.dealers) {
		return nil, nil, errors.New("DKG: not every deal is certified by every participant: rerun the ceremony")
	}
	dks, err := d.gen.DistKeyShare()
	if err != nil {
		return nil, nil, fmt.Errorf("DKG: %w", err)
	}
	// kyber's share index I is 0-based and holds f(I+1): FROST id I+1.
	if dks.Share.I != int(d.self)-1 {
		return nil, nil, fmt.Errorf("DKG: share index %d is not ours (%d)", dks.Share.I, d.self-1)
	}
	commits := make([]*edwards25519.Point, len(dks.Commits))
	for j, c := range dks.Commits {
		if commits[j], err = pointFromKyber(c); err != nil {
			return nil, nil, fmt.Errorf("DKG: commitment %d: %w", j, err)
		}
	}
	group, err := NewGroupKey(d.n, commits)
	if err != nil {
		return nil, nil, fmt.Errorf("DKG: %w", err)
	}
	if d.reshare && string(group.PublicKey()) != string(d.oldPub) {
		return nil, nil, errors.New("DKG: the reshared group key is not the old one: do not use it")
	}
	secret, err := scalarFromKyber(dks.Share.V)
	if err != nil {
		return nil, nil, fmt.Errorf("DKG: %w", err)
	}
	ks, err := NewKeyShare(d.self, secret, group)
	if err != nil {
		return nil, nil, fmt.Errorf("DKG: %w", err)
	}
	if err := VerifyShare(ks, group.PublicKey()); err != nil {
		return nil, nil, fmt.Errorf("DKG: our share does not match the group's commitments: %w", err)
	}
	return ks, group, nil
}
