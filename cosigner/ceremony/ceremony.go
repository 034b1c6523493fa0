package ceremony

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/threshold"
)

// Participant is one cosigner taking part: its id (the one in its cluster
// certificate) and the host:port it listens on for the ceremony (its gRPC
// address: the cosigner does not run during a ceremony).
type Participant struct {
	ID      int
	Address string
}

// Options configure Run.
type Options struct {
	// Self is our cosigner id; it must be the id in TLS's certificate and
	// one of Participants.
	Self int
	// Participants lists every participant, us included, each id once.
	// Every participant must list the same ids and addresses.
	Participants []Participant
	// TLS is our cluster identity; every peer must present a certificate of
	// the same cluster CA naming its id.
	TLS *clustertls.Identity
	// Params says what the ceremony is (kind, thresholds, group key to
	// keep...), as text; every participant's must be byte-identical, or the
	// ceremony aborts quoting the first line that differs.
	Params []byte
	// Extra is this participant's own data for the others (a resharing's
	// dealer sends its sign-state marks), at most MaxExtra bytes. It
	// travels in the hello and is bound into the transcript, so every
	// participant that starts the DKG holds the same Extra of everyone
	// (Setup.Extras).
	Extra []byte
	// Timeout bounds the whole ceremony, from the first dial to the last
	// done frame: every participant must start within it.
	Timeout time.Duration
	// Listen is the address to listen on; empty means Self's Address.
	Listen string
	// Listener, if set, is used instead of listening on Listen; Run closes
	// it.
	Listener net.Listener
	// DialInterval is the wait between dials of a peer that is not up yet;
	// 0 means 250 ms.
	DialInterval time.Duration
	// Command is what every host runs for this ceremony, named in the
	// hints of errors ("start 'cosigner reshare' on every host ...");
	// empty means "cosigner dkg".
	Command string
	// Logger receives progress; nil discards.
	Logger *slog.Logger
	// Random is the randomness for the nonce and long-term key; nil means
	// crypto/rand.
	Random io.Reader
}

// Setup is what a NewProtocol gets once every participant has confirmed the
// same transcript.
type Setup struct {
	// Self is our cosigner id.
	Self int
	// Longterm is our ephemeral long-term DKG secret
	// (threshold.GenerateLongterm), for this ceremony only.
	Longterm []byte
	// Longterms maps every participant's cosigner id to its long-term
	// public key, ours included.
	Longterms map[int][]byte
	// CeremonyID is the confirmed transcript: the same for every
	// participant, different for every run.
	CeremonyID []byte
	// Extras maps every participant's cosigner id to its Options.Extra
	// (nil when it sent none), ours included; the transcript covers them.
	Extras map[int][]byte
}

// Protocol is a DKG ready to start, with how its identifiers map to
// cosigner ids.
type Protocol struct {
	DKG *threshold.DKG
	// Dealers maps each dealer identifier (a deal's From) to its cosigner
	// id; Members maps each identifier of the receiving group (a deal's To,
	// a response's From) to its cosigner id.
	Dealers, Members map[uint16]int
}

// NewProtocol builds the DKG from the confirmed setup.
type NewProtocol func(Setup) (*Protocol, error)

// FreshDKG returns the Params and NewProtocol of a fresh M-of-N key
// generation among cosigners 1..N, where cosigner i gets FROST identifier
// i. Run refuses a participant list that is not 1..N.
func FreshDKG(m, n int) ([]byte, NewProtocol) {
	params := fmt.Appendf(nil, "kind: dkg\nthreshold: %d\nshares: %d\n", m, n)
	return params, func(s Setup) (*Protocol, error) {
		if len(s.Longterms) != n {
			return nil, fmt.Errorf("a %d-of-%d DKG needs %d participants, not %d", m, n, n, len(s.Longterms))
		}
		pubs := make([][]byte, n)
		ids := map[uint16]int{}
		for i := range n {
			pub, ok := s.Longterms[i+1]
			if !ok {
				return nil, fmt.Errorf("a %d-of-%d DKG runs among cosigners 1..%d: cosigner %d is missing", m, n, n, i+1)
			}
			pubs[i] = pub
			ids[uint16(i+1)] = i + 1
		}
		d, err := threshold.NewDKG(s.Self, s.Longterm, pubs, m, s.CeremonyID)
		if err != nil {
			return nil, err
		}
		return &Protocol{DKG: d, Dealers: ids, Members: ids}, nil
	}
}

