// This file is not part of cosigner. The DKG end-to-end tests compile it
// into package threshold with `go build -overlay` (as
// threshold/zz_e2e_dkgcheat.go), so a test binary can play a cheating
// dealer without any cheat switch in the product. An init function setting
// the package's test hook is the only way in.

package threshold

import (
	"os"
	"strconv"
)

// init: with COSIGNER_TEST_DKG_CORRUPT_DEAL_TO=<id>, every DKG this process
// runs deals participant <id> a share that does not match its commitments
// (validly signed, so only the Feldman check catches it).
func init() {
	to, err := strconv.Atoi(os.Getenv("COSIGNER_TEST_DKG_CORRUPT_DEAL_TO"))
	if err != nil || to < 1 {
		return
	}
	dkgHook = func(d *DKG) {
		d.corrupt = func(id uint16) bool { return int(id) == to }
	}
}
