package yubihsmsim

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/certusone/yubihsm-go/commands"
	"github.com/certusone/yubihsm-go/connector"
	"github.com/certusone/yubihsm-go/securechannel"
)

// TestCMAC checks AES-CMAC against RFC 4493 section 4's examples.
func TestCMAC(t *testing.T) {
	key, _ := hex.DecodeString("2b7e151628aed2a6abf7158809cf4f3c")
	msg, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		got := cmac(key, msg[:tc.n])
		if hex.EncodeToString(got[:]) != tc.want {
			t.Errorf("CMAC of %d bytes = %x, want %s", tc.n, got, tc.want)
		}
	}
}

func newSim(t *testing.T) *Sim {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// channel opens an authenticated session with yubihsm-go's secure channel.
func channel(t *testing.T, s *Sim, keyID uint16, password string) *securechannel.SecureChannel {
	t.Helper()
	ch, err := securechannel.NewSecureChannel(connector.NewHTTPConnector(s.Addr()), keyID, password)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Authenticate(); err != nil {
		t.Fatalf("authenticate with key %d: %v", keyID, err)
	}
	return ch
}

// send returns a function that sends a command built by one of yubihsm-go's
// constructors and fails the test on any error.
func send(t *testing.T, ch *securechannel.SecureChannel) func(*commands.CommandMessage, error) commands.Response {
	return func(c *commands.CommandMessage, err error) commands.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		r, err := ch.SendEncryptedCommand(c)
		if err != nil {
			t.Fatalf("command %#x: %v", c.CommandType, err)
		}
		return r
	}
}

