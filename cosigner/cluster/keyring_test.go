package cluster

// keyringOf is the keyring of one share signer, for tests.
func keyringOf(s *ShareSigner) *Keyring {
	k, err := NewKeyring(s)
	if err != nil {
		panic(err)
	}
	return k
}
