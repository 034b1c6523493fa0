package share

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/cosigner/cosigner/threshold"
)

// FirstEpoch is the epoch of a cluster's first shares: those `shard` deals
// and those of a distributed key generation. Share and group files written
// before epochs existed carry none and are read as FirstEpoch.
const FirstEpoch = 1

// Epoch names one generation of a cluster's shares. Every resharing makes a
// new polynomial, hence new Feldman commitments, and writes files one epoch
// number higher: cosigners of different epochs hold shares of the same
// validator key that cannot be combined, and the cluster refuses a peer of
// another epoch (see cluster.Service).
//
// Number is for people; Group, the SHA-256 of the group's commitments
// (threshold.GroupKey.Bytes), is what cosigners compare: two dealings that
// happen to carry the same number (two separate reshares of one old
// cluster) still differ in Group.
type Epoch struct {
	Number uint64
	Group  [sha256.Size]byte
}

// EpochOf returns epoch number of group g.
func EpochOf(g *threshold.GroupKey, number uint64) Epoch {
	return Epoch{Number: number, Group: sha256.Sum256(g.Bytes())}
}

// Short returns the first 8 hex digits of e.Group, enough for people to
// tell two groups apart in logs.
func (e Epoch) Short() string { return hex.EncodeToString(e.Group[:4]) }

// String renders e as "epoch 2 (group 1a2b3c4d)".
func (e Epoch) String() string { return fmt.Sprintf("epoch %d (group %s)", e.Number, e.Short()) }

// epochNumber returns a file's epoch field, FirstEpoch when absent.
func epochNumber(n uint64) uint64 {
	if n == 0 {
		return FirstEpoch
	}
	return n
}