func deviceError(err error) commands.ErrorCode {
	var e *commands.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func TestSessionAndCommands(t *testing.T) {
	s := newSim(t)
	conn := connector.NewHTTPConnector(s.Addr())
	st, err := conn.GetStatus()
	if err != nil || st.Status != "OK" {
		t.Fatalf("status: %+v, %v", st, err)
	}
	ch := channel(t, s, 1, DefaultPassword)

	r := send(t, ch)(commands.CreateEchoCommand([]byte("hello")))
	if e := r.(*commands.EchoResponse); string(e.Data) != "hello" {
		t.Fatalf("echo = %q", e.Data)
	}
	info := send(t, ch)(commands.CreateDeviceInfoCommand()).(*commands.DeviceInfoResponse)
	if info.SerialNumber != 12345678 {
		t.Errorf("serial %d", info.SerialNumber)
	}

	seed := bytes.Repeat([]byte{7}, 32)
	priv := ed25519.NewKeyFromSeed(seed)
	put := send(t, ch)(commands.CreatePutAsymmetricKeyCommand(10, []byte("validator"), commands.Domain1,
		commands.CapabilityAsymmetricSignEddsa, commands.AlgorithmED25519, seed, nil)).(*commands.PutAsymmetricKeyResponse)
	if put.KeyID != 10 {
		t.Fatalf("put asymmetric key: id %d", put.KeyID)
	}
	pub := send(t, ch)(commands.CreateGetPubKeyCommand(10)).(*commands.GetPubKeyResponse)
	if !bytes.Equal(pub.KeyData, priv.Public().(ed25519.PublicKey)) || pub.Algorithm != commands.AlgorithmED25519 {
		t.Fatalf("public key %x, alg %d", pub.KeyData, pub.Algorithm)
	}
	// Messages of many lengths exercise padding, including block-aligned
	// inner commands.
	for n := 0; n < 70; n++ {
		msg := bytes.Repeat([]byte{byte(n)}, n)
		sig := send(t, ch)(commands.CreateSignDataEddsaCommand(10, msg)).(*commands.SignDataEddsaResponse)
		if !ed25519.Verify(priv.Public().(ed25519.PublicKey), msg, sig.Signature) {
			t.Fatalf("signature over %d bytes does not verify", n)
		}
	}

	send(t, ch)(commands.CreateGenerateAsymmetricKeyCommand(11, []byte("gen"), commands.Domain1,
		commands.CapabilityAsymmetricSignEddsa, commands.AlgorithmED25519))
	if _, ok := s.PublicKey(11); !ok {
		t.Fatal("generated key 11 not stored")
	}

	data := bytes.Repeat([]byte("share"), 100)
	send(t, ch)(commands.CreatePutOpaqueCommand(20, []byte("share"), commands.Domain1, commands.CapabilityNone, commands.AlgorithmOpaqueData, data))
	got := send(t, ch)(commands.CreateGetOpaqueCommand(20)).(*commands.GetOpaqueResponse)
	if !bytes.Equal(got.Data, data) {
		t.Fatal("opaque object read back differs")
	}

	list := send(t, ch)(commands.CreateListObjectsCommand(commands.NewObjectTypeOption(commands.ObjectTypeAsymmetricKey))).(*commands.ListObjectsResponse)
	if len(list.Objects) != 2 || list.Objects[0].ObjectID != 10 || list.Objects[1].ObjectID != 11 {
		t.Fatalf("list = %+v", list.Objects)
	}
	oi := send(t, ch)(commands.CreateGetObjectInfoCommand(10, commands.ObjectTypeAsymmetricKey)).(*commands.ObjectInfoResponse)
	if string(bytes.TrimRight(oi.Label[:], "\x00")) != "validator" || oi.Capabilities != commands.CapabilityAsymmetricSignEddsa {
		t.Fatalf("object info %+v", oi)
	}

	send(t, ch)(commands.CreateDeleteObjectCommand(20, commands.ObjectTypeOpaque))
	c, _ := commands.CreateGetOpaqueCommand(20)
	if _, err := ch.SendEncryptedCommand(c); deviceError(err) != commands.ErrorCodeObjectNotFound {
		t.Fatalf("get deleted opaque: %v, want object not found", err)
	}
	c, _ = commands.CreatePutAsymmetricKeyCommand(10, nil, commands.Domain1, 0, commands.AlgorithmED25519, seed, nil)
	if _, err := ch.SendEncryptedCommand(c); deviceError(err) != commands.ErrorCodeObjectExists {
		t.Fatalf("put over key 10: %v, want object exists", err)
	}

	if err := ch.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.Sessions(); n != 0 {
		t.Fatalf("%d sessions open after close", n)
	}
}

func TestCapabilities(t *testing.T) {
	s := newSim(t)
	admin := channel(t, s, 1, DefaultPassword)
	seed := bytes.Repeat([]byte{1}, 32)
	send(t, admin)(commands.CreatePutAsymmetricKeyCommand(5, nil, commands.Domain1, commands.CapabilityNone, commands.AlgorithmED25519, seed, nil))
	send(t, admin)(commands.CreatePutAsymmetricKeyCommand(6, nil, commands.Domain1, commands.CapabilityAsymmetricSignEddsa, commands.AlgorithmED25519, seed, nil))
	send(t, admin)(commands.CreatePutAsymmetricKeyCommand(7, nil, commands.Domain2, commands.CapabilityAsymmetricSignEddsa, commands.AlgorithmED25519, seed, nil))
	// A signing-only key in domain 1.
	if err := s.PutAuthKey(2, "signer", "signer-pw", commands.Domain1, CapSignEddsa, 0); err != nil {
		t.Fatal(err)
	}
	signer := channel(t, s, 2, "signer-pw")
	for _, tc := range []struct {
		name string
		cmd  func() (*commands.CommandMessage, error)
		want commands.ErrorCode
	}{
		{"sign with a key without sign-eddsa", func() (*commands.CommandMessage, error) { return commands.CreateSignDataEddsaCommand(5, []byte("m")) }, commands.ErrorCodeInvalidPermission},
		{"sign in another domain", func() (*commands.CommandMessage, error) { return commands.CreateSignDataEddsaCommand(7, []byte("m")) }, commands.ErrorCodeObjectNotFound},
		{"sign with an unknown key", func() (*commands.CommandMessage, error) { return commands.CreateSignDataEddsaCommand(99, []byte("m")) }, commands.ErrorCodeObjectNotFound},
		{"put asymmetric", func() (*commands.CommandMessage, error) {
			return commands.CreatePutAsymmetricKeyCommand(8, nil, commands.Domain1, 0, commands.AlgorithmED25519, seed, nil)
		}, commands.ErrorCodeInvalidPermission},
		{"generate", func() (*commands.CommandMessage, error) {
			return commands.CreateGenerateAsymmetricKeyCommand(8, nil, commands.Domain1, 0, commands.AlgorithmED25519)
		}, commands.ErrorCodeInvalidPermission},
		{"put opaque", func() (*commands.CommandMessage, error) {
			return commands.CreatePutOpaqueCommand(8, nil, commands.Domain1, 0, commands.AlgorithmOpaqueData, []byte("x"))
		}, commands.ErrorCodeInvalidPermission},
		{"delete", func() (*commands.CommandMessage, error) {
			return commands.CreateDeleteObjectCommand(6, commands.ObjectTypeAsymmetricKey)
		}, commands.ErrorCodeInvalidPermission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.cmd()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := signer.SendEncryptedCommand(c); deviceError(err) != tc.want {
				t.Fatalf("got %v, want device error %#x", err, tc.want)
			}
		})
	}
	sig := send(t, signer)(commands.CreateSignDataEddsaCommand(6, []byte("m"))).(*commands.SignDataEddsaResponse)
	if !ed25519.Verify(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), []byte("m"), sig.Signature) {
		t.Fatal("signature does not verify")
	}
	// Capabilities beyond the delegated ones are refused at creation.
	if err := s.PutAuthKey(3, "importer", "imp", commands.Domain1, CapPutAsymmetric, CapSignEddsa); err != nil {
		t.Fatal(err)
	}
	imp := channel(t, s, 3, "imp")
	c, _ := commands.CreatePutAsymmetricKeyCommand(9, nil, commands.Domain1, CapSignEddsa|CapExportableUnderWrp, commands.AlgorithmED25519, seed, nil)
	if _, err := imp.SendEncryptedCommand(c); deviceError(err) != commands.ErrorCodeInvalidPermission {
		t.Fatalf("put with undelegated capability: %v", err)
	}
}