// Error is a ceremony's failure, naming the participant it came from when
// there is one.
type Error struct {
	// Peer is the cosigner that caused or reported the abort; 0 when it
	// was found here about no one in particular (a timeout names its
	// participants in Reason).
	Peer int
	// Remote is set when Peer aborted and sent Reason.
	Remote bool
	Reason string
	Err    error // the cause, if any (a *threshold.DealerError, ...)
}

func (e *Error) Error() string {
	switch {
	case e.Remote:
		return fmt.Sprintf("ceremony aborted by cosigner %d: %s", e.Peer, e.Reason)
	case e.Peer != 0:
		return fmt.Sprintf("ceremony aborted: cosigner %d: %s", e.Peer, e.Reason)
	}
	return "ceremony aborted: " + e.Reason
}

func (e *Error) Unwrap() error { return e.Err }

// abortReason is what an abort frame tells the peers about err.
func abortReason(err error) string {
	var e *Error
	if !errors.As(err, &e) {
		return err.Error()
	}
	switch {
	case e.Remote:
		return fmt.Sprintf("cosigner %d aborted: %s", e.Peer, e.Reason)
	case e.Peer != 0:
		return fmt.Sprintf("cosigner %d: %s", e.Peer, e.Reason)
	}
	return e.Reason
}

// testHookSend, when set by this package's tests, is called with every
// frame before it is queued to a peer and returns the frames to queue
// instead (a replay, a frame of another run).
var testHookSend func(self, to int, f frame) []frame

