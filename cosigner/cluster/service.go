package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/signstate"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cosigner/cosigner/privval"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

// RaftControl is what the cluster service needs of this cosigner's Raft
// node. Implementations must be safe for concurrent use.
type RaftControl interface {
	// Leadership is this node's current view of the leader.
	Leadership() raft.Leadership
	// View is this node's Raft state, for Ping.
	View() raft.View
	// TransferLeadership hands leadership to cosigner id (0: Raft chooses).
	TransferLeadership(ctx context.Context, id int) error
}

// Service serves the Cosigner gRPC service of one cosigner: nonce
// commitments and signature shares for the leader in this cosigner's own
// Raft view, and nothing for anyone else.
type Service struct {
	cosignerv1.UnimplementedCosignerServer
	keys    *Keyring
	raft    RaftControl
	version string
	epochs  *EpochGuard
	// stopping is closed by Stop: SignStream handlers return.
	stopping chan struct{}
	stopOnce sync.Once
}

var _ cosignerv1.CosignerServer = (*Service)(nil)

// NewService returns the service of the keys' share signers, checking
// callers against rc's view of the leader and their epoch against epochs.
func NewService(keys *Keyring, rc RaftControl, version string, epochs *EpochGuard) *Service {
	return &Service{keys: keys, raft: rc, version: version, epochs: epochs, stopping: make(chan struct{})}
}

// Stop ends every SignStream, open or opened later, with UNAVAILABLE. Call
// it before the gRPC server's GracefulStop, which otherwise waits for the
// leader to close its streams, that is for ever.
func (s *Service) Stop() { s.stopOnce.Do(func() { close(s.stopping) }) }

// errStopping ends the SignStreams of a stopping cosigner.
var errStopping = status.Error(codes.Unavailable, "the cosigner is stopping")

// SignStream serves the Sign requests of one stream, one after the other,
// each as Sign serves it. An error of one request (a status Sign would
// have returned) is answered and the stream goes on; the stream ends when
// the caller closes it, it breaks, or Stop is called.
//
// The requests are read, served and answered in a goroutine of their own,
// so that the handler can return as soon as Stop is called, while that
// goroutine may still be reading; it sends no answer after the handler
// has returned.
func (s *Service) SignStream(stream cosignerv1.Cosigner_SignStreamServer) error {
	caller, err := callerID(stream.Context())
	if err != nil {
		return err
	}
	var (
		mu     sync.Mutex
		closed bool
	)
	done := make(chan error, 1)
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
			out := &cosignerv1.SignStreamResponse{Id: in.GetId()}
			if in.GetRequest() == nil {
				out.ErrorCode, out.ErrorMessage = uint32(codes.InvalidArgument), "stream request without a sign request"
			} else if resp, err := s.sign(caller, in.GetRequest()); err != nil {
				st := status.Convert(err)
				out.ErrorCode, out.ErrorMessage = uint32(st.Code()), st.Message()
			} else {
				out.Response = resp
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				return
			}
			err = stream.Send(out)
			mu.Unlock()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return err
	case <-s.stopping:
		mu.Lock()
		closed = true
		mu.Unlock()
		return errStopping
	}
}

// epochRefusal returns an EPOCH_MISMATCH refusal unless the caller's epoch
// is this cosigner's.
func (s *Service) epochRefusal(caller int, theirs *cosignerv1.Epoch) *cosignerv1.Refusal {
	err := s.epochs.Check(caller, theirs, metrics.SideServed)
	if err == nil {
		return nil
	}
	return &cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_EPOCH_MISMATCH, Message: err.Error(), Epoch: s.epochs.Proto()}
}

// callerID returns the cosigner id in the caller's client certificate. The
// TLS configuration already required and verified it; this only reads it.
func callerID(ctx context.Context) (int, error) {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return 0, status.Error(codes.Unauthenticated, "no peer information")
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return 0, status.Error(codes.Unauthenticated, "not a TLS connection")
	}
	id, err := clustertls.PeerID(info.State)
	if err != nil {
		return 0, status.Errorf(codes.Unauthenticated, "caller identity: %v", err)
	}
	return id, nil
}

