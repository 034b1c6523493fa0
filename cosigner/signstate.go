package cosigner

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosigner/cosigner/privval"
)

// Sentinel errors of the sign-state rules. Callers branch on them with
// errors.Is; the wrapped message says what was refused.
var (
	// ErrRegression: the request's height/round/step is below the mark.
	ErrRegression = errors.New("height/round/step regression")
	// ErrConflict: same height/round/step as the mark, different content.
	// Signing it would be a double sign.
	ErrConflict = errors.New("conflicting data at the signed height/round/step")
	// ErrStateMissing: there is no state file for the chain.
	ErrStateMissing = errors.New("sign state file is missing")
	// ErrStateCorrupt: the state file exists but cannot be trusted.
	ErrStateCorrupt = errors.New("sign state file is corrupt")
	// ErrStateExists: refusing to overwrite a state file without force.
	ErrStateExists = errors.New("sign state file already exists")
)

// Mark is the high-water mark of one chain: the last height, round and step
// signed, with the sign bytes and signature released for it. Step 0 means
// nothing has been signed at Height yet (a freshly initialised state).
type Mark struct {
	Height    int64
	Round     int32
	Step      privval.Step
	SignBytes []byte
	Signature []byte
}

// stateFile is the on-disk form: CometBFT's priv_validator_state.json fields
// (height as a string, base64 signature, hex sign bytes) plus the chain id,
// so a state file copied to the wrong chain is refused.
type stateFile struct {
	ChainID   string `json:"chain_id"`
	Height    string `json:"height"`
	Round     int32  `json:"round"`
	Step      int8   `json:"step"`
	Signature string `json:"signature,omitempty"`
	SignBytes string `json:"signbytes,omitempty"`
}

// StatePath is where the state of chainID lives under dir.
func StatePath(dir, chainID string) string {
	return filepath.Join(dir, chainID+".json")
}

// SignState guards one chain: it applies CometBFT FilePV's rules against its
// mark and writes every advance durably before the caller may release a
// signature. It is safe for concurrent use; Sign serialises requests.
type SignState struct {
	path    string
	chainID string

	mu   sync.Mutex
	mark Mark
	file *slotFile
}

// LoadSignState opens the state file of chainID at path. A missing file is
// ErrStateMissing and an unparsable one ErrStateCorrupt: both stop a start,
// since guessing a state could sign twice.
func LoadSignState(path, chainID string) (*SignState, error) {
	m, err := ReadMark(path, chainID)
	if err != nil {
		return nil, err
	}
	f, err := openSlotFile(path)
	if err != nil {
		return nil, fmt.Errorf("open sign state %s: %w", path, err)
	}
	return &SignState{path: path, chainID: chainID, mark: m, file: f}, nil
}

// Close releases the state file.
func (s *SignState) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.close()
}

// ReadMark reads and checks a state file without opening it for signing.
func ReadMark(path, chainID string) (Mark, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Mark{}, fmt.Errorf("%w: %s", ErrStateMissing, path)
	}
	if err != nil {
		return Mark{}, fmt.Errorf("read sign state %s: %w", path, err)
	}
	m, err := parseMark(data, chainID)
	if err != nil {
		return Mark{}, fmt.Errorf("%w: %s: %v", ErrStateCorrupt, path, err)
	}
	return m, nil
}

// parseMark decodes the content of a state file (two-slot or plain JSON)
// and checks it belongs to chainID.
func parseMark(data []byte, chainID string) (Mark, error) {
	if isSlotted(data) {
		payload, _, err := readSlots(data)
		if err != nil {
			return Mark{}, err
		}
		data = payload
	}
	var f stateFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Mark{}, err
	}
	if dec.More() {
		return Mark{}, errors.New("trailing data after the state")
	}
	m, err := f.mark()
	if err != nil {
		return Mark{}, err
	}
	if f.ChainID != chainID {
		return Mark{}, fmt.Errorf("it belongs to chain %q, not %q", f.ChainID, chainID)
	}
	return m, nil
}