// Run takes part in the ceremony opts describe and returns our share and the
// group key once every participant has completed; see the package doc for
// the phases. On any failure it returns an *Error (wrapping
// threshold.ErrRetired for a participant that retires from a resharing that
// completed) and no share. It writes no file.
func Run(ctx context.Context, opts Options, newProtocol NewProtocol) (*threshold.KeyShare, *threshold.GroupKey, error) {
	c, err := newRun(opts)
	if err == nil && newProtocol == nil {
		err = errors.New("ceremony: no protocol")
	}
	if err != nil {
		if opts.Listener != nil {
			opts.Listener.Close()
		}
		return nil, nil, err
	}
	// The ephemeral long-term secret dies with the ceremony.
	defer clear(c.longSec)
	c.newProtocol = newProtocol
	ln := opts.Listener
	if ln == nil {
		addr := opts.Listen
		if addr == "" {
			addr = c.addr[opts.Self]
		}
		ln, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("ceremony: listen on %s: %w", addr, err)
		}
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		ln.Close()
		return nil, nil, fmt.Errorf("ceremony: timeout %v must be positive", timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialCtx, cancelDial := context.WithCancel(ctx)
	dialWait := opts.DialInterval
	if dialWait <= 0 {
		dialWait = 250 * time.Millisecond
	}
	c.links = newLinks(opts.TLS, ln, dialWait)
	c.log.Info("ceremony listening", "address", ln.Addr().String(), "participants", len(c.ids), "timeout", timeout)
	for _, id := range c.ids {
		if id != c.self {
			// Everything a ceremony sends one peer: hello, confirm, a
			// deal, a response per deal, done, abort, and room for a test's
			// extra frames.
			c.writers[id] = c.links.startWriter(dialCtx, id, c.addr[id], 2*len(c.ids)+16)
		}
	}
	ks, group, err := c.loop(ctx)
	if err != nil && !errors.Is(err, threshold.ErrRetired) {
		c.log.Warn("ceremony aborted", "err", err)
		c.broadcast(encodeAbort(abortReason(err)))
	}
	c.links.close(c.writers, cancelDial)
	if err != nil {
		return nil, nil, err
	}
	return ks, group, nil
}

type phase int

const (
	phaseHello phase = iota
	phaseConfirm
	phaseDKG
	phaseDone
)

// run is one ceremony's state, owned by Run's loop.
type run struct {
	self        int
	ids         []int // sorted
	addr        map[int]string
	params      []byte // the participant list, then Options.Params
	extra       []byte // Options.Extra
	command     string // Options.Command, for hints
	log         *slog.Logger
	newProtocol NewProtocol

	nonce            [nonceSize]byte
	longSec, longPub []byte
	links            *links
	writers          map[int]*writer
	connected        map[int]bool // inbound connection seen
	dialErr          map[int]error
	hellos           map[int]*hello
	confirms         map[int][]byte
	dones            map[int][]byte
	transcript       []byte
	proto            *Protocol
	early            []event // dkg frames before our DKG started
	phase            phase
	digest           []byte
	share            *threshold.KeyShare
	group            *threshold.GroupKey
	retired          error
}

func newRun(opts Options) (*run, error) {
	if opts.TLS == nil {
		return nil, errors.New("ceremony: no cluster TLS identity")
	}
	if opts.TLS.ID() != opts.Self {
		return nil, fmt.Errorf("ceremony: we are cosigner %d, but our cluster certificate names cosigner %d", opts.Self, opts.TLS.ID())
	}
	if len(opts.Params) > MaxParams/2 {
		return nil, fmt.Errorf("ceremony: params of %d bytes, at most %d", len(opts.Params), MaxParams/2)
	}
	if len(opts.Extra) > MaxExtra {
		return nil, fmt.Errorf("ceremony: extra of %d bytes, at most %d", len(opts.Extra), MaxExtra)
	}
	c := &run{self: opts.Self, addr: map[int]string{}, log: opts.Logger, command: opts.Command, writers: map[int]*writer{},
		connected: map[int]bool{}, dialErr: map[int]error{}, hellos: map[int]*hello{},
		confirms: map[int][]byte{}, dones: map[int][]byte{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.command == "" {
		c.command = "cosigner dkg"
	}
	for _, p := range opts.Participants {
		if p.ID < 1 || p.ID > clustertls.MaxID {
			return nil, fmt.Errorf("ceremony: participant id %d out of range 1..%d", p.ID, clustertls.MaxID)
		}
		if _, dup := c.addr[p.ID]; dup {
			return nil, fmt.Errorf("ceremony: participant %d listed twice", p.ID)
		}
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return nil, fmt.Errorf("ceremony: participant %d's address %q: %w", p.ID, p.Address, err)
		}
		c.addr[p.ID] = p.Address
		c.ids = append(c.ids, p.ID)
	}
	slices.Sort(c.ids)
	if len(c.ids) < 2 || len(c.ids) > threshold.MaxParticipants {
		return nil, fmt.Errorf("ceremony: %d participants, want 2..%d", len(c.ids), threshold.MaxParticipants)
	}
	if _, ok := c.addr[c.self]; !ok {
		return nil, fmt.Errorf("ceremony: we (cosigner %d) are not among the participants %v", c.self, c.ids)
	}
	var b bytes.Buffer
	b.WriteString("cosigner ceremony v1\n")
	for _, id := range c.ids {
		fmt.Fprintf(&b, "participant %d: %s\n", id, c.addr[id])
	}
	b.Write(opts.Params)
	c.params = b.Bytes()
	c.extra = append([]byte(nil), opts.Extra...)
	random := opts.Random
	if random == nil {
		random = rand.Reader
	}
	if _, err := io.ReadFull(random, c.nonce[:]); err != nil {
		return nil, fmt.Errorf("ceremony: nonce: %w", err)
	}
	var err error
	if c.longSec, c.longPub, err = threshold.GenerateLongterm(random); err != nil {
		return nil, fmt.Errorf("ceremony: %w", err)
	}
	return c, nil
}

func (c *run) send(to int, f frame) {
	frames := []frame{f}
	if testHookSend != nil {
		frames = testHookSend(c.self, to, f)
	}
	for _, f := range frames {
		if !c.writers[to].send(f) {
			c.log.Error("ceremony send queue full", "peer", to)
		}
	}
}

func (c *run) broadcast(f frame) {
	for _, id := range c.ids {
		if id != c.self {
			c.send(id, f)
		}
	}
}

func (c *run) peerErr(peer int, err error, format string, args ...any) *Error {
	return &Error{Peer: peer, Reason: fmt.Sprintf(format, args...), Err: err}
}

// loop runs the phases until success, failure or ctx's end.
func (c *run) loop(ctx context.Context) (*threshold.KeyShare, *threshold.GroupKey, error) {
	h := &hello{from: uint16(c.self), nonce: c.nonce, params: c.params, extra: c.extra}
	copy(h.longterm[:], c.longPub)
	c.broadcast(h.encode())
	for {
		select {
		case <-ctx.Done():
			return nil, nil, c.timeoutErr(ctx)
		case e := <-c.links.events:
			if err := c.handle(e); err != nil {
				return nil, nil, err
			}
			if c.phase == phaseDone && len(c.dones) == len(c.ids)-1 {
				if c.retired != nil {
					c.log.Info("ceremony complete: retired")
					return nil, nil, &Error{Reason: "this cosigner retires from the group: it has no share", Err: c.retired}
				}
				c.log.Info("ceremony complete")
				return c.share, c.group, nil
			}
		}
	}
}

func (c *run) isPeer(id int) bool {
	_, ok := c.addr[id]
	return ok && id != c.self
}

func (c *run) handle(e event) error {
	p := e.peer
	if !c.isPeer(p) {
		if e.inbound && e.connected {
			return c.peerErr(p, nil, "connected, but is not a participant %v (a different participant list?)", c.others())
		}
		return nil
	}
	switch {
	case e.connected:
		if c.connected[p] {
			return c.peerErr(p, nil, "connected a second time (a restarted host, or two hosts with one certificate): the ceremony cannot go on")
		}
		c.connected[p] = true
		c.log.Debug("ceremony peer connected", "peer", p)
		return nil
	case e.err != nil && !e.inbound:
		if e.fatal {
			return c.peerErr(p, e.err, "%v", e.err)
		}
		if c.hellos[p] != nil {
			// It said hello, so it has a connection to us, on which its
			// leaving shows (its abort frame, or the connection's end):
			// that says more than this write's failure.
			c.log.Debug("ceremony send failed", "peer", p, "err", e.err)
			return nil
		}
		c.dialErr[p] = e.err
		c.log.Debug("ceremony peer not reachable yet", "peer", p, "err", e.err)
		return nil
	case e.err != nil:
		if _, done := c.dones[p]; done && errors.Is(e.err, io.EOF) {
			return nil // it completed and closed
		}
		if errors.Is(e.err, io.EOF) {
			return c.peerErr(p, e.err, "left the ceremony before it completed (connection closed: the process stopped or was killed)")
		}
		return c.peerErr(p, e.err, "left the ceremony before it completed: %v", e.err)
	}
	f := e.frame
	if _, done := c.dones[p]; done {
		return c.peerErr(p, nil, "sent a %s frame after its done frame: refused", frameName(f.typ))
	}
	switch f.typ {
	case frameAbort:
		reason, err := decodeAbort(f.body)
		if err != nil {
			reason = "(unreadable reason)"
		}
		return &Error{Peer: p, Remote: true, Reason: reason}
	case frameHello:
		return c.onHello(p, f.body)
	case frameConfirm:
		return c.onConfirm(p, f.body)
	case frameDKG:
		if c.proto == nil {
			if _, ok := c.confirms[p]; !ok {
				return c.peerErr(p, nil, "sent a DKG message before confirming the transcript: refused")
			}
			// Each peer sends us a deal and a response per dealer before
			// its done: more is not an honest peer's.
			if len(c.early) >= 2*len(c.ids)*len(c.ids) {
				return c.peerErr(p, nil, "sent more DKG messages than a ceremony has before ours started: refused")
			}
			c.early = append(c.early, e)
			return nil
		}
		return c.onDKG(p, f.body)
	case frameDone:
		return c.onDone(p, f.body)
	}
	return c.peerErr(p, nil, "sent a frame of unknown type %d", f.typ)
}

func (c *run) others() []int {
	var out []int
	for _, id := range c.ids {
		if id != c.self {
			out = append(out, id)
		}
	}
	return out
}

func (c *run) onHello(p int, body []byte) error {
	if c.hellos[p] != nil {
		return c.peerErr(p, nil, "sent a second hello: refused (a replay?)")
	}
	h, err := decodeHello(body)
	if err != nil {
		return c.peerErr(p, err, "sent a malformed hello: %v", err)
	}
	if int(h.from) != p {
		return c.peerErr(p, nil, "sent a hello as cosigner %d: refused", h.from)
	}
	if !bytes.Equal(h.params, c.params) {
		return c.peerErr(p, nil, "runs a different ceremony: %s; check that every host has the same [threshold] configuration (threshold, shares, peers) and command line", paramsDiff(c.params, h.params))
	}
	for q, o := range c.hellos {
		if o.longterm == h.longterm || o.nonce == h.nonce {
			return c.peerErr(p, nil, "sent the long-term key or nonce of cosigner %d: refused (a replay?)", q)
		}
	}
	if h.longterm == [32]byte(c.longPub) || h.nonce == c.nonce {
		return c.peerErr(p, nil, "sent our own long-term key or nonce: refused (a replay?)")
	}
	c.hellos[p] = h
	c.log.Info("ceremony hello", "peer", p, "have", len(c.hellos), "of", len(c.ids)-1)
	if len(c.hellos) < len(c.ids)-1 {
		return nil
	}
	c.transcript = c.computeTranscript()
	c.phase = phaseConfirm
	c.broadcast(frame{typ: frameConfirm, body: c.transcript})
	for q, t := range c.confirms {
		if !bytes.Equal(t, c.transcript) {
			return c.transcriptErr(q)
		}
	}
	return c.maybeStart()
}

func (c *run) transcriptErr(q int) error {
	return c.peerErr(q, nil, "confirmed a different transcript than ours (%x): some participant sent different hellos to different peers, or a link is tampered with; stop and look before rerunning", c.transcript[:8])
}

func (c *run) computeTranscript() []byte {
	t := sha256.New()
	t.Write([]byte("cosigner ceremony transcript v1"))
	t.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c.params))))
	t.Write(c.params)
	for _, id := range c.ids {
		nonce, long, extra := c.nonce[:], c.longPub, c.extra
		if h := c.hellos[id]; h != nil {
			nonce, long, extra = h.nonce[:], h.longterm[:], h.extra
		}
		t.Write(binary.BigEndian.AppendUint16(nil, uint16(id)))
		t.Write(nonce)
		t.Write(long)
		t.Write(binary.BigEndian.AppendUint32(nil, uint32(len(extra))))
		t.Write(extra)
	}
	return t.Sum(nil)
}

