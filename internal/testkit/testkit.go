// Package testkit is what the tests of several cosigner packages share:
// a test chain id and key, a quiet logger, sign requests built with
// CometBFT's own sign-bytes functions, and a YubiHSM2 simulator. Only tests
// import it.
//
// It imports nothing from cosigner/, so every package's internal tests can
// use it without an import cycle.
package testkit

import (
	"crypto/ed25519"
	"io"
	"log/slog"
	"testing"
	"time"

	cmtproto "github.com/cometbft/cometbft/proto/tendermint/types"
	"github.com/cometbft/cometbft/types"

	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

// Chain is the chain id of test requests.
const Chain = "test-chain"

// Key is a fixed test key (never a real validator's).
var Key = ed25519.NewKeyFromSeed([]byte("cosigner-test-seed-32-bytes-long"))

// Log discards everything.
var Log = slog.New(slog.NewTextHandler(io.Discard, nil))

// T0 is the timestamp tests build requests at.
var T0 = time.Unix(1700000000, 0).UTC()

// BlockID returns a block id whose hash starts with block ("" is nil).
func BlockID(block string) cmtproto.BlockID {
	if block == "" {
		return cmtproto.BlockID{}
	}
	hash := make([]byte, 32)
	copy(hash, block)
	part := make([]byte, 32)
	copy(part, "parts")
	return cmtproto.BlockID{Hash: hash, PartSetHeader: cmtproto.PartSetHeader{Total: 1, Hash: part}}
}

// Vote builds a sign request of Chain for a vote (or, with
// privval.StepProposal, a proposal) with CometBFT's own sign bytes.
func Vote(h int64, r int32, step privval.Step, block string, ts time.Time) *privval.SignRequest {
	return VoteOf(Chain, h, r, step, block, ts)
}

// VoteOf is Vote for chainID.
func VoteOf(chainID string, h int64, r int32, step privval.Step, block string, ts time.Time) *privval.SignRequest {
	bid := BlockID(block)
	req := &privval.SignRequest{ChainID: chainID, Step: step, Height: h, Round: r, Timestamp: ts, BlockID: bid.Hash}
	if step == privval.StepProposal {
		req.SignBytes = types.ProposalSignBytes(chainID, &cmtproto.Proposal{
			Type: cmtproto.ProposalType, Height: h, Round: r, PolRound: -1, BlockID: bid, Timestamp: ts})
		return req
	}
	typ := cmtproto.PrevoteType
	if step == privval.StepPrecommit {
		typ = cmtproto.PrecommitType
	}
	req.SignBytes = types.VoteSignBytes(chainID, &cmtproto.Vote{Type: typ, Height: h, Round: r, BlockID: bid, Timestamp: ts})
	return req
}

// PrecommitWithExt is a precommit for block with the vote extension "ext".
func PrecommitWithExt(h int64, r int32, block string, ts time.Time) *privval.SignRequest {
	req := Vote(h, r, privval.StepPrecommit, block, ts)
	req.ExtSignBytes = types.VoteExtensionSignBytes(Chain, &cmtproto.Vote{Type: cmtproto.PrecommitType, Height: h, Round: r, Extension: []byte("ext")})
	return req
}

// WireVote is a vote as the node sends it over privval, timestamped
// T0 + h seconds.
func WireVote(typ privval.SignedMsgType, h int64, block string) *privval.Vote {
	v := &privval.Vote{Type: typ, Height: h, Timestamp: time.Unix(1700000000+h, 0).UTC()}
	if block != "" {
		bid := BlockID(block)
		v.BlockID = privval.BlockID{Hash: bid.Hash, PartSetHeader: privval.PartSetHeader{Total: 1, Hash: bid.PartSetHeader.Hash}}
	}
	return v
}

// Sim runs a YubiHSM2 simulator for the test.
func Sim(t testing.TB) *yubihsmsim.Sim {
	t.Helper()
	sim, err := yubihsmsim.New(yubihsmsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}