func (f *stateFile) mark() (Mark, error) {
	h, err := strconv.ParseInt(f.Height, 10, 64)
	if err != nil || h < 0 {
		return Mark{}, fmt.Errorf("height %q is not a non-negative integer", f.Height)
	}
	if f.Round < 0 {
		return Mark{}, fmt.Errorf("round %d is negative", f.Round)
	}
	if f.Step < 0 || f.Step > int8(privval.StepPrecommit) {
		return Mark{}, fmt.Errorf("step %d is not 0..3", f.Step)
	}
	m := Mark{Height: h, Round: f.Round, Step: privval.Step(f.Step)}
	if m.Signature, err = base64.StdEncoding.DecodeString(f.Signature); err != nil {
		return Mark{}, fmt.Errorf("signature is not base64: %v", err)
	}
	if m.SignBytes, err = hex.DecodeString(f.SignBytes); err != nil {
		return Mark{}, fmt.Errorf("signbytes is not hex: %v", err)
	}
	if len(m.SignBytes) > 0 {
		info, err := privval.ParseSignBytes(m.SignBytes)
		if err != nil {
			return Mark{}, fmt.Errorf("signbytes: %v", err)
		}
		if info.Height != m.Height || info.Round != m.Round || info.Step != m.Step {
			return Mark{}, fmt.Errorf("signbytes are for %d/%d/%d, the state says %d/%d/%d",
				info.Height, info.Round, info.Step, m.Height, m.Round, m.Step)
		}
		// Threshold cosigners record sign bytes without a signature: they
		// release shares, and the cluster keeps the signature.
		if len(m.Signature) != 0 && len(m.Signature) != 64 {
			return Mark{}, fmt.Errorf("signature is %d bytes, want 64", len(m.Signature))
		}
	}
	return m, nil
}

func encodeState(chainID string, m Mark) []byte {
	f := stateFile{
		ChainID:   chainID,
		Height:    strconv.FormatInt(m.Height, 10),
		Round:     m.Round,
		Step:      int8(m.Step),
		Signature: base64.StdEncoding.EncodeToString(m.Signature),
		SignBytes: strings.ToUpper(hex.EncodeToString(m.SignBytes)),
	}
	out, _ := json.Marshal(f) // cannot fail: plain fields
	return out
}

// WriteMark writes a state file durably. It refuses to replace an existing
// file unless force is set.
func WriteMark(path, chainID string, m Mark, force bool) error {
	if !force {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%w: %s", ErrStateExists, path)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	return createSlotFile(path, encodeState(chainID, m))
}

// Mark returns a copy of the current mark.
func (s *SignState) Mark() Mark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mark
}

// SignFunc signs msg with the chain's key (or produces a share of it).
type SignFunc func(msg []byte) ([]byte, error)

// Sign applies the double-sign rules to req and, when it may be signed,
// calls sign, records the new mark durably and only then returns the
// signature. A request repeating the mark's height/round/step with the same
// content, or a vote whose content differs only by timestamp, gets the
// signature already released and that signature's timestamp, as CometBFT's
// FilePV answers; a proposal differing only by timestamp is signed again
// (the node would pair an old signature with its new timestamp). Anything else at or below the mark is refused with ErrRegression
// or ErrConflict and leaves the mark unchanged.
func (s *SignState) Sign(req *privval.SignRequest, sign SignFunc) (sig []byte, ts time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if req.ChainID != s.chainID {
		return nil, time.Time{}, fmt.Errorf("sign state of chain %q asked to sign for %q", s.chainID, req.ChainID)
	}
	m := s.mark
	same, err := compareHRS(m, req)
	if err != nil {
		return nil, time.Time{}, err
	}
	if same {
		if len(m.Signature) == 0 {
			// Only a threshold cosigner's state lacks signatures; a softsign
			// started on it has nothing to resend.
			return nil, time.Time{}, fmt.Errorf("%w: %d/%d/%s was signed but the state holds no signature to resend", ErrConflict, m.Height, m.Round, m.Step)
		}
		if bytes.Equal(req.SignBytes, m.SignBytes) {
			return m.Signature, req.Timestamp, nil
		}
		only, err := privval.OnlyTimestampDiffers(m.SignBytes, req.SignBytes)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("compare with signed payload: %w", err)
		}
		if !only {
			return nil, time.Time{}, fmt.Errorf("%w: %s", ErrConflict, conflictSummary(m, req))
		}
		if req.Step != privval.StepProposal {
			info, err := privval.ParseSignBytes(m.SignBytes)
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("parse signed payload: %w", err)
			}
			return m.Signature, info.Timestamp, nil
		}
		// A proposal differing only by timestamp is signed afresh: the node
		// keeps its own timestamp for proposals and takes only the
		// signature, so the old one would not verify; and a repeated
		// proposal of the same block is no double sign (proposals are not
		// slashable, and the content is the same).
	}

	sig, err = sign(req.SignBytes)
	if err != nil {
		return nil, time.Time{}, err
	}
	next := Mark{Height: req.Height, Round: req.Round, Step: req.Step, SignBytes: req.SignBytes, Signature: sig}
	if err := s.file.write(encodeState(s.chainID, next)); err != nil {
		// The signature is dropped: it must never leave unrecorded.
		return nil, time.Time{}, fmt.Errorf("record sign state (signature withheld): %w", err)
	}
	s.mark = next
	return sig, req.Timestamp, nil
}

