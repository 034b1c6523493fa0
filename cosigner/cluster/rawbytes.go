package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/threshold"
)

// Celestia's raw-bytes signing in threshold mode.
//
// A raw-bytes request (privval.RawBytesRequest) is signed like a vote, by M
// cosigners' shares over its sign bytes, but outside the sign-state rules:
// it has no height, round or step, so the coordinator does not consult the
// cluster's last record (no signstate.Decide) nor replicate one, and no
// cosigner's mark moves. Every cosigner checks for itself, from the sign
// bytes, that they are privval.RawBytesSignBytes of a request of the
// share request's chain, and that the chain has sign_raw_bytes = true in
// its own configuration: a leader cannot have a vote, proposal or
// extension signed as raw bytes, and such bytes never parse as one
// (privval.RawBytesSignBytes gives the argument).

// KindRawBytes is a raw-bytes message: alone in its share request, with
// height and round 0.
const KindRawBytes ShareKind = 5

// rawBytesStep labels a raw-bytes request inside the coordinator, whose
// share rounds take a privval.SignRequest: it maps to KindRawBytes in the
// share request and is above no mark a cosigner reports.
const rawBytesStep = privval.Step(KindRawBytes)

// signRawBytes checks a raw-bytes share request and returns this
// cosigner's share of it. No mark moves and nothing is written.
func (s *ShareSigner) signRawBytes(req *ShareRequest, nonces []*threshold.Nonce) ([]threshold.SignatureShare, error) {
	if len(req.Messages) != 1 {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "%d messages: a raw bytes request is alone in its share request", len(req.Messages))
	}
	m := req.Messages[0]
	if m.Height != 0 || m.Round != 0 {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "raw bytes labelled height %d round %d: raw bytes have neither", m.Height, m.Round)
	}
	p, err := privval.ParseRawBytesSignBytes(m.SignBytes)
	if err != nil {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "message 0: %v", err)
	}
	if p.ChainID != req.ChainID {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "raw bytes of chain %q in a request for chain %q", p.ChainID, req.ChainID)
	}
	if !s.opts.SignRawBytes[req.ChainID] {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "chain %q: %w: set sign_raw_bytes = true in its [[chain]] section on every cosigner",
			req.ChainID, privval.ErrRawBytesDisabled)
	}
	pkg := req.Packages
	if len(pkg) != 1 || pkg[0] == nil {
		commits := make([]threshold.Commitment, len(m.Commitments))
		for j, c := range m.Commitments {
			commits[j] = c.Commitment
		}
		one, err := threshold.NewSigningPackage(s.share.Group(), m.SignBytes, commits)
		if err != nil {
			return nil, s.refuse(signstate.RefusedInvalidRequest, "message 0: %v", err)
		}
		pkg = []*threshold.SigningPackage{one}
	}
	shares, err := threshold.SignShares(s.share, nonces, pkg)
	if err != nil {
		return nil, s.refuse(signstate.RefusedInvalidRequest, "%v", err)
	}
	s.opts.Log.Debug(LogReleasedShare, "chain", req.ChainID, "raw_bytes", len(p.RawBytes), "unique_id", p.UniqueID)
	return shares, nil
}

var _ privval.RawBytesSigner = (*Coordinator)(nil)

// SignRawBytes signs a raw-bytes request with M cosigners, if the chain has
// sign_raw_bytes = true here (each cosigner checks its own configuration
// too). It skips the duplicate and conflict checks against the cluster's
// last record and replicates nothing: raw bytes have no height, round or
// step.
func (c *Coordinator) SignRawBytes(ctx context.Context, req *privval.RawBytesRequest) ([]byte, error) {
	if !c.cfg.SignRawBytes[req.ChainID] {
		return nil, fmt.Errorf("chain %q: %w: set sign_raw_bytes = true in its [[chain]] section on every cosigner",
			req.ChainID, privval.ErrRawBytesDisabled)
	}
	if _, err := privval.ParseRawBytesSignBytes(req.SignBytes); err != nil {
		return nil, err
	}
	c.signMu.Lock()
	defer c.signMu.Unlock()
	deadline := c.cfg.Deadline
	if d, ok := ctx.Deadline(); ok && time.Until(d) < deadline {
		deadline = time.Until(d)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	sreq := &privval.SignRequest{ChainID: req.ChainID, Step: rawBytesStep, SignBytes: req.SignBytes}
	sigs, err := c.gather(ctx, sreq, [][]byte{req.SignBytes})
	defer c.nudge()
	if err != nil {
		return nil, err
	}
	return sigs[0], nil
}

// rawBytesChains returns the chain ids of cfg with sign_raw_bytes = true.
func rawBytesChains(cfg *config.Config) map[string]bool {
	raw := map[string]bool{}
	for _, ch := range cfg.Chains {
		if ch.SignRawBytes {
			raw[ch.ID] = true
		}
	}
	return raw
}
