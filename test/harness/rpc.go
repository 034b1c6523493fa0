package harness

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cometbft/cometbft/types"
)

var rpcClient = &http.Client{Timeout: 5 * time.Second}

// rpcGet calls a CometBFT RPC endpoint over HTTP GET and returns the raw
// "result" member.
func (n *Node) rpcGet(ctx context.Context, path string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.RPCURL()+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := rpcClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("rpc %s: %w: %.200s", path, err, body)
	}
	if env.Error != nil {
		return nil, fmt.Errorf("rpc %s: %s: %s", path, env.Error.Message, env.Error.Data)
	}
	return env.Result, nil
}

// Height returns the node's latest block height from /status.
func (n *Node) Height(ctx context.Context) (int64, error) {
	raw, err := n.rpcGet(ctx, "/status")
	if err != nil {
		return 0, err
	}
	var st struct {
		SyncInfo struct {
			LatestBlockHeight string `json:"latest_block_height"`
		} `json:"sync_info"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return 0, err
	}
	return strconv.ParseInt(st.SyncInfo.LatestBlockHeight, 10, 64)
}

// CommitJSON returns the raw result of /commit?height=h.
func (n *Node) CommitJSON(ctx context.Context, h int64) (json.RawMessage, error) {
	return n.rpcGet(ctx, fmt.Sprintf("/commit?height=%d", h))
}

// EvidenceCount returns the number of evidence items in block h.
func (n *Node) EvidenceCount(ctx context.Context, h int64) (int, error) {
	raw, err := n.rpcGet(ctx, fmt.Sprintf("/block?height=%d", h))
	if err != nil {
		return 0, err
	}
	var b struct {
		Block struct {
			Evidence struct {
				Evidence []json.RawMessage `json:"evidence"`
			} `json:"evidence"`
		} `json:"block"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return 0, fmt.Errorf("parse /block?height=%d: %w", h, err)
	}
	return len(b.Block.Evidence.Evidence), nil
}

// VerifyChain checks blocks from..to: each commit carries a valid precommit
// signature by pub for the committed block, and no block holds evidence. It
// returns the number of commits checked.
func (n *Node) VerifyChain(ctx context.Context, pub ed25519.PublicKey, from, to int64) (int, error) {
	present, absent, err := n.ScanChain(ctx, pub, from, to)
	if err == nil && len(absent) > 0 {
		err = fmt.Errorf("heights %v: %w", absent, ErrNotInCommit)
	}
	return present, err
}

// ScanChain is VerifyChain for chains of several validators, where a late
// precommit may be missing from a commit: it verifies pub's precommit where
// the commit holds one, returns how many did and which heights lack one,
// and fails on a bad signature or any evidence.
func (n *Node) ScanChain(ctx context.Context, pub ed25519.PublicKey, from, to int64) (present int, absent []int64, err error) {
	for h := from; h <= to; h++ {
		raw, err := n.CommitJSON(ctx, h)
		if err != nil {
			return present, absent, err
		}
		switch err := VerifyCommitSignature(raw, n.ChainID, pub); {
		case err == nil:
			present++
		case errors.Is(err, ErrNotInCommit):
			absent = append(absent, h)
		default:
			return present, absent, fmt.Errorf("height %d: %w", h, err)
		}
		ev, err := n.EvidenceCount(ctx, h)
		if err != nil {
			return present, absent, err
		}
		if ev != 0 {
			return present, absent, fmt.Errorf("height %d: block holds %d evidence items", h, ev)
		}
	}
	return present, absent, nil
}

// rpcCommit is the part of /commit's result we need; the JSON is the same
// in 0.34, 0.37, 0.38 and 1.0.
type rpcCommit struct {
	SignedHeader struct {
		Header struct {
			ChainID string `json:"chain_id"`
			Height  string `json:"height"`
		} `json:"header"`
		Commit struct {
			Height  string `json:"height"`
			Round   int32  `json:"round"`
			BlockID struct {
				Hash  string `json:"hash"`
				Parts struct {
					Total uint32 `json:"total"`
					Hash  string `json:"hash"`
				} `json:"parts"`
			} `json:"block_id"`
			Signatures []struct {
				BlockIDFlag      types.BlockIDFlag `json:"block_id_flag"`
				ValidatorAddress string            `json:"validator_address"`
				Timestamp        time.Time         `json:"timestamp"`
				Signature        []byte            `json:"signature"`
			} `json:"signatures"`
		} `json:"commit"`
	} `json:"signed_header"`
}

// ErrNotInCommit is returned by VerifyCommitSignature when the commit holds
// no precommit by the validator for the committed block: in a
// several-validator chain a late precommit may legitimately be missing.
var ErrNotInCommit = errors.New("no precommit for the block in the commit")

// VerifyCommitSignature checks that the /commit result raw holds a precommit
// for the committed block by the validator with public key pub, and that its
// signature verifies over the canonical vote sign bytes, rebuilt with
// CometBFT v0.38.17's types (the canonical vote has not changed from 0.34 to
// 1.0).
func VerifyCommitSignature(raw json.RawMessage, chainID string, pub ed25519.PublicKey) error {
	var rc rpcCommit
	if err := json.Unmarshal(raw, &rc); err != nil {
		return fmt.Errorf("parse commit: %w", err)
	}
	c := rc.SignedHeader.Commit
	if got := rc.SignedHeader.Header.ChainID; got != chainID {
		return fmt.Errorf("commit header has chain id %q, want %q", got, chainID)
	}
	height, err := strconv.ParseInt(c.Height, 10, 64)
	if err != nil {
		return fmt.Errorf("commit height %q: %w", c.Height, err)
	}
	hash, err := hex.DecodeString(c.BlockID.Hash)
	if err != nil {
		return fmt.Errorf("commit block hash %q: %w", c.BlockID.Hash, err)
	}
	partsHash, err := hex.DecodeString(c.BlockID.Parts.Hash)
	if err != nil {
		return fmt.Errorf("commit parts hash %q: %w", c.BlockID.Parts.Hash, err)
	}
	commit := &types.Commit{
		Height: height,
		Round:  c.Round,
		BlockID: types.BlockID{
			Hash:          hash,
			PartSetHeader: types.PartSetHeader{Total: c.BlockID.Parts.Total, Hash: partsHash},
		},
	}
	ours := -1
	addr := Address(pub)
	for i, s := range c.Signatures {
		valAddr, err := hex.DecodeString(s.ValidatorAddress)
		if err != nil && s.ValidatorAddress != "" {
			return fmt.Errorf("commit signature %d: validator address %q: %w", i, s.ValidatorAddress, err)
		}
		commit.Signatures = append(commit.Signatures, types.CommitSig{
			BlockIDFlag:      s.BlockIDFlag,
			ValidatorAddress: valAddr,
			Timestamp:        s.Timestamp,
			Signature:        s.Signature,
		})
		if strings.EqualFold(s.ValidatorAddress, addr) {
			ours = i
		}
	}
	if ours < 0 {
		return fmt.Errorf("commit at height %d: validator %s: %w", height, addr, ErrNotInCommit)
	}
	if f := commit.Signatures[ours].BlockIDFlag; f != types.BlockIDFlagCommit {
		return fmt.Errorf("commit at height %d: our precommit has block id flag %d, want %d (commit): %w", height, f, types.BlockIDFlagCommit, ErrNotInCommit)
	}
	signBytes := commit.VoteSignBytes(chainID, int32(ours))
	if !ed25519.Verify(pub, signBytes, commit.Signatures[ours].Signature) {
		return fmt.Errorf("commit at height %d: our precommit signature does not verify", height)
	}
	return nil
}