func (c *run) onConfirm(p int, body []byte) error {
	if _, ok := c.confirms[p]; ok {
		return c.peerErr(p, nil, "sent a second confirm: refused (a replay?)")
	}
	if c.hellos[p] == nil {
		return c.peerErr(p, nil, "confirmed before its hello: refused")
	}
	t, err := decodeConfirm(body)
	if err != nil {
		return c.peerErr(p, err, "sent a malformed confirm: %v", err)
	}
	c.confirms[p] = t
	if c.transcript == nil {
		return nil
	}
	if !bytes.Equal(t, c.transcript) {
		return c.transcriptErr(p)
	}
	return c.maybeStart()
}

func (c *run) maybeStart() error {
	if c.proto != nil || len(c.confirms) < len(c.ids)-1 {
		return nil
	}
	longs := map[int][]byte{c.self: c.longPub}
	extras := map[int][]byte{c.self: c.extra}
	for id, h := range c.hellos {
		longs[id] = h.longterm[:]
		extras[id] = h.extra
	}
	proto, err := c.newProtocol(Setup{Self: c.self, Longterm: c.longSec, Longterms: longs, CeremonyID: c.transcript, Extras: extras})
	if err != nil {
		return &Error{Reason: fmt.Sprintf("cannot set up the key generation: %v", err), Err: err}
	}
	if proto == nil || proto.DKG == nil {
		return &Error{Reason: "the protocol set up no DKG"}
	}
	c.proto = proto
	c.phase = phaseDKG
	c.log.Info("ceremony transcript confirmed: dealing", "transcript", fmt.Sprintf("%x", c.transcript[:8]))
	out, err := proto.DKG.Start()
	if err != nil {
		return c.dkgErr(0, err)
	}
	if err := c.route(out); err != nil {
		return err
	}
	early := c.early
	c.early = nil
	for _, e := range early {
		if err := c.onDKG(e.peer, e.frame.body); err != nil {
			return err
		}
	}
	return c.checkComplete()
}