// notLeader returns a NOT_LEADER refusal unless caller leads in this
// cosigner's view.
func (s *Service) notLeader(caller int) *cosignerv1.Refusal {
	l := s.raft.Leadership()
	if l.LeaderID != 0 && l.LeaderID == caller {
		return nil
	}
	return &cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER, LeaderId: uint32(l.LeaderID),
		Message: fmt.Sprintf("cosigner %d is not the leader in cosigner %d's view (leader: %d)", caller, s.keys.ID(), l.LeaderID)}
}

// GetNonceCommitments draws fresh nonces for the leader.
func (s *Service) GetNonceCommitments(ctx context.Context, req *cosignerv1.GetNonceCommitmentsRequest) (*cosignerv1.GetNonceCommitmentsResponse, error) {
	caller, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	boot := s.keys.BootID()
	resp := &cosignerv1.GetNonceCommitmentsResponse{SignerId: uint32(s.keys.ID()), BootId: boot[:], Epoch: s.epochs.Proto()}
	if r := s.epochRefusal(caller, req.GetEpoch()); r != nil {
		resp.Refusal = r
		return resp, nil
	}
	if r := s.notLeader(caller); r != nil {
		resp.Refusal = r
		return resp, nil
	}
	signer, err := s.keys.ForKey(req.GetGroupKey())
	if err != nil {
		resp.Refusal = &cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_UNKNOWN_CHAIN, Message: err.Error()}
		return resp, nil
	}
	resp.GroupKey = signer.PublicKey()
	n := int(min(req.GetCount(), 1024))
	cs, err := signer.Pool().Generate(n)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "generate nonces: %v", err)
	}
	resp.Commitments = make([]*cosignerv1.NonceCommitment, len(cs))
	for i, c := range cs {
		resp.Commitments[i] = commitmentToProto(c)
	}
	return resp, nil
}

// Sign returns signature shares to the leader.
func (s *Service) Sign(ctx context.Context, req *cosignerv1.SignRequest) (*cosignerv1.SignResponse, error) {
	caller, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	return s.sign(caller, req)
}

// sign serves a Sign request of caller, a unary call's or one on a
// SignStream. Its error is a gRPC status.
func (s *Service) sign(caller int, req *cosignerv1.SignRequest) (*cosignerv1.SignResponse, error) {
	resp := &cosignerv1.SignResponse{SignerId: uint32(s.keys.ID()), Epoch: s.epochs.Proto()}
	refuseAll := func(r *cosignerv1.Refusal) *cosignerv1.SignResponse {
		resp.Results = make([]*cosignerv1.SignResult, max(1, len(req.GetMessages())))
		for i := range resp.Results {
			resp.Results[i] = &cosignerv1.SignResult{Result: &cosignerv1.SignResult_Refusal{Refusal: r}}
		}
		return resp
	}
	if r := s.epochRefusal(caller, req.GetEpoch()); r != nil {
		return refuseAll(r), nil
	}
	if r := s.notLeader(caller); r != nil {
		return refuseAll(r), nil
	}
	// The key names the share and the nonce pool: a request for another
	// key than the chain's here is refused by the share signer, and one
	// for a key not held here touches no pool.
	signer, err := s.keys.ForKey(req.GetGroupKey())
	if err != nil {
		return refuseAll(&cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_UNKNOWN_CHAIN,
			Message: fmt.Sprintf("chain %q: %v", req.GetChainId(), err)}), nil
	}
	share, err := shareRequestFromProto(req, signer.Pool().Resolve)
	if err != nil {
		return refuseAll(&cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_INVALID_REQUEST, Message: err.Error()}), nil
	}
	shares, err := signer.Sign(share)
	if err != nil {
		var refusal *signstate.Refusal
		if !errors.As(err, &refusal) {
			return nil, status.Errorf(codes.Internal, "sign: %v", err)
		}
		r := &cosignerv1.Refusal{Reason: cosignerv1.RefusalReason(refusal.Reason), Message: refusal.Err.Error()}
		if m, ok := signer.Mark(req.GetChainId()); ok {
			r.LastHeight, r.LastRound, r.LastStep = m.Height, m.Round, int32(m.Step)
		}
		return refuseAll(r), nil
	}
	resp.Results = make([]*cosignerv1.SignResult, len(shares))
	for i, sh := range shares {
		z := sh.Z.Bytes()
		resp.Results[i] = &cosignerv1.SignResult{Result: &cosignerv1.SignResult_Share{
			Share: &cosignerv1.SignatureShare{SignerId: uint32(sh.ID), Z: z}}}
	}
	return resp, nil
}

