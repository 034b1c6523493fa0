package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/doppel"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/cosigner/cosigner/privval"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
	"github.com/cosigner/cosigner/raft"
	"github.com/cosigner/cosigner/threshold"
)

// Cosigner is one cosigner of a threshold cluster: its share signer and gRPC
// service, its Raft node, and, while it leads, the coordinator and the
// connections to the chain's nodes.
type Cosigner struct {
	cfg      *config.Config
	log      *slog.Logger
	version  string
	identity ed25519.PrivateKey
	epochs   *EpochGuard
	tls      *clustertls.Identity
	// keys are the share signers, one per validator key.
	keys    *Keyring
	node    *raft.Node
	grpc    *grpc.Server
	service *Service
	lis     net.Listener
	conns   []*grpc.ClientConn
	peers   map[int]PeerClient
	metrics *metrics.Metrics // nil: none
	tracker *admin.Tracker
	// dups are the cosigner ids found answering as two live processes,
	// kept across this cosigner's terms as leader.
	dups *Duplicates
	// doppel records the doppelganger watches; nil: no metrics.
	doppel *doppel.Metrics

	// mu guards coord, the coordinator while this cosigner leads.
	mu    sync.Mutex
	coord *Coordinator
}

// Options are what New needs besides the configuration and the identity.
type Options struct {
	Log     *slog.Logger
	Version string
	// Metrics records the cluster's metrics; nil: none.
	Metrics *metrics.Metrics
	// Tracker records node connections and signatures for status and
	// readiness; nil: New makes one.
	Tracker *admin.Tracker
	// Doppel records the doppelganger watch of each term as leader; nil:
	// none.
	Doppel *doppel.Metrics
}

