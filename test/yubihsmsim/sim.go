// Package yubihsmsim is a YubiHSM2 simulator for tests: an HTTP server on
// loopback that speaks yubihsm-connector's API (POST /connector/api with a
// raw device command, GET /connector/status) and, behind it, the device's
// command protocol with the SCP03 secure channel: session creation with a
// card challenge and cryptogram, authentication with the host cryptogram
// and a C-MAC, AES-CBC encrypted session messages with chained C-MACs and
// R-MACs and a message counter, and session close.
//
// It keeps objects in memory: authentication keys derived from passwords
// (with capabilities, delegated capabilities and domains), ed25519
// asymmetric keys and opaque objects, and it checks capabilities and
// domains as the device does. A wrong password makes the card cryptogram
// disagree with the client's (the client reports the failure, as with a
// real device); a bad MAC is answered with an error and ends the session.
//
// Stop and Restart take the connector away and bring it back on the same
// address; the device's sessions are lost, its objects kept.
//
// Use it only in tests: keys are ordinary Go memory.
package yubihsmsim

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Device error codes (YubiHSM2 "Response codes").
const (
	errInvalidCommand    byte = 0x01
	errInvalidData       byte = 0x02
	errInvalidSession    byte = 0x03
	errAuthFail          byte = 0x04
	errSessionsFull      byte = 0x05
	errWrongLength       byte = 0x08
	errInvalidPermission byte = 0x09
	errObjectNotFound    byte = 0x0b
	errInvalidID         byte = 0x0c
	errObjectExists      byte = 0x11
)

// Command bytes; a response carries the command | 0x80, an error 0x7f.
const (
	cmdEcho            byte = 0x01
	cmdCreateSession   byte = 0x03
	cmdAuthSession     byte = 0x04
	cmdSessionMessage  byte = 0x05
	cmdDeviceInfo      byte = 0x06
	cmdCloseSession    byte = 0x40
	cmdPutOpaque       byte = 0x42
	cmdGetOpaque       byte = 0x43
	cmdPutAsymmetric   byte = 0x45
	cmdGenerateAsym    byte = 0x46
	cmdListObjects     byte = 0x48
	cmdGetObjectInfo   byte = 0x4e
	cmdGetPseudoRandom byte = 0x51
	cmdGetPubKey       byte = 0x54
	cmdDeleteObject    byte = 0x58
	cmdSignEddsa       byte = 0x6a
	respError          byte = 0x7f
)

// maxSessions is the device's number of session slots.
const maxSessions = 16

// DefaultPassword is the password of the factory authentication key 1.
const DefaultPassword = "password"

// Options configure a simulator.
type Options struct {
	// Serial is the device's serial number; 0 picks 12345678.
	Serial uint32
	// SessionTimeout closes sessions idle this long (the device uses 30 s);
	// 0 means 30 s.
	SessionTimeout time.Duration
	// NoDefaultAuthKey leaves out the factory authentication key 1 with
	// the password "password" and every capability.
	NoDefaultAuthKey bool
}

// Sim is a running simulator. Its methods are safe for concurrent use.
type Sim struct {
	opts Options

	// mu guards everything below.
	mu       sync.Mutex
	objects  map[objKey]*object
	sessions map[byte]*session
	delay    time.Duration
	addr     string
	srv      *http.Server
	stopped  chan struct{} // closed by Stop; a new one per Restart
	served   sync.WaitGroup
	counts   map[byte]int
	counted  chan struct{} // closed and replaced whenever counts change
}

// New starts a simulator on 127.0.0.1 on a free port.
func New(opts Options) (*Sim, error) {
	if opts.Serial == 0 {
		opts.Serial = 12345678
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 30 * time.Second
	}
	s := &Sim{opts: opts, objects: map[objKey]*object{}, sessions: map[byte]*session{}, counts: map[byte]int{}, counted: make(chan struct{})}
	if !opts.NoDefaultAuthKey {
		if err := s.PutAuthKey(1, "DEFAULT AUTHKEY CHANGE THIS ASAP", DefaultPassword, 0xffff, capAll, capAll); err != nil {
			return nil, err
		}
	}
	if err := s.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the connector's host:port, as yubihsm-go's HTTP connector takes
// it.
func (s *Sim) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the connector's http://host:port.
func (s *Sim) URL() string { return "http://" + s.Addr() }

func (s *Sim) listen(addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("yubihsmsim: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connector/api", s.handleAPI)
	mux.HandleFunc("GET /connector/status", s.handleStatus)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.addr = lis.Addr().String()
	s.srv = srv
	s.stopped = make(chan struct{})
	s.mu.Unlock()
	s.served.Add(1)
	go func() {
		defer s.served.Done()
		_ = srv.Serve(lis) // returns on Close
	}()
	return nil
}

// Stop takes the connector away: the listener and every connection are
// closed, requests in flight are abandoned, and the device loses its
// sessions (as when it is unplugged). Objects are kept.
func (s *Sim) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	if srv != nil {
		close(s.stopped)
	}
	s.sessions = map[byte]*session{}
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	s.served.Wait()
}

