package cluster

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cosigner/cosigner/cosigner/metrics"
	"github.com/cosigner/cosigner/cosigner/share"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
)

// LogEpochMismatch is logged (once per peer and epoch, on each side) when a
// cosigner of another epoch calls or answers.
const LogEpochMismatch = "cosigner of another epoch refused"

// EpochMismatchError is a peer holding a share of another epoch than this
// cosigner: their shares cannot sign together.
type EpochMismatchError struct {
	// Peer is the other cosigner's id, Self this one's.
	Peer, Self int
	// Theirs is the peer's epoch; Unknown reports a peer that sent none
	// (a build before epochs).
	Theirs  share.Epoch
	Unknown bool
	Ours    share.Epoch
}

func (e *EpochMismatchError) Error() string {
	theirs := e.Theirs.String()
	if e.Unknown {
		theirs = "no epoch (a build before epochs: epoch 1, group unknown)"
	}
	return fmt.Sprintf("cosigner %d holds %s, cosigner %d holds %s: shares of different epochs cannot sign together",
		e.Peer, theirs, e.Self, e.Ours)
}

// epochHint says what an operator does about a mismatch.
const epochHint = "a host that missed a 'cosigner reshare', or runs from its old home, must not sign with the cluster: " +
	"start it from the home the reshare wrote, or stop it (docs/threshold.md, 'Resharing')"

// EpochGuard compares the epoch peers send with this cosigner's, on both
// sides of every cluster RPC. It logs a mismatch once per peer, side and
// epoch (probes repeat every second) and counts every one. It is safe for
// concurrent use.
type EpochGuard struct {
	own     share.Epoch
	self    int
	log     *slog.Logger
	metrics *metrics.Metrics

	// mu guards logged: the last mismatching epoch logged per peer and
	// side.
	mu     sync.Mutex
	logged map[epochKey]share.Epoch
}

type epochKey struct {
	peer int
	side string
}

// NewEpochGuard returns the guard of cosigner self holding a share of epoch
// own. m may be nil.
func NewEpochGuard(own share.Epoch, self int, log *slog.Logger, m *metrics.Metrics) *EpochGuard {
	return &EpochGuard{own: own, self: self, log: log, metrics: m, logged: map[epochKey]share.Epoch{}}
}

// Epoch returns this cosigner's epoch.
func (g *EpochGuard) Epoch() share.Epoch { return g.own }

// Proto returns this cosigner's epoch as the wire carries it.
func (g *EpochGuard) Proto() *cosignerv1.Epoch {
	return &cosignerv1.Epoch{Number: g.own.Number, Group: append([]byte(nil), g.own.Group[:]...)}
}

// Check returns nil when theirs, sent by cosigner peer, is this cosigner's
// epoch, else an *EpochMismatchError, logged and counted under side
// (metrics.SideServed when this cosigner serves peer's request,
// metrics.SideCalled when it reads peer's answer). A nil theirs comes from
// a build before epochs and is accepted only while this cosigner is of
// share.FirstEpoch.
func (g *EpochGuard) Check(peer int, theirs *cosignerv1.Epoch, side string) error {
	var err *EpochMismatchError
	switch {
	case theirs == nil:
		if g.own.Number == share.FirstEpoch {
			return nil
		}
		err = &EpochMismatchError{Peer: peer, Self: g.self, Unknown: true, Ours: g.own}
	default:
		var e share.Epoch
		e.Number = theirs.GetNumber()
		copy(e.Group[:], theirs.GetGroup())
		if len(theirs.GetGroup()) == sha256.Size && e == g.own {
			return nil
		}
		err = &EpochMismatchError{Peer: peer, Self: g.self, Theirs: e, Ours: g.own}
	}
	g.report(peer, side, err.Theirs, err)
	return err
}

// Refused records that cosigner peer refused our epoch without telling
// which it holds (a ping answered FAILED_PRECONDITION; err carries its
// message): logged and counted as Check does, under metrics.SideCalled.
func (g *EpochGuard) Refused(peer int, err error) {
	g.report(peer, metrics.SideCalled, share.Epoch{}, err)
}

// report counts a mismatch with peer and logs it at warn the first time
// for this peer, side and epoch of theirs, at debug after that.
func (g *EpochGuard) report(peer int, side string, theirs share.Epoch, err error) {
	g.metrics.PeerEpochMismatch(peer, side)
	k := epochKey{peer, side}
	g.mu.Lock()
	last, seen := g.logged[k]
	g.logged[k] = theirs
	g.mu.Unlock()
	if !seen || last != theirs {
		g.log.Warn(LogEpochMismatch, "peer", peer, "side", side, "err", err.Error(), "hint", epochHint)
	} else {
		g.log.Debug(LogEpochMismatch, "peer", peer, "side", side, "err", err.Error())
	}
}
