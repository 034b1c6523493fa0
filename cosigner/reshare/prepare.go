package reshare

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/config"
	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/internal/fsutil"
)

// PrepareOptions say what new cluster Prepare writes the homes of.
type PrepareOptions struct {
	// Options are the new cluster's M', N', member addresses and chain,
	// as for `shard`.
	share.Options
	// OldGroup is the old cluster's group file.
	OldGroup string
	// Keep maps an old share id to the new cosigner id its host continues
	// as (1..Shares).
	Keep map[int]int
	// Retire maps an old share id whose host deals and leaves to the
	// host:port its ceremony listens on.
	Retire map[int]string
}

// RetiringDir is the directory under out of the host that retires with
// old share oldID.
func RetiringDir(out string, oldID int) string {
	return filepath.Join(out, "retiring-"+strconv.Itoa(oldID))
}

// Prepare writes, under out (which must not exist), the homes of a
// resharing: share.Dir(out, i) for each new member i, a cosigner home
// without a share (cosigner.toml, cluster certificate of a fresh CA whose
// key is discarded before Prepare returns, identity, empty state
// directory), and RetiringDir(out, old) for each retiring host (its
// certificate only); every one with the plan and a copy of the old group
// file. It returns the plan.
func Prepare(out string, opts PrepareOptions) (*Plan, error) {
	oldData, err := os.ReadFile(opts.OldGroup)
	if err != nil {
		return nil, fmt.Errorf("read the old group file: %w", err)
	}
	old, oldEpoch, err := share.LoadGroupEpoch(opts.OldGroup)
	if err != nil {
		return nil, err
	}
	peers, err := share.Peers(opts.Options)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Epoch: oldEpoch.Number + 1, OldThreshold: old.Threshold(), OldShares: old.N(),
		Threshold: opts.Threshold, Shares: opts.Shares}
	oldOf := map[int]int{}
	for o, n := range opts.Keep {
		if n < 1 || n > opts.Shares {
			return nil, fmt.Errorf("--keep %d=%d: the new cosigner ids are 1 to %d", o, n, opts.Shares)
		}
		if prev, dup := oldOf[n]; dup {
			return nil, fmt.Errorf("--keep %d=%d and --keep %d=%d: one new cosigner, two old shares", prev, n, o, n)
		}
		if _, both := opts.Retire[o]; both {
			return nil, fmt.Errorf("old share %d is both kept and retired", o)
		}
		oldOf[n] = o
	}
	for i, p := range peers {
		plan.Participants = append(plan.Participants, Participant{ID: i + 1, Address: p.Address, OldID: oldOf[i+1]})
	}
	retiring := make([]int, 0, len(opts.Retire))
	for o := range opts.Retire {
		retiring = append(retiring, o)
	}
	slices.Sort(retiring)
	for k, o := range retiring {
		plan.Participants = append(plan.Participants, Participant{ID: opts.Shares + 1 + k, Address: opts.Retire[o], OldID: o})
	}
	if err := plan.Validate(old, oldEpoch); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(out); err == nil {
		return nil, fmt.Errorf("%w: %s", share.ErrOutExists, out)
	}
	ca, err := clustertls.NewCA()
	if err != nil {
		return nil, err
	}
	defer ca.Discard()
	if err := fsutil.MkdirAll(out, 0o700); err != nil {
		return nil, err
	}
	planData := plan.Marshal()
	for _, q := range plan.Participants {
		cert, err := ca.Issue(q.ID)
		if err != nil {
			return nil, err
		}
		if q.ID <= plan.Shares {
			cfg := share.HomeConfig(q.ID, peers, opts.Options)
			err = share.WriteHome(share.Dir(out, q.ID), cfg, nil, plan.Epoch, ca.CertPEM(), cert)
		} else {
			err = writeTLSOnly(RetiringDir(out, q.OldID), ca.CertPEM(), cert)
		}
		if err != nil {
			return nil, fmt.Errorf("cosigner %d: %w", q.ID, err)
		}
		dir := homeDir(out, q, plan)
		for _, f := range []struct {
			name string
			data []byte
		}{{PlanFile, planData}, {OldGroupFile, oldData}} {
			if err := fsutil.WriteNew(filepath.Join(dir, f.name), f.data); err != nil {
				return nil, err
			}
		}
		if err := fsutil.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func homeDir(out string, q Participant, p *Plan) string {
	if q.ID <= p.Shares {
		return share.Dir(out, q.ID)
	}
	return RetiringDir(out, q.OldID)
}

// writeTLSOnly writes a retiring host's new home: its certificate.
func writeTLSOnly(dir string, caPEM []byte, cert *clustertls.Cert) error {
	if err := fsutil.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return clustertls.WriteFiles(filepath.Join(dir, config.DefaultConfig().Threshold.TLSDir), caPEM, cert)
}
