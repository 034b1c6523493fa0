// Package clustertls holds the mutual-TLS identities of the cosigners of one
// cluster.
//
// It knows certificates and cosigner ids, nothing of what is sent over the
// links it secures.
//
// `cosigner shard` creates a one-off cluster CA, issues one certificate per
// cosigner with NewCA and (*CA).Issue, writes each cosigner's
// files with WriteFiles and then discards the CA key, so no certificate
// can ever be added to the cluster without re-sharding. At start a cosigner
// loads its files with Load and builds its gRPC and Raft links from
// ServerTLSConfig and ClientTLSConfig.
//
// A peer is known by the cosigner id in its certificate, never by its host
// name or address: hosts move, sit behind NAT or a WireGuard tunnel, and an
// address says nothing about who holds the private key. The certificate
// carries the id twice, as Subject CN "cosigner-<id>" and as URI SAN
// "cosigner://<id>"; both must be present and agree.
//
// Keys are Ed25519: signing is deterministic (no per-signature randomness
// whose failure could leak the key, unlike ECDSA), keys and signatures are
// small, and Go's TLS 1.3 stack supports it on both ends. Both ends are always
// this program, so the narrower support of Ed25519 certificates in other TLS
// stacks does not matter.
package clustertls

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"

	"github.com/cosigner/cosigner/internal/certid"
	"github.com/cosigner/cosigner/internal/fsutil"
)

// Cluster TLS file names inside a cosigner's directory.
const (
	CAFile   = "cluster-ca.crt" // the cluster CA certificate (public)
	CertFile = "cluster.crt"    // this cosigner's certificate (public)
	KeyFile  = "cluster.key"    // this cosigner's private key (0600)
)

// MaxID is the largest cosigner id a cluster certificate may carry.
// Ids start at 1, as FROST identifiers do.
const MaxID = certid.MaxID

// CertValidity is how long cluster certificates are valid. The CA key
// is discarded after sharding, so certificates cannot be renewed: they must
// outlive the cluster. Re-sharding issues new ones.
const CertValidity = 10 * 365 * 24 * time.Hour

// clockSkew is how far NotBefore is set in the past, so that a host whose
// clock lags a little behind the sharding host still accepts the certificates.
const clockSkew = time.Hour

// CA is a one-off certificate authority for one cluster. It lives only
// inside `cosigner shard`: issue every cosigner's certificate, write them out,
// then call Discard.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     ed25519.PrivateKey
}

// NewCA creates a cluster CA with a fresh Ed25519 key and a
// self-signed certificate valid for CertValidity.
func NewCA() (*CA, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate cluster CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "cosigner cluster CA " + fmt.Sprintf("%032x", serial)[:8]},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(CertValidity),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// The CA signs leaf certificates only.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("create cluster CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse cluster CA certificate: %w", err)
	}
	return &CA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}, nil
}

// CertPEM returns the PEM encoding of the CA certificate. Every cosigner of
// the cluster gets a copy.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// Issue creates the certificate and Ed25519 key of cosigner id, valid for
// CertValidity for both server and client authentication. It fails
// after Discard.
func (ca *CA) Issue(id int) (*Cert, error) {
	now := time.Now()
	return ca.issue(id, now.Add(-clockSkew), now.Add(CertValidity))
}

