package threshold

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
)

// subsets returns every sorted subset of size m of 1..n.
func subsets(m, n int) [][]uint16 {
	var out [][]uint16
	var rec func(start int, cur []uint16)
	rec = func(start int, cur []uint16) {
		if len(cur) == m {
			out = append(out, slices.Clone(cur))
			return
		}
		for i := start; i <= n; i++ {
			rec(i+1, append(cur, uint16(i)))
		}
	}
	rec(1, nil)
	return out
}

// cometKey returns a fresh CometBFT consensus key and its seed.
func cometKey(t testing.TB) (cmted25519.PrivKey, []byte) {
	t.Helper()
	priv := cmted25519.GenPrivKey()
	return priv, priv[:ed25519.SeedSize]
}

func randomMessage(t testing.TB) []byte {
	t.Helper()
	msg := make([]byte, 120)
	if _, err := rand.Read(msg); err != nil {
		t.Fatal(err)
	}
	return msg
}

// round runs round one for the signers and returns their nonces, by
// identifier, and the sorted commitment list.
func round(t testing.TB, d *Dealing, signers []uint16) (map[uint16]*Nonce, []Commitment) {
	t.Helper()
	nonces := make(map[uint16]*Nonce)
	var list []Commitment
	for _, id := range signers {
		n, err := NewNonce(d.Shares[id-1], nil)
		if err != nil {
			t.Fatal(err)
		}
		nonces[id] = n
		list = append(list, n.Commitment())
	}
	return nonces, list
}

// signAll has every signer build its own signing package and sign.
func signAll(t testing.TB, d *Dealing, msg []byte, nonces map[uint16]*Nonce, list []Commitment) []SignatureShare {
	t.Helper()
	var shares []SignatureShare
	for _, c := range list {
		share := d.Shares[c.ID()-1]
		pkg, err := NewSigningPackage(share.Group(), msg, list)
		if err != nil {
			t.Fatal(err)
		}
		s, err := SignShare(share, nonces[c.ID()], pkg)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, s)
	}
	return shares
}

func TestEverySubsetSigns(t *testing.T) {
	for _, tc := range []struct{ m, n int }{{2, 3}, {3, 5}, {4, 7}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			priv, seed := cometKey(t)
			pub := priv.PubKey()
			d, err := Deal(seed, tc.m, tc.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.Group.PublicKey(), pub.Bytes()) {
				t.Fatalf("group key %x, CometBFT key %x", d.Group.PublicKey(), pub.Bytes())
			}
			for _, s := range d.Shares {
				if err := VerifyShare(s, pub.Bytes()); err != nil {
					t.Fatal(err)
				}
			}
			for _, signers := range subsets(tc.m, tc.n) {
				msg := randomMessage(t)
				nonces, list := round(t, d, signers)
				shares := signAll(t, d, msg, nonces, list)

				// The coordinator's view: only public data.
				pkg, err := NewSigningPackage(d.Group, msg, list)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range shares {
					if err := VerifySignatureShare(pkg, s); err != nil {
						t.Errorf("signers %v: %v", signers, err)
					}
				}
				slices.Reverse(shares) // any order aggregates
				sig, err := Aggregate(pkg, shares)
				if err != nil {
					t.Fatalf("signers %v: %v", signers, err)
				}
				if !ed25519.Verify(ed25519.PublicKey(pub.Bytes()), msg, sig) {
					t.Errorf("signers %v: crypto/ed25519 rejects the signature", signers)
				}
				if !pub.VerifySignature(msg, sig) {
					t.Errorf("signers %v: CometBFT rejects the signature", signers)
				}
			}
		})
	}
}