// Ping reports health and this cosigner's Raft view. A caller of another
// epoch gets FAILED_PRECONDITION: for it this cosigner is unreachable.
func (s *Service) Ping(ctx context.Context, req *cosignerv1.PingRequest) (*cosignerv1.PingResponse, error) {
	caller, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.epochs.Check(caller, req.GetEpoch(), metrics.SideServed); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	v := s.raft.View()
	boot := s.keys.BootID()
	return &cosignerv1.PingResponse{
		SignerId: uint32(s.keys.ID()), BootId: boot[:], Version: s.version,
		NoncesAvailable: uint32(s.keys.NoncesAvailable()), Epoch: s.epochs.Proto(),
		Raft: &cosignerv1.RaftView{Term: v.Term, Role: cosignerv1.RaftRole(v.Role), LeaderId: uint32(v.LeaderID),
			LastIndex: v.LastIndex, AppliedIndex: v.AppliedIndex},
	}, nil
}

// TransferLeadership hands leadership over. Only the leader executes it,
// and only at its own request: a call from any other member is refused,
// however valid its cluster certificate. Otherwise one compromised
// follower, or a stolen certificate, could hand the leadership to a
// cosigner an attacker controls, which then chooses what the others are
// asked to co-sign. Operators run `cosigner leader transfer` on the
// leader's host, where it reaches Raft through the admin socket, not
// through this service.
func (s *Service) TransferLeadership(ctx context.Context, req *cosignerv1.TransferLeadershipRequest) (*cosignerv1.TransferLeadershipResponse, error) {
	caller, err := callerID(ctx)
	if err != nil {
		return nil, err
	}
	l := s.raft.Leadership()
	if !l.IsLeader {
		return &cosignerv1.TransferLeadershipResponse{LeaderId: uint32(l.LeaderID),
			Refusal: &cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER, LeaderId: uint32(l.LeaderID),
				Message: fmt.Sprintf("cosigner %d does not lead (leader: %d)", s.keys.ID(), l.LeaderID)}}, nil
	}
	if caller != l.LeaderID {
		return &cosignerv1.TransferLeadershipResponse{LeaderId: uint32(l.LeaderID),
			Refusal: &cosignerv1.Refusal{Reason: cosignerv1.RefusalReason_REFUSAL_REASON_NOT_LEADER, LeaderId: uint32(l.LeaderID),
				Message: fmt.Sprintf("cosigner %d asked leader cosigner %d to hand leadership over: only the leader itself may; run 'cosigner leader transfer' on the leader's host", caller, l.LeaderID)}}, nil
	}
	if err := s.raft.TransferLeadership(ctx, int(req.GetTargetId())); err != nil {
		return &cosignerv1.TransferLeadershipResponse{Refusal: &cosignerv1.Refusal{
			Reason: cosignerv1.RefusalReason_REFUSAL_REASON_INVALID_REQUEST, Message: err.Error()}}, nil
	}
	return &cosignerv1.TransferLeadershipResponse{LeaderId: uint32(s.raft.Leadership().LeaderID)}, nil
}

func commitmentToProto(c PublishedCommitment) *cosignerv1.NonceCommitment {
	b := c.Commitment.Bytes()
	p := &cosignerv1.NonceCommitment{SignerId: uint32(c.Commitment.ID()), BootId: append([]byte(nil), c.BootID[:]...),
		Handle: c.Handle, Hiding: b[2 : 2+threshold.ElementSize], Binding: b[2+threshold.ElementSize:]}
	// The eighths spare the receiver the prime-order check of each point.
	if h8, b8, ok := c.Commitment.Eighths(); ok {
		p.HidingEighth, p.BindingEighth = h8, b8
	}
	return p
}

