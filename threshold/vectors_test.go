package threshold

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"filippo.io/edwards25519"
)

// rfcVectors is the JSON form of RFC 9591, Appendix E.1, as published with
// the RFC's reference implementation.
type rfcVectors struct {
	Config struct {
		MaxParticipants string `json:"MAX_PARTICIPANTS"`
		NumParticipants string `json:"NUM_PARTICIPANTS"`
		MinParticipants string `json:"MIN_PARTICIPANTS"`
	} `json:"config"`
	Inputs struct {
		ParticipantList []uint16   `json:"participant_list"`
		GroupSecretKey  hexBytes   `json:"group_secret_key"`
		GroupPublicKey  hexBytes   `json:"group_public_key"`
		Message         hexBytes   `json:"message"`
		Coefficients    []hexBytes `json:"share_polynomial_coefficients"`
		Shares          []struct {
			ID    uint16   `json:"identifier"`
			Share hexBytes `json:"participant_share"`
		} `json:"participant_shares"`
	} `json:"inputs"`
	RoundOne struct {
		Outputs []struct {
			ID                 uint16   `json:"identifier"`
			HidingRandomness   hexBytes `json:"hiding_nonce_randomness"`
			BindingRandomness  hexBytes `json:"binding_nonce_randomness"`
			HidingNonce        hexBytes `json:"hiding_nonce"`
			BindingNonce       hexBytes `json:"binding_nonce"`
			HidingCommitment   hexBytes `json:"hiding_nonce_commitment"`
			BindingCommitment  hexBytes `json:"binding_nonce_commitment"`
			BindingFactorInput hexBytes `json:"binding_factor_input"`
			BindingFactor      hexBytes `json:"binding_factor"`
		} `json:"outputs"`
	} `json:"round_one_outputs"`
	RoundTwo struct {
		Outputs []struct {
			ID       uint16   `json:"identifier"`
			SigShare hexBytes `json:"sig_share"`
		} `json:"outputs"`
	} `json:"round_two_outputs"`
	Final struct {
		Sig hexBytes `json:"sig"`
	} `json:"final_output"`
}

type hexBytes []byte

func (h *hexBytes) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(string(text))
	*h = b
	return err
}

