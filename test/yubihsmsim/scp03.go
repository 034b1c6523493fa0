package yubihsmsim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
)

// Key derivation and MACs of the device side of SCP03 (GlobalPlatform Card
// Specification 2.2 Amendment D) as the YubiHSM2 uses it: AES-128 keys,
// AES-CMAC (RFC 4493), 8-byte challenges and cryptograms, 8-byte MACs.

// deriveAuthKey turns a password into the two 16-byte halves of a YubiHSM2
// authentication key (the encryption key K-ENC, then the MAC key K-MAC):
// PBKDF2-HMAC-SHA256 with the salt "Yubico" and 10,000 iterations, as
// yubihsm-shell's "derived" authentication keys are made.
func deriveAuthKey(password string) (enc, mac [16]byte) {
	k, err := pbkdf2.Key(sha256.New, password, []byte("Yubico"), 10000, 32)
	if err != nil {
		panic("pbkdf2: " + err.Error()) // only for lengths out of range
	}
	copy(enc[:], k[:16])
	copy(mac[:], k[16:])
	return enc, mac
}

// cmac computes AES-CMAC (RFC 4493) of msg under key.
func cmac(key []byte, msg []byte) [16]byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("cmac: " + err.Error()) // keys are always 16 bytes here
	}
	var l, k1, k2 [16]byte
	b.Encrypt(l[:], l[:])
	dbl := func(dst, src *[16]byte) {
		var carry byte
		for i := 15; i >= 0; i-- {
			dst[i] = src[i]<<1 | carry
			carry = src[i] >> 7
		}
		if src[0]&0x80 != 0 {
			dst[15] ^= 0x87
		}
	}
	dbl(&k1, &l)
	dbl(&k2, &k1)

	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	if complete {
		copy(last[:], msg[(n-1)*16:])
		subtle.XORBytes(last[:], last[:], k1[:])
	} else {
		rest := msg[(n-1)*16:]
		copy(last[:], rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	var x [16]byte
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[i*16:(i+1)*16])
		b.Encrypt(x[:], x[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	b.Encrypt(x[:], x[:])
	return x
}

// Derivation constants of SCP03's KDF (Amendment D, table 4-1).
const (
	kdfCardCryptogram = 0x00
	kdfHostCryptogram = 0x01
	kdfSENC           = 0x04
	kdfSMAC           = 0x06
	kdfSRMAC          = 0x07
)

// kdf is SCP03's key derivation function (Amendment D 4.1.5): one round of
// the NIST SP 800-108 counter-mode KDF with AES-CMAC as the PRF. The input is
// a label of eleven zero bytes and the derivation constant, a zero separator,
// the output length in bits, the counter 1, and the context host challenge
// || card challenge.
func kdf(key []byte, constant byte, bits int, hostChallenge, cardChallenge []byte) []byte {
	in := make([]byte, 0, 32)
	in = append(in, make([]byte, 11)...)
	in = append(in, constant, 0x00)
	in = binary.BigEndian.AppendUint16(in, uint16(bits))
	in = append(in, 0x01)
	in = append(in, hostChallenge...)
	in = append(in, cardChallenge...)
	out := cmac(key, in)
	return out[:bits/8]
}

// sessionKeys are the keys of one secure channel.
type sessionKeys struct {
	senc, smac, srmac []byte
}

func deriveSessionKeys(enc, mac []byte, hostChallenge, cardChallenge []byte) sessionKeys {
	return sessionKeys{
		senc:  kdf(enc, kdfSENC, 128, hostChallenge, cardChallenge),
		smac:  kdf(mac, kdfSMAC, 128, hostChallenge, cardChallenge),
		srmac: kdf(mac, kdfSRMAC, 128, hostChallenge, cardChallenge),
	}
}

// messageMAC is the chained C-MAC or R-MAC of a secure-channel message:
// AES-CMAC over the previous chaining value, the message's command byte,
// its length field (session id + data + 8-byte MAC), the session id and the
// data. It returns the full 16 bytes; the wire carries the first 8.
func messageMAC(key []byte, chain [16]byte, cmd byte, sid byte, data []byte) [16]byte {
	in := make([]byte, 0, 16+4+len(data))
	in = append(in, chain[:]...)
	in = append(in, cmd)
	in = binary.BigEndian.AppendUint16(in, uint16(1+len(data)+8))
	in = append(in, sid)
	in = append(in, data...)
	return cmac(key, in)
}

// counterIV is the IV of the session's AES-CBC encryption for one message:
// the 32-bit message counter, big endian, right-aligned in a block of zeros
// and encrypted with S-ENC. The device uses it for the command and its
// response.
func counterIV(b cipher.Block, counter uint32) []byte {
	iv := make([]byte, 16)
	binary.BigEndian.PutUint32(iv[12:], counter)
	b.Encrypt(iv, iv)
	return iv
}

// pad appends ISO/IEC 9797-1 method 2 padding: 0x80, then zeros up to a
// whole block. A whole block of padding is added to aligned input.
func pad(b []byte) []byte {
	out := append(append([]byte(nil), b...), 0x80)
	for len(out)%16 != 0 {
		out = append(out, 0)
	}
	return out
}
