package latency

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosigner/cosigner/raft"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	cmtprivval "github.com/cometbft/cometbft/privval"
	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/cosigner/cosigner/test/harness"
)

// pace is how often the failover test's node sends a prevote, a height
// each: well above a cluster's signing time, so requests never queue.
const pace = 50 * time.Millisecond

// served is the outcome of one paced prevote.
type served struct {
	height    int64
	sent, got time.Time // request written, reply (or error) read
	err       error
	invalid   bool // a signature came back that does not verify
}

// pacer sends a prevote at the next height every interval until ctx ends,
// verifies each signature with crypto/ed25519 and reports every outcome on
// out. A request that blocks (the node waits up to 3 s for a signer to
// connect) swallows the ticks it overlaps.
func pacer(ctx context.Context, client *cmtprivval.SignerClient, pub ed25519.PublicKey, interval time.Duration, out chan<- served) {
	valAddr := cmted25519.PubKey(pub).Address()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for h := int64(1); ; h++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v := &cmtproto.Vote{
			Type:             cmtproto.PrevoteType,
			Height:           h,
			BlockID:          cmtproto.BlockID{Hash: hash(h, 1), PartSetHeader: cmtproto.PartSetHeader{Total: 1, Hash: hash(h, 2)}},
			Timestamp:        time.Now().UTC(),
			ValidatorAddress: valAddr,
		}
		r := served{height: h, sent: time.Now()}
		r.err = client.SignVote(chainID, v)
		r.got = time.Now()
		r.invalid = r.err == nil && !ed25519.Verify(pub, types.VoteSignBytes(chainID, v), v.Signature)
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
	}
}

// settle is how many signatures in a row a cluster serves before a trial
// kills its leader.
const settle = 20

// TestLatencyFailover measures, on a 2-of-3 cluster, the time from
// SIGKILLing the leader to the next signature the node receives, while the
// node sends a prevote every 50 ms at increasing heights. Between trials the
// killed cosigner is restarted on its intact home and the test waits until
// it follows the new leader. COSIGNER_FAILOVER_TRIALS sets the number of
// trials (default 20). Its name starts with TestLatency so that `make
// bench` (-run Latency) runs it.
func TestLatencyFailover(t *testing.T) {
	if os.Getenv("COSIGNER_LATENCY") == "" {
		t.Skip("set COSIGNER_LATENCY=1 to measure failover")
	}
	trials := intFromEnv(t, "COSIGNER_FAILOVER_TRIALS", 20)
	addr, client := fakeNode(t)
	pub, c := startCluster(t, addr, 2, 3, 0)
	if err := client.WaitForConnection(30 * time.Second); err != nil {
		t.Fatalf("2-of-3 cluster did not connect: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	results := make(chan served, 1024)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pacer(ctx, client, pub, pace, results)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	// next returns the next outcome, failing the test after a minute
	// without one or on a signature that does not verify.
	next := func() served {
		t.Helper()
		timer := time.NewTimer(time.Minute)
		defer timer.Stop()
		select {
		case r := <-results:
			if r.invalid {
				t.Fatalf("prevote %d: signature does not verify", r.height)
			}
			return r
		case <-timer.C:
			t.Fatal("no reply to a paced prevote for a minute")
			return served{}
		}
	}

	var (
		failovers []time.Duration
		failed    int // requests that failed during the trials
		lines     []string
		moved     int      // trials started again because the lead moved
		errKinds  []string // the node's errors, ports masked, each once
	)
	for trial := 1; trial <= trials; trial++ {
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		leader, err := c.WaitLeader(wctx)
		wcancel()
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		for ok := 0; ok < settle; {
			if r := next(); r.err == nil {
				ok++
			} else {
				ok = 0
			}
		}
		// Whoever leads now served the settle signatures; take the log's
		// word for it only if a later election has not moved the lead.
		if l := c.Leader(); l != leader {
			if moved++; moved > 5 {
				t.Fatalf("trial %d: leadership keeps moving without a kill", trial)
			}
			t.Logf("trial %d: leadership moved from cosigner %d while settling; starting the trial again", trial, leader.ID)
			trial--
			continue
		}

		killed := time.Now()
		leader.Kill()
		// Only a request the killed leader did not serve ends the
		// failover; its own records are complete once it has exited.
		old := map[int64]bool{}
		for _, r := range leader.Records() {
			if r.Step == "prevote" && !r.Share {
				old[r.Height] = true
			}
		}
		var errs []string
		var r served
		for {
			r = next()
			if r.err != nil {
				errs = append(errs, r.err.Error())
				continue
			}
			if !old[r.height] {
				break
			}
		}
		d := r.got.Sub(killed)
		failovers = append(failovers, d)
		failed += len(errs)
		newID, elected := 0, "?"
		if l := c.Leader(); l != nil {
			newID = l.ID
			if at, ok := leadingSince(l.Current(), killed); ok {
				elected = at.Sub(killed).Round(time.Millisecond).String()
			}
		}
		lines = append(lines, fmt.Sprintf("trial %2d: killed cosigner %d; cosigner %d led after %s, served height %d after %v; %d requests failed",
			trial, leader.ID, newID, elected, r.height, d.Round(time.Millisecond), len(errs)))
		for _, e := range errs {
			e = loopbackPort.ReplaceAllString(e, "127.0.0.1:*")
			if !slices.Contains(errKinds, e) {
				errKinds = append(errKinds, e)
			}
		}

		// Restart the killed cosigner on its intact home and wait until
		// it follows the new leader.
		p := leader.Start()
		wctx, wcancel = context.WithTimeout(ctx, time.Minute)
		_, _, err = p.WaitLine(wctx, 0, followsLeader)
		wcancel()
		if err != nil {
			t.Fatalf("trial %d: restarted cosigner %d: %v", trial, leader.ID, err)
		}
	}

	s := summarise(slices.Clone(failovers))
	var b strings.Builder
	fmt.Fprintf(&b, "leader SIGKILL -> next signature the node receives, 2-of-3, a prevote every %v, %d trials, %d requests failed in all:\n", pace, len(failovers), failed)
	for _, l := range lines {
		fmt.Fprintln(&b, l)
	}
	fmt.Fprintf(&b, "the node's errors: %s\n", strings.Join(errKinds, "; "))
	fmt.Fprintf(&b, "failover p50=%v p90=%v p99=%v max=%v\n", s.P50.Round(time.Millisecond), s.P90.Round(time.Millisecond),
		s.P99.Round(time.Millisecond), s.Max.Round(time.Millisecond))
	t.Log(b.String())
}

// leadingSince returns the time p logged that it took the lead, if it did
// after since.
func leadingSince(p *harness.Process, since time.Time) (time.Time, bool) {
	for _, line := range slices.Backward(p.Lines()) {
		if !harness.IsLeadingLine(line) {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, harness.ParseSlogText(line)["time"])
		if err == nil && at.After(since) {
			return at, true
		}
		return time.Time{}, false
	}
	return time.Time{}, false
}

// loopbackPort masks ports in the node's error messages.
var loopbackPort = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// followsLeader matches the Raft log line of a cosigner that has heard from
// a leader other than itself.
func followsLeader(line string) bool {
	if !strings.Contains(line, harness.Msg(raft.LogLeadership)) {
		return false
	}
	a := harness.ParseSlogText(line)
	return a["is_leader"] == "false" && a["leader"] != "" && a["leader"] != "0"
}

// intFromEnv reads a positive integer from the environment variable name,
// or returns def when it is unset.
func intFromEnv(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}