func loadVectors(t testing.TB) *rfcVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/frost-ed25519-sha512.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func mustScalar(t testing.TB, b []byte) *edwards25519.Scalar {
	t.Helper()
	s, err := decodeScalar(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vectorGroup builds the group key and key shares of the vectors from the
// group secret and the polynomial coefficients.
func vectorGroup(t testing.TB, v *rfcVectors) (*GroupKey, map[uint16]*KeyShare) {
	t.Helper()
	commits := []*edwards25519.Point{new(edwards25519.Point).ScalarBaseMult(mustScalar(t, v.Inputs.GroupSecretKey))}
	for _, c := range v.Inputs.Coefficients {
		commits = append(commits, new(edwards25519.Point).ScalarBaseMult(mustScalar(t, c)))
	}
	g, err := NewGroupKey(len(v.Inputs.Shares), commits)
	if err != nil {
		t.Fatal(err)
	}
	shares := make(map[uint16]*KeyShare)
	for _, s := range v.Inputs.Shares {
		k, err := NewKeyShare(s.ID, mustScalar(t, s.Share), g)
		if err != nil {
			t.Fatal(err)
		}
		shares[s.ID] = k
	}
	return g, shares
}

func TestRFC9591Vectors(t *testing.T) {
	v := loadVectors(t)
	group, shares := vectorGroup(t, v)
	if group.Threshold() != 2 || group.N() != 3 || v.Config.MinParticipants != "2" || v.Config.MaxParticipants != "3" {
		t.Fatalf("group is %d-of-%d, config %+v", group.Threshold(), group.N(), v.Config)
	}

	t.Run("group public key", func(t *testing.T) {
		if got := group.PublicKey(); !bytes.Equal(got, v.Inputs.GroupPublicKey) {
			t.Errorf("group public key %x, want %x", got, []byte(v.Inputs.GroupPublicKey))
		}
	})

	t.Run("shares", func(t *testing.T) {
		// f(i) = s + a_1·i, and each share matches the Feldman commitments.
		s := mustScalar(t, v.Inputs.GroupSecretKey)
		a1 := mustScalar(t, v.Inputs.Coefficients[0])
		for _, in := range v.Inputs.Shares {
			want := edwards25519.NewScalar().MultiplyAdd(a1, identifierScalar(in.ID), s)
			if !bytes.Equal(want.Bytes(), in.Share) {
				t.Errorf("f(%d) = %x, vector has %x", in.ID, want.Bytes(), []byte(in.Share))
			}
			if err := VerifyShare(shares[in.ID], ed25519.PublicKey(v.Inputs.GroupPublicKey)); err != nil {
				t.Error(err)
			}
		}
	})

	nonces := make(map[uint16]*Nonce)
	var list []Commitment
	t.Run("round one", func(t *testing.T) {
		for _, out := range v.RoundOne.Outputs {
			random := bytes.NewReader(append(append([]byte(nil), out.HidingRandomness...), out.BindingRandomness...))
			n, err := NewNonce(shares[out.ID], random)
			if err != nil {
				t.Fatal(err)
			}
			nonces[out.ID] = n
			list = append(list, n.Commitment())
			for _, c := range []struct {
				name      string
				got, want []byte
			}{
				{"hiding nonce", n.hiding.Bytes(), out.HidingNonce},
				{"binding nonce", n.binding.Bytes(), out.BindingNonce},
				{"hiding nonce commitment", n.Commitment().Hiding().Bytes(), out.HidingCommitment},
				{"binding nonce commitment", n.Commitment().Binding().Bytes(), out.BindingCommitment},
			} {
				if !bytes.Equal(c.got, c.want) {
					t.Errorf("participant %d: %s %x, want %x", out.ID, c.name, c.got, c.want)
				}
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	pkg, err := NewSigningPackage(group, v.Inputs.Message, list)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("binding factors", func(t *testing.T) {
		input := bindingFactorPrefix(group.pub, v.Inputs.Message, list)
		for i, out := range v.RoundOne.Outputs {
			setBindingFactorID(&input, out.ID)
			if !bytes.Equal(input[:], out.BindingFactorInput) {
				t.Errorf("participant %d: binding factor input %x, want %x", out.ID, input[:], []byte(out.BindingFactorInput))
			}
			if got := pkg.rho[i].Bytes(); !bytes.Equal(got, out.BindingFactor) {
				t.Errorf("participant %d: binding factor %x, want %x", out.ID, got, []byte(out.BindingFactor))
			}
		}
	})

	var sigShares []SignatureShare
	t.Run("round two", func(t *testing.T) {
		for _, out := range v.RoundTwo.Outputs {
			s, err := SignShare(shares[out.ID], nonces[out.ID], pkg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(s.Z.Bytes(), out.SigShare) {
				t.Errorf("participant %d: signature share %x, want %x", out.ID, s.Z.Bytes(), []byte(out.SigShare))
			}
			if err := VerifySignatureShare(pkg, s); err != nil {
				t.Error(err)
			}
			sigShares = append(sigShares, s)
		}
	})

	t.Run("nonces consumed", func(t *testing.T) {
		for id, n := range nonces {
			if !n.Used() || n.hiding.Equal(edwards25519.NewScalar()) != 1 || n.binding.Equal(edwards25519.NewScalar()) != 1 {
				t.Errorf("participant %d: nonce not zeroed after signing", id)
			}
			if _, err := SignShare(shares[id], n, pkg); !errors.Is(err, ErrNonceUsed) {
				t.Errorf("participant %d: second use: %v, want ErrNonceUsed", id, err)
			}
		}
	})

	t.Run("aggregate", func(t *testing.T) {
		sig, err := Aggregate(pkg, sigShares)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sig, v.Final.Sig) {
			t.Errorf("signature %x, want %x", sig, []byte(v.Final.Sig))
		}
		if !ed25519.Verify(group.PublicKey(), v.Inputs.Message, sig) {
			t.Error("crypto/ed25519 rejects the signature")
		}
	})
}