func commitmentFromProto(p *cosignerv1.NonceCommitment) (PublishedCommitment, error) {
	if p.GetSignerId() == 0 || p.GetSignerId() > clustertls.MaxID {
		return PublishedCommitment{}, fmt.Errorf("commitment signer id %d out of range", p.GetSignerId())
	}
	if len(p.GetBootId()) != BootIDSize || len(p.GetHiding()) != threshold.ElementSize || len(p.GetBinding()) != threshold.ElementSize {
		return PublishedCommitment{}, fmt.Errorf("commitment of cosigner %d: boot id, hiding or binding has the wrong size", p.GetSignerId())
	}
	buf := make([]byte, threshold.CommitmentSize)
	binary.BigEndian.PutUint16(buf, uint16(p.GetSignerId()))
	copy(buf[2:], p.GetHiding())
	copy(buf[2+threshold.ElementSize:], p.GetBinding())
	var c threshold.Commitment
	var err error
	if len(p.GetHidingEighth()) == 0 && len(p.GetBindingEighth()) == 0 {
		// A sender without eighths: check each point's order.
		c, err = threshold.DecodeCommitment(buf)
	} else {
		// D = 8 * (D/8) is prime-order by construction; it must be the
		// D the message names, which older cosigners check and use.
		c, err = threshold.CommitmentFromEighths(uint16(p.GetSignerId()), p.GetHidingEighth(), p.GetBindingEighth())
		if err == nil && !bytes.Equal(c.Bytes(), buf) {
			err = fmt.Errorf("commitment of cosigner %d: hiding and binding are not 8 times their eighths", p.GetSignerId())
		}
	}
	if err != nil {
		return PublishedCommitment{}, err
	}
	out := PublishedCommitment{Commitment: c, Handle: p.GetHandle()}
	copy(out.BootID[:], p.GetBootId())
	return out, nil
}

func shareRequestToProto(r *ShareRequest, epoch *cosignerv1.Epoch) *cosignerv1.SignRequest {
	out := &cosignerv1.SignRequest{ChainId: r.ChainID, GroupKey: r.GroupKey, Messages: make([]*cosignerv1.SignMessage, len(r.Messages)), Epoch: epoch}
	for i, m := range r.Messages {
		pm := &cosignerv1.SignMessage{Kind: cosignerv1.SignKind(m.Kind), Height: m.Height, Round: m.Round, SignBytes: m.SignBytes,
			Commitments: make([]*cosignerv1.NonceCommitment, len(m.Commitments))}
		for j, c := range m.Commitments {
			pm.Commitments[j] = commitmentToProto(c)
		}
		out.Messages[i] = pm
	}
	return out
}

// shareRequestFromProto decodes a Sign request. own, if not nil, resolves
// this cosigner's own commitments from its pool without decoding their
// points again (each point check costs a scalar multiplication); what it
// does not recognise is decoded and checked like any other commitment.
func shareRequestFromProto(p *cosignerv1.SignRequest, own func(signerID uint32, bootID []byte, handle uint64, hiding, binding []byte) (PublishedCommitment, bool)) (*ShareRequest, error) {
	if len(p.GetGroupKey()) != 0 && len(p.GetGroupKey()) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("group key is %d bytes, want %d", len(p.GetGroupKey()), ed25519.PublicKeySize)
	}
	out := &ShareRequest{ChainID: p.GetChainId(), GroupKey: p.GetGroupKey(), Messages: make([]ShareMessage, len(p.GetMessages()))}
	for i, m := range p.GetMessages() {
		sm := ShareMessage{Kind: ShareKind(m.GetKind()), Height: m.GetHeight(), Round: m.GetRound(), SignBytes: m.GetSignBytes(),
			Commitments: make([]PublishedCommitment, len(m.GetCommitments()))}
		for j, c := range m.GetCommitments() {
			if own != nil {
				if pc, ok := own(c.GetSignerId(), c.GetBootId(), c.GetHandle(), c.GetHiding(), c.GetBinding()); ok {
					sm.Commitments[j] = pc
					continue
				}
			}
			var err error
			if sm.Commitments[j], err = commitmentFromProto(c); err != nil {
				return nil, fmt.Errorf("message %d: %w", i, err)
			}
		}
		out.Messages[i] = sm
	}
	return out, nil
}