// Restart brings a stopped connector back on the same address.
func (s *Sim) Restart() error {
	s.mu.Lock()
	running := s.srv != nil
	addr := s.addr
	s.mu.Unlock()
	if running {
		return errors.New("yubihsmsim: restart of a running simulator")
	}
	return s.listen(addr)
}

// Close stops the simulator for good.
func (s *Sim) Close() { s.Stop() }

// SetDelay makes the device answer each command only after d (0: at once),
// to model a slow or hanging device. Stop cuts a delayed request short.
func (s *Sim) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Sessions returns the number of open sessions.
func (s *Sim) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Count returns how many times the device executed command cmd (inside a
// session or not) successfully.
func (s *Sim) Count(cmd byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[cmd]
}

// WaitCount waits until the device has executed command cmd at least n
// times, or ctx ends.
func (s *Sim) WaitCount(ctx context.Context, cmd byte, n int) error {
	for {
		s.mu.Lock()
		c, ch := s.counts[cmd], s.counted
		s.mu.Unlock()
		if c >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("yubihsmsim: command %#x executed %d times, waiting for %d: %w", cmd, c, n, ctx.Err())
		}
	}
}

// Command bytes for Count.
const (
	CmdSignEddsa     = cmdSignEddsa
	CmdEcho          = cmdEcho
	CmdCreateSession = cmdCreateSession
)

func (s *Sim) handleStatus(w http.ResponseWriter, _ *http.Request) {
	host, port, _ := net.SplitHostPort(s.Addr())
	fmt.Fprintf(w, "status=OK\nserial=%010d\nversion=3.0.4\npid=%d\naddress=%s\nport=%s", s.opts.Serial, 4242, host, port)
}

func (s *Sim) handleAPI(w http.ResponseWriter, r *http.Request) {
	req, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	delay, stopped := s.delay, s.stopped
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-stopped:
			t.Stop()
			return
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	resp := s.Execute(req)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(resp)
}

// Execute runs one raw device command (command byte, 2-byte big-endian
// length, payload) and returns the raw response, as the device does behind
// the connector.
func (s *Sim) Execute(req []byte) []byte {
	if len(req) < 3 {
		return errResp(errWrongLength)
	}
	cmd := req[0]
	n := int(binary.BigEndian.Uint16(req[1:3]))
	if len(req) != 3+n {
		return errResp(errWrongLength)
	}
	body := req[3:]
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireSessions()
	switch cmd {
	case cmdEcho:
		return s.ok(cmd, body)
	case cmdDeviceInfo:
		return s.ok(cmd, s.deviceInfo())
	case cmdCreateSession:
		return s.createSession(body)
	case cmdAuthSession:
		return s.authenticateSession(body)
	case cmdSessionMessage:
		return s.sessionMessage(body)
	default:
		// Everything else needs an authenticated session.
		return errResp(errInvalidCommand)
	}
}

func (s *Sim) ok(cmd byte, payload []byte) []byte {
	s.counts[cmd]++
	close(s.counted)
	s.counted = make(chan struct{})
	return resp(cmd, payload)
}

func resp(cmd byte, payload []byte) []byte {
	out := make([]byte, 3, 3+len(payload))
	out[0] = cmd | 0x80
	binary.BigEndian.PutUint16(out[1:], uint16(len(payload)))
	return append(out, payload...)
}

func errResp(code byte) []byte { return []byte{respError, 0, 1, code} }

func (s *Sim) deviceInfo() []byte {
	out := []byte{2, 4, 0} // firmware 2.4.0
	out = binary.BigEndian.AppendUint32(out, s.opts.Serial)
	out = append(out, 62, 0) // log slots total, used
	return append(out, algEd25519, algOpaqueData, algYubicoAESAuth)
}

// session is one secure channel.
type session struct {
	id            byte
	authKey       *object
	hostChallenge []byte
	cardChallenge []byte
	keys          sessionKeys
	authenticated bool
	chain         [16]byte // MAC chaining value: the last full C-MAC
	counter       uint32
	lastUsed      time.Time
}

func (s *Sim) expireSessions() {
	now := time.Now()
	for id, ss := range s.sessions {
		if now.Sub(ss.lastUsed) > s.opts.SessionTimeout {
			delete(s.sessions, id)
		}
	}
}

