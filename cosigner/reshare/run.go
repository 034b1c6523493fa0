package reshare

import (
	"context"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"filippo.io/edwards25519"

	"github.com/cosigner/cosigner/cosigner/ceremony"
	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/threshold"
)

// Options configure Run.
type Options struct {
	// Home is this host's new home (Prepare's output for it).
	Home string
	// OldHome is this host's home in the old cluster: required when the
	// plan gives this host an old share, refused otherwise.
	OldHome string
	// Timeout bounds the ceremony; every participant must start within it.
	Timeout time.Duration
	// Log receives progress; nil discards.
	Log *slog.Logger
	// Listener and DialInterval are passed to ceremony.Run (tests).
	Listener     net.Listener
	DialInterval time.Duration
	// Now is the clock of the retirement record; nil: time.Now.
	Now func() time.Time
}

// Result is what Run did on this host.
type Result struct {
	// Self is this host's cosigner id in the new cluster.
	Self int
	// Retired reports a host that dealt and has no share in the new
	// cluster.
	Retired bool
	// Group and Epoch are the new group and its epoch (members only).
	Group *threshold.GroupKey
	Epoch share.Epoch
	// Marks are the sign-state marks written, by chain (members only).
	Marks map[string]signstate.Mark
	// Files are the files written, in order.
	Files []string
}

// IncompleteError is a resharing that completed among the participants
// but not on this host's disk: writing its new files, or retiring its old
// home, failed. The other participants hold their new shares; rerunning
// the ceremony is not the fix.
type IncompleteError struct {
	// Files were written before the failure.
	Files []string
	// OldHomeRetired reports that the old home was retired all the same.
	OldHomeRetired bool
	Err            error
}

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("the resharing completed, but this host's part failed: %v (files written: %v)", e.Err, e.Files)
}

func (e *IncompleteError) Unwrap() error { return e.Err }

// ErrHasShare is wrapped by Run's error for a new home that already
// holds a share, group or sign-state file: a resharing never replaces one.
var ErrHasShare = errors.New("the new home already holds key or state files")

