package yubihsmsim

import (
	"encoding/binary"
	"testing"

	"github.com/certusone/yubihsm-go/commands"
)

// FuzzExecute feeds raw connector requests to the device: no input may
// panic it, and every answer is a well-formed response or error frame.
func FuzzExecute(f *testing.F) {
	for _, c := range []func() (*commands.CommandMessage, error){
		commands.CreateDeviceInfoCommand,
		func() (*commands.CommandMessage, error) { return commands.CreateEchoCommand([]byte("x")) },
		func() (*commands.CommandMessage, error) {
			return commands.CreateCreateSessionCommand(1, make([]byte, 8))
		},
		func() (*commands.CommandMessage, error) {
			return commands.CreateAuthenticateSessionCommand(make([]byte, 16))
		},
	} {
		m, _ := c()
		b, _ := m.Serialize()
		f.Add(b)
	}
	f.Add([]byte{cmdSessionMessage, 0, 25, 0})
	f.Add([]byte{})
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, req []byte) {
		checkFrame(t, s.Execute(req))
	})
}

// FuzzCommand feeds decrypted commands to an authenticated session with
// every capability, as they arrive after the secure channel.
func FuzzCommand(f *testing.F) {
	seed := make([]byte, 32)
	for _, c := range []func() (*commands.CommandMessage, error){
		func() (*commands.CommandMessage, error) {
			return commands.CreatePutAsymmetricKeyCommand(1, []byte("k"), 1, commands.CapabilityAsymmetricSignEddsa, commands.AlgorithmED25519, seed, nil)
		},
		func() (*commands.CommandMessage, error) {
			return commands.CreateGenerateAsymmetricKeyCommand(2, nil, 1, 0, commands.AlgorithmED25519)
		},
		func() (*commands.CommandMessage, error) { return commands.CreateSignDataEddsaCommand(1, []byte("m")) },
		func() (*commands.CommandMessage, error) { return commands.CreateGetPubKeyCommand(1) },
		func() (*commands.CommandMessage, error) {
			return commands.CreatePutOpaqueCommand(3, nil, 1, 0, commands.AlgorithmOpaqueData, []byte("d"))
		},
		func() (*commands.CommandMessage, error) { return commands.CreateGetOpaqueCommand(3) },
		func() (*commands.CommandMessage, error) {
			return commands.CreateListObjectsCommand(commands.NewObjectTypeOption(3), commands.NewIDOption(1))
		},
		func() (*commands.CommandMessage, error) { return commands.CreateGetObjectInfoCommand(1, 3) },
		func() (*commands.CommandMessage, error) { return commands.CreateDeleteObjectCommand(3, 1) },
		commands.CreateCloseSessionCommand,
	} {
		m, _ := c()
		b, _ := m.Serialize()
		f.Add(b)
	}
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	ak := s.objects[objKey{1, typeAuthKey}]
	f.Fuzz(func(t *testing.T, plain []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		checkFrame(t, s.innerCommand(&session{authKey: ak, authenticated: true}, plain))
	})
}

func checkFrame(t *testing.T, resp []byte) {
	t.Helper()
	if len(resp) < 3 || int(binary.BigEndian.Uint16(resp[1:3])) != len(resp)-3 {
		t.Fatalf("malformed answer %x", resp)
	}
	if resp[0] != respError && resp[0]&0x80 == 0 {
		t.Fatalf("answer %#x is neither a response nor an error", resp[0])
	}
}
