// Package hsm is cosigner's client of a YubiHSM2 through yubihsm-connector:
// the [hsm] configuration section, one authenticated SCP03 session kept
// alive and reopened, ed25519 keys (Key, a chain's whole key for softsign)
// and opaque objects (a sealed threshold share), and the client's metrics.
//
// It knows nothing of sign state or of what the keys sign.
package hsm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certusone/yubihsm-go/commands"
	"github.com/certusone/yubihsm-go/connector"
	"github.com/certusone/yubihsm-go/securechannel"

	"github.com/cosigner/cosigner/internal/fsutil"
)

// Config is the [hsm] section: how to reach a YubiHSM2 through
// yubihsm-connector. The password is read from a file, never written in
// cosigner.toml.
type Config struct {
	// Connector is yubihsm-connector's address, host:port or
	// http://host:port (its default is 127.0.0.1:12345). Empty: no HSM.
	Connector string `toml:"connector"`
	// AuthKeyID is the authentication key object cosigner opens sessions
	// with.
	AuthKeyID int `toml:"auth_key_id"`
	// PasswordFile holds that key's password (one line, 0600).
	PasswordFile string `toml:"password_file"`
	// Domain is the domain (1..16) objects cosigner creates are put in.
	Domain int `toml:"domain"`
	// RequestTimeout bounds each device request, reconnection included,
	// such as "1s". A sign request fails rather than wait longer.
	RequestTimeout string `toml:"request_timeout"`
}

// Defaults of the [hsm] section.
const (
	DefaultAuthKeyID      = 1
	DefaultPasswordFile   = "hsm_password"
	DefaultDomain         = 1
	DefaultRequestTimeout = "1s"
)

// Enabled reports whether an HSM is configured.
func (h *Config) Enabled() bool { return h.Connector != "" }

// Timeout returns the parsed request timeout (valid after Validate).
func (h *Config) Timeout() time.Duration {
	d, err := time.ParseDuration(h.RequestTimeout)
	if err != nil || d <= 0 {
		d, _ = time.ParseDuration(DefaultRequestTimeout)
	}
	return d
}

// Validate checks every field of the section, naming the key, the value
// and what is allowed.
func (h *Config) Validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, err := connectorAddr(h.Connector); err != nil {
		bad("hsm.connector = %q: %v", h.Connector, err)
	}
	if h.AuthKeyID < 1 || h.AuthKeyID > 0xffff {
		bad("hsm.auth_key_id = %d: allowed are object ids 1 to 65535", h.AuthKeyID)
	}
	if h.PasswordFile == "" {
		bad("hsm.password_file is empty: name a file holding the authentication key's password (the password is never written in cosigner.toml)")
	}
	if h.Domain < 1 || h.Domain > 16 {
		bad("hsm.domain = %d: allowed are domains 1 to 16", h.Domain)
	}
	if d, err := time.ParseDuration(h.RequestTimeout); err != nil || d < 10*time.Millisecond || d > time.Minute {
		bad("hsm.request_timeout = %q: want a duration from 10ms to 1m, like \"1s\"", h.RequestTimeout)
	}
	return errs
}

// connectorAddr turns the configured connector address into the host:port
// yubihsm-go's HTTP connector expects.
func connectorAddr(s string) (string, error) {
	hp := strings.TrimSuffix(strings.TrimPrefix(s, "http://"), "/")
	if strings.Contains(hp, "://") {
		return "", errors.New("want host:port or http://host:port (yubihsm-connector speaks plain HTTP)")
	}
	if host, port, err := net.SplitHostPort(hp); err != nil || host == "" || port == "" {
		return "", errors.New("want host:port or http://host:port, like \"127.0.0.1:12345\"")
	}
	return hp, nil
}

