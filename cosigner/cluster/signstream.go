package cluster

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
)

// The leader sends its share requests to a cosigner on one long-lived
// SignStream rather than one Sign call each. A call costs both ends a new
// HTTP/2 stream: its headers and trailers encoded and decoded, the stream's
// bookkeeping, and on the server a handler dispatched; on a stream a
// request is one message each way. The requests and answers are the same
// messages, checked the same way.

// noStreamRetry is how long a leader sends unary Sign calls to a cosigner
// that answered a SignStream with UNIMPLEMENTED (a build that predates it)
// before it tries a stream again (the cosigner may have been upgraded).
const noStreamRetry = time.Minute

// errNoSignStream: the cosigner serves no SignStream; send a unary Sign.
var errNoSignStream = errors.New("the cosigner serves no sign stream")

// signStreams holds a GRPCPeer's SignStream, opened on first use and
// opened again after it breaks.
type signStreams struct {
	open func(context.Context) (cosignerv1.Cosigner_SignStreamClient, error)

	mu  sync.Mutex
	cur *signStream
	// opening is closed when the open under way ends; nil when none is.
	opening chan struct{}
	openErr error // the outcome of the last open that failed
	// unaryUntil: the cosigner answered UNIMPLEMENTED; unary calls until then.
	unaryUntil time.Time
	next       uint64
}

// signStream is one open SignStream and the requests waiting for their
// answers on it.
type signStream struct {
	stream cosignerv1.Cosigner_SignStreamClient
	cancel context.CancelFunc
	sendMu sync.Mutex // Send is not safe for concurrent use

	mu      sync.Mutex
	waiting map[uint64]chan streamAnswer
	err     error // set when the stream broke: every later request fails with it
}

type streamAnswer struct {
	resp *cosignerv1.SignResponse
	err  error
	at   time.Time // when the answer, or the failure, arrived
}

// pendingSign is a request sent on a stream, waiting for its answer.
type pendingSign struct {
	s  *signStream
	id uint64
	ch chan streamAnswer
}

// start sends req on the stream, opening it first if need be. It returns
// errNoSignStream when the cosigner has no SignStream: nothing was sent
// that it served, so the caller sends req as a unary call.
func (ss *signStreams) start(ctx context.Context, req *cosignerv1.SignRequest) (*pendingSign, error) {
	s, id, err := ss.stream(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := s.register(id)
	if err != nil {
		return nil, err
	}
	s.sendMu.Lock()
	err = s.stream.Send(&cosignerv1.SignStreamRequest{Id: id, Request: req})
	s.sendMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		// io.EOF: the stream ended, and its receiver will report why.
		s.fail(ss, err)
	}
	return &pendingSign{s: s, id: id, ch: ch}, nil
}

// wait returns the answer and when it arrived, or ctx's error once ctx
// ends. A stream that broke answers errNoSignStream when the cosigner has
// no SignStream.
func (p *pendingSign) wait(ctx context.Context) (*cosignerv1.SignResponse, time.Time, error) {
	select {
	case a := <-p.ch:
		return a.resp, a.at, a.err
	case <-ctx.Done():
		p.s.unregister(p.id)
		return nil, time.Now(), status.FromContextError(ctx.Err()).Err()
	}
}

// stream returns the open stream, or opens one, and the id of the next
// request on it. It waits for an open until ctx ends; an open that ctx
// gave up on goes on, for the next request.
func (ss *signStreams) stream(ctx context.Context) (*signStream, uint64, error) {
	ss.mu.Lock()
	if time.Now().Before(ss.unaryUntil) {
		ss.mu.Unlock()
		return nil, 0, errNoSignStream
	}
	if s := ss.cur; s != nil {
		ss.next++
		id := ss.next
		ss.mu.Unlock()
		return s, id, nil
	}
	if ss.opening == nil {
		ss.opening = make(chan struct{})
		go ss.openStream(ss.opening)
	}
	wait := ss.opening
	ss.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, 0, status.FromContextError(ctx.Err()).Err()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.cur == nil {
		if ss.openErr == nil { // opened and broken since
			return nil, 0, status.Error(codes.Unavailable, "sign stream closed")
		}
		return nil, 0, ss.openErr
	}
	ss.next++
	return ss.cur, ss.next, nil
}

// openStream opens a stream, which lives until it breaks (or its
// connection closes), and closes done.
func (ss *signStreams) openStream(done chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := ss.open(ctx)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.opening = nil
	defer close(done)
	if err != nil {
		cancel()
		ss.openErr = err
		return
	}
	s := &signStream{stream: st, cancel: cancel, waiting: map[uint64]chan streamAnswer{}}
	ss.cur, ss.openErr = s, nil
	go s.receive(ss)
}

// register makes a place for the answer to request id.
func (s *signStream) register(id uint64) (chan streamAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	ch := make(chan streamAnswer, 1)
	s.waiting[id] = ch
	return ch, nil
}

func (s *signStream) unregister(id uint64) {
	s.mu.Lock()
	delete(s.waiting, id)
	s.mu.Unlock()
}

// receive hands each answer to its request until the stream breaks.
func (s *signStream) receive(ss *signStreams) {
	for {
		in, err := s.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "the cosigner closed the sign stream")
			}
			s.fail(ss, err)
			return
		}
		a := streamAnswer{resp: in.GetResponse(), at: time.Now()}
		if c := codes.Code(in.GetErrorCode()); c != codes.OK {
			a = streamAnswer{err: status.Error(c, in.GetErrorMessage()), at: a.at}
		} else if a.resp == nil {
			a.err = status.Error(codes.Internal, "sign stream answer without a response")
		}
		s.mu.Lock()
		ch, ok := s.waiting[in.GetId()]
		delete(s.waiting, in.GetId())
		s.mu.Unlock()
		if ok {
			ch <- a
		}
	}
}

// fail ends the stream: every request waiting on it, and any later one,
// fails with err, and the next request opens a new stream. UNIMPLEMENTED
// (a cosigner without SignStream) fails them with errNoSignStream, and
// requests go as unary calls for noStreamRetry.
func (s *signStream) fail(ss *signStreams, err error) {
	if status.Code(err) == codes.Unimplemented {
		err = errNoSignStream
	}
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	s.err = err
	waiting := s.waiting
	s.waiting = nil
	s.mu.Unlock()
	s.cancel()
	now := time.Now()
	for _, ch := range waiting {
		ch <- streamAnswer{err: err, at: now}
	}
	ss.mu.Lock()
	if ss.cur == s {
		ss.cur = nil
	}
	if errors.Is(err, errNoSignStream) {
		ss.unaryUntil = time.Now().Add(noStreamRetry)
	}
	ss.mu.Unlock()
}
