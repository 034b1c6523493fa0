package threshold

import (
	"errors"
	"fmt"
	"sync"

	"filippo.io/edwards25519"
)

// basePoint is B. Never modified.
var basePoint = edwards25519.NewGeneratorPoint()

// ErrInvalidShare is matched (with errors.Is) by every *ShareError.
var ErrInvalidShare = errors.New("threshold: invalid signature share")

// ShareError reports a signature share that fails verification (RFC 9591,
// Section 5.4): the participant ID misbehaved, or its commitment in the list
// was not the one it signed with. Retrieve it with errors.As, or all of them
// with Culprits.
type ShareError struct {
	ID     uint16
	Reason string
}

func (e *ShareError) Error() string {
	return fmt.Sprintf("threshold: signature share of participant %d is invalid: %s", e.ID, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidShare) true.
func (e *ShareError) Is(target error) bool { return target == ErrInvalidShare }

// Culprits returns the identifiers named by every *ShareError in err's tree,
// in order, for the coordinator to blame and exclude.
func Culprits(err error) []uint16 {
	var ids []uint16
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *ShareError:
			ids = append(ids, e.ID)
		case interface{ Unwrap() []error }:
			for _, err := range e.Unwrap() {
				walk(err)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return ids
}

// SignatureShare is participant ID's share z_i of the signature's scalar
// (RFC 9591, Section 5.2).
type SignatureShare struct {
	ID uint16
	Z  edwards25519.Scalar
}

// SigningPackage is the input of round two for one message: the message and
// the commitment list the coordinator chose (RFC 9591, Section 5.2), with
// the values every participant derives from them: the binding factors ρ_i
// (Section 4.4), the group commitment R (Section 4.5), the challenge c
// (Section 4.6) and the Lagrange coefficients λ_i (Section 4.2).
//
// Each signer builds its own from the message it checked; the coordinator
// builds one to verify and aggregate the shares. A SigningPackage is
// immutable and safe for concurrent use.
type SigningPackage struct {
	group       *GroupKey
	commitments []Commitment
	rho         []edwards25519.Scalar // binding factors, in list order
	lambda      []edwards25519.Scalar // Lagrange coefficients, in list order
	r           edwards25519.Point
	rEnc        [ElementSize]byte
	c           edwards25519.Scalar
}

// NewSigningPackage validates the commitment list for a signature of msg
// under group and derives the values of round two. The list must hold
// between M and N commitments, sorted by strictly increasing identifier, each
// identifier in 1..N (RFC 9591, Section 5.2, input validation). It returns an
// error if the group commitment is the identity.
func NewSigningPackage(group *GroupKey, msg []byte, commitments []Commitment) (*SigningPackage, error) {
	if group == nil {
		return nil, errors.New("signing package: group key is missing")
	}
	m := len(commitments)
	if m < group.Threshold() || m > group.n {
		return nil, fmt.Errorf("signing package: %d commitments, want %d to %d", m, group.Threshold(), group.n)
	}
	for i, c := range commitments {
		if !c.valid() {
			return nil, fmt.Errorf("signing package: commitment %d is empty", i)
		}
		if int(c.id) > group.n {
			return nil, fmt.Errorf("signing package: participant %d is not one of 1..%d", c.id, group.n)
		}
		if i > 0 && c.id <= commitments[i-1].id {
			if c.id == commitments[i-1].id {
				return nil, fmt.Errorf("signing package: participant %d appears twice in the commitment list", c.id)
			}
			return nil, fmt.Errorf("signing package: commitment list is not sorted by identifier: %d follows %d", c.id, commitments[i-1].id)
		}
	}
	p := &SigningPackage{
		group:       group,
		commitments: append([]Commitment(nil), commitments...),
		rho:         make([]edwards25519.Scalar, m),
		lambda:      make([]edwards25519.Scalar, m),
	}
	p.bindingFactors(msg)
	if err := p.groupCommitment(); err != nil {
		return nil, fmt.Errorf("signing package: %w", err)
	}
	// RFC 9591, Section 4.6: c = H2(SerializeElement(R) ||
	// SerializeElement(PK) || msg).
	p.c.Set(h2(p.rEnc[:], group.pub[:], msg))
	p.lagrange()
	return p, nil
}

// encodeCommitmentList is encode_group_commitment_list of RFC 9591, Section
// 4.3: for each entry, SerializeScalar(i) || SerializeElement(D_i) ||
// SerializeElement(E_i).
func encodeCommitmentList(list []Commitment) []byte {
	out := make([]byte, 0, len(list)*(ScalarSize+2*ElementSize))
	for _, c := range list {
		var id [ScalarSize]byte
		id[0], id[1] = byte(c.id), byte(c.id>>8)
		out = append(out, id[:]...)
		out = append(out, c.enc[:]...)
	}
	return out
}

// bindingFactors is compute_binding_factors of RFC 9591, Section 4.4:
// ρ_i = H1(SerializeElement(PK) || H4(msg) || H5(encoded list) ||
// SerializeScalar(i)).
func (p *SigningPackage) bindingFactors(msg []byte) {
	input := bindingFactorPrefix(p.group.pub, msg, p.commitments)
	for i, c := range p.commitments {
		setBindingFactorID(&input, c.id)
		p.rho[i].Set(h1(input[:]))
	}
}

// bindingFactorInput is the input of H1 for one participant: the prefix
// SerializeElement(PK) || H4(msg) || H5(encoded list), then
// SerializeScalar(i).
type bindingFactorInput [ElementSize + 64 + 64 + ScalarSize]byte

func bindingFactorPrefix(pub [ElementSize]byte, msg []byte, list []Commitment) bindingFactorInput {
	var input bindingFactorInput
	msgHash := h4(msg)
	comHash := h5(encodeCommitmentList(list))
	n := copy(input[:], pub[:])
	n += copy(input[n:], msgHash[:])
	copy(input[n:], comHash[:])
	return input
}

func setBindingFactorID(input *bindingFactorInput, id uint16) {
	tail := input[len(input)-ScalarSize:]
	clear(tail)
	tail[0], tail[1] = byte(id), byte(id>>8)
}

// groupCommitment is compute_group_commitment of RFC 9591, Section 4.5:
// R = Σ_i (D_i + ρ_i·E_i). Every input is public, so it uses variable-time
// multi-scalar multiplication. R must not be the identity, which
// SerializeElement cannot encode.
func (p *SigningPackage) groupCommitment() error {
	scalars := make([]*edwards25519.Scalar, len(p.commitments))
	points := make([]*edwards25519.Point, len(p.commitments))
	for i := range p.commitments {
		scalars[i], points[i] = &p.rho[i], p.commitments[i].binding
	}
	p.r.VarTimeMultiScalarMult(scalars, points)
	for i := range p.commitments {
		p.r.Add(&p.r, p.commitments[i].hiding)
	}
	if p.r.Equal(edwards25519.NewIdentityPoint()) == 1 {
		return errors.New("group commitment is the identity element")
	}
	copy(p.rEnc[:], p.r.Bytes())
	return nil
}

// lagrange sets λ_i for every participant in the list, as
// derive_interpolating_value of RFC 9591, Section 4.2: λ_i = Π_{j≠i} x_j /
// Π_{j≠i} (x_j - x_i). The identifiers are distinct integers in 1..255, so
// each x_j - x_i is a non-zero integer in -254..254, and dividing by it is
// multiplying by an entry of a table of inverses: no inversion per package.
func (p *SigningPackage) lagrange() {
	inv := smallInverses()
	for i, ci := range p.commitments {
		l := &p.lambda[i]
		l.Set(scalarOne())
		for j, cj := range p.commitments {
			if j == i {
				continue
			}
			l.Multiply(l, identifierScalar(cj.id))
			if d := int(cj.id) - int(ci.id); d > 0 {
				l.Multiply(l, &inv[d])
			} else {
				l.Multiply(l, &inv[-d])
				l.Negate(l)
			}
		}
	}
}

var (
	smallInversesOnce sync.Once
	smallInversesTab  [MaxParticipants]edwards25519.Scalar
)

// smallInverses returns the table of 1/k mod L at index k, for k in
// 1..MaxParticipants-1, computed once with a single inversion (Montgomery's
// trick).
func smallInverses() *[MaxParticipants]edwards25519.Scalar {
	smallInversesOnce.Do(func() {
		t := &smallInversesTab
		// prefix[k] = 1·2·…·k
		var prefix [MaxParticipants]edwards25519.Scalar
		prefix[0].Set(scalarOne())
		for k := 1; k < MaxParticipants; k++ {
			prefix[k].Multiply(&prefix[k-1], identifierScalar(uint16(k)))
		}
		acc := edwards25519.NewScalar().Invert(&prefix[MaxParticipants-1]) // 1/(n-1)!
		for k := MaxParticipants - 1; k >= 1; k-- {
			t[k].Multiply(acc, &prefix[k-1])               // 1/k = (k-1)! / k!
			acc.Multiply(acc, identifierScalar(uint16(k))) // 1/(k-1)!
		}
	})
	return &smallInversesTab
}

// index returns the position of participant id in the commitment list.
func (p *SigningPackage) index(id uint16) (int, bool) {
	for i, c := range p.commitments {
		if c.id == id {
			return i, true
		}
	}
	return 0, false
}

// GroupKey returns the group key the package was built for.
func (p *SigningPackage) GroupKey() *GroupKey { return p.group }

// Commitments returns a copy of the commitment list.
func (p *SigningPackage) Commitments() []Commitment {
	return append([]Commitment(nil), p.commitments...)
}

// Participants returns the identifiers in the commitment list, in order.
func (p *SigningPackage) Participants() []uint16 {
	ids := make([]uint16, len(p.commitments))
	for i, c := range p.commitments {
		ids[i] = c.id
	}
	return ids
}

// checkSigner checks that nonce may sign pkg for share, as RFC 9591, Section
// 5.2 requires before round two: the package is for the share's group, and
// the list holds the share's identifier with this nonce's commitment. It
// returns the participant's position in the list.
func checkSigner(share *KeyShare, nonce *Nonce, pkg *SigningPackage) (int, error) {
	if share == nil || nonce == nil || pkg == nil {
		return 0, errors.New("sign share: missing key share, nonce or signing package")
	}
	if pkg.group.pub != share.group.pub {
		return 0, fmt.Errorf("sign share: signing package is for group key %x, the share for %x", pkg.group.pub, share.group.pub)
	}
	if nonce.commitment.id != share.id {
		return 0, fmt.Errorf("sign share: nonce of participant %d used with the key share of participant %d", nonce.commitment.id, share.id)
	}
	i, ok := pkg.index(share.id)
	if !ok {
		return 0, fmt.Errorf("sign share: participant %d is not in the commitment list %v", share.id, pkg.Participants())
	}
	if !pkg.commitments[i].Equal(nonce.commitment) {
		return 0, fmt.Errorf("sign share: the commitment list holds a commitment for participant %d that is not this nonce's", share.id)
	}
	return i, nil
}

// SignShare computes participant i's signature share (RFC 9591, Section 5.2)
//
//	z_i = d_i + e_i·ρ_i + λ_i·s_i·c
//
// and consumes nonce: its scalars are zeroed before SignShare returns, and a
// second call returns ErrNonceUsed. Input checks (package for another group,
// list without this nonce's commitment) fail without consuming the nonce.
// The arithmetic on secrets is constant-time.
func SignShare(share *KeyShare, nonce *Nonce, pkg *SigningPackage) (SignatureShare, error) {
	i, err := checkSigner(share, nonce, pkg)
	if err != nil {
		return SignatureShare{}, err
	}
	return signChecked(share, nonce, pkg, i)
}

func signChecked(share *KeyShare, nonce *Nonce, pkg *SigningPackage, i int) (SignatureShare, error) {
	// λ_i·c is public; the products with secrets follow.
	lc := edwards25519.NewScalar().Multiply(&pkg.lambda[i], &pkg.c)
	out := SignatureShare{ID: share.id}

	nonce.mu.Lock()
	defer nonce.mu.Unlock()
	if nonce.used {
		return SignatureShare{}, fmt.Errorf("sign share of participant %d: %w", share.id, ErrNonceUsed)
	}
	out.Z.MultiplyAdd(lc, &share.secret, &nonce.hiding)
	out.Z.MultiplyAdd(&nonce.binding, &pkg.rho[i], &out.Z)
	nonce.zero()
	return out, nil
}

// SignShares signs several messages in one round, such as a precommit and
// its vote extension: nonces[k] signs pkgs[k], and each message needs its
// own nonce. Every pair is checked before any nonce is consumed, so an input
// error consumes none; only concurrent misuse of the same nonces can leave
// some consumed.
func SignShares(share *KeyShare, nonces []*Nonce, pkgs []*SigningPackage) ([]SignatureShare, error) {
	if len(nonces) != len(pkgs) {
		return nil, fmt.Errorf("sign shares: %d nonces for %d messages", len(nonces), len(pkgs))
	}
	idx := make([]int, len(pkgs))
	for k := range pkgs {
		for j := range k {
			if nonces[j] == nonces[k] {
				return nil, fmt.Errorf("sign shares: messages %d and %d have the same nonce", j, k)
			}
		}
		i, err := checkSigner(share, nonces[k], pkgs[k])
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", k, err)
		}
		if nonces[k].Used() {
			return nil, fmt.Errorf("sign shares: message %d: participant %d: %w", k, share.id, ErrNonceUsed)
		}
		idx[k] = i
	}
	out := make([]SignatureShare, len(pkgs))
	for k := range pkgs {
		s, err := signChecked(share, nonces[k], pkgs[k], idx[k])
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

// VerifySignatureShare checks participant share.ID's signature share against
// its public share PK_i and its commitment in the list (RFC 9591, Section
// 5.4):
//
//	z_i·B == D_i + ρ_i·E_i + (c·λ_i)·PK_i
//
// A failure is a *ShareError naming the participant. It uses only public
// data, in variable time.
func VerifySignatureShare(pkg *SigningPackage, share SignatureShare) error {
	if pkg == nil {
		return errors.New("verify signature share: signing package is missing")
	}
	i, ok := pkg.index(share.ID)
	if !ok {
		return &ShareError{ID: share.ID, Reason: "the participant is not in the commitment list"}
	}
	pk, err := pkg.group.publicShare(share.ID)
	if err != nil {
		return &ShareError{ID: share.ID, Reason: err.Error()}
	}
	// D_i == z_i·B - ρ_i·E_i - (c·λ_i)·PK_i, in one multi-scalar
	// multiplication.
	negRho := edwards25519.NewScalar().Negate(&pkg.rho[i])
	negCL := edwards25519.NewScalar().Multiply(&pkg.c, &pkg.lambda[i])
	negCL.Negate(negCL)
	q := new(edwards25519.Point).VarTimeMultiScalarMult(
		[]*edwards25519.Scalar{&share.Z, negRho, negCL},
		[]*edwards25519.Point{basePoint, pkg.commitments[i].binding, pk})
	if q.Equal(pkg.commitments[i].hiding) != 1 {
		return &ShareError{ID: share.ID, Reason: "z_i·B does not match the commitment and public share"}
	}
	return nil
}

// Aggregate sums the signature shares of every participant in the list into
// the signature R || z, z = Σ z_i (RFC 9591, Section 5.3), an ordinary
// 64-byte ed25519 signature of the message under the group public key.
//
// It verifies the result (z·B == R + c·PK, the check of RFC 8032 that
// crypto/ed25519 makes) and only if that fails verifies each share, so a
// failure names the participants who misbehaved: errors.Is(err,
// ErrInvalidShare) holds and Culprits(err) lists them. shares may be in any
// order but must hold exactly one share per participant in the list.
func Aggregate(pkg *SigningPackage, shares []SignatureShare) ([]byte, error) {
	if pkg == nil {
		return nil, errors.New("aggregate: signing package is missing")
	}
	if len(shares) != len(pkg.commitments) {
		return nil, fmt.Errorf("aggregate: %d signature shares for %d participants %v", len(shares), len(pkg.commitments), pkg.Participants())
	}
	seen := make([]bool, len(pkg.commitments))
	z := edwards25519.NewScalar()
	for _, s := range shares {
		i, ok := pkg.index(s.ID)
		if !ok {
			return nil, fmt.Errorf("aggregate: signature share of participant %d, who is not in the commitment list %v", s.ID, pkg.Participants())
		}
		if seen[i] {
			return nil, fmt.Errorf("aggregate: two signature shares of participant %d", s.ID)
		}
		seen[i] = true
		z.Add(z, &s.Z)
	}

	// R == z·B - c·PK
	negC := edwards25519.NewScalar().Negate(&pkg.c)
	check := new(edwards25519.Point).VarTimeDoubleScalarBaseMult(negC, pkg.group.commitments[0], z)
	if check.Equal(&pkg.r) != 1 {
		var errs []error
		for _, s := range shares {
			if err := VerifySignatureShare(pkg, s); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) == 0 {
			// Every share is valid, so the sum is too; only an
			// inconsistent group key gets here.
			return nil, errors.New("aggregate: the signature does not verify, yet every share does: the group key is inconsistent")
		}
		return nil, fmt.Errorf("aggregate: %w", errors.Join(errs...))
	}

	sig := make([]byte, SignatureSize)
	copy(sig, pkg.rEnc[:])
	copy(sig[ElementSize:], z.Bytes())
	return sig, nil
}