// ReadPassword reads the password file: its first line, without the
// line ending. It refuses a file readable by others.
func ReadPassword(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("read hsm password: %w", err)
	}
	if err := fsutil.CheckSecretMode(path, st.Mode()); err != nil {
		return "", fmt.Errorf("hsm password file %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read hsm password: %w", err)
	}
	pw, _, _ := strings.Cut(string(data), "\n")
	pw = strings.TrimSuffix(pw, "\r")
	if pw == "" {
		return "", fmt.Errorf("hsm password file %s is empty", path)
	}
	return pw, nil
}

// Errors of HSM operations, for callers to branch on with errors.Is.
var (
	// ErrUnreachable: no connector answered, or it answered with an
	// HTTP error (no device plugged in), or the request timed out.
	ErrUnreachable = errors.New("YubiHSM2 not reachable")
	// ErrAuth: the password does not open the authentication key.
	ErrAuth = errors.New("YubiHSM2 authentication failed")
	// ErrNotFound: no such object (or it is outside the key's domains).
	ErrNotFound = errors.New("object not found in the YubiHSM2")
	// ErrPermission: the authentication key or the object lacks a
	// capability the command needs.
	ErrPermission = errors.New("YubiHSM2 refused: missing capability")
	// ErrExists: an object of that type and id exists already.
	ErrExists = errors.New("object exists in the YubiHSM2")
)

// Object types and algorithms cosigner uses (YubiHSM2 numbering).
const (
	TypeOpaque     = commands.ObjectTypeOpaque
	TypeAsymmetric = commands.ObjectTypeAsymmetricKey
)

// Options configure an HSM client.
type Options struct {
	// Addr is yubihsm-connector's host:port (http:// is accepted).
	Addr      string
	AuthKeyID uint16
	Password  string
	// Domains is the bit set of domains new objects go into; 0 means
	// domain 1.
	Domains uint16
	// Timeout bounds each request, reconnection included; 0 means 1 s.
	Timeout time.Duration
	// KeepAlive is how often Run echoes on an idle session (the device
	// closes sessions idle for 30 s); 0 means 10 s.
	KeepAlive time.Duration
	// Metrics records the client's requests; nil records nothing.
	Metrics *Metrics
}

// Options builds client options from the [hsm] section, reading the
// password file at passwordPath (the section's password_file resolved
// against the home).
func (h *Config) Options(passwordPath string) (Options, error) {
	if !h.Enabled() {
		return Options{}, errors.New("no [hsm] section with a connector in cosigner.toml")
	}
	addr, err := connectorAddr(h.Connector)
	if err != nil {
		return Options{}, fmt.Errorf("hsm.connector = %q: %w", h.Connector, err)
	}
	pw, err := ReadPassword(passwordPath)
	if err != nil {
		return Options{}, err
	}
	return Options{Addr: addr, AuthKeyID: uint16(h.AuthKeyID), Password: pw, Domains: 1 << (h.Domain - 1), Timeout: h.Timeout()}, nil
}

// Client is a client of one YubiHSM2 through yubihsm-connector, built on
// yubihsm-go's secure channel (SCP03) and command encoders. It keeps one
// authenticated session, serialises commands on it (the device executes one
// at a time), opens a new session whenever the old one is lost (connector
// or device restarted, session timed out), and bounds every request by the
// configured timeout, so a caller never waits on an absent device.
//
// yubihsm-go's own SessionManager is not used: its keep-alive goroutine
// cannot be stopped, it reconnects only from that 15-second timer, and it
// talks through http.DefaultClient with no timeout.
//
// Methods are safe for concurrent use.
type Client struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics // nil: none; from Options

	// mu serialises device commands and guards the fields below.
	mu      sync.Mutex
	conn    *httpConnector
	session *securechannel.SecureChannel // nil: none open

	// down is set while the device is unavailable (the last attempt
	// failed); read without mu by readiness checks.
	down atomic.Bool
}

// httpConnector is yubihsm-go's connector.Connector over HTTP with a
// deadline per request. The deadline is set by the HSM under its mutex
// before each exchange.
type httpConnector struct {
	addr     string
	client   *http.Client
	deadline time.Time
}

var _ connector.Connector = (*httpConnector)(nil)