func (c *run) dkgErr(p int, err error) error {
	var de *threshold.DealerError
	if errors.As(err, &de) {
		dealer := c.proto.Dealers[de.Dealer]
		accuser := c.proto.Members[de.Accuser]
		return &Error{Peer: dealer, Reason: fmt.Sprintf("dealt a bad share to cosigner %d (%s): do not use cosigner %d's host until this is understood, then rerun the ceremony", accuser, de.Reason, dealer), Err: err}
	}
	if p != 0 {
		return c.peerErr(p, err, "sent a message the key generation refused: %v", err)
	}
	return &Error{Reason: err.Error(), Err: err}
}

func (c *run) route(msgs []*threshold.DKGMessage) error {
	for _, m := range msgs {
		f := frame{typ: frameDKG, body: m.Bytes()}
		if m.To == 0 {
			c.broadcast(f)
			continue
		}
		to, ok := c.proto.Members[m.To]
		if !ok || !c.isPeer(to) {
			return &Error{Reason: fmt.Sprintf("the key generation addressed a message to identifier %d, which is no other participant", m.To)}
		}
		c.send(to, f)
	}
	return nil
}

func (c *run) onDKG(p int, body []byte) error {
	m, err := threshold.DecodeDKGMessage(body)
	if err != nil {
		return c.peerErr(p, err, "sent a malformed DKG message: %v", err)
	}
	ids := c.proto.Members
	if m.Kind == threshold.KindDeal {
		ids = c.proto.Dealers
	}
	if ids[m.From] != p {
		return c.peerErr(p, nil, "sent a DKG message as participant %d, who is cosigner %d: refused", m.From, ids[m.From])
	}
	out, err := c.proto.DKG.Handle(m)
	if err != nil {
		return c.dkgErr(p, err)
	}
	if err := c.route(out); err != nil {
		return err
	}
	return c.checkComplete()
}

