package ceremony

import (
	"bytes"
	"testing"
)

func seedHello() []byte {
	h := &hello{from: 2, params: []byte("cosigner ceremony v1\nparticipant 1: 127.0.0.1:1\nkind: dkg\n"), extra: []byte("marks")}
	h.nonce[0], h.longterm[31] = 7, 9
	return h.encode().body
}

// FuzzDecodeHello: no panic, and what decodes re-encodes to the same bytes.
func FuzzDecodeHello(f *testing.F) {
	f.Add(seedHello())
	f.Add([]byte{})
	f.Add(seedHello()[:helloFixed])
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeHello(b)
		if err != nil {
			return
		}
		if got := h.encode().body; !bytes.Equal(got, b) {
			t.Fatalf("re-encoding %x gives %x", b, got)
		}
	})
}

// FuzzReadFrame: no panic, a frame never exceeds MaxFrame, and what reads
// re-encodes to the bytes consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame{typ: frameHello, body: seedHello()}.bytes())
	f.Add(frame{typ: frameConfirm, body: make([]byte, 32)}.bytes())
	f.Add(frame{typ: frameDone}.bytes())
	f.Add(encodeAbort("cosigner 2: left").bytes())
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		fr, err := readFrame(r)
		if err != nil {
			return
		}
		if len(fr.body)+1 > MaxFrame {
			t.Fatalf("frame of %d bytes read", len(fr.body)+1)
		}
		consumed := b[:len(b)-r.Len()]
		if got := fr.bytes(); !bytes.Equal(got, consumed) {
			t.Fatalf("re-encoding gives %x, read %x", got, consumed)
		}
		// Each body decoder takes any body without panicking.
		switch fr.typ {
		case frameHello:
			_, _ = decodeHello(fr.body)
		case frameConfirm:
			_, _ = decodeConfirm(fr.body)
		case frameDone:
			_, _ = decodeDone(fr.body)
		case frameAbort:
			_, _ = decodeAbort(fr.body)
		}
	})
}

// FuzzAbort: any reason, even invalid UTF-8, encodes to a frame that
// decodes.
func FuzzAbort(f *testing.F) {
	f.Add("cosigner 3: left the ceremony")
	f.Add(string(bytes.Repeat([]byte("é"), MaxReason)))
	f.Fuzz(func(t *testing.T, reason string) {
		got, err := decodeAbort(encodeAbort(reason).body)
		if err != nil {
			t.Fatalf("abort of %q does not decode: %v", reason, err)
		}
		if len(got) > MaxReason {
			t.Fatalf("reason of %d bytes", len(got))
		}
	})
}

func TestDecodersRefuse(t *testing.T) {
	good := seedHello()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"short", good[:10]},
		{"version", append([]byte{1}, good[1:]...)},
		{"trailing", append(append([]byte(nil), good...), 0)},
		{"cut", good[:len(good)-1]},
		{"from 0", append([]byte{2, 0, 0}, good[3:]...)},
		{"extra too long", func() []byte {
			h := &hello{from: 2, extra: make([]byte, MaxExtra+1)}
			return h.encode().body
		}()},
	} {
		if _, err := decodeHello(tc.b); err == nil {
			t.Errorf("hello %s: decoded", tc.name)
		}
	}
	if _, err := decodeConfirm(make([]byte, 31)); err == nil {
		t.Error("31-byte confirm decoded")
	}
	if _, err := decodeDone(make([]byte, 33)); err == nil {
		t.Error("33-byte done decoded")
	}
	if _, err := decodeAbort([]byte{0xff}); err == nil {
		t.Error("invalid UTF-8 abort decoded")
	}
	for _, b := range [][]byte{{0, 0, 0, 0, 1}, {0, 0, 0, 1, 9}, {0, 0x10, 0, 1, 1}} {
		if _, err := readFrame(bytes.NewReader(b)); err == nil {
			t.Errorf("frame %x read", b)
		}
	}
}