// GRPCPeer reaches a remote cosigner through its Cosigner service.
type GRPCPeer struct {
	id     int
	client cosignerv1.CosignerClient
	epochs *EpochGuard
	// streams carries the share requests (see signstream.go).
	streams signStreams
}

var _ PeerClient = (*GRPCPeer)(nil)

// NewGRPCPeer returns a PeerClient for cosigner id over conn. Its
// requests carry this cosigner's epoch, and an answer of another epoch
// is refused (epochs logs and counts it).
func NewGRPCPeer(id int, conn grpc.ClientConnInterface, epochs *EpochGuard) *GRPCPeer {
	g := &GRPCPeer{id: id, client: cosignerv1.NewCosignerClient(conn), epochs: epochs}
	g.streams.open = func(ctx context.Context) (cosignerv1.Cosigner_SignStreamClient, error) {
		return g.client.SignStream(ctx)
	}
	return g
}

// checkEpoch returns a RefusedEpochMismatch refusal when the answer of
// the cosigner carries another epoch than ours (its own refusal of our
// epoch included), else nil.
func (g *GRPCPeer) checkEpoch(theirs *cosignerv1.Epoch) error {
	if err := g.epochs.Check(g.id, theirs, metrics.SideCalled); err != nil {
		return &signstate.Refusal{Signer: g.id, Reason: signstate.RefusedEpochMismatch, Err: err}
	}
	return nil
}

func refusalFromProto(id int, r *cosignerv1.Refusal) *signstate.Refusal {
	out := &signstate.Refusal{Signer: id, Reason: signstate.RefusalReason(r.GetReason()), Err: errors.New(r.GetMessage())}
	if reportsMark(out.Reason) && (r.GetLastHeight() != 0 || r.GetLastStep() != 0) {
		out.Last = &signstate.Mark{Height: r.GetLastHeight(), Round: r.GetLastRound(), Step: privval.Step(r.GetLastStep())}
	}
	return out
}

// Commitments fetches n fresh commitments for validator key key.
func (g *GRPCPeer) Commitments(ctx context.Context, key ed25519.PublicKey, n int) ([]PublishedCommitment, error) {
	resp, err := g.client.GetNonceCommitments(ctx, &cosignerv1.GetNonceCommitmentsRequest{Count: uint32(n), GroupKey: key, Epoch: g.epochs.Proto()})
	if err != nil {
		return nil, err
	}
	if err := g.checkEpoch(resp.GetEpoch()); err != nil {
		return nil, err
	}
	if resp.GetRefusal() != nil {
		return nil, refusalFromProto(g.id, resp.GetRefusal())
	}
	// An older cosigner echoes no key; it holds one, the one it was asked
	// for or none (then its shares fail verification and it is blamed).
	if gk := resp.GetGroupKey(); len(gk) != 0 && !bytes.Equal(gk, key) {
		return nil, fmt.Errorf("cosigner %d sent commitments of validator key %X, asked for %X", g.id, gk, key)
	}
	out := make([]PublishedCommitment, 0, len(resp.GetCommitments()))
	for _, c := range resp.GetCommitments() {
		pc, err := commitmentFromProto(c)
		if err != nil {
			return nil, fmt.Errorf("cosigner %d: %w", g.id, err)
		}
		out = append(out, pc)
	}
	return out, nil
}

// Sign asks for signature shares, on the cosigner's sign stream, or in a
// call of its own to a cosigner without one.
func (g *GRPCPeer) Sign(ctx context.Context, req *ShareRequest) ([]threshold.SignatureShare, error) {
	shares, _, err := g.StartSign(ctx, req)()
	return shares, err
}

var _ Starter = (*GRPCPeer)(nil)