func (c *run) checkComplete() error {
	if c.phase != phaseDKG || len(c.proto.DKG.Missing()) > 0 {
		return nil
	}
	ks, group, err := c.proto.DKG.Result()
	switch {
	case errors.Is(err, threshold.ErrRetired):
		c.retired = err
		c.digest = []byte{}
	case err != nil:
		return c.dkgErr(0, err)
	default:
		c.share, c.group = ks, group
		d := sha256.Sum256(append([]byte("cosigner ceremony group v1"), group.Bytes()...))
		c.digest = d[:]
	}
	c.phase = phaseDone
	c.log.Info("ceremony key generation complete: waiting for every participant")
	c.broadcast(frame{typ: frameDone, body: c.digest})
	for q, d := range c.dones {
		if err := c.compareDone(q, d); err != nil {
			return err
		}
	}
	return nil
}

func (c *run) compareDone(q int, d []byte) error {
	if len(d) == 0 || len(c.digest) == 0 || bytes.Equal(d, c.digest) {
		return nil
	}
	return c.peerErr(q, nil, "derived a different group key than ours: discard every share of this ceremony and rerun it")
}

func (c *run) onDone(p int, body []byte) error {
	d, err := decodeDone(body)
	if err != nil {
		return c.peerErr(p, err, "sent a malformed done: %v", err)
	}
	if c.proto == nil {
		return c.peerErr(p, nil, "completed before the key generation started here: refused")
	}
	c.dones[p] = d
	if c.phase == phaseDone {
		return c.compareDone(p, d)
	}
	return nil
}

