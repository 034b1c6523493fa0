package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/privval"
)

// allowRawBytes sets sign_raw_bytes for testChain on the share signers of
// the given ids, as their configuration would, before they serve requests.
func allowRawBytes(tc *testCluster, ids ...int) {
	for _, id := range ids {
		tc.signers[id-1].opts.SignRawBytes = map[string]bool{testChain: true}
	}
}

func rawRequest(t *testing.T, chainID string, raw string) *privval.RawBytesRequest {
	t.Helper()
	sb, err := privval.RawBytesSignBytes(chainID, "blob", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &privval.RawBytesRequest{ChainID: chainID, UniqueID: "blob", RawBytes: []byte(raw), SignBytes: sb}
}

// TestCoordinatorSignsRawBytes: raw bytes are signed by M cosigners with
// the group key, no cosigner's mark moves, the leader records and
// replicates nothing, and votes sign on as before. Cosigners that have not
// opted in refuse their share; the leader signs with the others, or not
// at all.
func TestCoordinatorSignsRawBytes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		leader  bool // the leader's sign_raw_bytes
		allowed []int
		wantErr string
	}{
		{"every cosigner", true, []int{1, 2, 3}, ""},
		{"a quorum", true, []int{1, 3}, ""},
		{"too few cosigners", true, []int{1}, "sign_raw_bytes = true"},
		{"not on the leader", false, []int{1, 2, 3}, "sign_raw_bytes = true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClusterOpts(t, 2, 3, testClusterOptions{Configure: func(cfg *CoordinatorConfig) {
				if tc.leader {
					cfg.SignRawBytes = map[string]bool{testChain: true}
				}
			}})
			allowRawBytes(c, tc.allowed...)
			pub := c.key.Public().(ed25519.PublicKey)
			marks := make([]signstate.Mark, len(c.signers))
			for i, s := range c.signers {
				marks[i], _ = s.Mark(testChain)
			}
			req := rawRequest(t, testChain, "application bytes")
			sig, err := c.coord.SignRawBytes(ctx, req)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, privval.ErrRawBytesDisabled) {
					t.Fatalf("SignRawBytes = %x, %v; want ErrRawBytesDisabled with %q", sig, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !ed25519.Verify(pub, req.SignBytes, sig) {
				t.Fatal("raw bytes signature does not verify under the group key")
			}
			for i, s := range c.signers {
				if m, _ := s.Mark(testChain); m.Height != marks[i].Height || m.Round != marks[i].Round || m.Step != marks[i].Step {
					t.Fatalf("cosigner %d mark moved from %+v to %+v", i+1, marks[i], m)
				}
			}
			if rec, ok := c.coord.lastRecord(testChain); ok {
				t.Fatalf("the leader recorded %+v for raw bytes", rec)
			}
			// Raw bytes again (no duplicate check), then a vote.
			if _, err := c.coord.SignRawBytes(ctx, rawRequest(t, testChain, "other bytes")); err != nil {
				t.Fatal(err)
			}
			v := vote(2, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0).UTC())
			res, err := c.coord.Sign(ctx, v)
			if err != nil || !ed25519.Verify(pub, v.SignBytes, res.Signature) {
				t.Fatalf("vote after raw bytes: %v", err)
			}
		})
	}
}

// TestShareSignerRawBytesRefusals: a cosigner checks a raw-bytes share
// request from its sign bytes, never from the leader's labels.
func TestShareSignerRawBytesRefusals(t *testing.T) {
	tc := newTestCluster(t, 2, 3)
	allowRawBytes(tc, 2)
	s1, s2 := tc.signers[0], tc.signers[1]
	raw := rawRequest(t, testChain, "application bytes").SignBytes
	voteBytes := vote(5, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0).UTC()).SignBytes
	msg := func(kind ShareKind, h int64, sb []byte) ShareMessage {
		c1, _ := s1.Pool().Generate(1)
		c2, _ := s2.Pool().Generate(1)
		return ShareMessage{Kind: kind, Height: h, SignBytes: sb, Commitments: []PublishedCommitment{c1[0], c2[0]}}
	}
	tests := []struct {
		name    string
		signer  *ShareSigner
		req     *ShareRequest
		wantErr string
	}{
		{"vote sign bytes labelled raw", s2, &ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindRawBytes, 0, voteBytes)}}, "do not begin with"},
		{"raw bytes labelled prevote", s2, &ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindPrevote, 5, raw)}}, "message 0"},
		{"raw bytes with a height", s2, &ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindRawBytes, 5, raw)}}, "neither"},
		{"another chain's raw bytes", s2, &ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindRawBytes, 0, rawRequest(t, "other", "x").SignBytes)}}, `chain "other"`},
		{"two messages", s2, &ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindRawBytes, 0, raw), msg(KindRawBytes, 0, raw)}}, "alone"},
		{"not opted in", s1, &ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindRawBytes, 0, raw)}}, "sign_raw_bytes = true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			shares, err := tt.signer.Sign(tt.req)
			var r *signstate.Refusal
			if !errors.As(err, &r) || r.Reason != signstate.RefusedInvalidRequest || !strings.Contains(err.Error(), tt.wantErr) || shares != nil {
				t.Fatalf("Sign = %v, %v; want an invalid-request refusal with %q", shares, err, tt.wantErr)
			}
		})
	}
	// The same request, well formed, is signed, and the mark stays.
	before, _ := s2.Mark(testChain)
	if _, err := s2.Sign(&ShareRequest{ChainID: testChain, Messages: []ShareMessage{msg(KindRawBytes, 0, raw)}}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s2.Mark(testChain); after.Height != before.Height || after.Step != before.Step {
		t.Fatalf("mark moved from %+v to %+v", before, after)
	}
}

// TestRawBytesOverGRPC: the raw-bytes kind crosses the Cosigner service:
// with cosigners 1 (the leader, in process) and 2 (over gRPC) opted in and
// 3 not, the signature needs cosigner 2's share.
func TestRawBytesOverGRPC(t *testing.T) {
	gc := newGRPCCluster(t, 2, 3)
	gc.coord.cfg.SignRawBytes = map[string]bool{testChain: true}
	for _, s := range gc.shares[:2] {
		s.opts.SignRawBytes = map[string]bool{testChain: true}
	}
	req := rawRequest(t, testChain, "application bytes")
	sig, err := gc.coord.SignRawBytes(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(gc.key.Public().(ed25519.PublicKey), req.SignBytes, sig) {
		t.Fatal("raw bytes signature does not verify under the group key")
	}
	if m, _ := gc.shares[1].Mark(testChain); m.Height != 1 || m.Step != 0 {
		t.Fatalf("cosigner 2's mark moved to %+v", m)
	}
}