// Run takes part in the resharing of the plan in opts.Home; see the
// package doc. It writes nothing unless the ceremony completed, and
// then only new files.
func Run(ctx context.Context, opts Options) (*Result, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	plan, oldGroup, oldEpoch, err := LoadPlan(opts.Home)
	if err != nil {
		return nil, err
	}
	newCfg, tlsDir, err := loadNewHome(opts.Home)
	if err != nil {
		return nil, err
	}
	ident, err := clustertls.Load(tlsDir)
	if err != nil {
		return nil, err
	}
	self := ident.ID()
	me, ok := plan.Participant(self)
	if !ok {
		return nil, fmt.Errorf("the certificate in %s is cosigner %d's, which the plan does not list", tlsDir, self)
	}
	member := self <= plan.Shares
	if member {
		if err := checkMemberHome(newCfg, self, plan); err != nil {
			return nil, err
		}
	} else if newCfg != nil {
		return nil, fmt.Errorf("%s is the home of cosigner %d, which the plan retires: a retiring host's new home holds only its certificate", opts.Home, self)
	}

	var own *threshold.KeyShare
	var extra []byte
	switch {
	case me.OldID != 0 && opts.OldHome == "":
		return nil, fmt.Errorf("the plan says this host holds old share %d: give its old home (--old-home)", me.OldID)
	case me.OldID == 0 && opts.OldHome != "":
		return nil, fmt.Errorf("the plan says cosigner %d is a newcomer, with no old share: drop --old-home, or use the new home prepared for the old host", self)
	case me.OldID != 0:
		var marks map[string]signstate.Mark
		own, marks, err = loadOld(ctx, opts.OldHome, me.OldID, oldGroup, oldEpoch, log)
		if err != nil {
			return nil, err
		}
		extra = signstate.EncodeMarks(marks)
		for id, m := range marks {
			log.Info("reshare: dealing with our mark", "chain", id, "height", m.Height, "round", m.Round, "step", int(m.Step))
		}
	}

	var carried map[string]signstate.Mark
	newProtocol := func(s ceremony.Setup) (*ceremony.Protocol, error) {
		var err error
		if carried, err = carryMarks(plan, s.Extras); err != nil {
			return nil, err
		}
		return protocol(plan, oldGroup, own, s)
	}
	parts := make([]ceremony.Participant, len(plan.Participants))
	for i, q := range plan.Participants {
		parts[i] = ceremony.Participant{ID: q.ID, Address: q.Address}
	}
	log.Info("reshare: joining the ceremony", "cosigner", self, "old_share", me.OldID, "epoch", plan.Epoch,
		"from", fmt.Sprintf("%d-of-%d", plan.OldThreshold, plan.OldShares), "to", fmt.Sprintf("%d-of-%d", plan.Threshold, plan.Shares))
	ks, group, err := ceremony.Run(ctx, ceremony.Options{Self: self, Participants: parts, TLS: ident, Params: plan.params(oldEpoch),
		Extra: extra, Timeout: opts.Timeout, Listener: opts.Listener, DialInterval: opts.DialInterval, Command: "cosigner reshare", Logger: log}, newProtocol)
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	res := &Result{Self: self}
	if errors.Is(err, threshold.ErrRetired) && !member {
		res.Retired = true
		if err := share.Retire(opts.OldHome, oldEpoch, share.Epoch{Number: plan.Epoch}, "", now()); err != nil {
			return nil, &IncompleteError{Err: fmt.Errorf("retire the old home: %w", err)}
		}
		res.Files = append(res.Files, filepath.Join(opts.OldHome, share.RetiredFile))
		return res, nil
	}
	if err != nil {
		return nil, err
	}
	if !member {
		return nil, errors.New("reshare: a retiring host received a share (broken invariant)")
	}
	if err := checkResult(ks, group, oldGroup, self, plan); err != nil {
		return nil, err
	}
	res.Group, res.Epoch, res.Marks = group, share.EpochOf(group, plan.Epoch), carried
	res.Files, err = writeMember(newCfg, ks, group, plan.Epoch, carried)
	if err != nil {
		// The others completed: this host's old share must not sign again
		// either, whether or not its new files are in place.
		ie := &IncompleteError{Files: res.Files, Err: err}
		if opts.OldHome != "" {
			ie.OldHomeRetired = share.Retire(opts.OldHome, oldEpoch, res.Epoch, "", now()) == nil
		}
		return nil, ie
	}
	if opts.OldHome != "" {
		abs, _ := filepath.Abs(opts.Home)
		if err := share.Retire(opts.OldHome, oldEpoch, res.Epoch, abs, now()); err != nil {
			return nil, &IncompleteError{Files: res.Files, Err: fmt.Errorf("retire the old home: %w", err)}
		}
		res.Files = append(res.Files, filepath.Join(opts.OldHome, share.RetiredFile))
	}
	return res, nil
}

// loadNewHome loads a member's cosigner.toml (nil for a retiring host's
// home, which has none) and returns the TLS directory.
func loadNewHome(home string) (*config.Config, string, error) {
	if _, err := os.Stat(filepath.Join(home, config.FileName)); errors.Is(err, fs.ErrNotExist) {
		return nil, filepath.Join(home, config.DefaultConfig().Threshold.TLSDir), nil
	}
	cfg, err := config.LoadForKeys(home)
	if err != nil {
		return nil, "", err
	}
	if cfg.Mode != config.ModeThreshold {
		return nil, "", fmt.Errorf("%s: mode = %q, a resharing's new home is in threshold mode", filepath.Join(home, config.FileName), cfg.Mode)
	}
	return cfg, cfg.Path(cfg.Threshold.TLSDir), nil
}

