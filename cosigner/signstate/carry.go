package signstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cosigner/cosigner/privval"
)

// Highest returns the mark a signer must start from to refuse everything
// any of marks refuses: the highest height/round/step among them. When two
// marks at that height/round/step hold different content (two cosigners
// released shares for different blocks there, which only a faulty leader
// asks for), the result keeps the height/round/step without sign bytes,
// and Decide then refuses every request at it: either content may have
// been signed, so neither may be signed again. Signatures are dropped
// (a cosigner's mark carries none). Highest of no marks is the zero Mark.
//
// A resharing uses it to carry the old cluster's marks to every new
// member.
func Highest(marks []Mark) Mark {
	var out Mark
	have := false
	for _, m := range marks {
		switch {
		case !have || Above(m.Height, m.Round, m.Step, out.Height, out.Round, out.Step):
			out = Mark{Height: m.Height, Round: m.Round, Step: m.Step, SignBytes: bytes.Clone(m.SignBytes)}
			have = true
		case m.Height == out.Height && m.Round == out.Round && m.Step == out.Step:
			if !sameContent(out.SignBytes, m.SignBytes) {
				out.SignBytes = nil
			}
		}
	}
	if out.Step == 0 {
		// Nothing signed at that height: no content to keep.
		out.SignBytes = nil
	}
	return out
}

// sameContent reports whether two sign bytes at one height/round/step are
// the same message, at most the timestamp differing.
func sameContent(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	only, err := privval.OnlyTimestampDiffers(a, b)
	return err == nil && only
}

// MaxMarksSize bounds an EncodeMarks rendering DecodeMarks accepts.
const MaxMarksSize = 16 << 10

// EncodeMarks renders marks, by chain id, as a JSON array of state-file
// objects (the fields of a state file, signatures dropped): what a
// resharing's dealer sends the other participants.
func EncodeMarks(marks map[string]Mark) []byte {
	ids := make([]string, 0, len(marks))
	for id := range marks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := []byte{'['}
	for i, id := range ids {
		if i > 0 {
			out = append(out, ',')
		}
		m := marks[id]
		m.Signature = nil
		out = append(out, encodeState(id, m)...)
	}
	return append(out, ']')
}

// DecodeMarks decodes what EncodeMarks renders, checking every mark as a
// state file is checked (its sign bytes at its height, round and step) and
// refusing a chain listed twice, an invalid chain id or more than
// MaxMarksSize bytes.
func DecodeMarks(data []byte) (map[string]Mark, error) {
	if len(data) > MaxMarksSize {
		return nil, fmt.Errorf("marks: %d bytes, at most %d", len(data), MaxMarksSize)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("marks: %w", err)
	}
	if raw == nil {
		return nil, errors.New("marks: not a list")
	}
	out := map[string]Mark{}
	for i, r := range raw {
		var head struct {
			ChainID string `json:"chain_id"`
		}
		if err := json.Unmarshal(r, &head); err != nil {
			return nil, fmt.Errorf("marks: entry %d: %w", i, err)
		}
		if id := head.ChainID; id == "" || len(id) > 50 || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
			// The chain id names a state file: it must be a plain file name.
			return nil, fmt.Errorf("marks: entry %d: chain id %q is not valid", i, id)
		}
		if _, dup := out[head.ChainID]; dup {
			return nil, fmt.Errorf("marks: chain %s listed twice", head.ChainID)
		}
		m, err := parseMark(r, head.ChainID)
		if err != nil {
			return nil, fmt.Errorf("marks: chain %s: %w", head.ChainID, err)
		}
		m.Signature = nil
		out[head.ChainID] = m
	}
	return out, nil
}
