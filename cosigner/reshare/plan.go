package reshare

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/cosigner/cosigner/cosigner/share"
	"github.com/cosigner/cosigner/threshold"
)

// Files of a resharing in every participant's new home.
const (
	// PlanFile holds the Plan; byte-identical in every participant's home.
	PlanFile = "reshare.toml"
	// OldGroupFile is a copy of the old cluster's group file.
	OldGroupFile = "old-group.json"
)

// Plan is a resharing as every participant agrees on it.
type Plan struct {
	// Epoch is the epoch of the new shares: the old group's plus one.
	Epoch uint64 `toml:"epoch"`
	// OldThreshold and OldShares are the old cluster's M and N.
	OldThreshold int `toml:"old_threshold"`
	OldShares    int `toml:"old_shares"`
	// Threshold and Shares are the new cluster's M' and N'.
	Threshold int `toml:"threshold"`
	Shares    int `toml:"shares"`
	// Participants are every host taking part.
	Participants []Participant `toml:"participant"`
}

// Participant is one host of a resharing.
type Participant struct {
	// ID is the cosigner id in the new cluster's certificates. 1..Shares
	// are the new members (their FROST identifier is their id); above
	// Shares, an old host that deals and retires.
	ID int `toml:"id"`
	// Address is the host:port the ceremony listens on: a member's
	// cluster gRPC address (the cosigner does not run meanwhile).
	Address string `toml:"address"`
	// OldID is the host's share id in the old cluster, 0 for a newcomer.
	// Every participant with one deals.
	OldID int `toml:"old_id"`
}

// Dealers returns the old ids that deal, sorted.
func (p *Plan) Dealers() []uint16 {
	var out []uint16
	for _, q := range p.Participants {
		if q.OldID != 0 {
			out = append(out, uint16(q.OldID))
		}
	}
	slices.Sort(out)
	return out
}

// Participant returns the participant with cosigner id id.
func (p *Plan) Participant(id int) (Participant, bool) {
	for _, q := range p.Participants {
		if q.ID == id {
			return q, true
		}
	}
	return Participant{}, false
}

// Validate checks p against the old group and its epoch: shapes, every
// member present, retiring hosts dealing, old ids and addresses unique,
// enough dealers, the next epoch.
func (p *Plan) Validate(old *threshold.GroupKey, oldEpoch share.Epoch) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := threshold.CheckThreshold(p.Threshold, p.Shares); err != nil {
		bad("threshold = %d, shares = %d: %v", p.Threshold, p.Shares, err)
	}
	if p.OldThreshold != old.Threshold() || p.OldShares != old.N() {
		bad("old_threshold = %d, old_shares = %d, the old group is %d-of-%d", p.OldThreshold, p.OldShares, old.Threshold(), old.N())
	}
	if p.Epoch != oldEpoch.Number+1 {
		bad("epoch = %d: the old group is epoch %d, so the new one is %d", p.Epoch, oldEpoch.Number, oldEpoch.Number+1)
	}
	ids, olds, addrs := map[int]bool{}, map[int]bool{}, map[string]bool{}
	for i, q := range p.Participants {
		where := fmt.Sprintf("participant[%d]", i)
		if q.ID < 1 || q.ID > 255 {
			bad("%s.id = %d: allowed are 1 to 255", where, q.ID)
		}
		if ids[q.ID] {
			bad("%s.id = %d appears twice", where, q.ID)
		}
		ids[q.ID] = true
		if _, _, err := net.SplitHostPort(q.Address); err != nil {
			bad("%s.address = %q: want host:port", where, q.Address)
		}
		if addrs[q.Address] {
			bad("%s.address = %q is used twice", where, q.Address)
		}
		addrs[q.Address] = true
		if q.OldID < 0 || q.OldID > old.N() {
			bad("%s.old_id = %d: allowed are 0 (a newcomer) and 1 to %d", where, q.OldID, old.N())
		} else if q.OldID != 0 {
			if olds[q.OldID] {
				bad("%s.old_id = %d appears twice: one old share, one host", where, q.OldID)
			}
			olds[q.OldID] = true
		}
		if q.ID > p.Shares && q.OldID == 0 {
			bad("%s: id %d is above shares = %d (a retiring host) but holds no old share (old_id = 0): it has no part", where, q.ID, p.Shares)
		}
	}
	for id := 1; id <= p.Shares; id++ {
		if !ids[id] {
			bad("new member %d is missing: list ids 1 to %d", id, p.Shares)
		}
	}
	if n := len(olds); n < old.Threshold() {
		bad("%d old shares deal, the old %d-of-%d group needs at least %d", n, old.Threshold(), old.N(), old.Threshold())
	}
	return errors.Join(errs...)
}

// Marshal renders p as PlanFile.
func (p *Plan) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The resharing plan 'cosigner reshare prepare' wrote; every participant's copy must be identical.\n")
	fmt.Fprintf(&b, "# Epoch of the new shares, the old and the new cluster's M and N.\n")
	fmt.Fprintf(&b, "epoch = %d\nold_threshold = %d\nold_shares = %d\nthreshold = %d\nshares = %d\n", p.Epoch, p.OldThreshold, p.OldShares, p.Threshold, p.Shares)
	for _, q := range p.Participants {
		role := "new member"
		switch {
		case q.ID > p.Shares:
			role = fmt.Sprintf("old share %d: deals and retires", q.OldID)
		case q.OldID != 0:
			role = fmt.Sprintf("old share %d: deals, and continues as cosigner %d", q.OldID, q.ID)
		default:
			role = fmt.Sprintf("newcomer: cosigner %d", q.ID)
		}
		fmt.Fprintf(&b, "\n# %s\n[[participant]]\nid = %d\naddress = %q\nold_id = %d\n", role, q.ID, q.Address, q.OldID)
	}
	return b.Bytes()
}

// params is the ceremony's Params: everything that must be the same on
// every participant besides the participant list.
func (p *Plan) params(old share.Epoch) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "kind: reshare\nold group: %x\nold epoch: %d\nepoch: %d\n", old.Group, old.Number, p.Epoch)
	fmt.Fprintf(&b, "old threshold: %d\nold shares: %d\nthreshold: %d\nshares: %d\n", p.OldThreshold, p.OldShares, p.Threshold, p.Shares)
	q := slices.Clone(p.Participants)
	slices.SortFunc(q, func(a, b Participant) int { return a.ID - b.ID })
	for _, x := range q {
		fmt.Fprintf(&b, "cosigner %d: old share %d\n", x.ID, x.OldID)
	}
	return []byte(b.String())
}

// LoadPlan reads a new home's PlanFile and OldGroupFile and validates the
// plan against the old group.
func LoadPlan(home string) (*Plan, *threshold.GroupKey, share.Epoch, error) {
	path := filepath.Join(home, PlanFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, share.Epoch{}, fmt.Errorf("read the resharing plan: %w", err)
	}
	var p Plan
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, nil, share.Epoch{}, fmt.Errorf("resharing plan %s: %w", path, err)
	}
	old, epoch, err := share.LoadGroupEpoch(filepath.Join(home, OldGroupFile))
	if err != nil {
		return nil, nil, share.Epoch{}, err
	}
	if err := p.Validate(old, epoch); err != nil {
		return nil, nil, share.Epoch{}, fmt.Errorf("resharing plan %s:\n%w", path, err)
	}
	return &p, old, epoch, nil
}
