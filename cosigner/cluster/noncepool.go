package cluster

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/cosigner/cosigner/threshold"
)

// BootIDSize is the size of a boot id: random, new at every process start.
const BootIDSize = 16

// BootID identifies one lifetime of a cosigner process. Commitments carry it
// so that a restarted cosigner, whose nonces died with the old process, never
// signs against a commitment it cannot hold.
type BootID [BootIDSize]byte

// NewBootID draws a fresh boot id.
func NewBootID() (BootID, error) {
	var b BootID
	_, err := rand.Read(b[:])
	return b, err
}

// PublishedCommitment is a nonce commitment as the leader holds it: the
// commitment, the process lifetime that holds its nonces, and the handle by
// which that process finds them.
type PublishedCommitment struct {
	Commitment threshold.Commitment
	BootID     BootID
	Handle     uint64
}

// NoncePool holds this process's FROST nonces, in memory only. Each nonce is
// handed out once by Take and destroyed when evicted; all die with the
// process. It is safe for concurrent use.
type NoncePool struct {
	share  *threshold.KeyShare
	bootID BootID
	max    int

	mu     sync.Mutex
	next   uint64
	nonces map[uint64]*threshold.Nonce
	order  []uint64 // handles, oldest first, for eviction
}

// DefaultNoncePoolSize bounds the nonces one cosigner keeps outstanding.
const DefaultNoncePoolSize = 4096

// NewNoncePool returns an empty pool for share, tagged with bootID, holding at
// most max nonces (older ones are destroyed to make room).
func NewNoncePool(share *threshold.KeyShare, bootID BootID, max int) *NoncePool {
	if max <= 0 {
		max = DefaultNoncePoolSize
	}
	return &NoncePool{share: share, bootID: bootID, max: max, nonces: map[uint64]*threshold.Nonce{}, next: 1}
}

// BootID returns the boot id the pool's commitments carry.
func (p *NoncePool) BootID() BootID { return p.bootID }

// Len returns the number of nonces outstanding.
func (p *NoncePool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.nonces)
}

// Generate draws n fresh nonces and returns their commitments to publish.
func (p *NoncePool) Generate(n int) ([]PublishedCommitment, error) {
	if n > p.max {
		n = p.max
	}
	fresh := make([]*threshold.Nonce, n)
	for i := range fresh {
		var err error
		if fresh[i], err = threshold.NewNonce(p.share, nil); err != nil {
			for _, f := range fresh[:i] {
				f.Destroy()
			}
			return nil, fmt.Errorf("generate nonces: %w", err)
		}
	}
	out := make([]PublishedCommitment, n)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, nonce := range fresh {
		h := p.next
		p.next++
		p.nonces[h] = nonce
		p.order = append(p.order, h)
		out[i] = PublishedCommitment{Commitment: nonce.Commitment(), BootID: p.bootID, Handle: h}
	}
	for len(p.nonces) > p.max {
		old := p.order[0]
		p.order = p.order[1:]
		if nonce, ok := p.nonces[old]; ok {
			nonce.Destroy()
			delete(p.nonces, old)
		}
	}
	if len(p.order) > 2*p.max {
		p.compact()
	}
	return out, nil
}

// compact drops handles already taken from the eviction order.
func (p *NoncePool) compact() {
	kept := p.order[:0]
	for _, h := range p.order {
		if _, ok := p.nonces[h]; ok {
			kept = append(kept, h)
		}
	}
	p.order = kept
}

// Take removes and returns the nonce behind c if c is one of this process's
// outstanding commitments (same boot id, known handle, same points). The
// nonce is the caller's to use once or destroy; Take never returns it again.
func (p *NoncePool) Take(c PublishedCommitment) (*threshold.Nonce, error) {
	if c.BootID != p.bootID {
		return nil, fmt.Errorf("commitment %d is from another run of cosigner %d (boot id %x, now %x)", c.Handle, p.share.ID(), c.BootID[:4], p.bootID[:4])
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	nonce, ok := p.nonces[c.Handle]
	if !ok {
		return nil, fmt.Errorf("commitment %d of cosigner %d is unknown or already used", c.Handle, p.share.ID())
	}
	delete(p.nonces, c.Handle)
	if !nonce.Commitment().Equal(c.Commitment) {
		// Consumed all the same: a handle is never offered twice.
		nonce.Destroy()
		return nil, fmt.Errorf("commitment %d of cosigner %d does not match the nonce it names", c.Handle, p.share.ID())
	}
	return nonce, nil
}

// Resolve returns the pool's own decoded commitment for a commitment on
// the wire (signer id, boot id, handle, hiding and binding points) that
// names this process and carries exactly the same points; otherwise false,
// and the caller decodes it as any other. It spares the point checks of a
// cosigner's own commitments (a scalar multiplication each).
func (p *NoncePool) Resolve(signerID uint32, bootID []byte, handle uint64, hiding, binding []byte) (PublishedCommitment, bool) {
	if int(signerID) != int(p.share.ID()) || !bytes.Equal(bootID, p.bootID[:]) {
		return PublishedCommitment{}, false
	}
	p.mu.Lock()
	nonce, ok := p.nonces[handle]
	p.mu.Unlock()
	if !ok {
		return PublishedCommitment{}, false
	}
	cm := nonce.Commitment()
	enc := cm.Bytes()
	if !bytes.Equal(enc[2:2+threshold.ElementSize], hiding) || !bytes.Equal(enc[2+threshold.ElementSize:], binding) {
		return PublishedCommitment{}, false
	}
	return PublishedCommitment{Commitment: cm, BootID: p.bootID, Handle: handle}, true
}

// setHandleBase makes the pool hand out handles from base+1, apart from
// the other pools of its keyring (NewKeyring), before it hands out any.
func (p *NoncePool) setHandleBase(base uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next == 1 {
		p.next = base + 1
	}
}

// Close destroys every outstanding nonce.
func (p *NoncePool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, n := range p.nonces {
		n.Destroy()
		delete(p.nonces, h)
	}
	p.order = nil
}