func (ca *CA) issue(id int, notBefore, notAfter time.Time) (*Cert, error) {
	if ca.key == nil {
		return nil, errors.New("issue cluster certificate: the cluster CA key was discarded")
	}
	if id < 1 || id > MaxID {
		return nil, fmt.Errorf("issue cluster certificate: cosigner id %d out of range 1..%d", id, MaxID)
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key of cosigner %d: %w", id, err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: certid.CommonName(id)},
		URIs:         []*url.URL{certid.URI(id)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		// Not a CA: a stolen cosigner key must not mint new cosigners.
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("create certificate of cosigner %d: %w", id, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key of cosigner %d: %w", id, err)
	}
	return &Cert{
		ID:      id,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
	}, nil
}

// Discard forgets the CA private key (overwriting it in memory first) so that
// no further certificate can be issued. The CA certificate stays readable.
func (ca *CA) Discard() {
	clear(ca.key)
	ca.key = nil
}

// Cert is one cosigner's certificate and private key, PEM encoded.
type Cert struct {
	ID      int
	CertPEM []byte
	KeyPEM  []byte // PKCS #8; secret
}

// WriteFiles writes the cluster CA certificate and one cosigner's
// certificate and key into dir as CAFile, CertFile and
// KeyFile, all 0600, creating dir 0700 if needed. It never overwrites:
// if any of the files exists it fails before writing anything.
func WriteFiles(dir string, caCertPEM []byte, c *Cert) error {
	if err := fsutil.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write cluster TLS files: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{CAFile, caCertPEM},
		{CertFile, c.CertPEM},
		{KeyFile, c.KeyPEM},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("write cluster TLS files: %s already exists; refusing to overwrite it", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("write cluster TLS files: %w", err)
		}
	}
	for _, f := range files {
		if err := fsutil.WriteNew(filepath.Join(dir, f.name), f.data); err != nil {
			return fmt.Errorf("write cluster TLS files: %w", err)
		}
	}
	return fsutil.SyncDir(dir)
}

// Identity is a cosigner's loaded TLS identity: its id, certificate and
// key, and the cluster CA that every peer's certificate must chain to. It is
// immutable and safe for concurrent use.
type Identity struct {
	id   int
	cert tls.Certificate
	ca   *x509.Certificate
	pool *x509.CertPool
}

// Load reads the files written by WriteFiles from dir and
// checks them with New. It refuses a key file that group or others
// may read.
func Load(dir string) (*Identity, error) {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("load cluster TLS: %w", err)
		}
		return b, nil
	}
	keyPath := filepath.Join(dir, KeyFile)
	if fi, err := os.Stat(keyPath); err != nil {
		return nil, fmt.Errorf("load cluster TLS: %w", err)
	} else if err := fsutil.CheckSecretMode(keyPath, fi.Mode()); err != nil {
		return nil, fmt.Errorf("load cluster TLS: key file %w", err)
	}
	caPEM, err := read(CAFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(CertFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read(KeyFile)
	if err != nil {
		return nil, err
	}
	c, err := New(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load cluster TLS from %s: %w", dir, err)
	}
	return c, nil
}

// New builds a Identity from PEM data. It checks that the CA
// certificate is a CA, that the certificate chains to it, is currently valid,
// carries a well-formed cosigner id, and matches the key.
func New(caCertPEM, certPEM, keyPEM []byte) (*Identity, error) {
	ca, err := parseCertPEM(caCertPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster CA certificate: %w", err)
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("cluster CA certificate %q is not a CA certificate", ca.Subject.CommonName)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster certificate and key: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	id, err := verifyPeer(cert.Leaf, pool, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, fmt.Errorf("own cluster certificate: %w", err)
	}
	if _, err := verifyPeer(cert.Leaf, pool, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, fmt.Errorf("own cluster certificate: %w", err)
	}
	return &Identity{id: id, cert: cert, ca: ca, pool: pool}, nil
}

// ID returns the cosigner id in this cosigner's own certificate.
func (c *Identity) ID() int { return c.id }

// ServerTLSConfig returns the configuration of a cluster server (gRPC, Raft):
// TLS 1.3 only, and a client certificate is required and must chain to the
// cluster CA and carry a cosigner id. Handlers learn the client's id with
// PeerID.
func (c *Identity) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.pool,
		// Cluster links are long-lived, so resumption saves little; without
		// it every connection proves its certificate afresh.
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			// crypto/tls has checked the chain; this checks the identity.
			_, err := PeerID(cs)
			return err
		},
	}
}

// ClientTLSConfig returns the configuration for dialing cosigner peerID: TLS
// 1.3 only, this cosigner's certificate as client certificate, and the server
// must present a certificate that chains to the cluster CA and names peerID.
// Host names and addresses play no part in the check.
func (c *Identity) ClientTLSConfig(peerID int) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		RootCAs:      c.pool,
		// The default verification checks the host name against the
		// certificate, which names a cosigner, not a host. It is replaced,
		// not dropped: VerifyConnection below checks the chain to the
		// cluster CA and the id.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("cluster tls: server presented no certificate")
			}
			id, err := verifyPeer(cs.PeerCertificates[0], c.pool, x509.ExtKeyUsageServerAuth, cs.PeerCertificates[1:]...)
			if err != nil {
				return err
			}
			if id != peerID {
				return fmt.Errorf("cluster tls: dialed cosigner %d but reached cosigner %d", peerID, id)
			}
			return nil
		},
	}
}

// verifyPeer checks that leaf chains to the cluster CA in pool, is valid now
// for usage, and carries a cosigner id, which it returns.
func verifyPeer(leaf *x509.Certificate, pool *x509.CertPool, usage x509.ExtKeyUsage, intermediates ...*x509.Certificate) (int, error) {
	opts := x509.VerifyOptions{
		Roots:         pool,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}
	for _, c := range intermediates {
		opts.Intermediates.AddCert(c)
	}
	if _, err := leaf.Verify(opts); err != nil {
		return 0, fmt.Errorf("cluster tls: certificate %q is not a valid certificate of this cluster: %w", leaf.Subject.CommonName, err)
	}
	return certID(leaf)
}

// PeerID returns the cosigner id of the peer of a verified cluster TLS
// connection (server or client side), taken from its certificate. It fails if
// the handshake presented no certificate or one without a well-formed id; it
// does not verify the chain, which ServerTLSConfig and ClientTLSConfig do
// during the handshake.
func PeerID(state tls.ConnectionState) (int, error) {
	if len(state.PeerCertificates) == 0 {
		return 0, errors.New("cluster tls: peer presented no certificate")
	}
	return certID(state.PeerCertificates[0])
}

// PeerIDFromContext returns the cosigner id of the client of a gRPC call
// served with credentials.NewTLS(ServerTLSConfig()), from its certificate.
func PeerIDFromContext(ctx context.Context) (int, error) {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return 0, errors.New("cluster tls: no gRPC peer in the call's context")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return 0, fmt.Errorf("cluster tls: gRPC peer %v did not connect over TLS", p.Addr)
	}
	return PeerID(ti.State)
}

// certID extracts the cosigner id from a certificate (see certid).
func certID(cert *x509.Certificate) (int, error) {
	id, err := certid.Of(cert)
	if err != nil {
		return 0, fmt.Errorf("cluster tls: %w", err)
	}
	return id, nil
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("trailing data after the PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func randomSerial() (*big.Int, error) {
	// 128 random bits, as RFC 5280 section 4.1.2.2 allows up to 20 octets.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate certificate serial: %w", err)
	}
	return serial.Add(serial, big.NewInt(1)), nil
}
