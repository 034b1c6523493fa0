package softsign

import (
	"bytes"
	"context"
	"fmt"

	"github.com/cosigner/cosigner/privval"
)

var _ privval.RawBytesSigner = (*Signer)(nil)

// SignRawBytes signs a celestia-core raw-bytes request with the chain's key
// (in memory or in the YubiHSM2), if the chain has sign_raw_bytes = true;
// else it refuses with an error wrapping privval.ErrRawBytesDisabled that
// names the key.
//
// It moves no sign-state mark and writes nothing: raw bytes have no
// height, round or step for the double-sign rules to order, and their
// sign bytes can never be taken for a vote, proposal or vote extension
// (privval.RawBytesSignBytes gives the argument). It checks that
// req.SignBytes are exactly the request's RawBytesSignBytes before the key
// sees them, so that no caller can have other bytes signed through it.
func (s *Signer) SignRawBytes(ctx context.Context, req *privval.RawBytesRequest) ([]byte, error) {
	c, err := s.chain(req.ChainID)
	if err != nil {
		return nil, err
	}
	if !s.opts.SignRawBytes[req.ChainID] {
		return nil, fmt.Errorf("chain %q: %w: set sign_raw_bytes = true in its [[chain]] section to sign application bytes with its consensus key",
			req.ChainID, privval.ErrRawBytesDisabled)
	}
	want, err := privval.RawBytesSignBytes(req.ChainID, req.UniqueID, req.RawBytes)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(req.SignBytes, want) {
		return nil, fmt.Errorf("chain %q: raw bytes sign bytes do not match the request (unique id %q)", req.ChainID, req.UniqueID)
	}
	sig, err := c.key.Sign(ctx, want)
	if err != nil {
		return nil, fmt.Errorf("chain %q: sign raw bytes: %w", req.ChainID, err)
	}
	return sig, nil
}