// New loads and checks everything a threshold cosigner needs: the share
// (from its file or the YubiHSM2) against the group commitments, the
// threshold against the config, the cluster certificate against the
// configured id, every chain's state. It opens Raft's stores and the gRPC
// listener; Run serves them.
func New(ctx context.Context, cfg *config.Config, identity ed25519.PrivateKey, opts Options) (*Cosigner, error) {
	t := cfg.Threshold
	log := opts.Log
	if opts.Tracker == nil {
		opts.Tracker = admin.NewTracker(opts.Metrics)
	}
	if err := share.CheckRetired(cfg.Home()); err != nil {
		return nil, err
	}
	srcs, srcChains := cfg.ShareSources()
	shares := make([]*threshold.KeyShare, len(srcs))
	for i, src := range srcs {
		ks, err := share.LoadSource(ctx, cfg, src, log)
		if err != nil {
			return nil, err
		}
		g := ks.Group()
		if g.Threshold() != t.Threshold || g.N() != t.Shares {
			return nil, fmt.Errorf("the share of %s (chains %s) is %d-of-%d, cosigner.toml says threshold = %d, shares = %d",
				src, strings.Join(srcChains[src], ", "), g.Threshold(), g.N(), t.Threshold, t.Shares)
		}
		if int(ks.ID()) != t.ID {
			return nil, fmt.Errorf("the share of %s (chains %s) belongs to cosigner %d, cosigner.toml says threshold.id = %d",
				src, strings.Join(srcChains[src], ", "), ks.ID(), t.ID)
		}
		for j, o := range shares[:i] {
			if bytes.Equal(o.Group().PublicKey(), g.PublicKey()) {
				return nil, fmt.Errorf("chains %s (%s) and chains %s (%s) name one validator key %X twice: point them at the same group_file and share, or correct the one listed by mistake",
					strings.Join(srcChains[srcs[j]], ", "), srcs[j], strings.Join(srcChains[src], ", "), src, g.PublicKey())
			}
		}
		shares[i] = ks
	}
	// The share was checked against this group file: its epoch is the
	// share's.
	_, epoch, err := share.LoadGroupEpoch(cfg.Path(t.GroupFile))
	if err != nil {
		return nil, err
	}
	ctls, err := clustertls.Load(cfg.Path(t.TLSDir))
	if err != nil {
		return nil, err
	}
	if ctls.ID() != t.ID {
		return nil, fmt.Errorf("the cluster certificate in %s is cosigner %d's, cosigner.toml says threshold.id = %d", cfg.Path(t.TLSDir), ctls.ID(), t.ID)
	}
	boot, err := NewBootID()
	if err != nil {
		return nil, err
	}
	epochs := NewEpochGuard(epoch, t.ID, log, opts.Metrics)
	c := &Cosigner{cfg: cfg, log: log, version: opts.Version, identity: identity, tls: ctls, epochs: epochs,
		metrics: opts.Metrics, tracker: opts.Tracker, dups: NewDuplicates(log, opts.Metrics), doppel: opts.Doppel}
	var states []*signstate.SignState
	closeStates := func() {
		for _, s := range states {
			s.Close()
		}
	}
	byChain := map[string]*signstate.SignState{}
	for _, ch := range cfg.Chains {
		st, err := signstate.LoadSignState(signstate.StatePath(cfg.Path(cfg.StateDir), ch.ID), ch.ID)
		if err != nil {
			closeStates()
			return nil, &signstate.LoadError{ChainID: ch.ID, Err: err}
		}
		states = append(states, st)
		byChain[ch.ID] = st
	}
	signers := make([]*ShareSigner, len(srcs))
	for i, src := range srcs {
		var chainStates []*signstate.SignState
		for _, id := range srcChains[src] {
			chainStates = append(chainStates, byChain[id])
		}
		signers[i], err = NewShareSigner(shares[i], NewNoncePool(shares[i], boot, 0), SignerOptions{
			Chains:         chainStates,
			MaxHeightAhead: t.MaxHeightAhead,
			MaxHeightRate:  t.MaxHeightRate,
			SignRawBytes:   rawBytesChains(cfg),
			Metrics:        opts.Metrics,
			Log:            log,
		})
		if err != nil {
			closeStates()
			return nil, err
		}
	}
	if c.keys, err = NewKeyring(signers...); err != nil {
		closeStates()
		return nil, err
	}
	opts.Metrics.SetClusterSource(c.view)

	self, _ := t.Self()
	rcfg := raft.DefaultConfig()
	rcfg.ID = t.ID
	rcfg.DataDir = cfg.Path(t.RaftDir)
	rcfg.BindAddress = self.RaftAddress
	for _, p := range t.Peers {
		rcfg.Peers = append(rcfg.Peers, raft.Peer{ID: p.ID, Address: p.RaftAddress})
	}
	c.lis, err = net.Listen("tcp", self.Address)
	if err != nil {
		return nil, fmt.Errorf("listen for cluster gRPC on %s: %w", self.Address, err)
	}
	// Replicated records are held to the bound this cosigner's shares are:
	// one far above the chain must not become the cluster's last signature.
	// Raft's links carry the epoch in their TLS handshake (epochRaftTLS):
	// a cosigner of another epoch takes no part in elections.
	raftServerTLS, raftClientTLS := epochRaftTLS(epochs.Epoch(), ctls.ServerTLSConfig(), ctls.ClientTLSConfig)
	c.node, err = raft.NewNode(rcfg, raft.Options{ServerTLS: raftServerTLS, ClientTLS: raftClientTLS, Logger: log,
		CheckRecord: c.keys.CheckRecord})
	if err != nil {
		c.lis.Close()
		return nil, err
	}
	c.grpc = grpc.NewServer(serverOptions(ctls.ServerTLSConfig())...)
	c.service = NewService(c.keys, raftControl{c.node}, opts.Version, epochs)
	cosignerv1.RegisterCosignerServer(c.grpc, c.service)

	c.peers = map[int]PeerClient{t.ID: LocalPeer{c.keys}}
	for _, p := range t.Peers {
		if p.ID == t.ID {
			continue
		}
		conn, err := grpc.NewClient(p.Address, clientOptions(ctls.ClientTLSConfig(p.ID))...)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("cosigner %d at %s: %w", p.ID, p.Address, err)
		}
		c.conns = append(c.conns, conn)
		c.peers[p.ID] = NewGRPCPeer(p.ID, conn, epochs)
	}
	return c, nil
}

// Close releases what New opened, for a Cosigner that will not Run (Run
// releases it itself).
func (c *Cosigner) Close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	c.lis.Close()
	c.node.Shutdown()
	c.keys.Close()
}