// Admit applies the rules of a threshold cosigner, which releases a
// signature share rather than a signature: a request above the mark is
// recorded durably before Admit returns nil; a request at the mark with the
// same content, or content differing only by timestamp, is admitted again
// (a share over the same vote is no double sign, and the leader may have
// lost the signature); anything else is ErrRegression or ErrConflict and
// leaves the mark unchanged. The caller releases its share only after a nil
// return.
func (s *SignState) Admit(req *privval.SignRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if req.ChainID != s.chainID {
		return fmt.Errorf("sign state of chain %q asked to admit a request for %q", s.chainID, req.ChainID)
	}
	m := s.mark
	same, err := compareHRS(m, req)
	if err != nil {
		return err
	}
	if same {
		if bytes.Equal(req.SignBytes, m.SignBytes) {
			return nil
		}
		only, err := privval.OnlyTimestampDiffers(m.SignBytes, req.SignBytes)
		if err != nil {
			return fmt.Errorf("compare with signed payload: %w", err)
		}
		if only {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrConflict, conflictSummary(m, req))
	}
	next := Mark{Height: req.Height, Round: req.Round, Step: req.Step, SignBytes: req.SignBytes}
	if err := s.file.write(encodeState(s.chainID, next)); err != nil {
		return fmt.Errorf("record sign state (share withheld): %w", err)
	}
	s.mark = next
	return nil
}

// compareHRS reports whether req is at the mark's height/round/step, or an
// ErrRegression when it is below it.
func compareHRS(m Mark, req *privval.SignRequest) (same bool, err error) {
	switch {
	case req.Height < m.Height:
		return false, fmt.Errorf("%w: height %d is below the signed height %d", ErrRegression, req.Height, m.Height)
	case req.Height > m.Height:
		return false, nil
	case req.Round < m.Round:
		return false, fmt.Errorf("%w: round %d is below the signed round %d at height %d", ErrRegression, req.Round, m.Round, m.Height)
	case req.Round > m.Round:
		return false, nil
	case req.Step < m.Step:
		return false, fmt.Errorf("%w: %s is below the signed %s at %d/%d", ErrRegression, req.Step, m.Step, m.Height, m.Round)
	case req.Step > m.Step:
		return false, nil
	}
	if len(m.SignBytes) == 0 {
		// A mark without payload at a real step cannot come from Sign; a
		// hand-edited file could produce it. Refuse rather than guess.
		return false, fmt.Errorf("%w: %d/%d/%s is marked signed but the state holds no sign bytes", ErrConflict, m.Height, m.Round, m.Step)
	}
	return true, nil
}

func conflictSummary(m Mark, req *privval.SignRequest) string {
	had := "unknown payload"
	if info, err := privval.ParseSignBytes(m.SignBytes); err == nil {
		had = "block " + shortBlock(info.BlockID.Hash)
	}
	return fmt.Sprintf("%s at %d/%d signed for %s, now asked for block %s",
		req.Step, req.Height, req.Round, had, shortBlock(req.BlockID))
}

// shortBlock renders a block hash the way TMKMS logs do: the first 6 hex
// characters, or "nil".
func shortBlock(hash []byte) string {
	if len(hash) == 0 {
		return "nil"
	}
	h := strings.ToUpper(hex.EncodeToString(hash))
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// writeFileDurable replaces path with data so that after a power loss the
// file holds either the old or the new content: temp file, fsync, rename,
// fsync of the directory.
func writeFileDurable(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
