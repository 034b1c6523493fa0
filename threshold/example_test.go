package threshold_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/cosigner/cosigner/threshold"
)

// A 2-of-3 signature, all in one process. In cosigner each step runs on a
// different machine: the shard command deals, every cosigner makes nonces
// and signs, the leader chooses the list, checks the shares and aggregates.
func Example() {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)

	// shard: one key share per cosigner, checked against the validator key.
	dealing, err := threshold.Deal(seed, 2, 3, nil)
	if err != nil {
		panic(err)
	}
	for _, share := range dealing.Shares {
		if err := threshold.VerifyShare(share, pub); err != nil {
			panic(err)
		}
	}

	// Round one: cosigners 1 and 3 publish commitments to fresh nonces.
	signers := []*threshold.KeyShare{dealing.Shares[0], dealing.Shares[2]}
	var nonces []*threshold.Nonce
	var list []threshold.Commitment // sorted by identifier
	for _, share := range signers {
		nonce, err := threshold.NewNonce(share, nil)
		if err != nil {
			panic(err)
		}
		nonces = append(nonces, nonce)
		list = append(list, nonce.Commitment())
	}

	// Round two: each cosigner signs the message against the list.
	msg := []byte("sign bytes of a precommit")
	var shares []threshold.SignatureShare
	for i, share := range signers {
		pkg, err := threshold.NewSigningPackage(share.Group(), msg, list)
		if err != nil {
			panic(err)
		}
		s, err := threshold.SignShare(share, nonces[i], pkg)
		if err != nil {
			panic(err)
		}
		shares = append(shares, s)
	}

	// The coordinator checks each share and aggregates.
	pkg, err := threshold.NewSigningPackage(dealing.Group, msg, list)
	if err != nil {
		panic(err)
	}
	for _, s := range shares {
		if err := threshold.VerifySignatureShare(pkg, s); err != nil {
			panic(err) // names the cosigner: threshold.Culprits(err)
		}
	}
	sig, err := threshold.Aggregate(pkg, shares)
	if err != nil {
		panic(err)
	}
	fmt.Println(ed25519.Verify(pub, msg, sig))
	// Output: true
}
