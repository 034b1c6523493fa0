package threshold

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

type benchRound struct {
	d      *Dealing
	msg    []byte
	nonces map[uint16]*Nonce
	list   []Commitment
	pkg    *SigningPackage
	shares []SignatureShare
}

func newBenchRound(b *testing.B, m, n int) *benchRound {
	b.Helper()
	_, seed := cometKey(b)
	d, err := Deal(seed, m, n, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := &benchRound{d: d, msg: randomMessage(b)}
	signers := make([]uint16, m)
	for i := range signers {
		signers[i] = uint16(i + 1)
	}
	r.nonces, r.list = round(b, d, signers)
	if r.pkg, err = NewSigningPackage(d.Group, r.msg, r.list); err != nil {
		b.Fatal(err)
	}
	r.shares = signAll(b, d, r.msg, r.nonces, r.list)
	return r
}

func BenchmarkNewNonce(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewNonce(r.d.Shares[0], nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignShare is one cosigner's round two: build the signing package
// from the message and the list, and sign.
func BenchmarkSignShare(b *testing.B) {
	for _, tc := range []struct{ m, n int }{{2, 3}, {3, 5}} {
		b.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(b *testing.B) {
			r := newBenchRound(b, tc.m, tc.n)
			share := r.d.Shares[0]
			// Fresh nonces are made outside the timer; the list keeps the
			// other participants' commitments.
			nonces := make([]*Nonce, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				if len(nonces) == 0 {
					b.StopTimer()
					for range cap(nonces) {
						n, err := NewNonce(share, nil)
						if err != nil {
							b.Fatal(err)
						}
						nonces = append(nonces, n)
					}
					b.StartTimer()
				}
				n := nonces[len(nonces)-1]
				nonces = nonces[:len(nonces)-1]
				list := r.list
				list[0] = n.Commitment()
				pkg, err := NewSigningPackage(share.Group(), r.msg, list)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := SignShare(share, n, pkg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkNewSigningPackage(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewSigningPackage(r.d.Group, r.msg, r.list); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifySignatureShare(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifySignatureShare(r.pkg, r.shares[0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAggregate(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Aggregate(r.pkg, r.shares); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign2of3 is a whole 2-of-3 signature in one process: both
// cosigners commit, build their signing packages and sign; the coordinator
// builds its package, verifies each share and aggregates (which verifies
// the signature).
func BenchmarkSign2of3(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	shares := r.d.Shares[:2]
	b.ReportAllocs()
	for b.Loop() {
		var nonces [2]*Nonce
		list := make([]Commitment, 2)
		for i, s := range shares {
			n, err := NewNonce(s, nil)
			if err != nil {
				b.Fatal(err)
			}
			nonces[i], list[i] = n, n.Commitment()
		}
		sigShares := make([]SignatureShare, 2)
		for i, s := range shares {
			pkg, err := NewSigningPackage(s.Group(), r.msg, list)
			if err != nil {
				b.Fatal(err)
			}
			if sigShares[i], err = SignShare(s, nonces[i], pkg); err != nil {
				b.Fatal(err)
			}
		}
		pkg, err := NewSigningPackage(r.d.Group, r.msg, list)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range sigShares {
			if err := VerifySignatureShare(pkg, s); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := Aggregate(pkg, sigShares); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSign2of3Optimistic is BenchmarkSign2of3 without the separate
// share checks: Aggregate verifies the signature and checks the shares only
// if it fails, which is how a coordinator may run.
func BenchmarkSign2of3Optimistic(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	shares := r.d.Shares[:2]
	b.ReportAllocs()
	for b.Loop() {
		var nonces [2]*Nonce
		list := make([]Commitment, 2)
		for i, s := range shares {
			n, err := NewNonce(s, nil)
			if err != nil {
				b.Fatal(err)
			}
			nonces[i], list[i] = n, n.Commitment()
		}
		sigShares := make([]SignatureShare, 2)
		for i, s := range shares {
			pkg, err := NewSigningPackage(s.Group(), r.msg, list)
			if err != nil {
				b.Fatal(err)
			}
			if sigShares[i], err = SignShare(s, nonces[i], pkg); err != nil {
				b.Fatal(err)
			}
		}
		pkg, err := NewSigningPackage(r.d.Group, r.msg, list)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Aggregate(pkg, sigShares); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Sign is the single-key baseline.
func BenchmarkEd25519Sign(b *testing.B) {
	priv, _ := cometKey(b)
	key := ed25519.PrivateKey(priv)
	msg := randomMessage(b)
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(key, msg)
	}
}

func BenchmarkDecodeCommitment(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	enc := r.list[0].Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommitment(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitmentFromEighths is DecodeCommitment's work for a
// commitment sent as its eighths: no prime-order check, a multiplication by
// the cofactor per point.
func BenchmarkCommitmentFromEighths(b *testing.B) {
	r := newBenchRound(b, 2, 3)
	h8, b8, ok := r.list[0].Eighths()
	if !ok {
		b.Fatal("no eighths")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CommitmentFromEighths(r.list[0].ID(), h8, b8); err != nil {
			b.Fatal(err)
		}
	}
}
