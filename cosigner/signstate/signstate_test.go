package signstate

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/privval"
)

const testChain = testkit.Chain

var (
	testKey = testkit.Key
	vote    = testkit.Vote
)

func newTestState(t testing.TB, m Mark) (*SignState, string) {
	t.Helper()
	path := StatePath(t.TempDir(), testChain)
	if err := WriteMark(path, testChain, m, false); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSignState(path, testChain)
	if err != nil {
		t.Fatal(err)
	}
	return s, path
}

func sign(msg []byte) ([]byte, error) { return ed25519.Sign(testKey, msg), nil }

func TestSignStateRules(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	t1 := t0.Add(time.Second)
	const (
		prop = privval.StepProposal
		pv   = privval.StepPrevote
		pc   = privval.StepPrecommit
	)
	tests := []struct {
		name    string
		first   *privval.SignRequest // signed first, must succeed
		second  *privval.SignRequest
		wantErr error
		// wantFirstSig: the second request gets the first's signature and
		// timestamp back.
		wantFirstSig bool
	}{
		{"next step", vote(10, 0, pv, "A", t0), vote(10, 0, pc, "A", t0), nil, false},
		{"next round", vote(10, 0, pc, "A", t0), vote(10, 1, prop, "B", t0), nil, false},
		{"next height", vote(10, 2, pc, "A", t0), vote(11, 0, prop, "B", t0), nil, false},
		{"height regression", vote(10, 0, pv, "A", t0), vote(9, 0, pc, "A", t0), ErrRegression, false},
		{"round regression", vote(10, 3, pv, "A", t0), vote(10, 2, pc, "A", t0), ErrRegression, false},
		{"step regression", vote(10, 0, pc, "A", t0), vote(10, 0, pv, "A", t0), ErrRegression, false},
		{"proposal after prevote", vote(10, 0, pv, "A", t0), vote(10, 0, prop, "A", t0), ErrRegression, false},
		{"same request again", vote(10, 0, pv, "A", t0), vote(10, 0, pv, "A", t0), nil, true},
		{"only timestamp differs (vote)", vote(10, 0, pc, "A", t0), vote(10, 0, pc, "A", t1), nil, true},
		{"only timestamp differs (proposal) signs afresh", vote(10, 0, prop, "A", t0), vote(10, 0, prop, "A", t1), nil, false},
		{"same proposal again", vote(10, 0, prop, "A", t0), vote(10, 0, prop, "A", t0), nil, true},
		{"conflicting block", vote(10, 0, pv, "A", t0), vote(10, 0, pv, "B", t0), ErrConflict, false},
		{"nil after block", vote(10, 0, pc, "A", t0), vote(10, 0, pc, "", t0), ErrConflict, false},
		{"block after nil", vote(10, 0, pc, "", t0), vote(10, 0, pc, "A", t1), ErrConflict, false},
		{"conflicting proposal", vote(10, 0, prop, "A", t0), vote(10, 0, prop, "B", t1), ErrConflict, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := newTestState(t, Mark{Height: 1})
			sig1, ts1, err := s.Sign(tt.first, sign)
			if err != nil {
				t.Fatalf("first: %v", err)
			}
			if !ts1.Equal(tt.first.Timestamp) || !ed25519.Verify(testKey.Public().(ed25519.PublicKey), tt.first.SignBytes, sig1) {
				t.Fatal("first signature wrong")
			}
			before, _ := os.ReadFile(path)
			sig2, ts2, err := s.Sign(tt.second, sign)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if sig2 != nil {
					t.Fatal("signature released with an error")
				}
				after, _ := os.ReadFile(path)
				if string(before) != string(after) {
					t.Fatal("refused request changed the state file")
				}
				return
			}
			if err != nil {
				t.Fatalf("second: %v", err)
			}
			if tt.wantFirstSig {
				if string(sig2) != string(sig1) || !ts2.Equal(ts1) {
					t.Fatalf("duplicate got a new signature or timestamp: ts %v want %v", ts2, ts1)
				}
				return
			}
			// A new signature: the mark moved, durably.
			reloaded, err := LoadSignState(path, testChain)
			if err != nil {
				t.Fatal(err)
			}
			m := reloaded.Mark()
			if m.Height != tt.second.Height || m.Round != tt.second.Round || m.Step != tt.second.Step || string(m.Signature) != string(sig2) {
				t.Fatalf("mark on disk %+v does not match the second request", m)
			}
		})
	}
}

func TestSignStateInitHeight(t *testing.T) {
	s, _ := newTestState(t, Mark{Height: 100})
	t0 := time.Unix(1700000000, 0).UTC()
	if _, _, err := s.Sign(vote(99, 5, privval.StepPrecommit, "A", t0), sign); !errors.Is(err, ErrRegression) {
		t.Fatalf("below init height: err = %v", err)
	}
	if _, _, err := s.Sign(vote(100, 0, privval.StepProposal, "A", t0), sign); err != nil {
		t.Fatalf("at init height: %v", err)
	}
}

