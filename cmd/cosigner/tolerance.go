package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/cosigner/cosigner/threshold"
)

// threatModelDoc is where the figures below are explained.
const threatModelDoc = "docs/threshold.md, \"Threat model\""

// thresholdDoc is where the DKG ceremony is described step by step.
const thresholdDoc = "docs/threshold.md, \"Distributed key generation\""

// printTolerance prints the figures of threshold.Tolerance, one a line,
// each line starting with indent.
func printTolerance(w io.Writer, indent string, down, compromised, toSign int) {
	note := ""
	if compromised <= 0 {
		note = "  (one compromised cosigner can double sign)"
	}
	fmt.Fprintf(w, "%scosigners that may be down, signing goes on:        %d\n", indent, down)
	fmt.Fprintf(w, "%scosigners that may be compromised, no double sign:  %d%s\n", indent, compromised, note)
	fmt.Fprintf(w, "%sshares an attacker needs to sign on its own:        %d\n", indent, toSign)
}

// warnNoCompromise writes to w, for an m-of-n shape that tolerates no
// compromised cosigner, a warning that says why and names shapes that
// tolerate one; it writes nothing for other shapes.
func warnNoCompromise(w io.Writer, m, n int) {
	if _, compromised, _ := threshold.Tolerance(m, n); compromised > 0 {
		return
	}
	fmt.Fprintf(w, "cosigner: warning: %d-of-%d survives no compromised cosigner: one compromised cosigner, "+
		"or a second live copy of one cosigner id (a cloned VM), can ask two disjoint sets of the others to sign "+
		"two different blocks at the same height and round; each honest cosigner sees one request only, "+
		"and the compromised share completes both signatures: a double sign\n", m, n)
	var shapes []string
	for _, s := range tolerantShapes(1, 1, 7) {
		down, compromised, _ := threshold.Tolerance(s[0], s[1])
		shapes = append(shapes, fmt.Sprintf("%d-of-%d (%d down, %d compromised)", s[0], s[1], down, compromised))
	}
	fmt.Fprintf(w, "cosigner: hint: shapes that tolerate a compromised cosigner and still sign with one down: %s; see %s\n",
		strings.Join(shapes, ", "), threatModelDoc)
}

// tolerantShapes returns, for each N up to maxN, the smallest M whose
// M-of-N cluster tolerates at least compromised compromised cosigners and
// at least down cosigners down, as {M, N} pairs in increasing N.
func tolerantShapes(compromised, down, maxN int) [][2]int {
	var out [][2]int
	for n := 2; n <= maxN; n++ {
		for m := n/2 + 1; m <= n; m++ {
			d, c, _ := threshold.Tolerance(m, n)
			if d < down {
				break // a larger M leaves fewer cosigners that may be down
			}
			if c >= compromised {
				out = append(out, [2]int{m, n})
				break
			}
		}
	}
	return out
}