// checkMemberHome checks that a new member's configuration agrees with the
// plan and that it holds no share, group or state file yet.
func checkMemberHome(cfg *config.Config, self int, plan *Plan) error {
	if cfg == nil {
		return fmt.Errorf("cosigner %d is a new member, but its new home has no %s", self, config.FileName)
	}
	t := cfg.Threshold
	if t.ID != self || t.Threshold != plan.Threshold || t.Shares != plan.Shares {
		return fmt.Errorf("%s says cosigner %d, %d-of-%d; the plan and the certificate say cosigner %d, %d-of-%d",
			filepath.Join(cfg.Home(), config.FileName), t.ID, t.Threshold, t.Shares, self, plan.Threshold, plan.Shares)
	}
	if err := share.CheckNoKey(cfg.Path(t.ShareFile), cfg.Path(t.GroupFile)); err != nil {
		return fmt.Errorf("%w: %v", ErrHasShare, err)
	}
	states, _ := filepath.Glob(filepath.Join(cfg.Path(cfg.StateDir), "*.json"))
	if len(states) > 0 {
		return fmt.Errorf("%w: sign state %s exists", ErrHasShare, states[0])
	}
	return nil
}

// loadOld reads this host's old share (checked against the plan's old
// group) and its marks, one per chain of the old configuration.
func loadOld(ctx context.Context, home string, oldID int, oldGroup *threshold.GroupKey, oldEpoch share.Epoch, log *slog.Logger) (*threshold.KeyShare, map[string]signstate.Mark, error) {
	if err := share.CheckRetired(home); err != nil {
		return nil, nil, err
	}
	cfg, err := config.LoadForKeys(home)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Mode != config.ModeThreshold {
		return nil, nil, fmt.Errorf("the old home %s is in mode %q: a resharing needs a threshold cosigner's home", home, cfg.Mode)
	}
	own, err := share.LoadFromConfig(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	_, epoch, err := share.LoadGroupEpoch(cfg.Path(cfg.Threshold.GroupFile))
	if err != nil {
		return nil, nil, err
	}
	if !own.Group().Equal(oldGroup) || epoch != oldEpoch {
		return nil, nil, fmt.Errorf("the old home %s holds a share of %s, the plan reshares %s: use the old home of the cluster the plan was prepared from", home, epoch, oldEpoch)
	}
	if int(own.ID()) != oldID {
		return nil, nil, fmt.Errorf("the old home %s holds share %d, the plan says this host holds share %d", home, own.ID(), oldID)
	}
	marks := map[string]signstate.Mark{}
	for _, ch := range cfg.Chains {
		if ch.GroupFile != "" && cfg.Path(ch.GroupFile) != cfg.Path(cfg.Threshold.GroupFile) {
			// Several keys in one cluster (shard --add-to): only [threshold]'s
			// key is reshared, and its marks are those of its own chains.
			return nil, nil, fmt.Errorf("the old home %s signs chain %s with a key of its own (%s): resharing reshares [threshold]'s key only, and a home holding other keys is not supported yet", home, ch.ID, ch.GroupFile)
		}
		m, err := signstate.ReadMark(signstate.StatePath(cfg.Path(cfg.StateDir), ch.ID), ch.ID)
		if err != nil {
			return nil, nil, &signstate.LoadError{ChainID: ch.ID, Err: err}
		}
		marks[ch.ID] = m
	}
	return own, marks, nil
}

// carryMarks decodes every dealer's marks from the ceremony's extras and
// returns, per chain, the highest (signstate.Highest).
func carryMarks(plan *Plan, extras map[int][]byte) (map[string]signstate.Mark, error) {
	byChain := map[string][]signstate.Mark{}
	for _, q := range plan.Participants {
		if q.OldID == 0 {
			if len(extras[q.ID]) != 0 {
				return nil, fmt.Errorf("cosigner %d, a newcomer, sent sign-state marks: refused", q.ID)
			}
			continue
		}
		marks, err := signstate.DecodeMarks(extras[q.ID])
		if err != nil {
			return nil, fmt.Errorf("cosigner %d (old share %d) sent no valid sign-state marks: %w", q.ID, q.OldID, err)
		}
		for id, m := range marks {
			byChain[id] = append(byChain[id], m)
		}
	}
	out := map[string]signstate.Mark{}
	for id, ms := range byChain {
		out[id] = signstate.Highest(ms)
	}
	return out, nil
}

// protocol builds the resharing DKG of plan from the confirmed setup.
func protocol(plan *Plan, oldGroup *threshold.GroupKey, own *threshold.KeyShare, s ceremony.Setup) (*ceremony.Protocol, error) {
	byOld := map[int]int{}
	for _, q := range plan.Participants {
		if q.OldID != 0 {
			byOld[q.OldID] = q.ID
		}
	}
	oldParts := make([][]byte, plan.OldShares)
	dealers := map[uint16]int{}
	for j := 1; j <= plan.OldShares; j++ {
		if id, ok := byOld[j]; ok {
			oldParts[j-1] = s.Longterms[id]
			dealers[uint16(j)] = id
			continue
		}
		oldParts[j-1] = absentKey(s.CeremonyID, j)
	}
	newParts := make([][]byte, plan.Shares)
	members := map[uint16]int{}
	for i := 1; i <= plan.Shares; i++ {
		newParts[i-1] = s.Longterms[i]
		members[uint16(i)] = i
	}
	d, err := threshold.NewReshare(own, oldGroup, s.Longterm, oldParts, newParts, plan.Dealers(), plan.Threshold, s.CeremonyID)
	if err != nil {
		return nil, err
	}
	return &ceremony.Protocol{DKG: d, Dealers: dealers, Members: members}, nil
}

// absentKey is the long-term public key listed for old share j whose host
// takes no part: a point every participant derives alike from the
// ceremony id. Nobody deals as it (only the plan's dealers may), so
// whoever could compute its secret gains nothing.
func absentKey(ceremonyID []byte, j int) []byte {
	h := sha512.New()
	h.Write([]byte("cosigner reshare absent old participant v1"))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(j)))
	h.Write(ceremonyID)
	sc, _ := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil)) // 64 bytes: cannot fail
	return new(edwards25519.Point).ScalarBaseMult(sc).Bytes()
}