// StartSign sends req on the cosigner's sign stream and returns at once;
// the function it returns waits for the shares (until ctx ends) and says
// when they arrived. To a cosigner without a sign stream the request goes
// as a unary call, in a goroutine of its own.
func (g *GRPCPeer) StartSign(ctx context.Context, req *ShareRequest) func() ([]threshold.SignatureShare, time.Time, error) {
	pr := shareRequestToProto(req, g.epochs.Proto())
	pending, err := g.streams.start(ctx, pr)
	switch {
	case errors.Is(err, errNoSignStream):
		type result struct {
			shares []threshold.SignatureShare
			at     time.Time
			err    error
		}
		done := make(chan result, 1)
		go func() {
			shares, at, err := g.unarySign(ctx, req, pr)
			done <- result{shares, at, err}
		}()
		return func() ([]threshold.SignatureShare, time.Time, error) {
			r := <-done
			return r.shares, r.at, r.err
		}
	case err != nil:
		at := time.Now()
		return func() ([]threshold.SignatureShare, time.Time, error) { return nil, at, err }
	}
	return func() ([]threshold.SignatureShare, time.Time, error) {
		resp, at, err := pending.wait(ctx)
		if errors.Is(err, errNoSignStream) {
			// Never served: the cosigner has no sign stream.
			return g.unarySign(ctx, req, pr)
		}
		if err != nil {
			return nil, at, err
		}
		shares, err := g.shares(req, resp)
		return shares, at, err
	}
}

// unarySign sends pr, the encoding of req, as a Sign call of its own, and
// returns the shares and when the answer arrived.
func (g *GRPCPeer) unarySign(ctx context.Context, req *ShareRequest, pr *cosignerv1.SignRequest) ([]threshold.SignatureShare, time.Time, error) {
	resp, err := g.client.Sign(ctx, pr)
	at := time.Now()
	if err != nil {
		return nil, at, err
	}
	shares, err := g.shares(req, resp)
	return shares, at, err
}

// shares checks the cosigner's answer to req and returns its shares, or
// its refusal.
func (g *GRPCPeer) shares(req *ShareRequest, resp *cosignerv1.SignResponse) ([]threshold.SignatureShare, error) {
	if err := g.checkEpoch(resp.GetEpoch()); err != nil {
		return nil, err
	}
	if len(resp.GetResults()) != len(req.Messages) && len(resp.GetResults()) > 0 {
		if r := resp.GetResults()[0].GetRefusal(); r != nil {
			return nil, refusalFromProto(g.id, r)
		}
		return nil, fmt.Errorf("cosigner %d: %d results for %d messages", g.id, len(resp.GetResults()), len(req.Messages))
	}
	out := make([]threshold.SignatureShare, len(resp.GetResults()))
	for i, r := range resp.GetResults() {
		if ref := r.GetRefusal(); ref != nil {
			return nil, refusalFromProto(g.id, ref)
		}
		sh := r.GetShare()
		if sh == nil || int(sh.GetSignerId()) != g.id {
			return nil, fmt.Errorf("cosigner %d: result %d is not its share", g.id, i)
		}
		buf := make([]byte, threshold.SignatureShareSize)
		binary.BigEndian.PutUint16(buf, uint16(sh.GetSignerId()))
		if len(sh.GetZ()) != threshold.ScalarSize {
			return nil, fmt.Errorf("cosigner %d: share is %d bytes", g.id, len(sh.GetZ()))
		}
		copy(buf[2:], sh.GetZ())
		var err error
		if out[i], err = threshold.DecodeSignatureShare(buf); err != nil {
			return nil, fmt.Errorf("cosigner %d: %w", g.id, err)
		}
	}
	return out, nil
}

// Ping measures the round trip to the cosigner and returns its answer.
func (g *GRPCPeer) Ping(ctx context.Context) (*cosignerv1.PingResponse, time.Duration, error) {
	start := time.Now()
	resp, err := g.client.Ping(ctx, &cosignerv1.PingRequest{Epoch: g.epochs.Proto()})
	rtt := time.Since(start)
	if status.Code(err) == codes.FailedPrecondition {
		// The cosigner refused our epoch; its message says which it holds.
		g.epochs.Refused(g.id, err)
		return nil, rtt, err
	}
	if err == nil {
		err = g.checkEpoch(resp.GetEpoch())
	}
	return resp, rtt, err
}

var _ Prober = (*GRPCPeer)(nil)

// Probe pings the cosigner and returns the round trip and the boot id of
// the process that answered.
func (g *GRPCPeer) Probe(ctx context.Context) (time.Duration, BootID, error) {
	resp, rtt, err := g.Ping(ctx)
	var boot BootID
	if err == nil && len(resp.GetBootId()) == BootIDSize {
		copy(boot[:], resp.GetBootId())
	}
	return rtt, boot, err
}