func (c *httpConnector) Request(cmd *commands.CommandMessage) ([]byte, error) {
	body, err := cmd.Serialize()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithDeadline(context.Background(), c.deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+"/connector/api", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: connector %s: %v", ErrUnreachable, c.addr, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if err != nil {
		return nil, fmt.Errorf("%w: connector %s: %v", ErrUnreachable, c.addr, err)
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: connector %s answered HTTP %d (is the device plugged in?)", ErrUnreachable, c.addr, res.StatusCode)
	}
	return data, nil
}

func (c *httpConnector) GetStatus() (*connector.StatusResponse, error) {
	return nil, errors.New("not implemented: cosigner checks the device with Echo")
}

// Dial opens an authenticated session, without retrying: a wrong
// password or an unknown authentication key is ErrAuth, a connector or
// device that does not answer within the timeout ErrUnreachable.
func Dial(ctx context.Context, opts Options, log *slog.Logger) (*Client, error) {
	addr, err := connectorAddr(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("yubihsm connector %q: %w", opts.Addr, err)
	}
	opts.Addr = addr
	if opts.Domains == 0 {
		opts.Domains = commands.Domain1
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 10 * time.Second
	}
	h := &Client{opts: opts, log: log, metrics: opts.Metrics, conn: &httpConnector{addr: addr, client: &http.Client{
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: opts.Timeout}).DialContext,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     30 * time.Second,
		},
	}}}
	h.mu.Lock()
	defer h.mu.Unlock()
	ctx, cancel := h.budget(ctx)
	defer cancel()
	if err := h.open(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// budget bounds ctx by the request timeout.
func (h *Client) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.opts.Timeout)
}

// open authenticates a new session. Callers hold mu.
func (h *Client) open(ctx context.Context) error {
	h.session = nil
	dl, _ := ctx.Deadline()
	h.conn.deadline = dl
	ch, err := securechannel.NewSecureChannel(h.conn, h.opts.AuthKeyID, h.opts.Password)
	if err != nil {
		return fmt.Errorf("open yubihsm session: %w", err)
	}
	if err := ch.Authenticate(); err != nil {
		if errors.Is(err, securechannel.ErrAuthCryptogram) {
			return fmt.Errorf("%w: authentication key %d at %s: wrong password (the device's cryptogram does not match)", ErrAuth, h.opts.AuthKeyID, h.opts.Addr)
		}
		err = deviceErr(err)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: authentication key %d at %s", ErrAuth, h.opts.AuthKeyID, h.opts.Addr)
		}
		return fmt.Errorf("open yubihsm session with authentication key %d at %s: %w", h.opts.AuthKeyID, h.opts.Addr, err)
	}
	h.session = ch
	h.metrics.opened()
	return nil
}

// deviceErr maps the device's error codes onto the sentinels.
func deviceErr(err error) error {
	var de *commands.Error
	if !errors.As(err, &de) {
		return err
	}
	switch de.Code {
	case commands.ErrorCodeObjectNotFound:
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case commands.ErrorCodeInvalidPermission:
		return fmt.Errorf("%w (%v)", ErrPermission, err)
	case commands.ErrorCodeObjectExists:
		return fmt.Errorf("%w (%v)", ErrExists, err)
	case commands.ErrorCodeAuthFail:
		return fmt.Errorf("%w (%v)", ErrAuth, err)
	}
	return err
}

// sessionLost reports whether err means the session is gone or out of step
// with the device: any transport failure (the command may or may not have
// run, so MAC chain and counter are unknown) or a session-level refusal.
func sessionLost(err error) bool {
	var de *commands.Error
	if !errors.As(err, &de) {
		return true
	}
	switch de.Code {
	case commands.ErrorCodeInvalidSession, commands.ErrorCodeAuthFail, commands.ErrorCodeSessionFailed, commands.ErrorCodeSessionFull:
		return true
	}
	return false
}

// retryInterval is the pause between attempts to reach a device that
// is away, within one request's budget.
const retryInterval = 50 * time.Millisecond