// raftControl adapts a raft.Node to RaftControl.
type raftControl struct{ n *raft.Node }

func (r raftControl) Leadership() raft.Leadership {
	id, addr := r.n.Leader()
	return raft.Leadership{IsLeader: r.n.IsLeader(), LeaderID: id, LeaderAddress: addr, Term: r.n.View().Term}
}
func (r raftControl) View() raft.View { return r.n.View() }
func (r raftControl) TransferLeadership(ctx context.Context, id int) error {
	return r.n.TransferLeadership(ctx, id)
}

// view is what the cluster gauges show: the coordinator's view of the
// cosigners while this cosigner leads, else its Raft view and own pool.
func (c *Cosigner) view() metrics.ClusterView {
	v := c.node.View()
	cv := metrics.ClusterView{Threshold: c.cfg.Threshold.Threshold, Reachable: -1, Raft: &v, Pools: map[int]int{}}
	if coord := c.Coordinator(); coord != nil && v.Role == raft.RoleLeader {
		cv.Reachable = 0
		healthy := 0
		for _, p := range coord.Peers() {
			if p.Reachable {
				cv.Reachable++
			}
			if p.Healthy {
				healthy++
			}
			cv.Pools[p.ID] = p.Commitments
		}
		cv.Quorum = healthy >= cv.Threshold
		return cv
	}
	cv.Quorum = v.LeaderID != 0
	cv.Pools[c.cfg.Threshold.ID] = c.keys.NoncesAvailable()
	return cv
}

// Ready reports why this cosigner cannot take part in signing now, or nil:
// its Raft must know a leader and, on the leader, a quorum of cosigners
// must be reachable, the doppelganger watch must let every chain sign and
// every configured node must be connected.
func (c *Cosigner) Ready() error {
	v := c.view()
	if v.Raft.LeaderID == 0 {
		return errors.New("no raft leader known (election under way, or this cosigner is cut off)")
	}
	if v.Reachable < 0 {
		return nil
	}
	if !v.Quorum {
		return fmt.Errorf("no quorum: %d of %d cosigners reachable, %d needed", v.Reachable, c.cfg.Threshold.Shares, v.Threshold)
	}
	if coord := c.Coordinator(); coord != nil && coord.cfg.Guard != nil {
		for _, ch := range c.cfg.Chains {
			if err := coord.cfg.Guard.Allow(ch.ID); err != nil {
				return fmt.Errorf("chain %s: %w", ch.ID, err)
			}
		}
	}
	return c.tracker.NodesDown()
}

// TransferLeadership hands leadership to cosigner id when this cosigner
// leads, and returns the leader afterwards. A follower refuses, naming the
// leader and its address: the leader's cluster service accepts a transfer
// only from the leader itself (see Service.TransferLeadership), so the
// command runs on the leader's host.
func (c *Cosigner) TransferLeadership(ctx context.Context, id int) (int, error) {
	t := c.cfg.Threshold
	if id < 1 || id > t.Shares {
		return 0, fmt.Errorf("cosigner %d is not a member: ids are 1 to %d", id, t.Shares)
	}
	leader, _ := c.node.Leader()
	switch {
	case leader == 0:
		return 0, errors.New("no leader known: an election is under way or this cosigner is cut off; retry in a few seconds")
	case leader == id:
		return leader, fmt.Errorf("cosigner %d already leads", id)
	case leader != t.ID:
		addr := "its address is not in cosigner.toml"
		for _, p := range t.Peers {
			if p.ID == leader {
				addr = p.Address
			}
		}
		return leader, fmt.Errorf("cosigner %d does not lead: cosigner %d (%s) does, and only the leader hands leadership over; run 'cosigner leader transfer %d' on cosigner %d's host", t.ID, leader, addr, id, leader)
	}
	if err := c.node.TransferLeadership(ctx, id); err != nil {
		return 0, err
	}
	now, _ := c.node.Leader()
	return now, nil
}

// Coordinator returns the coordinator while this cosigner leads, else nil.
func (c *Cosigner) Coordinator() *Coordinator {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.coord
}