func TestSignWithAllParticipants(t *testing.T) {
	// More than M signers (up to N) also sign: the list may be longer.
	_, seed := cometKey(t)
	d, err := Deal(seed, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := randomMessage(t)
	nonces, list := round(t, d, []uint16{1, 2, 3, 4, 5})
	shares := signAll(t, d, msg, nonces, list)
	pkg, err := NewSigningPackage(d.Group, msg, list)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := Aggregate(pkg, shares)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(d.Group.PublicKey(), msg, sig) {
		t.Error("crypto/ed25519 rejects the signature")
	}
}

func TestFewerThanThresholdFails(t *testing.T) {
	_, seed := cometKey(t)
	d, err := Deal(seed, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := randomMessage(t)
	nonces, list := round(t, d, []uint16{1, 2})
	if _, err := NewSigningPackage(d.Group, msg, list); err == nil {
		t.Fatal("a signing package with 2 of 3 commitments was accepted")
	}

	// Three commitments but only two shares: aggregation refuses.
	n3, err := NewNonce(d.Shares[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	list = append(list, n3.Commitment())
	nonces[3] = n3
	shares := signAll(t, d, msg, nonces, list)
	pkg, err := NewSigningPackage(d.Group, msg, list)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Aggregate(pkg, shares[:2]); err == nil {
		t.Error("aggregating 2 shares of 3 succeeded")
	}

	// Nor does a 2-of-5 group with the same key: thresholds of at most
	// N/2 are refused.
	if _, err := NewGroupKey(5, d.Group.Commitments()[:2]); err == nil {
		t.Error("a 2-of-5 group key was accepted")
	}
}

func TestTamperedShareNamesSigner(t *testing.T) {
	_, seed := cometKey(t)
	d, err := Deal(seed, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := randomMessage(t)
	nonces, list := round(t, d, []uint16{1, 3, 4})
	shares := signAll(t, d, msg, nonces, list)
	pkg, err := NewSigningPackage(d.Group, msg, list)
	if err != nil {
		t.Fatal(err)
	}
	shares[1].Z.Add(&shares[1].Z, scalarOne()) // participant 3

	err = VerifySignatureShare(pkg, shares[1])
	var se *ShareError
	if !errors.As(err, &se) || se.ID != 3 {
		t.Errorf("VerifySignatureShare: %v, want a ShareError for participant 3", err)
	}
	for _, i := range []int{0, 2} {
		if err := VerifySignatureShare(pkg, shares[i]); err != nil {
			t.Errorf("honest share rejected: %v", err)
		}
	}

	sig, err := Aggregate(pkg, shares)
	if err == nil {
		t.Fatalf("Aggregate accepted a tampered share: %x", sig)
	}
	if !errors.Is(err, ErrInvalidShare) || !slices.Equal(Culprits(err), []uint16{3}) || !strings.Contains(err.Error(), "participant 3") {
		t.Errorf("Aggregate: %v (culprits %v), want participant 3 named", err, Culprits(err))
	}

	// A share with a wrong identifier is refused too.
	if err := VerifySignatureShare(pkg, SignatureShare{ID: 2, Z: shares[0].Z}); !errors.Is(err, ErrInvalidShare) {
		t.Errorf("share of a participant outside the list: %v", err)
	}
}

func TestWrongCommitmentNamesSigner(t *testing.T) {
	_, seed := cometKey(t)
	d, err := Deal(seed, 3, 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := randomMessage(t)
	nonces, list := round(t, d, []uint16{2, 4, 5})

	// Participant 4's entry is a commitment to other nonces (a stale or
	// forged commitment).
	other, err := NewNonce(d.Shares[3], nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(list)
	bad[1] = other.Commitment()
	pkgBad, err := NewSigningPackage(d.Group, msg, bad)
	if err != nil {
		t.Fatal(err)
	}

	// An honest participant 4 refuses a list without its commitment, and
	// keeps its nonce.
	if _, err := SignShare(d.Shares[3], nonces[4], pkgBad); err == nil || !strings.Contains(err.Error(), "participant 4") {
		t.Errorf("participant 4 signed a list without its commitment: %v", err)
	}
	if nonces[4].Used() {
		t.Error("refusing the list consumed the nonce")
	}

	// Participants 2 and 5 sign the bad list; participant 4 signs with the
	// nonces it committed to in the good list.
	var shares []SignatureShare
	for _, id := range []uint16{2, 5} {
		s, err := SignShare(d.Shares[id-1], nonces[id], pkgBad)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, s)
	}
	pkgGood, err := NewSigningPackage(d.Group, msg, list)
	if err != nil {
		t.Fatal(err)
	}
	s4, err := SignShare(d.Shares[3], nonces[4], pkgGood)
	if err != nil {
		t.Fatal(err)
	}
	shares = append(shares, s4)
	_, err = Aggregate(pkgBad, shares)
	if !slices.Equal(Culprits(err), []uint16{4}) {
		t.Errorf("Aggregate: %v, want participant 4 named", err)
	}
}

func TestNonceUsedOnce(t *testing.T) {
	_, seed := cometKey(t)
	d, err := Deal(seed, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := randomMessage(t)
	nonces, list := round(t, d, []uint16{1, 2})
	pkg, err := NewSigningPackage(d.Group, msg, list)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("second sign", func(t *testing.T) {
		if _, err := SignShare(d.Shares[0], nonces[1], pkg); err != nil {
			t.Fatal(err)
		}
		if _, err := SignShare(d.Shares[0], nonces[1], pkg); !errors.Is(err, ErrNonceUsed) {
			t.Errorf("second use: %v, want ErrNonceUsed", err)
		}
	})

	t.Run("destroyed", func(t *testing.T) {
		n, err := NewNonce(d.Shares[1], nil)
		if err != nil {
			t.Fatal(err)
		}
		n.Destroy()
		list := []Commitment{nonces[1].Commitment(), n.Commitment()}
		pkg, err := NewSigningPackage(d.Group, msg, list)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SignShare(d.Shares[1], n, pkg); !errors.Is(err, ErrNonceUsed) {
			t.Errorf("destroyed nonce: %v, want ErrNonceUsed", err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 8 {
			wg.Go(func() {
				if _, err := SignShare(d.Shares[1], nonces[2], pkg); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				} else if !errors.Is(err, ErrNonceUsed) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d concurrent signatures with one nonce succeeded, want 1", ok)
		}
	})

	t.Run("no secrets printed", func(t *testing.T) {
		n, err := NewNonce(d.Shares[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{fmt.Sprint(n), fmt.Sprintf("%#v", n), fmt.Sprintf("%+v", n)} {
			if strings.Contains(s, fmt.Sprintf("%x", n.hiding.Bytes())) {
				t.Errorf("nonce printed with its secret: %s", s)
			}
		}
	})
}

func TestSignSeveralMessages(t *testing.T) {
	// A precommit and its vote extension, each with its own nonces, in one
	// round.
	priv, seed := cometKey(t)
	d, err := Deal(seed, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{randomMessage(t), randomMessage(t)}
	signers := []uint16{1, 3}
	nonces := make([]map[uint16]*Nonce, len(msgs))
	pkgs := make([]*SigningPackage, len(msgs))
	for k := range msgs {
		var list []Commitment
		nonces[k], list = round(t, d, signers)
		if pkgs[k], err = NewSigningPackage(d.Group, msgs[k], list); err != nil {
			t.Fatal(err)
		}
	}
	shares := make([][]SignatureShare, len(msgs))
	for _, id := range signers {
		out, err := SignShares(d.Shares[id-1], []*Nonce{nonces[0][id], nonces[1][id]}, pkgs)
		if err != nil {
			t.Fatal(err)
		}
		for k := range out {
			shares[k] = append(shares[k], out[k])
		}
	}
	for k := range msgs {
		sig, err := Aggregate(pkgs[k], shares[k])
		if err != nil {
			t.Fatal(err)
		}
		if !priv.PubKey().VerifySignature(msgs[k], sig) || !ed25519.Verify(d.Group.PublicKey(), msgs[k], sig) {
			t.Errorf("message %d: signature rejected", k)
		}
	}

	t.Run("input errors consume no nonce", func(t *testing.T) {
		n1, list1 := round(t, d, signers)
		pkg1, err := NewSigningPackage(d.Group, msgs[0], list1)
		if err != nil {
			t.Fatal(err)
		}
		n2, err := NewNonce(d.Shares[0], nil)
		if err != nil {
			t.Fatal(err)
		}
		// The second message's list does not hold n2's commitment.
		if _, err := SignShares(d.Shares[0], []*Nonce{n1[1], n2}, []*SigningPackage{pkg1, pkg1}); err == nil {
			t.Error("SignShares accepted a nonce outside the list")
		}
		if _, err := SignShares(d.Shares[0], []*Nonce{n1[1], n1[1]}, []*SigningPackage{pkg1, pkg1}); err == nil {
			t.Error("SignShares accepted one nonce for two messages")
		}
		if _, err := SignShares(d.Shares[0], []*Nonce{n1[1]}, []*SigningPackage{pkg1, pkg1}); err == nil {
			t.Error("SignShares accepted 1 nonce for 2 messages")
		}
		if n1[1].Used() || n2.Used() {
			t.Error("a refused SignShares consumed a nonce")
		}
	})
}

func TestSigningPackageValidation(t *testing.T) {
	_, seed := cometKey(t)
	d, err := Deal(seed, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, seed2 := cometKey(t)
	d2, err := Deal(seed2, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := randomMessage(t)
	nonces, list := round(t, d, []uint16{1, 2, 3})
	c1, c2, c3 := list[0], list[1], list[2]

	for _, tc := range []struct {
		name string
		list []Commitment
		want string
	}{
		{"unsorted", []Commitment{c2, c1}, "not sorted"},
		{"duplicate", []Commitment{c1, c1}, "twice"},
		{"too few", []Commitment{c1}, "1 commitments"},
		{"too many", []Commitment{c1, c2, c3, c3}, "4 commitments"},
		{"empty commitment", []Commitment{c1, {}}, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSigningPackage(d.Group, msg, tc.list)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}

	t.Run("sorted", func(t *testing.T) {
		l := []Commitment{c3, c1, c2}
		SortCommitments(l)
		if _, err := NewSigningPackage(d.Group, msg, l); err != nil {
			t.Error(err)
		}
	})

	t.Run("identifier beyond N", func(t *testing.T) {
		d5, err := Deal(seed, 3, 5, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, l5 := round(t, d5, []uint16{1, 2, 5})
		if _, err := NewSigningPackage(d.Group, msg, l5); err == nil || !strings.Contains(err.Error(), "participant 5") {
			t.Errorf("error %v, want participant 5 refused", err)
		}
	})

	pkg, err := NewSigningPackage(d.Group, msg, []Commitment{c1, c2})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("another participant's nonce", func(t *testing.T) {
		if _, err := SignShare(d.Shares[0], nonces[2], pkg); err == nil {
			t.Error("participant 1 signed with participant 2's nonce")
		}
	})
	t.Run("signer not in list", func(t *testing.T) {
		if _, err := SignShare(d.Shares[2], nonces[3], pkg); err == nil || !strings.Contains(err.Error(), "not in the commitment list") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("package for another group", func(t *testing.T) {
		pkg2, err := NewSigningPackage(d2.Group, msg, []Commitment{c1, c2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SignShare(d.Shares[0], nonces[1], pkg2); err == nil || !strings.Contains(err.Error(), "group key") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("aggregate input", func(t *testing.T) {
		shares := signAll(t, d, msg, map[uint16]*Nonce{1: nonces[1], 2: nonces[2]}, []Commitment{c1, c2})
		if _, err := Aggregate(pkg, []SignatureShare{shares[0], shares[0]}); err == nil {
			t.Error("aggregated one share twice")
		}
		if _, err := Aggregate(pkg, []SignatureShare{shares[0], {ID: 3, Z: shares[1].Z}}); err == nil {
			t.Error("aggregated a share from outside the list")
		}
		sig, err := Aggregate(pkg, shares)
		if err != nil || !ed25519.Verify(d.Group.PublicKey(), msg, sig) {
			t.Errorf("aggregate: %v", err)
		}
	})
}

// TestAggregateMatchesVerify holds Aggregate's own check of the signature to
// crypto/ed25519.Verify's answer on the same bytes, both ways: the
// coordinator relies on it and verifies each signature once. Valid shares
// give a signature both accept; a tampered share (its z moved by k, which
// moves the sum the same way) gives R || z' that Verify rejects, and
// Aggregate refuses it.
func TestAggregateMatchesVerify(t *testing.T) {
	for _, tc := range []struct{ m, n int }{{2, 3}, {3, 5}} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			_, seed := cometKey(t)
			d, err := Deal(seed, tc.m, tc.n, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, signers := range subsets(tc.m, tc.n) {
				msg := randomMessage(t)
				nonces, list := round(t, d, signers)
				shares := signAll(t, d, msg, nonces, list)
				pkg, err := NewSigningPackage(d.Group, msg, list)
				if err != nil {
					t.Fatal(err)
				}
				sig, err := Aggregate(pkg, shares)
				if err != nil || !ed25519.Verify(d.Group.PublicKey(), msg, sig) {
					t.Fatalf("signers %v: Aggregate %x, %v; ed25519.Verify rejects it", signers, sig, err)
				}
				// Verify checks the message too: the same signature of
				// another message is refused.
				if ed25519.Verify(d.Group.PublicKey(), randomMessage(t), sig) {
					t.Fatalf("signers %v: signature verifies for another message", signers)
				}
				for i := range shares {
					bad := slices.Clone(shares)
					bad[i].Z.Add(&bad[i].Z, scalarOne())
					forged := slices.Clone(sig)
					var z [ScalarSize]byte
					copy(z[:], sig[ElementSize:])
					zs, err := decodeScalar(z[:])
					if err != nil {
						t.Fatal(err)
					}
					copy(forged[ElementSize:], zs.Add(zs, scalarOne()).Bytes())
					if ed25519.Verify(d.Group.PublicKey(), msg, forged) {
						t.Fatalf("signers %v: ed25519.Verify accepts a signature with z+1", signers)
					}
					if s, err := Aggregate(pkg, bad); err == nil {
						t.Fatalf("signers %v: Aggregate accepted share %d moved by one: %x", signers, bad[i].ID, s)
					} else if !slices.Equal(Culprits(err), []uint16{bad[i].ID}) {
						t.Fatalf("signers %v: Aggregate named %v, want %d", signers, Culprits(err), bad[i].ID)
					}
				}
			}
		})
	}
}
