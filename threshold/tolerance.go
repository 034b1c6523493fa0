package threshold

// Tolerance returns what an M-of-N cluster withstands, in cosigners:
//
//   - down: N − M may be stopped, crashed or cut off and the others still
//     sign;
//   - compromised: 2M − N − 1 may be under an attacker's control (or run as
//     a second live copy of their id, a cloned VM) without the cluster
//     signing two conflicting votes at one height, round and step;
//   - toSign: M shares sign on their own, whoever holds them.
//
// The middle figure is the quorum-overlap bound. Two quorums of M among N
// cosigners share at least 2M − N of them. An honest cosigner's high-water
// mark lets it contribute to only one of two conflicting requests, so the
// two signatures need two disjoint sets of honest cosigners, M − f each,
// beside the f compromised ones, which contribute to both: 2(M − f) ≤ N − f,
// that is f ≥ 2M − N. The cluster is safe while f ≤ 2M − N − 1.
//
// Compromised cosigners may also withhold their shares, so they count
// against down as well: the cluster signs while N − down − compromised ≥ M.
//
// Tolerance is defined for 1 ≤ m ≤ n; a whole key (softsign) is 1-of-1:
// 0, 0, 1. For a shape CheckThreshold refuses (M ≤ N/2), compromised is
// negative: two disjoint quorums of honest cosigners could sign
// conflicting blocks.
func Tolerance(m, n int) (down, compromised, toSign int) {
	return n - m, 2*m - n - 1, m
}
