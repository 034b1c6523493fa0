// Package bech32 encodes BIP-173 bech32 strings, as Cosmos renders
// addresses and consensus public keys. It encodes only: cosigner never
// parses bech32 input.
package bech32

import "strings"

// bech32Charset is BIP-173's alphabet of 32 characters.
const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

// bech32Polymod is BIP-173's BCH checksum over 5-bit values.
func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		top := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (top>>i)&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

// Encode encodes data (8-bit bytes) under the human-readable part hrp,
// as BIP-173 specifies. Cosmos addresses and keys exceed BIP-173's 90
// character limit, which Cosmos ignores, and so do we.
func Encode(hrp string, data []byte) string {
	// Regroup 8-bit bytes into 5-bit values, padding the last one.
	var values []byte
	acc, bits := uint32(0), uint(0)
	for _, b := range data {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			bits -= 5
			values = append(values, byte(acc>>bits)&31)
		}
	}
	if bits > 0 {
		values = append(values, byte(acc<<(5-bits))&31)
	}

	// The checksum covers the expanded hrp, the data and six zeros.
	exp := make([]byte, 0, 2*len(hrp)+1+len(values)+6)
	for i := 0; i < len(hrp); i++ {
		exp = append(exp, hrp[i]>>5)
	}
	exp = append(exp, 0)
	for i := 0; i < len(hrp); i++ {
		exp = append(exp, hrp[i]&31)
	}
	exp = append(exp, values...)
	exp = append(exp, 0, 0, 0, 0, 0, 0)
	mod := bech32Polymod(exp) ^ 1

	var sb strings.Builder
	sb.WriteString(hrp)
	sb.WriteByte('1')
	for _, v := range values {
		sb.WriteByte(bech32Charset[v])
	}
	for i := 0; i < 6; i++ {
		sb.WriteByte(bech32Charset[(mod>>(5*(5-i)))&31])
	}
	return sb.String()
}
