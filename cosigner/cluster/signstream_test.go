package cluster

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cosigner/cosigner/privval"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/threshold"
)

// countingService counts the unary Sign calls and the SignStreams it
// serves; with noStream it answers SignStream UNIMPLEMENTED, as a build
// that predates it does.
type countingService struct {
	*Service
	noStream bool
	unary    atomic.Int32
	streams  atomic.Int32
}

func (c *countingService) Sign(ctx context.Context, req *cosignerv1.SignRequest) (*cosignerv1.SignResponse, error) {
	c.unary.Add(1)
	return c.Service.Sign(ctx, req)
}

func (c *countingService) SignStream(stream cosignerv1.Cosigner_SignStreamServer) error {
	if c.noStream {
		return status.Error(codes.Unimplemented, "unknown method SignStream for service cosigner.v1.Cosigner")
	}
	c.streams.Add(1)
	return c.Service.SignStream(stream)
}

// serveCounting serves cosigner id of gc (its share signer, Raft view and
// epoch) with svc's counting wrapper on addr ("127.0.0.1:0" for any port),
// and returns the server and its address.
func serveCounting(t *testing.T, gc *grpcCluster, id int, svc *countingService, addr string) (*grpc.Server, string) {
	t.Helper()
	svc.Service = NewService(keyringOf(gc.shares[id-1]), gc.rafts[id-1], "test", gc.guard(id))
	srv := grpc.NewServer(serverOptions(gc.tls[id-1].ServerTLSConfig())...)
	cosignerv1.RegisterCosignerServer(srv, svc)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Serve(lis); close(done) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return srv, lis.Addr().String()
}

// servedCosigner3 serves cosigner 3 of a fresh 2-of-3 gRPC cluster with
// svc, and returns the cluster, cosigner 3's server and address, and
// leader 1's GRPCPeer for it.
func servedCosigner3(t *testing.T, svc *countingService) (*grpcCluster, *grpc.Server, string, *GRPCPeer) {
	t.Helper()
	gc := serveGRPCCosigners(t, 2, 3)
	srv, addr := serveCounting(t, gc, 3, svc, "127.0.0.1:0")
	return gc, srv, addr, NewGRPCPeer(3, dialWith(t, addr, gc.tls[0].ClientTLSConfig(3)), gc.guard(1))
}

// prevoteRequest is a share request for a prevote at height h with fresh
// commitments of cosigners 1 and 3, and its signing package.
func prevoteRequest(t *testing.T, gc *grpcCluster, h int64) (*ShareRequest, *threshold.SigningPackage) {
	t.Helper()
	c1, err := gc.shares[0].Pool().Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	c3, err := gc.shares[2].Pool().Generate(1)
	if err != nil {
		t.Fatal(err)
	}
	sb := vote(h, 0, privval.StepPrevote, "X", time.Unix(1700000000, 0).UTC()).SignBytes
	pkg, err := threshold.NewSigningPackage(gc.dealing.Group, sb, []threshold.Commitment{c1[0].Commitment, c3[0].Commitment})
	if err != nil {
		t.Fatal(err)
	}
	return &ShareRequest{ChainID: testChain, Messages: []ShareMessage{{Kind: KindPrevote, Height: h,
		SignBytes: sb, Commitments: []PublishedCommitment{c1[0], c3[0]}}}}, pkg
}

// TestSignStreamCarriesShareRequests: the leader's share requests go on one
// stream, not as calls of their own, and concurrent requests on it each get
// their own share.
func TestSignStreamCarriesShareRequests(t *testing.T) {
	svc := &countingService{}
	gc, _, _, peer := servedCosigner3(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The same prevote, eight times at once, each with commitments of its
	// own: the mark admits the same sign bytes again, and each answer must
	// be the share of its own request's commitments.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		req, pkg := prevoteRequest(t, gc, 5)
		wg.Go(func() {
			shares, err := peer.Sign(ctx, req)
			if err == nil {
				err = threshold.VerifySignatureShare(pkg, shares[0])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if u, s := svc.unary.Load(), svc.streams.Load(); u != 0 || s != 1 {
		t.Fatalf("%d unary Sign calls and %d streams for %d requests, want 0 and 1", u, s, n)
	}
}

// TestSignStreamFallsBackToUnary: a cosigner that predates SignStream
// answers UNIMPLEMENTED; the leader signs with it by unary calls, the
// first request included, and does not try a stream again at once.
func TestSignStreamFallsBackToUnary(t *testing.T) {
	svc := &countingService{noStream: true}
	gc, _, _, peer := servedCosigner3(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for h := int64(2); h < 5; h++ {
		req, pkg := prevoteRequest(t, gc, h)
		shares, err := peer.Sign(ctx, req)
		if err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		if err := threshold.VerifySignatureShare(pkg, shares[0]); err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
	}
	if u := svc.unary.Load(); u != 3 {
		t.Fatalf("%d unary Sign calls for 3 requests", u)
	}
	peer.streams.mu.Lock()
	until := peer.streams.unaryUntil
	peer.streams.mu.Unlock()
	if time.Until(until) < noStreamRetry/2 {
		t.Fatalf("unary until %v: the stream would be tried again at once", until)
	}
}

// TestSignStreamReopens: when the cosigner restarts, the stream breaks,
// and the leader's next requests open a new one.
func TestSignStreamReopens(t *testing.T) {
	first := &countingService{}
	gc, srv, addr, peer := servedCosigner3(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := prevoteRequest(t, gc, 2)
	if _, err := peer.Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	second := &countingService{}
	serveCounting(t, gc, 3, second, addr)
	var err error
	for h := int64(3); ctx.Err() == nil; h++ {
		req, pkg := prevoteRequest(t, gc, h)
		var shares []threshold.SignatureShare
		if shares, err = peer.Sign(ctx, req); err == nil {
			if err = threshold.VerifySignatureShare(pkg, shares[0]); err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no share after the cosigner restarted: %v", err)
	}
	if s, u := second.streams.Load(), second.unary.Load(); s != 1 || u != 0 {
		t.Fatalf("the restarted cosigner served %d streams and %d unary calls, want 1 and 0", s, u)
	}
}

// TestServiceStopEndsSignStreams: a stopping cosigner's GracefulStop does
// not wait for the leader's open stream, and the stream's requests fail
// with UNAVAILABLE rather than hang.
func TestServiceStopEndsSignStreams(t *testing.T) {
	svc := &countingService{}
	gc, srv, _, peer := servedCosigner3(t, svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := prevoteRequest(t, gc, 2)
	if _, err := peer.Sign(ctx, req); err != nil {
		t.Fatal(err)
	}
	svc.Stop()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop still waits for the sign stream 5 s after Stop")
	}
	req, _ = prevoteRequest(t, gc, 3)
	if _, err := peer.Sign(ctx, req); status.Code(err) != codes.Unavailable {
		t.Fatalf("a request to the stopped cosigner: %v, want UNAVAILABLE", err)
	}
}
