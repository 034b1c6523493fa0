package bech32

import "testing"

// TestBech32Vectors checks the encoder against BIP-173's valid strings.
func TestBech32Vectors(t *testing.T) {
	tests := []struct {
		hrp  string
		data []byte
		want string
	}{
		{"a", nil, "a12uel5l"},
		{"abcdef", []byte{0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf, 0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf},
			"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"},
	}
	for _, tt := range tests {
		if got := Encode(tt.hrp, tt.data); got != tt.want {
			t.Errorf("Encode(%q) = %s, want %s", tt.hrp, got, tt.want)
		}
	}
}
