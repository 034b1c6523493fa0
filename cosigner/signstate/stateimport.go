package signstate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/cosigner/cosigner/privval"
)

// flexInt accepts a JSON integer or a string holding one: CometBFT writes
// heights as strings, TMKMS writes heights and rounds as strings, and both
// write other fields as numbers.
type flexInt struct {
	v   int64
	set bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not an integer", b)
	}
	f.v, f.set = v, true
	return nil
}

type foreignState struct {
	Height    flexInt `json:"height"`
	Round     flexInt `json:"round"`
	Step      flexInt `json:"step"`
	Signature []byte  `json:"signature"`
	SignBytes string  `json:"signbytes"`
}

// ParseForeignState reads the sign state of another signer for chainID:
// CometBFT's priv_validator_state.json (steps 1/2/3, with the last sign
// bytes and signature) or a TMKMS state file (steps 0/1/2 and a block id,
// translated to 1/2/3 and kept without sign bytes, so the same
// height/round/step is refused rather than re-signed). It names the format
// found.
func ParseForeignState(data []byte, chainID string) (Mark, string, error) {
	var f foreignState
	if err := json.Unmarshal(data, &f); err != nil {
		return Mark{}, "", fmt.Errorf("malformed state JSON: %w", err)
	}
	if !f.Height.set || !f.Round.set || !f.Step.set {
		return Mark{}, "", errors.New("want height, round and step fields")
	}
	if f.Height.v < 0 || f.Round.v < 0 || f.Round.v > 1<<31-1 {
		return Mark{}, "", fmt.Errorf("height %d / round %d out of range", f.Height.v, f.Round.v)
	}
	m := Mark{Height: f.Height.v, Round: int32(f.Round.v)}
	// TMKMS always writes block_id, null or not; CometBFT never does.
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(data, &keys) // the same bytes decoded above
	_, tmkms := keys["block_id"]
	if tmkms {
		if f.SignBytes != "" {
			return Mark{}, "", errors.New("file has both block_id (TMKMS) and signbytes (CometBFT)")
		}
		if f.Step.v < 0 || f.Step.v > 2 {
			return Mark{}, "", fmt.Errorf("TMKMS step %d is not 0 (propose), 1 (prevote) or 2 (precommit)", f.Step.v)
		}
		m.Step = privval.Step(f.Step.v + 1)
		if m.Height == 0 {
			m.Step = 0 // TMKMS's initial state: nothing signed.
		}
		return m, "TMKMS", nil
	}
	if f.Step.v < 0 || f.Step.v > 3 {
		return Mark{}, "", fmt.Errorf("step %d is not 0..3", f.Step.v)
	}
	m.Step = privval.Step(f.Step.v)
	sf := stateFile{ChainID: chainID, Height: strconv.FormatInt(m.Height, 10), Round: m.Round, Step: int8(m.Step),
		SignBytes: f.SignBytes}
	sf.Signature = base64.StdEncoding.EncodeToString(f.Signature)
	checked, err := sf.mark()
	if err != nil {
		return Mark{}, "", err
	}
	if len(checked.SignBytes) > 0 {
		info, err := privval.ParseSignBytes(checked.SignBytes)
		if err != nil {
			return Mark{}, "", err
		}
		if info.ChainID != chainID {
			return Mark{}, "", fmt.Errorf("signbytes are for chain %q, not %q", info.ChainID, chainID)
		}
	}
	return checked, "CometBFT", nil
}
