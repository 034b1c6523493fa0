package cluster

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/cosigner/cosigner/cosigner/signstate"
	"github.com/cosigner/cosigner/raft"
)

// Several validator keys in one cluster.
//
// A cluster may sign several chains with different validator keys, as
// Horcrux does: each key has its own share, its own ShareSigner and its own
// NoncePool, and each chain is signed by exactly one key. Requests are
// bound to their key on the wire (GetNonceCommitments and Sign carry the
// validator public key), and the nonce handles of two pools never overlap,
// so a commitment of key A names no nonce of key B: a request routed to key
// B can consume no nonce of, and yield no share of, key A.

// Keyring is a cosigner's share signers, one per validator key, and the
// chains each signs. It is read-only after construction and safe for
// concurrent use.
type Keyring struct {
	signers []*ShareSigner
	// pubs[i] is signers[i]'s validator key, copied once: ForKey runs on
	// every share request.
	pubs    []ed25519.PublicKey
	byChain map[string]*ShareSigner
}

// handleStride separates the nonce handles of a keyring's pools: pool i
// hands out handles from i*handleStride+1, and no pool hands out 2^48
// handles in one process lifetime.
const handleStride = 1 << 48

// NewKeyring returns the keyring of signers, which must share one cosigner
// id, threshold and boot id, hold different validator keys and sign
// disjoint chains. It numbers their pools' handles apart; call it before
// any pool hands out a commitment.
func NewKeyring(signers ...*ShareSigner) (*Keyring, error) {
	if len(signers) == 0 {
		return nil, errors.New("keyring: no share signer")
	}
	k := &Keyring{signers: signers, byChain: map[string]*ShareSigner{}}
	first := signers[0]
	for i, s := range signers {
		g, g0 := s.share.Group(), first.share.Group()
		if s.ID() != first.ID() || g.Threshold() != g0.Threshold() || g.N() != g0.N() {
			return nil, fmt.Errorf("keyring: key %X is cosigner %d of %d-of-%d, key %X cosigner %d of %d-of-%d: every key of a cluster has the same shape and ids",
				s.PublicKey(), s.ID(), g.Threshold(), g.N(), first.PublicKey(), first.ID(), g0.Threshold(), g0.N())
		}
		if s.pool.BootID() != first.pool.BootID() {
			return nil, errors.New("keyring: the nonce pools carry different boot ids")
		}
		for _, o := range signers[:i] {
			if bytes.Equal(o.PublicKey(), s.PublicKey()) {
				return nil, fmt.Errorf("validator key %X is configured twice, with different shares: point every chain of one key at the same group_file and share", s.PublicKey())
			}
		}
		for id := range s.chains {
			if o, ok := k.byChain[id]; ok {
				return nil, fmt.Errorf("keyring: chain %q is signed by key %X and by key %X", id, o.PublicKey(), s.PublicKey())
			}
			k.byChain[id] = s
		}
		s.pool.setHandleBase(uint64(i) * handleStride)
		k.pubs = append(k.pubs, s.PublicKey())
	}
	return k, nil
}

// Signers returns the share signers, one per key, in configuration order.
func (k *Keyring) Signers() []*ShareSigner { return k.signers }

// ID returns the cosigner's FROST identifier (the same in every key).
func (k *Keyring) ID() int { return k.signers[0].ID() }

// BootID returns the boot id every pool's commitments carry.
func (k *Keyring) BootID() BootID { return k.signers[0].pool.BootID() }

// ForChain returns the signer of chainID's key, or nil when this cosigner
// does not sign for chainID.
func (k *Keyring) ForChain(chainID string) *ShareSigner { return k.byChain[chainID] }

// ErrUnknownKey is returned for a validator key this cosigner holds no
// share of.
var ErrUnknownKey = errors.New("no share of this validator key here")

// ForKey returns the signer of validator key pub. An empty pub names the
// only key of a keyring holding one (a leader of an older version sends
// none); with several it is refused.
func (k *Keyring) ForKey(pub []byte) (*ShareSigner, error) {
	if len(pub) == 0 {
		if len(k.signers) == 1 {
			return k.signers[0], nil
		}
		return nil, fmt.Errorf("the request names no validator key and cosigner %d holds %d: upgrade the leader", k.ID(), len(k.signers))
	}
	for i, p := range k.pubs {
		if bytes.Equal(p, pub) {
			return k.signers[i], nil
		}
	}
	return nil, fmt.Errorf("%w: cosigner %d holds no share of validator key %X", ErrUnknownKey, k.ID(), pub)
}

// Mark returns the high-water mark of chainID.
func (k *Keyring) Mark(chainID string) (signstate.Mark, bool) {
	if s := k.ForChain(chainID); s != nil {
		return s.Mark(chainID)
	}
	return signstate.Mark{}, false
}

// HeightLimit returns the highest height chainID's share signer releases a
// share for now, and false when none signs it or its bound is off.
func (k *Keyring) HeightLimit(chainID string) (int64, bool) {
	if s := k.ForChain(chainID); s != nil {
		return s.HeightLimit(chainID)
	}
	return 0, false
}

// PublicKey returns the validator key that signs chainID, or nil.
func (k *Keyring) PublicKey(chainID string) ed25519.PublicKey {
	if s := k.ForChain(chainID); s != nil {
		return s.PublicKey()
	}
	return nil
}

// NoncesAvailable returns the nonces outstanding in every pool.
func (k *Keyring) NoncesAvailable() int {
	n := 0
	for _, s := range k.signers {
		n += s.pool.Len()
	}
	return n
}

// CheckRecord is the raft.RecordCheck of this cosigner: the record is
// held to the height bound of its chain's signer; records of chains this
// cosigner does not sign for pass.
func (k *Keyring) CheckRecord(r raft.Record) error {
	if s := k.ForChain(r.ChainID); s != nil {
		return s.CheckRecord(r)
	}
	return nil
}

// Close destroys every outstanding nonce of every pool.
func (k *Keyring) Close() {
	for _, s := range k.signers {
		s.pool.Close()
	}
}