// Epoch returns the epoch of this cosigner's share.
func (c *Cosigner) Epoch() share.Epoch { return c.epochs.Epoch() }

// Node returns the Raft node.
func (c *Cosigner) Node() *raft.Node { return c.node }

// Tracker returns the tracker of node connections and signatures.
func (c *Cosigner) Tracker() *admin.Tracker { return c.tracker }

// Keys returns the share signers, one per validator key.
func (c *Cosigner) Keys() *Keyring { return c.keys }

// Run serves until ctx ends: Raft, the gRPC service, and, whenever this
// cosigner leads, the coordinator and one privval client per configured node.
//
// When ctx ends while this cosigner leads, it first hands Raft leadership to
// another cosigner (for at most 2 s), so a planned stop, such as a rolling
// upgrade, costs the validator no election timeout.
func (c *Cosigner) Run(outer context.Context) error {
	defer c.Close()
	inner, cancel := context.WithCancel(context.WithoutCancel(outer))
	defer cancel()
	g, ctx := errgroup.WithContext(inner)
	g.Go(func() error {
		select {
		case <-outer.Done():
			c.handOver()
			cancel()
		case <-ctx.Done():
		}
		return nil
	})
	g.Go(func() error { return c.node.Run(ctx) })
	g.Go(func() error {
		if err := c.grpc.Serve(c.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("cluster gRPC: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		// The leader's sign streams end first: GracefulStop waits for
		// every stream to end.
		c.service.Stop()
		c.grpc.GracefulStop()
		return nil
	})
	g.Go(func() error { return c.lead(ctx) })
	return g.Wait()
}

// handOver transfers leadership away if this cosigner leads.
func (c *Cosigner) handOver() {
	if !c.node.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if coord := c.Coordinator(); coord != nil {
		// The next leader should know the last signatures, to answer a
		// node's repeated request from them.
		if err := coord.Flush(ctx); err != nil {
			c.log.Warn("stopping: replicating the last signatures failed", "err", err)
		}
	}
	if err := c.node.TransferLeadership(ctx, 0); err != nil {
		c.log.Warn("stopping: leadership transfer failed; the others will elect a leader", "err", err)
		return
	}
	id, _ := c.node.Leader()
	c.log.Info(LogHandedOver, "leader", id)
}

// lead follows leadership changes: on becoming leader it starts a fresh
// coordinator and dials every node; on losing leadership it closes them.
func (c *Cosigner) lead(ctx context.Context) error {
	var (
		stop func()
		wg   sync.WaitGroup
		errc = make(chan error, 1)
	)
	stopLeading := func() {
		if stop == nil {
			return
		}
		stop()
		wg.Wait()
		stop = nil
		c.mu.Lock()
		c.coord = nil
		c.mu.Unlock()
		c.tracker.StopServing()
		c.log.Info(LogStoppedLeading)
	}
	defer stopLeading()
	changes := c.node.LeadershipChanges()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case l, ok := <-changes:
			if !ok {
				return nil
			}
			if l.IsLeader && stop == nil {
				lctx, cancel := context.WithCancel(ctx)
				stop = cancel
				if err := c.startLeading(lctx, &wg, errc); err != nil {
					cancel()
					return err
				}
			} else if !l.IsLeader {
				stopLeading()
			}
		}
	}
}

// watches returns a doppelganger watch for each chain naming rpc
// addresses, for one term as leader. Its mark is the cluster's latest
// signature (the replicated record or this cosigner's own share mark,
// whichever is higher), plus one height for a record still on its way
// through Raft: commits at or below it are the cluster's own. A cluster
// that signed within doppelganger_watch heights of the chain's latest
// height (a leader change) skips the start watch; one that did not (the
// cluster's first start, a start after a long stop) waits
// doppelganger_watch heights before signing.
func (c *Cosigner) watches() (doppel.Guards, []*doppel.Watch) {
	guards := doppel.Guards{}
	var ws []*doppel.Watch
	for _, ch := range c.cfg.Chains {
		addr, _ := hex.DecodeString(keys.Address(c.keys.PublicKey(ch.ID)))
		if len(ch.RPC) == 0 {
			c.log.Warn(doppel.LogOff, "chain", ch.ID, "hint", "list the CometBFT RPC of the chain's nodes in [[chain]] rpc; see docs/operations.md")
			continue
		}
		last, _ := c.node.Last(ch.ID)
		mark, _ := c.keys.Mark(ch.ID)
		m := max(last.Height, mark.Height)
		if m > 0 {
			m++
		}
		w := doppel.New(doppel.NewClient(ch.RPC, ch.ID, rpcTimeout), doppel.Options{
			ChainID: ch.ID, Address: addr, Heights: ch.Watch(), Mark: m, RecentWithin: int64(max(ch.Watch(), 1)),
			RPCDown: ch.RPCDown(), Log: c.log, Metrics: c.doppel,
		})
		guards[ch.ID] = w
		ws = append(ws, w)
	}
	return guards, ws
}

