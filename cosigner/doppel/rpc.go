package doppel

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sentinels of the RPC client, for callers that branch.
var (
	// ErrWrongChain: the node serves another chain than the one configured.
	ErrWrongChain = errors.New("rpc serves another chain")
	// ErrHeightBack: the node reports a lower latest height than before.
	ErrHeightBack = errors.New("rpc latest height went back")
	// ErrMalformed: the answer is not what CometBFT sends.
	ErrMalformed = errors.New("malformed rpc answer")
)

// Block id flags of a CommitSig (CometBFT types.BlockIDFlag).
const (
	FlagAbsent = 1
	FlagCommit = 2
	FlagNil    = 3
)

// Commit is the part of /commit?height=H cosigner reads: which validators
// precommitted in the commit's round, for which block.
type Commit struct {
	Height int64
	Round  int32
	// BlockHash is the committed block's hash.
	BlockHash []byte
	Sigs      []CommitSig
}

// CommitSig is one validator's entry in a commit.
type CommitSig struct {
	// Address is the validator's address (20 bytes, keys.Address).
	Address []byte
	// Flag is FlagAbsent, FlagCommit (a precommit for BlockHash) or
	// FlagNil (a precommit for nil).
	Flag int
	// Signature is the precommit's signature (64 bytes; empty when
	// absent).
	Signature []byte
}

// Find returns our entry in c with a flag other than absent, if any.
func (c *Commit) Find(addr []byte) (CommitSig, bool) {
	for _, s := range c.Sigs {
		if s.Flag != FlagAbsent && bytes.Equal(s.Address, addr) {
			return s, true
		}
	}
	return CommitSig{}, false
}

// Client reads /status and /commit from CometBFT RPC addresses, trying
// each in order, and checks every answer strictly: another chain id,
// a latest height lower than one seen before (per address) and malformed
// answers are errors. It is safe for concurrent use.
type Client struct {
	addrs   []string
	chainID string
	http    *http.Client

	// mu guards last, the highest latest height each address reported.
	mu   sync.Mutex
	last map[string]int64
}

// NewClient returns a Client for the RPC addresses addrs of chainID;
// each request is bounded by timeout.
func NewClient(addrs []string, chainID string, timeout time.Duration) *Client {
	return &Client{addrs: addrs, chainID: chainID, http: &http.Client{Timeout: timeout}, last: map[string]int64{}}
}

