package signstate

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

	"github.com/cosigner/cosigner/internal/fsutil"
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

// LoadError is a chain's sign state that could not be loaded, so a start is
// refused; it names the chain so the caller can say what to do.
type LoadError struct {
	ChainID string
	Err     error
}

func (e *LoadError) Error() string { return e.Err.Error() }
func (e *LoadError) Unwrap() error { return e.Err }

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

	// loaded and loadedAt are the mark as LoadSignState read it and when
	// it was recorded; a Bound counts from them.
	loaded   int64
	loadedAt time.Time

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
	// The file's modification time is when the mark was last recorded
	// (every advance rewrites a slot in place); take it before
	// openSlotFile may convert a plain JSON file.
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read sign state %s: %w", path, err)
	}
	f, err := openSlotFile(path)
	if err != nil {
		return nil, fmt.Errorf("open sign state %s: %w", path, err)
	}
	at := fi.ModTime()
	if now := time.Now(); at.After(now) {
		at = now // a file from the future: count from now
	}
	return &SignState{path: path, chainID: chainID, mark: m, file: f, loaded: m.Height, loadedAt: at}, nil
}

// Bound returns the height bound of a signer started on s: anchored at
// the mark as it was loaded and at the time it was recorded (the state
// file's modification time, never later than the load), allowing ahead
// heights above it plus rate heights per second since. ahead ≤ 0 is a
// bound that is off. See Bound for why the anchor never moves.
func (s *SignState) Bound(ahead int64, rate float64) Bound {
	return Bound{Anchor: s.loaded, Since: s.loadedAt, Ahead: ahead, Rate: rate}
}

// ChainID returns the chain the state guards.
func (s *SignState) ChainID() string { return s.chainID }

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
		payload, _, _, err := readSlots(data)
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
	if err := fsutil.MkdirAll(filepath.Dir(path), 0o700); err != nil {
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

// Verdict is what the double-sign rules allow for a request against a mark.
type Verdict int

// Verdicts of Decide.
const (
	// Fresh: the request is above the mark; sign it and advance the mark.
	Fresh Verdict = iota + 1
	// Resend: the request repeats the mark's vote or proposal (same sign
	// bytes), or is a vote differing from it only by timestamp. Answer
	// with the signature already released and its timestamp; the mark
	// stays.
	Resend
	// Resign: a proposal differing from the mark's only by timestamp. The
	// node keeps its own proposal timestamp and takes only the signature,
	// so the old signature would not verify: sign it afresh. It is no
	// double sign (proposals are not slashable, and the block is the same).
	Resign
)

func (v Verdict) String() string {
	switch v {
	case Fresh:
		return "fresh"
	case Resend:
		return "resend"
	case Resign:
		return "resign"
	}
	return fmt.Sprintf("verdict %d", int(v))
}

// Decision is Decide's answer: the verdict and, for Resend, the timestamp
// the resent signature was made over.
type Decision struct {
	Verdict Verdict
	// Timestamp is the timestamp of the signed payload (Resend only): the
	// node must pair the stored signature with it.
	Timestamp time.Time
}

// Decide applies CometBFT FilePV's double-sign rules, the one copy every
// signer in cosigner uses (softsign, each threshold cosigner's mark, and
// the leader's check against the cluster's last signature). It is a pure
// function of the mark and the request. A request below the mark is
// ErrRegression; one at the mark's height/round/step with other content
// (another block, nil against non-nil) is ErrConflict; otherwise the
// Decision says how to answer.
func Decide(m Mark, req *privval.SignRequest) (Decision, error) {
	same, err := compareHRS(m, req)
	if err != nil {
		return Decision{}, err
	}
	if !same {
		return Decision{Verdict: Fresh}, nil
	}
	if bytes.Equal(req.SignBytes, m.SignBytes) {
		return Decision{Verdict: Resend, Timestamp: req.Timestamp}, nil
	}
	only, err := privval.OnlyTimestampDiffers(m.SignBytes, req.SignBytes)
	if err != nil {
		return Decision{}, fmt.Errorf("compare with signed payload: %w", err)
	}
	if !only {
		return Decision{}, fmt.Errorf("%w: %s", ErrConflict, conflictSummary(m, req))
	}
	if req.Step == privval.StepProposal {
		return Decision{Verdict: Resign}, nil
	}
	info, err := privval.ParseSignBytes(m.SignBytes)
	if err != nil {
		return Decision{}, fmt.Errorf("parse signed payload: %w", err)
	}
	return Decision{Verdict: Resend, Timestamp: info.Timestamp}, nil
}

// Sign applies Decide to req and, when it may be signed, calls sign,
// records the new mark durably and only then returns the signature. A
// Resend gets the signature already released and its timestamp, as
// CometBFT's FilePV answers. Anything refused leaves the mark unchanged.
func (s *SignState) Sign(req *privval.SignRequest, sign SignFunc) (sig []byte, ts time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if req.ChainID != s.chainID {
		return nil, time.Time{}, fmt.Errorf("sign state of chain %q asked to sign for %q", s.chainID, req.ChainID)
	}
	m := s.mark
	d, err := Decide(m, req)
	if err != nil {
		return nil, time.Time{}, err
	}
	if d.Verdict != Fresh && len(m.Signature) == 0 {
		// Only a threshold cosigner's state lacks signatures; a softsign
		// started on it knows the height/round/step was signed but not
		// with what.
		return nil, time.Time{}, fmt.Errorf("%w: %d/%d/%s was signed but the state holds no signature to resend", ErrConflict, m.Height, m.Round, m.Step)
	}
	if d.Verdict == Resend {
		return m.Signature, d.Timestamp, nil
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

// Admit applies Decide for a threshold cosigner, which releases a signature
// share rather than a signature: a Fresh request is recorded durably before
// Admit returns nil; a Resend or Resign is admitted again without a write
// (a share over the same vote or block is no double sign, and the leader
// may have lost the signature); a refusal leaves the mark unchanged. The
// caller releases its share only after a nil return.
func (s *SignState) Admit(req *privval.SignRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if req.ChainID != s.chainID {
		return fmt.Errorf("sign state of chain %q asked to admit a request for %q", s.chainID, req.ChainID)
	}
	d, err := Decide(s.mark, req)
	if err != nil {
		return err
	}
	if d.Verdict != Fresh {
		return nil
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
		had = "block " + ShortBlock(info.BlockID.Hash)
	}
	return fmt.Sprintf("%s at %d/%d signed for %s, now asked for block %s",
		req.Step, req.Height, req.Round, had, ShortBlock(req.BlockID))
}

// ShortBlock renders a block hash the way TMKMS logs do: the first 6 hex
// characters, or "nil".
func ShortBlock(hash []byte) string {
	if len(hash) == 0 {
		return "nil"
	}
	h := strings.ToUpper(hex.EncodeToString(hash))
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// Above reports whether height/round/step h, r, s comes after h0, r0, s0.
func Above(h int64, r int32, s privval.Step, h0 int64, r0 int32, s0 privval.Step) bool {
	if h != h0 {
		return h > h0
	}
	if r != r0 {
		return r > r0
	}
	return s > s0
}

// LogRefusedDoubleSign is the message every signer logs (at warn, with the
// chain, height, round, step and error) when the rules refuse a request
// that conflicts with what was signed.
const LogRefusedDoubleSign = "refused double sign"

// LogRefusedDoppelganger is the message every signer logs (at warn, with
// the chain, height, round, step and error) when its doppelganger watch
// refuses a request.
const LogRefusedDoppelganger = "refused by doppelganger watch"

// Path returns the state file's path.
func (s *SignState) Path() string { return s.path }