// TestSignStateWriteFailure: when the mark cannot be recorded, no signature
// leaves and the in-memory mark stays where it was.
func TestSignStateWriteFailure(t *testing.T) {
	s, path := newTestState(t, Mark{Height: 1})
	t0 := time.Unix(1700000000, 0).UTC()
	if _, _, err := s.Sign(vote(5, 0, privval.StepPrevote, "A", t0), sign); err != nil {
		t.Fatal(err)
	}
	// An I/O error on the state file: the descriptor is gone.
	s.file.f.Close()
	_ = path
	sig, _, err := s.Sign(vote(5, 0, privval.StepPrecommit, "A", t0), sign)
	if err == nil || sig != nil {
		t.Fatalf("signed without recording: sig=%x err=%v", sig, err)
	}
	if m := s.Mark(); m.Step != privval.StepPrevote {
		t.Fatalf("mark advanced to %v after a failed write", m.Step)
	}
}

func TestLoadSignStateErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := vote(7, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0).UTC())
	goodMark := Mark{Height: 7, Step: privval.StepPrevote, SignBytes: good.SignBytes, Signature: ed25519.Sign(testKey, good.SignBytes)}
	tests := []struct {
		name string
		path string
		want error
	}{
		{"missing", filepath.Join(dir, "nope.json"), ErrStateMissing},
		{"empty", write("empty.json", ""), ErrStateCorrupt},
		{"truncated", write("trunc.json", `{"chain_id":"test-chain","height":"5"`), ErrStateCorrupt},
		{"bad height", write("h.json", `{"chain_id":"test-chain","height":"x","round":0,"step":0}`), ErrStateCorrupt},
		{"negative height", write("nh.json", `{"chain_id":"test-chain","height":"-1","round":0,"step":0}`), ErrStateCorrupt},
		{"bad step", write("s.json", `{"chain_id":"test-chain","height":"5","round":0,"step":4}`), ErrStateCorrupt},
		{"unknown field", write("u.json", `{"chain_id":"test-chain","height":"5","round":0,"step":0,"extra":1}`), ErrStateCorrupt},
		{"other chain", write("o.json", `{"chain_id":"other","height":"5","round":0,"step":0}`), ErrStateCorrupt},
		{"signbytes for another HRS", write("x.json", string(encodeState(testChain, Mark{Height: 8, Step: privval.StepPrevote, SignBytes: goodMark.SignBytes, Signature: goodMark.Signature}))), ErrStateCorrupt},
		{"short signature", write("y.json", string(encodeState(testChain, Mark{Height: 7, Step: privval.StepPrevote, SignBytes: goodMark.SignBytes, Signature: goodMark.Signature[:63]}))), ErrStateCorrupt},
		{"share state without signature", write("z.json", string(encodeState(testChain, Mark{Height: 7, Step: privval.StepPrevote, SignBytes: goodMark.SignBytes}))), nil},
		{"good", write("g.json", string(encodeState(testChain, goodMark))), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSignState(tt.path, testChain)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriteMarkRefusesOverwrite(t *testing.T) {
	path := StatePath(t.TempDir(), testChain)
	if err := WriteMark(path, testChain, Mark{Height: 5}, false); err != nil {
		t.Fatal(err)
	}
	if err := WriteMark(path, testChain, Mark{Height: 1}, false); !errors.Is(err, ErrStateExists) {
		t.Fatalf("overwrite without force: err = %v", err)
	}
	if m, _ := ReadMark(path, testChain); m.Height != 5 {
		t.Fatalf("height changed to %d", m.Height)
	}
	if err := WriteMark(path, testChain, Mark{Height: 1}, true); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, err %v", st.Mode(), err)
	}
}

func TestParseForeignState(t *testing.T) {
	v := vote(42, 1, privval.StepPrecommit, "A", time.Unix(1700000000, 5).UTC())
	sig := ed25519.Sign(testKey, v.SignBytes)
	cmt := `{"height":"42","round":1,"step":3,"signature":"` + b64(sig) + `","signbytes":"` + hexUpper(v.SignBytes) + `"}`
	tests := []struct {
		name, data, kind string
		want             Mark
		wantErr          bool
	}{
		{"cometbft", cmt, "CometBFT", Mark{Height: 42, Round: 1, Step: privval.StepPrecommit}, false},
		{"cometbft fresh", `{"height":"0","round":0,"step":0}`, "CometBFT", Mark{}, false},
		{"tmkms prevote", `{"height":"1234","round":"2","step":1,"block_id":null}`, "TMKMS", Mark{Height: 1234, Round: 2, Step: privval.StepPrevote}, false},
		{"tmkms precommit numeric round", `{"height":"9","round":0,"step":2,"block_id":{"hash":"AB","part_set_header":{"total":1,"hash":"CD"}}}`, "TMKMS", Mark{Height: 9, Step: privval.StepPrecommit}, false},
		{"tmkms fresh", `{"height":"0","round":"0","step":0,"block_id":null}`, "TMKMS", Mark{}, false},
		{"tmkms bad step", `{"height":"9","round":"0","step":3,"block_id":null}`, "", Mark{}, true},
		{"missing step", `{"height":"9","round":0}`, "", Mark{}, true},
		{"garbage", `not json`, "", Mark{}, true},
		{"signbytes for other HRS", `{"height":"43","round":1,"step":3,"signature":"` + b64(sig) + `","signbytes":"` + hexUpper(v.SignBytes) + `"}`, "", Mark{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, kind, err := ParseForeignState([]byte(tt.data), testChain)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("accepted: %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kind != tt.kind || m.Height != tt.want.Height || m.Round != tt.want.Round || m.Step != tt.want.Step {
				t.Fatalf("got %+v (%s), want %+v (%s)", m, kind, tt.want, tt.kind)
			}
		})
	}
	if _, _, err := ParseForeignState([]byte(cmt), "another-chain"); err == nil {
		t.Fatal("accepted a CometBFT state whose sign bytes name another chain")
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func hexUpper(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// TestStateFileSlots: a torn or corrupt newest slot falls back to the
// previous mark; two bad slots are a corrupt file, never a fresh state.
func TestStateFileSlots(t *testing.T) {
	s, path := newTestState(t, Mark{Height: 1})
	t0 := time.Unix(1700000000, 0).UTC()
	for h := int64(2); h <= 4; h++ {
		if _, _, err := s.Sign(vote(h, 0, privval.StepPrevote, "A", t0), sign); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil || len(data) != 2*slotSize {
		t.Fatalf("state file: %d bytes, %v", len(data), err)
	}
	if m, err := ReadMark(path, testChain); err != nil || m.Height != 4 {
		t.Fatalf("mark %+v %v", m, err)
	}
	// Height 4 went to slot (seq 4 % 2) = 0, height 3 lives in slot 1.
	tear := func(slot int, at int) []byte {
		d := append([]byte(nil), data...)
		d[slot*slotSize+at] ^= 0xff
		return d
	}
	tests := []struct {
		name       string
		data       []byte
		wantHeight int64
		wantErr    error
	}{
		{"intact", data, 4, nil},
		{"newest payload torn", tear(0, slotHeader+10), 3, nil},
		{"newest header torn", tear(0, 5), 3, nil},
		{"older slot torn", tear(1, slotHeader+3), 4, nil},
		{"both torn", tear(1, slotHeader+3)[:0], 0, ErrStateCorrupt},
		{"truncated", data[:slotSize], 0, ErrStateCorrupt},
	}
	both := tear(0, slotHeader+10)
	both[slotSize+slotHeader+3] ^= 0xff
	tests[4].data = both
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "s.json")
			if err := os.WriteFile(p, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := ReadMark(p, testChain)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || m.Height != tt.wantHeight {
				t.Fatalf("mark %+v, err %v; want height %d", m, err, tt.wantHeight)
			}
			// It opens for signing and goes on from there.
			st, err := LoadSignState(p, testChain)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, _, err := st.Sign(vote(10, 0, privval.StepPrevote, "A", t0), sign); err != nil {
				t.Fatal(err)
			}
			if m, err := ReadMark(p, testChain); err != nil || m.Height != 10 {
				t.Fatalf("after signing: %+v %v", m, err)
			}
		})
	}
}

// TestPlainJSONStateIsConverted: a plain JSON state (CometBFT style, as an
// operator might write by hand) loads, and is rewritten in place as a
// two-slot file with the same mark.
func TestPlainJSONStateIsConverted(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(p, []byte(`{"chain_id":"test-chain","height":"77","round":0,"step":0}`+"\n"), 0o600)
	st, err := LoadSignState(p, testChain)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data, _ := os.ReadFile(p)
	if !isSlotted(data) {
		t.Fatal("not converted")
	}
	if m, err := ReadMark(p, testChain); err != nil || m.Height != 77 {
		t.Fatalf("%+v %v", m, err)
	}
}

// BenchmarkSlotWrite is one advance of the mark: the in-place slot write
// and its fdatasync, what every signature and share waits for.
func BenchmarkSlotWrite(b *testing.B) {
	s, _ := newTestState(b, Mark{Height: 1})
	reqs := make([]*privval.SignRequest, b.N)
	for i := range reqs {
		reqs[i] = vote(int64(i+2), 0, privval.StepPrevote, "A", testkit.T0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Admit(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
