package latency

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// clusterTarget is an m-of-n cluster, cosigner-<m>of<n>, or
// cosigner-<m>of<n>-wan with a positive delay on the links between
// cosigners (see startCluster).
func clusterTarget(m, n int, delay time.Duration) target {
	name := fmt.Sprintf("cosigner-%dof%d", m, n)
	if delay > 0 {
		name += "-wan"
	}
	return target{name: name, m: m, n: n, start: func(tb testing.TB, addr string) started {
		return startThreshold(tb, addr, m, n, delay)
	}}
}

// startThreshold runs an m-of-n cluster for chainID whose leader dials addr,
// and returns once a cosigner leads. A positive delay is added each way on
// every link between cosigners (see startCluster).
func startThreshold(tb testing.TB, addr string, m, n int, delay time.Duration) started {
	pub, c := startCluster(tb, addr, m, n, delay)
	return started{pub: pub, procs: func() []*harness.Process { return current(c) }, cluster: c}
}

// current returns the running process of every member of c.
func current(c *harness.Cluster) []*harness.Process {
	var ps []*harness.Process
	for _, m := range c.Members {
		if m.Running() {
			ps = append(ps, m.Current())
		}
	}
	return ps
}

// startCluster shards a fresh validator key m-of-n with `cosigner shard`,
// initialises every cosigner's sign state at height 0 and starts the n
// `cosigner start` processes on loopback, each with its own gRPC and Raft
// ports and durable state. It logs at info, as deployed. With a positive
// delay, every gRPC and Raft link between two cosigners goes through the
// harness's proxies, which hold each chunk of data for delay in each
// direction: a round trip between cosigners takes 2*delay more, as across a
// WAN; the leader's connection to the node stays direct. It returns once a
// cosigner leads: only the leader dials the node, so the caller's
// WaitForConnection then sees the leader's connection.
func startCluster(tb testing.TB, addr string, m, n int, delay time.Duration) (ed25519.PublicKey, *harness.Cluster) {
	tb.Helper()
	bin := requireCosigner(tb)
	keyFile := filepath.Join(tb.TempDir(), "priv_validator_key.json")
	pub, err := harness.WriteNewValidatorKey(keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	c := harness.NewCluster(tb, harness.ClusterConfig{
		Bin:       bin,
		Threshold: m,
		Shares:    n,
		ChainID:   chainID,
		KeyFile:   keyFile,
		Nodes:     []string{addr},
		Proxies:   delay > 0,
		LogLevel:  "info",
	})
	if delay > 0 {
		c.SetDelay(harness.LinkGRPC, delay)
		c.SetDelay(harness.LinkRaft, delay)
	}
	c.Start()
	flushProfilesAtEnd(tb, fmt.Sprintf("%d-of-%d", m, n), func() []*harness.Process { return current(c) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.WaitLeader(ctx); err != nil {
		tb.Fatalf("%d-of-%d cluster: %v", m, n, err)
	}
	return pub, c
}