// do sends one command in the session, opening a session if there is none.
// Until the budget runs out it retries: at once when the session turns out
// lost (the device restarted, the session timed out), then every
// retryInterval while the connector or device is away, so a connector
// restart shorter than the budget costs a request some latency, not a
// failure. Commands cosigner sends are safe to repeat: a signature is
// deterministic, and a repeated put fails with ErrExists.
func (h *Client) do(ctx context.Context, cmd func() (*commands.CommandMessage, error)) (commands.Response, error) {
	ctx, cancel := h.budget(ctx)
	defer cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	for failures := 0; ctx.Err() == nil; failures++ {
		if failures > 1 && !pause(ctx, retryInterval) {
			break
		}
		if h.session == nil {
			if err = h.open(ctx); err != nil {
				h.noteDown(err)
				if errors.Is(err, ErrAuth) {
					h.metrics.failed(err)
					return nil, err
				}
				failures++ // the device is away: pause before the next attempt
				continue
			}
		}
		var c *commands.CommandMessage
		if c, err = cmd(); err != nil {
			return nil, err
		}
		dl, _ := ctx.Deadline()
		h.conn.deadline = dl
		var resp commands.Response
		start := time.Now()
		resp, err = h.session.SendEncryptedCommand(c)
		if err == nil {
			h.metrics.observe(c.CommandType, time.Since(start))
			h.noteUp()
			return resp, nil
		}
		if !sessionLost(err) {
			h.noteUp()
			err = deviceErr(err)
			h.metrics.failed(err)
			return nil, err
		}
		h.session = nil
		h.noteDown(err)
	}
	if ctx.Err() != nil && !errors.Is(err, ErrUnreachable) {
		err = fmt.Errorf("%w: no answer from %s within %s (last: %v)", ErrUnreachable, h.opts.Addr, h.opts.Timeout, err)
	}
	h.metrics.failed(err)
	return nil, err
}

// pause waits d or until ctx ends, and reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (h *Client) noteDown(err error) {
	if !h.down.Swap(true) {
		h.log.Warn("hsm unavailable", "connector", h.opts.Addr, "err", err)
	}
}

func (h *Client) noteUp() {
	if h.down.Swap(false) {
		h.log.Info("hsm session restored", "connector", h.opts.Addr)
	}
}

// Run keeps the session alive until ctx ends: an Echo every KeepAlive (the
// device drops sessions idle for 30 s), which also reopens a lost session
// before the next sign request needs it. It closes the session on return.
func (h *Client) Run(ctx context.Context) error {
	t := time.NewTicker(h.opts.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			h.Close()
			return ctx.Err()
		case <-t.C:
			_ = h.Ping(ctx) // failures are logged by do
		}
	}
}

// Ping echoes a few bytes through the session.
func (h *Client) Ping(ctx context.Context) error {
	payload := []byte("cosigner")
	resp, err := h.do(ctx, func() (*commands.CommandMessage, error) { return commands.CreateEchoCommand(payload) })
	if err != nil {
		return err
	}
	if e, ok := resp.(*commands.EchoResponse); !ok || !bytes.Equal(e.Data, payload) {
		return errors.New("yubihsm echo: unexpected answer")
	}
	return nil
}

// Close closes the session on the device (best effort, bounded by the
// timeout). The HSM reopens a session if used again.
func (h *Client) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.session == nil {
		return
	}
	h.conn.deadline = time.Now().Add(h.opts.Timeout)
	_ = h.session.Close()
	h.session = nil
	h.conn.client.CloseIdleConnections()
}

// DeviceInfo returns the device's serial number and firmware version.
func (h *Client) DeviceInfo(ctx context.Context) (serial uint32, firmware string, err error) {
	resp, err := h.do(ctx, commands.CreateDeviceInfoCommand)
	if err != nil {
		return 0, "", fmt.Errorf("yubihsm device info: %w", err)
	}
	r, ok := resp.(*commands.DeviceInfoResponse)
	if !ok {
		return 0, "", errors.New("yubihsm device info: unexpected answer")
	}
	return r.SerialNumber, fmt.Sprintf("%d.%d.%d", r.MajorVersion, r.MinorVersion, r.BuildVersion), nil
}