// timeoutErr names who we were still waiting for when ctx ended.
func (c *run) timeoutErr(ctx context.Context) error {
	cause := ctx.Err()
	if !errors.Is(cause, context.DeadlineExceeded) {
		return &Error{Reason: "interrupted", Err: cause}
	}
	var waiting []string
	switch c.phase {
	case phaseHello:
		for _, id := range c.others() {
			if c.hellos[id] != nil {
				continue
			}
			s := "cosigner " + strconv.Itoa(id) + " at " + c.addr[id]
			if err := c.dialErr[id]; err != nil && !c.connected[id] {
				s += " (" + err.Error() + ")"
			} else if !c.connected[id] {
				s += " (never connected to us)"
			}
			waiting = append(waiting, s)
		}
		return &Error{Reason: fmt.Sprintf("timed out waiting for the hello of %s: start '%s' on every host within the timeout, and check addresses and firewalls", strings.Join(waiting, ", "), c.command), Err: cause}
	case phaseConfirm:
		for _, id := range c.others() {
			if _, ok := c.confirms[id]; !ok {
				waiting = append(waiting, strconv.Itoa(id))
			}
		}
		return &Error{Reason: fmt.Sprintf("timed out waiting for cosigners %s to confirm the transcript", strings.Join(waiting, ", ")), Err: cause}
	case phaseDKG:
		seen := map[int]bool{}
		for _, m := range c.proto.DKG.Missing() {
			id := c.proto.Members[m]
			if id == 0 {
				id = c.proto.Dealers[m]
			}
			if !seen[id] {
				seen[id] = true
				waiting = append(waiting, strconv.Itoa(id))
			}
		}
		return &Error{Reason: fmt.Sprintf("timed out waiting for the deals or responses of cosigners %s", strings.Join(waiting, ", ")), Err: cause}
	}
	for _, id := range c.others() {
		if _, ok := c.dones[id]; !ok {
			waiting = append(waiting, strconv.Itoa(id))
		}
	}
	return &Error{Reason: fmt.Sprintf("timed out waiting for cosigners %s to complete", strings.Join(waiting, ", ")), Err: cause}
}

// paramsDiff describes the first line where a peer's params differ from
// ours.
func paramsDiff(ours, theirs []byte) string {
	a := strings.Split(string(ours), "\n")
	b := strings.Split(string(theirs), "\n")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			switch {
			case x == "":
				return fmt.Sprintf("it has %q, we have nothing", y)
			case y == "":
				return fmt.Sprintf("it has nothing, we have %q", x)
			}
			return fmt.Sprintf("it has %q, we have %q", y, x)
		}
	}
	return "they differ"
}