func TestWrongPassword(t *testing.T) {
	s := newSim(t)
	ch, err := securechannel.NewSecureChannel(connector.NewHTTPConnector(s.Addr()), 1, "not the password")
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Authenticate(); !errors.Is(err, securechannel.ErrAuthCryptogram) {
		t.Fatalf("authenticate with a wrong password: %v, want %v", err, securechannel.ErrAuthCryptogram)
	}
	ch, _ = securechannel.NewSecureChannel(connector.NewHTTPConnector(s.Addr()), 42, DefaultPassword)
	if err := ch.Authenticate(); deviceError(err) != commands.ErrorCodeObjectNotFound {
		t.Fatalf("authenticate with an unknown key: %v", err)
	}
}

func TestBadMAC(t *testing.T) {
	s := newSim(t)
	ch := channel(t, s, 1, DefaultPassword)
	ch.MACChainValue[0] ^= 1
	c, _ := commands.CreateEchoCommand([]byte("x"))
	if _, err := ch.SendEncryptedCommand(c); deviceError(err) != commands.ErrorCodeAuthFail {
		t.Fatalf("bad MAC: %v, want auth fail", err)
	}
	if s.Sessions() != 0 {
		t.Fatal("the session survived a bad MAC")
	}
	// A replayed message (counter and chain behind) fails too.
	ch = channel(t, s, 1, DefaultPassword)
	chain := append([]byte(nil), ch.MACChainValue...)
	send(t, ch)(commands.CreateEchoCommand([]byte("a")))
	ch.MACChainValue = chain
	ch.Counter--
	c, _ = commands.CreateEchoCommand([]byte("a"))
	if _, err := ch.SendEncryptedCommand(c); deviceError(err) != commands.ErrorCodeAuthFail {
		t.Fatalf("replay: %v, want auth fail", err)
	}
}

func TestRestartLosesSessions(t *testing.T) {
	s := newSim(t)
	ch := channel(t, s, 1, DefaultPassword)
	s.Stop()
	c, _ := commands.CreateEchoCommand([]byte("x"))
	if _, err := ch.SendEncryptedCommand(c); err == nil {
		t.Fatal("command succeeded while the connector is stopped")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	c, _ = commands.CreateEchoCommand([]byte("x"))
	if _, err := ch.SendEncryptedCommand(c); deviceError(err) != commands.ErrorCodeInvalidSession {
		t.Fatalf("old session after restart: %v, want invalid session", err)
	}
	ch = channel(t, s, 1, DefaultPassword)
	send(t, ch)(commands.CreateEchoCommand([]byte("x")))
}

func TestSessionsFull(t *testing.T) {
	s := newSim(t)
	for i := 0; i < maxSessions; i++ {
		channel(t, s, 1, DefaultPassword)
	}
	ch, _ := securechannel.NewSecureChannel(connector.NewHTTPConnector(s.Addr()), 1, DefaultPassword)
	if err := ch.Authenticate(); deviceError(err) != commands.ErrorCodeSessionFull {
		t.Fatalf("17th session: %v, want sessions full", err)
	}
}