// SignEd25519 signs msg with the ed25519 key keyID inside the device (Sign
// EdDSA, pure ed25519 per RFC 8032) and returns the 64-byte signature.
func (h *Client) SignEd25519(ctx context.Context, keyID uint16, msg []byte) ([]byte, error) {
	resp, err := h.do(ctx, func() (*commands.CommandMessage, error) { return commands.CreateSignDataEddsaCommand(keyID, msg) })
	if err != nil {
		return nil, fmt.Errorf("yubihsm sign with key %d: %w", keyID, err)
	}
	r, ok := resp.(*commands.SignDataEddsaResponse)
	if !ok || len(r.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("yubihsm sign with key %d: unexpected answer", keyID)
	}
	return r.Signature, nil
}

// PublicKey returns the public key of the ed25519 key keyID.
func (h *Client) PublicKey(ctx context.Context, keyID uint16) (ed25519.PublicKey, error) {
	resp, err := h.do(ctx, func() (*commands.CommandMessage, error) { return commands.CreateGetPubKeyCommand(keyID) })
	if err != nil {
		return nil, fmt.Errorf("yubihsm public key of key %d: %w", keyID, err)
	}
	r, ok := resp.(*commands.GetPubKeyResponse)
	if !ok {
		return nil, fmt.Errorf("yubihsm public key of key %d: unexpected answer", keyID)
	}
	if r.Algorithm != commands.AlgorithmED25519 || len(r.KeyData) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("yubihsm key %d is not an ed25519 key (algorithm %d)", keyID, r.Algorithm)
	}
	return ed25519.PublicKey(r.KeyData), nil
}

// keyCapabilities are the capabilities of consensus keys cosigner creates:
// sign-eddsa only, plus exportable-under-wrap when asked for a key that
// can be backed up to another device.
func keyCapabilities(exportable bool) uint64 {
	c := commands.CapabilityAsymmetricSignEddsa
	if exportable {
		c |= commands.CapabilityExportableUnderWrap
	}
	return c
}

// ImportEd25519 stores the ed25519 key with the 32-byte seed as object
// keyID (Put Asymmetric Key). The key can only sign; exportable adds the
// exportable-under-wrap capability.
func (h *Client) ImportEd25519(ctx context.Context, keyID uint16, label string, seed []byte, exportable bool) error {
	if len(seed) != ed25519.SeedSize {
		return fmt.Errorf("ed25519 seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	_, err := h.do(ctx, func() (*commands.CommandMessage, error) {
		return commands.CreatePutAsymmetricKeyCommand(keyID, []byte(label), h.opts.Domains, keyCapabilities(exportable), commands.AlgorithmED25519, seed, nil)
	})
	if err != nil {
		return fmt.Errorf("yubihsm import key %d: %w", keyID, err)
	}
	return nil
}

// GenerateEd25519 makes the device generate an ed25519 key as object keyID
// and returns its public key.
func (h *Client) GenerateEd25519(ctx context.Context, keyID uint16, label string, exportable bool) (ed25519.PublicKey, error) {
	// yubihsm-go v0.3.0 misparses the key id in the answer; the id asked
	// for (never 0 here) is the one the device uses.
	_, err := h.do(ctx, func() (*commands.CommandMessage, error) {
		return commands.CreateGenerateAsymmetricKeyCommand(keyID, []byte(label), h.opts.Domains, keyCapabilities(exportable), commands.AlgorithmED25519)
	})
	if err != nil {
		return nil, fmt.Errorf("yubihsm generate key %d: %w", keyID, err)
	}
	return h.PublicKey(ctx, keyID)
}

// Object describes one object in the device.
type Object struct {
	ID           uint16
	Type         uint8
	Label        string
	Algorithm    commands.Algorithm
	Capabilities uint64
	// PublicKey is set for ed25519 keys.
	PublicKey ed25519.PublicKey
}

