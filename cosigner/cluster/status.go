package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/cosigner/cosigner/cosigner/admin"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/keys"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/raft"
)

var _ admin.Backend = (*Cosigner)(nil)

// Status implements admin.Backend.
func (c *Cosigner) Status(ctx context.Context) admin.Status {
	t := c.cfg.Threshold
	v := c.node.View()
	st := admin.Status{Mode: config.ModeThreshold, Version: c.version, ID: t.ID, Role: v.Role.String(), LeaderID: v.LeaderID, Term: v.Term,
		NoncePool: c.keys.NoncesAvailable(), Epoch: c.Epoch().Number, Group: c.Epoch().Short()}
	st.SetShape(t.Threshold, t.Shares)
	addr := map[int]string{}
	for _, p := range t.Peers {
		addr[p.ID] = p.Address
	}
	if coord := c.Coordinator(); coord != nil && v.Role == raft.RoleLeader {
		st.PeersView = "leader"
		healthy := 0
		for _, p := range coord.Peers() {
			st.Peers = append(st.Peers, admin.PeerReport{ID: p.ID, Address: addr[p.ID], Self: p.ID == t.ID, Reachable: p.Reachable,
				RTTMillis: admin.Millis(p.PingRTT), ShareRTTMillis: admin.Millis(p.RTT), Commitments: p.Commitments, Error: p.LastError})
			if p.Healthy {
				healthy++
			}
		}
		st.Quorum = healthy >= t.Threshold
	} else {
		st.PeersView = "ping"
		st.Peers = c.pingPeers(ctx, addr)
		reachable := 0
		for _, p := range st.Peers {
			if p.Reachable {
				reachable++
			}
		}
		st.Quorum = v.LeaderID != 0 && reachable >= t.Threshold
	}
	if err := c.Ready(); err != nil {
		st.NotReady = err.Error()
	} else {
		st.Ready = true
	}
	activity := map[string]admin.ChainActivity{}
	for _, a := range c.tracker.Activity() {
		activity[a.ChainID] = a
	}
	for _, ch := range c.cfg.Chains {
		a, mine := activity[ch.ID]
		mine = mine && !a.SignedAt.IsZero()
		r, replicated := c.node.Last(ch.ID)
		// A cosigner that led earlier keeps its own last signature; the
		// cluster's record is newer once another leads.
		if mine && replicated && signstate.Above(r.Height, r.Round, privval.Step(r.Step), a.Height, a.Round, a.Step) {
			mine = false
		}
		if mine {
			st.Chains = append(st.Chains, admin.NewChainReport(ch.ID, a.Height, a.Round, a.Step, a.SignedAt, "this process"))
		} else if replicated {
			st.Chains = append(st.Chains, admin.NewChainReport(ch.ID, r.Height, r.Round, privval.Step(r.Step), r.Timestamp, "cluster"))
		} else if m, ok := c.keys.Mark(ch.ID); ok {
			st.Chains = append(st.Chains, admin.NewChainReport(ch.ID, m.Height, m.Round, m.Step, time.Time{}, "state"))
		}
	}
	for i := range st.Chains {
		if ch, ok := c.cfg.Chain(st.Chains[i].ID); ok {
			info := keys.DescribePubKey(c.keys.PublicKey(ch.ID), ch.Prefix())
			st.Chains[i].Address, st.Chains[i].PubKey = info.Address, info.Bech32
		}
		if limit, ok := c.keys.HeightLimit(st.Chains[i].ID); ok {
			st.Chains[i].MaxHeight = &limit
		}
	}
	st.Nodes = c.tracker.NodeReports()
	return st
}

// pingPeers pings every other cosigner over the cluster service, in
// parallel, for at most a second.
func (c *Cosigner) pingPeers(ctx context.Context, addr map[int]string) []admin.PeerReport {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	out := make([]admin.PeerReport, c.cfg.Threshold.Shares)
	var wg sync.WaitGroup
	for i := range out {
		id := i + 1
		out[i] = admin.PeerReport{ID: id, Address: addr[id]}
		if id == c.cfg.Threshold.ID {
			out[i].Self, out[i].Reachable = true, true
			out[i].Role = c.node.View().Role.String()
			continue
		}
		p, ok := c.peers[id].(*GRPCPeer)
		if !ok {
			continue
		}
		wg.Go(func() {
			resp, rtt, err := p.Ping(ctx)
			if err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Reachable, out[i].RTTMillis = true, admin.Millis(rtt)
			out[i].Role = raft.Role(resp.GetRaft().GetRole()).String()
		})
	}
	wg.Wait()
	return out
}
