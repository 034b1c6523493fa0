package doppel

// Guards are the Watches of a process's chains, by chain id: the one
// object every sign path asks before it signs. A chain without a Watch
// (no rpc configured) is always allowed.
type Guards map[string]*Watch

// Allow returns the chain's Watch.Allow, or nil for a chain without one.
func (g Guards) Allow(chainID string) error {
	if w, ok := g[chainID]; ok {
		return w.Allow()
	}
	return nil
}

// Signed records a precommit on the chain's Watch, if it has one.
func (g Guards) Signed(chainID string, height int64, round int32, blockHash, sig []byte) {
	if w, ok := g[chainID]; ok {
		w.Signed(height, round, blockHash, sig)
	}
}