// List returns the objects of type typ the session can see, ed25519 keys
// with their public keys.
func (h *Client) List(ctx context.Context, typ uint8) ([]Object, error) {
	resp, err := h.do(ctx, func() (*commands.CommandMessage, error) {
		return commands.CreateListObjectsCommand(commands.NewObjectTypeOption(typ))
	})
	if err != nil {
		return nil, fmt.Errorf("yubihsm list objects: %w", err)
	}
	r, ok := resp.(*commands.ListObjectsResponse)
	if !ok {
		return nil, errors.New("yubihsm list objects: unexpected answer")
	}
	var out []Object
	for _, o := range r.Objects {
		info, err := h.do(ctx, func() (*commands.CommandMessage, error) {
			return commands.CreateGetObjectInfoCommand(o.ObjectID, o.ObjectType)
		})
		if err != nil {
			return nil, fmt.Errorf("yubihsm object %d info: %w", o.ObjectID, err)
		}
		oi, ok := info.(*commands.ObjectInfoResponse)
		if !ok {
			return nil, fmt.Errorf("yubihsm object %d info: unexpected answer", o.ObjectID)
		}
		obj := Object{ID: o.ObjectID, Type: o.ObjectType, Label: string(bytes.TrimRight(oi.Label[:], "\x00")),
			Algorithm: oi.Algorithm, Capabilities: oi.Capabilities}
		if o.ObjectType == TypeAsymmetric && oi.Algorithm == commands.AlgorithmED25519 {
			if obj.PublicKey, err = h.PublicKey(ctx, o.ObjectID); err != nil {
				return nil, err
			}
		}
		out = append(out, obj)
	}
	return out, nil
}

// MaxOpaqueSize is the largest opaque object a YubiHSM2 stores.
const MaxOpaqueSize = 1968

// PutOpaque stores data as the opaque object id (0: the device picks a
// free id), readable with the get-opaque capability, and returns its id.
func (h *Client) PutOpaque(ctx context.Context, id uint16, label string, data []byte) (uint16, error) {
	if len(data) == 0 || len(data) > MaxOpaqueSize {
		return 0, fmt.Errorf("opaque object of %d bytes: the device stores 1 to %d", len(data), MaxOpaqueSize)
	}
	resp, err := h.do(ctx, func() (*commands.CommandMessage, error) {
		return commands.CreatePutOpaqueCommand(id, []byte(label), h.opts.Domains, commands.CapabilityNone, commands.AlgorithmOpaqueData, data)
	})
	if err != nil {
		return 0, fmt.Errorf("yubihsm put opaque object %d: %w", id, err)
	}
	r, ok := resp.(*commands.PutOpaqueResponse)
	if !ok || (id != 0 && r.ObjectID != id) {
		return 0, fmt.Errorf("yubihsm put opaque object %d: unexpected answer", id)
	}
	return r.ObjectID, nil
}

// GetOpaque reads the opaque object id.
func (h *Client) GetOpaque(ctx context.Context, id uint16) ([]byte, error) {
	resp, err := h.do(ctx, func() (*commands.CommandMessage, error) { return commands.CreateGetOpaqueCommand(id) })
	if err != nil {
		return nil, fmt.Errorf("yubihsm get opaque object %d: %w", id, err)
	}
	r, ok := resp.(*commands.GetOpaqueResponse)
	if !ok {
		return nil, fmt.Errorf("yubihsm get opaque object %d: unexpected answer", id)
	}
	return r.Data, nil
}

// Delete deletes the object of type typ with the id.
func (h *Client) Delete(ctx context.Context, id uint16, typ uint8) error {
	_, err := h.do(ctx, func() (*commands.CommandMessage, error) { return commands.CreateDeleteObjectCommand(id, typ) })
	if err != nil {
		return fmt.Errorf("yubihsm delete object %d: %w", id, err)
	}
	return nil
}
