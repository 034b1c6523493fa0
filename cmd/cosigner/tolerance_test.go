package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cosigner/cosigner/threshold"
)

// TestShardTolerance: shard prints what each shape withstands and warns,
// on stderr, about the shapes that survive no compromised cosigner, naming
// shapes that do.
func TestShardTolerance(t *testing.T) {
	keyFile, _ := cometKey(t)
	for _, tc := range []struct {
		m, n                      int
		down, compromised, toSign int
		warn                      bool
	}{
		{2, 3, 1, 0, 2, true},
		{3, 5, 2, 0, 3, true},
		{3, 4, 1, 1, 3, false},
		{4, 5, 1, 2, 4, false},
		{5, 7, 2, 2, 5, false},
	} {
		t.Run(fmt.Sprintf("%d-of-%d", tc.m, tc.n), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "shards")
			code, stdout, stderr := cli(t, "shard", "--key", keyFile, "--threshold", strconv.Itoa(tc.m), "--shares", strconv.Itoa(tc.n), "--out", out)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
			}
			for _, want := range []string{
				fmt.Sprintf("cosigners that may be down, signing goes on:        %d\n", tc.down),
				fmt.Sprintf("cosigners that may be compromised, no double sign:  %d", tc.compromised),
				fmt.Sprintf("shares an attacker needs to sign on its own:        %d\n", tc.toSign),
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
			warned := strings.Contains(stderr, fmt.Sprintf("cosigner: warning: %d-of-%d survives no compromised cosigner", tc.m, tc.n))
			if warned != tc.warn {
				t.Errorf("warned %v, want %v; stderr:\n%s", warned, tc.warn, stderr)
			}
			if tc.warn {
				for _, shape := range []string{"3-of-4 (1 down, 1 compromised)", "4-of-5 (1 down, 2 compromised)", "5-of-7 (2 down, 2 compromised)", "docs/threshold.md"} {
					if !strings.Contains(stderr, shape) {
						t.Errorf("warning does not name %q:\n%s", shape, stderr)
					}
				}
				if strings.Contains(stdout, "warning") {
					t.Errorf("the warning went to stdout:\n%s", stdout)
				}
			}
		})
	}
}

func TestTolerantShapes(t *testing.T) {
	for _, tc := range []struct {
		compromised, down, maxN int
		want                    string
	}{
		{1, 1, 7, "[[3 4] [4 5] [4 6] [5 7]]"},
		{1, 0, 4, "[[2 2] [3 3] [3 4]]"},
		{2, 2, 7, "[[5 7]]"},
		{3, 3, 7, "[]"},
	} {
		t.Run(fmt.Sprintf("f%d-d%d-n%d", tc.compromised, tc.down, tc.maxN), func(t *testing.T) {
			if got := fmt.Sprint(tolerantShapes(tc.compromised, tc.down, tc.maxN)); got != tc.want {
				t.Errorf("tolerantShapes = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestDocsToleranceTables checks every row of the docs' tables with a
// "compromised" column against threshold.Tolerance: rows
// "| M-of-N | down | compromised | shares to sign | ...".
func TestDocsToleranceTables(t *testing.T) {
	row := regexp.MustCompile(`^\| (\d+)-of-(\d+) \| (\d+) \| (\d+) \| (\d+) \|`)
	for _, doc := range []string{"../../docs/threshold.md", "../../docs/operations.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rows, inTable := 0, false
		for i, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "|") {
				inTable = false
				continue
			}
			f := row.FindStringSubmatch(line)
			if f == nil {
				// A header with a compromised column starts a table to check.
				inTable = inTable || strings.Contains(line, "| compromised")
				continue
			}
			if !inTable {
				continue
			}
			v := make([]int, 5)
			for j := range v {
				v[j], _ = strconv.Atoi(f[j+1])
			}
			down, compromised, toSign := threshold.Tolerance(v[0], v[1])
			if down != v[2] || compromised != v[3] || toSign != v[4] {
				t.Errorf("%s:%d: %d-of-%d says %d down, %d compromised, %d to sign; Tolerance says %d, %d, %d",
					doc, i+1, v[0], v[1], v[2], v[3], v[4], down, compromised, toSign)
			}
			rows++
		}
		if rows < 5 {
			t.Errorf("%s: %d rows of shapes in tables with a compromised column, want the 5 common shapes", doc, rows)
		}
	}
}