// checkResult checks the new share before anything is written: the same
// validator key, this cosigner's id, the plan's shape, a share on the new
// commitments.
func checkResult(ks *threshold.KeyShare, group, oldGroup *threshold.GroupKey, self int, plan *Plan) error {
	if !group.PublicKey().Equal(oldGroup.PublicKey()) {
		return fmt.Errorf("reshare: the new group key %X is not the validator key %X: nothing written; discard every share of this ceremony", group.PublicKey(), oldGroup.PublicKey())
	}
	if int(ks.ID()) != self || group.Threshold() != plan.Threshold || group.N() != plan.Shares {
		return fmt.Errorf("reshare: got share %d of a %d-of-%d group, the plan says share %d of %d-of-%d", ks.ID(), group.Threshold(), group.N(), self, plan.Threshold, plan.Shares)
	}
	if err := threshold.VerifyShare(ks, group.PublicKey()); err != nil {
		return fmt.Errorf("reshare: the new share does not verify: %w", err)
	}
	return nil
}

// writeMember writes a new member's files, each created new: the carried
// state files first (a share is never usable without its marks), then
// the group and share files (share.WriteKey: each whole or not at all,
// the share last).
func writeMember(cfg *config.Config, ks *threshold.KeyShare, group *threshold.GroupKey, epoch uint64, marks map[string]signstate.Mark) ([]string, error) {
	var files []string
	for id, m := range marks {
		p := signstate.StatePath(cfg.Path(cfg.StateDir), id)
		if err := signstate.WriteMark(p, id, m, false); err != nil {
			return files, fmt.Errorf("write the carried sign state of %s: %w", id, err)
		}
		files = append(files, p)
	}
	t := cfg.Threshold
	if err := share.WriteKey(cfg.Path(t.ShareFile), cfg.Path(t.GroupFile), ks, epoch, false); err != nil {
		if errors.Is(err, share.ErrShareInPlace) {
			return files, fmt.Errorf("%w: %v", ErrHasShare, err)
		}
		return files, err
	}
	files = append(files, cfg.Path(t.GroupFile), cfg.Path(t.ShareFile))
	// Read back as start will.
	if _, err := share.Load(cfg.Path(t.ShareFile), cfg.Path(t.GroupFile)); err != nil {
		return files, fmt.Errorf("the share written does not load: %w", err)
	}
	return files, nil
}
