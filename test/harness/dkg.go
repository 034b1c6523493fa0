package harness

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// StartDKG starts `cosigner dkg --home <home>` (then args) in every
// member's home at once, each with env[id] added to its environment, and
// returns the processes, by member order. Each logs to
// DIR/<home's name>.dkg<n>.log.
func (c *Cluster) StartDKG(env map[int][]string, args ...string) []*Process {
	c.t.Helper()
	var ps []*Process
	for _, m := range c.Members {
		ps = append(ps, m.StartDKG(env[m.ID], args...))
	}
	return ps
}

// StartDKG starts `cosigner dkg --home Home` (then args) for this member.
func (m *Member) StartDKG(env []string, args ...string) *Process {
	m.t.Helper()
	m.dkgRuns++
	logPath := filepath.Join(filepath.Dir(m.Home), fmt.Sprintf("%s.dkg%d.log", filepath.Base(m.Home), m.dkgRuns))
	return StartProcess(m.t, fmt.Sprintf("cosigner dkg %d (run %d)", m.ID, m.dkgRuns), logPath, env, m.bin,
		append([]string{"dkg", "--home", m.Home}, args...)...)
}

// DKGPubKey returns the validator key a successful `cosigner dkg` printed
// (its "base64:" line).
func DKGPubKey(output string) (ed25519.PublicKey, error) {
	for _, l := range strings.Split(output, "\n") {
		if v, ok := strings.CutPrefix(l, "base64:"); ok {
			pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(pub) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("dkg printed %q: not an ed25519 key", l)
			}
			return pub, nil
		}
	}
	return nil, fmt.Errorf("dkg printed no base64: line:\n%s", output)
}

// SetGenesisValidator makes pub the chain's only genesis validator (with
// its address), as an operator does with a key `cosigner dkg` printed, and
// forgets ValidatorKeyFile: the chain's key no longer exists as a file.
// Call it before the node first starts.
func (n *Node) SetGenesisValidator(pub ed25519.PublicKey) error {
	err := n.updateGenesis(func(g map[string]any) error {
		vals, _ := g["validators"].([]any)
		if len(vals) != 1 {
			return fmt.Errorf("genesis has %d validators, want 1", len(vals))
		}
		v, _ := vals[0].(map[string]any)
		pk, _ := v["pub_key"].(map[string]any)
		if v == nil || pk == nil {
			return fmt.Errorf("genesis validator has no pub_key")
		}
		sum := sha256.Sum256(pub)
		v["address"] = strings.ToUpper(hex.EncodeToString(sum[:20]))
		pk["value"] = base64.StdEncoding.EncodeToString(pub)
		return nil
	})
	if err != nil {
		return err
	}
	n.PubKey = pub
	n.ValidatorKeyFile = ""
	return nil
}