// createSession: key set id (2), host challenge (8) -> session id (1), card
// challenge (8), card cryptogram (8).
func (s *Sim) createSession(body []byte) []byte {
	if len(body) != 10 {
		return errResp(errWrongLength)
	}
	keyID := binary.BigEndian.Uint16(body)
	ak, ok := s.objects[objKey{keyID, typeAuthKey}]
	if !ok {
		return errResp(errObjectNotFound)
	}
	var sid byte
	for sid = 0; sid < maxSessions; sid++ {
		if _, used := s.sessions[sid]; !used {
			break
		}
	}
	if sid == maxSessions {
		return errResp(errSessionsFull)
	}
	ss := &session{id: sid, authKey: ak, hostChallenge: append([]byte(nil), body[2:]...), cardChallenge: make([]byte, 8), lastUsed: time.Now()}
	_, _ = rand.Read(ss.cardChallenge)
	ss.keys = deriveSessionKeys(ak.encKey[:], ak.macKey[:], ss.hostChallenge, ss.cardChallenge)
	s.sessions[sid] = ss
	out := []byte{sid}
	out = append(out, ss.cardChallenge...)
	out = append(out, kdf(ss.keys.smac, kdfCardCryptogram, 64, ss.hostChallenge, ss.cardChallenge)...)
	return s.ok(cmdCreateSession, out)
}

// authenticateSession: session id (1), host cryptogram (8), C-MAC (8).
func (s *Sim) authenticateSession(body []byte) []byte {
	if len(body) != 17 {
		return errResp(errWrongLength)
	}
	ss, ok := s.sessions[body[0]]
	if !ok || ss.authenticated {
		return errResp(errInvalidSession)
	}
	data, mac := body[1:9], body[9:]
	full := messageMAC(ss.keys.smac, [16]byte{}, cmdAuthSession, ss.id, data)
	want := kdf(ss.keys.smac, kdfHostCryptogram, 64, ss.hostChallenge, ss.cardChallenge)
	if !hmacEqual(full[:8], mac) || !hmacEqual(want, data) {
		delete(s.sessions, ss.id)
		return errResp(errAuthFail)
	}
	ss.chain = full
	ss.counter = 1
	ss.authenticated = true
	ss.lastUsed = time.Now()
	return s.ok(cmdAuthSession, nil)
}

// sessionMessage: session id (1), encrypted inner command, C-MAC (8) ->
// session id (1), encrypted inner response, R-MAC (8).
func (s *Sim) sessionMessage(body []byte) []byte {
	if len(body) < 1+16+8 || (len(body)-9)%16 != 0 {
		return errResp(errWrongLength)
	}
	ss, ok := s.sessions[body[0]]
	if !ok || !ss.authenticated {
		return errResp(errInvalidSession)
	}
	enc, mac := body[1:len(body)-8], body[len(body)-8:]
	full := messageMAC(ss.keys.smac, ss.chain, cmdSessionMessage, ss.id, enc)
	if !hmacEqual(full[:8], mac) {
		// A message that fails its MAC ends the session.
		delete(s.sessions, ss.id)
		return errResp(errAuthFail)
	}
	ss.chain = full
	ss.lastUsed = time.Now()

	block := newAES(ss.keys.senc)
	iv := counterIV(block, ss.counter)
	plain := make([]byte, len(enc))
	cbcDecrypt(block, iv, plain, enc)
	inner := s.innerCommand(ss, plain)

	out := pad(inner)
	cbcEncrypt(block, iv, out, out)
	rmac := messageMAC(ss.keys.srmac, ss.chain, cmdSessionMessage|0x80, ss.id, out)
	ss.counter++
	payload := append([]byte{ss.id}, out...)
	payload = append(payload, rmac[:8]...)
	if len(inner) >= 1 && inner[0] == cmdCloseSession|0x80 {
		delete(s.sessions, ss.id)
	}
	return s.ok(cmdSessionMessage, payload)
}

// innerCommand parses a decrypted inner command (the padding after its
// stated length is ignored: SCP03 padding, which clients may omit on
// block-aligned commands) and executes it.
func (s *Sim) innerCommand(ss *session, plain []byte) []byte {
	if len(plain) < 3 {
		return errResp(errWrongLength)
	}
	cmd := plain[0]
	n := int(binary.BigEndian.Uint16(plain[1:3]))
	if 3+n > len(plain) {
		return errResp(errWrongLength)
	}
	for i, b := range plain[3+n:] {
		if (i == 0 && b != 0x80) || (i > 0 && b != 0) {
			return errResp(errInvalidData)
		}
	}
	return s.execInSession(ss, cmd, plain[3:3+n])
}

func hmacEqual(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := range a {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// ed25519FromSeed is here so the object code reads as the device's: the
// device stores the 32-byte private scalar seed (RFC 8032 "k").
func ed25519FromSeed(seed []byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(seed) }