// Latest returns the latest block height of the first address that
// answers correctly. Another chain id is returned at once (a configuration
// error, whichever address says it); other failures go on to the next
// address and are all returned if none answers.
func (c *Client) Latest(ctx context.Context) (int64, error) {
	var errs []error
	for _, a := range c.addrs {
		h, err := c.status(ctx, a)
		if errors.Is(err, ErrWrongChain) {
			return 0, err
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return h, nil
	}
	return 0, errors.Join(errs...)
}

func (c *Client) status(ctx context.Context, addr string) (int64, error) {
	var st struct {
		NodeInfo struct {
			Network string `json:"network"`
		} `json:"node_info"`
		SyncInfo struct {
			LatestBlockHeight string `json:"latest_block_height"`
			CatchingUp        bool   `json:"catching_up"`
		} `json:"sync_info"`
	}
	if err := c.get(ctx, addr, "/status", &st); err != nil {
		return 0, err
	}
	if st.NodeInfo.Network != c.chainID {
		return 0, fmt.Errorf("%s/status: network %q, want %q: point rpc at a node of chain %s: %w", addr, st.NodeInfo.Network, c.chainID, c.chainID, ErrWrongChain)
	}
	h, err := strconv.ParseInt(st.SyncInfo.LatestBlockHeight, 10, 64)
	if err != nil || h < 1 {
		return 0, fmt.Errorf("%s/status: latest_block_height %q: %w", addr, st.SyncInfo.LatestBlockHeight, ErrMalformed)
	}
	if st.SyncInfo.CatchingUp {
		return 0, fmt.Errorf("%s/status: node is catching up (at height %d): its commits are not the chain's latest", addr, h)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if last := c.last[addr]; h < last {
		return 0, fmt.Errorf("%s/status: latest height %d after %d: %w", addr, h, last, ErrHeightBack)
	}
	c.last[addr] = h
	return h, nil
}

// Commit returns the commit of height h from the first address that
// answers correctly.
func (c *Client) Commit(ctx context.Context, h int64) (*Commit, error) {
	var errs []error
	for _, a := range c.addrs {
		cm, err := c.commit(ctx, a, h)
		if errors.Is(err, ErrWrongChain) {
			return nil, err
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		return cm, nil
	}
	return nil, errors.Join(errs...)
}

// rpcCommit is /commit's result as CometBFT 0.34 to 1.0 encode it:
// int64 as strings, block_id_flag as a number, addresses and hashes in
// hex.
type rpcCommit struct {
	SignedHeader struct {
		Header struct {
			ChainID string `json:"chain_id"`
			Height  string `json:"height"`
		} `json:"header"`
		Commit *struct {
			Height  string `json:"height"`
			Round   int32  `json:"round"`
			BlockID struct {
				Hash string `json:"hash"`
			} `json:"block_id"`
			Signatures []struct {
				BlockIDFlag      int    `json:"block_id_flag"`
				ValidatorAddress string `json:"validator_address"`
				Signature        []byte `json:"signature"`
			} `json:"signatures"`
		} `json:"commit"`
	} `json:"signed_header"`
}

func (c *Client) commit(ctx context.Context, addr string, h int64) (*Commit, error) {
	where := fmt.Sprintf("%s/commit?height=%d", addr, h)
	var rc rpcCommit
	if err := c.get(ctx, addr, fmt.Sprintf("/commit?height=%d", h), &rc); err != nil {
		return nil, err
	}
	hdr := rc.SignedHeader.Header
	if hdr.ChainID != c.chainID {
		return nil, fmt.Errorf("%s: chain_id %q, want %q: %w", where, hdr.ChainID, c.chainID, ErrWrongChain)
	}
	cm := rc.SignedHeader.Commit
	if cm == nil {
		return nil, fmt.Errorf("%s: no commit: %w", where, ErrMalformed)
	}
	if hdr.Height != strconv.FormatInt(h, 10) || cm.Height != hdr.Height {
		return nil, fmt.Errorf("%s: header height %q, commit height %q: %w", where, hdr.Height, cm.Height, ErrMalformed)
	}
	hash, err := hex.DecodeString(cm.BlockID.Hash)
	if err != nil || len(hash) != 32 || cm.Round < 0 {
		return nil, fmt.Errorf("%s: block_id.hash %q, round %d: %w", where, cm.BlockID.Hash, cm.Round, ErrMalformed)
	}
	if len(cm.Signatures) == 0 {
		return nil, fmt.Errorf("%s: no signatures: %w", where, ErrMalformed)
	}
	out := &Commit{Height: h, Round: cm.Round, BlockHash: hash}
	for i, s := range cm.Signatures {
		switch s.BlockIDFlag {
		case FlagAbsent:
			out.Sigs = append(out.Sigs, CommitSig{Flag: FlagAbsent})
			continue
		case FlagCommit, FlagNil:
		default:
			return nil, fmt.Errorf("%s: signatures[%d].block_id_flag = %d: %w", where, i, s.BlockIDFlag, ErrMalformed)
		}
		a, err := hex.DecodeString(s.ValidatorAddress)
		if err != nil || len(a) != 20 {
			return nil, fmt.Errorf("%s: signatures[%d].validator_address %q: %w", where, i, s.ValidatorAddress, ErrMalformed)
		}
		if len(s.Signature) != 64 {
			return nil, fmt.Errorf("%s: signatures[%d].signature is %d bytes, want 64: %w", where, i, len(s.Signature), ErrMalformed)
		}
		out.Sigs = append(out.Sigs, CommitSig{Address: a, Flag: s.BlockIDFlag, Signature: s.Signature})
	}
	return out, nil
}

// get calls GET addr+path and decodes the JSON-RPC result into v.
func (c *Client) get(ctx context.Context, addr, path string, v any) error {
	url := strings.TrimSuffix(addr, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("rpc %s: %w", url, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("rpc %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("rpc %s: %w", url, err)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("rpc %s: HTTP %d: %.120q: %w", url, resp.StatusCode, body, ErrMalformed)
	}
	if env.Error != nil {
		return fmt.Errorf("rpc %s: %s: %s", url, env.Error.Message, env.Error.Data)
	}
	if len(env.Result) == 0 {
		return fmt.Errorf("rpc %s: HTTP %d, no result: %w", url, resp.StatusCode, ErrMalformed)
	}
	if err := json.Unmarshal(env.Result, v); err != nil {
		return fmt.Errorf("rpc %s: %v: %w", url, err, ErrMalformed)
	}
	return nil
}