// rpcTimeout bounds each request of the doppelganger watch to a node's RPC.
const rpcTimeout = 5 * time.Second

func (c *Cosigner) startLeading(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) error {
	ccfg := DefaultCoordinatorConfig()
	ccfg.Metrics = c.metrics
	ccfg.Duplicates = c.dups
	ccfg.SignRawBytes = rawBytesChains(c.cfg)
	ccfg.StepDown = func(ctx context.Context) error { return c.node.TransferLeadership(ctx, 0) }
	guards, watches := c.watches()
	ccfg.Guard = guards
	signers := c.keys.Signers()
	ccfg.ChainKeys = map[string]*threshold.GroupKey{}
	for _, ch := range c.cfg.Chains {
		ccfg.ChainKeys[ch.ID] = c.keys.ForChain(ch.ID).share.Group()
	}
	coord, err := NewCoordinator(ccfg, signers[0].share.Group(), c.cfg.Threshold.ID, c.peers, c.node, c.log)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.coord = coord
	c.mu.Unlock()
	for _, ch := range c.cfg.Chains {
		// Heights missed while the cluster had no leader count from the
		// cluster's last signature.
		last, _ := c.node.Last(ch.ID)
		mark, _ := c.keys.Mark(ch.ID)
		c.tracker.ServeNodes(ch.ID, ch.Nodes, max(last.Height, mark.Height))
	}
	c.log.Info(LogLeading, "cosigner", c.cfg.Threshold.ID, "term", c.node.View().Term)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	run(coord.Run)
	for _, w := range watches {
		run(w.Run)
	}
	ncfg := privval.DefaultNodeClientConfig()
	ncfg.Observer = c.tracker
	for _, ch := range c.cfg.Chains {
		for _, addr := range ch.Nodes {
			client, err := privval.NewNodeClient(addr, ch.ID, c.identity, coord, c.log, ncfg)
			if err != nil {
				return err
			}
			run(client.Run)
		}
	}
	return nil
}

// serverOptions are the cluster gRPC server's options, served with cfg.
// Keepalive pings are allowed once a second, idle connections included (the
// clients ping every 5 s). Streams run on a few long-lived worker
// goroutines instead of a new goroutine each: a share RPC's handler goes
// deep (decoding, point checks, the mark, the share), and a fresh
// goroutine's stack grew by copying on every RPC (runtime.copystack, 2.5%
// of a signing follower's CPU profile); a worker keeps its grown stack.
// When every worker is busy gRPC starts a goroutine as before.
func serverOptions(cfg *tls.Config) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(cfg)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.InitialWindowSize(windowSize),
		grpc.InitialConnWindowSize(windowSize),
	}
}

// windowSize is the HTTP/2 flow-control window of every cluster stream and
// connection, both ways. Cluster messages are a few kilobytes, far below
// it. A window set by hand also turns off grpc-go's bandwidth-delay
// estimator, which otherwise answers received data with PING frames and
// window updates: work on both ends of every share RPC for nothing on
// these small messages.
const windowSize = 1 << 20

// clientOptions are the options of a cluster gRPC connection, over cfg:
// keepalive pings every 5 s (idle too, so a dead peer shows before a
// request needs it) and the window of windowSize.
func clientOptions(cfg *tls.Config) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}),
		grpc.WithInitialWindowSize(windowSize),
		grpc.WithInitialConnWindowSize(windowSize),
	}
}
