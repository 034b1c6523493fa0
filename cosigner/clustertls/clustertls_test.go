package clustertls

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/cosigner/cosigner/internal/certid"
	cosignerv1 "github.com/cosigner/cosigner/proto/cosigner/v1"
)

// clusterTLSFixture issues certificates for cosigners 1..n from one CA.
func clusterTLSFixture(t *testing.T, n int) (*CA, []*Identity) {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	var out []*Identity
	for id := 1; id <= n; id++ {
		c, err := ca.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, mustClusterTLS(t, ca.CertPEM(), c))
	}
	return ca, out
}

func mustClusterTLS(t *testing.T, caPEM []byte, c *Cert) *Identity {
	t.Helper()
	ct, err := New(caPEM, c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

type clusterHandshakeResult struct {
	serverErr, clientErr error
	serverSaw, clientSaw int // peer ids learned
}

// handshake runs one TLS handshake over loopback TCP between a server and a
// client configuration and reports what each side saw.
func clusterHandshake(t *testing.T, server, client *tls.Config) clusterHandshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	type side struct {
		id  int
		err error
	}
	serverDone := make(chan side, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverDone <- side{err: err}
			return
		}
		defer conn.Close()
		conn.SetDeadline(deadline)
		tc := tls.Server(conn, server)
		if err := tc.Handshake(); err != nil {
			serverDone <- side{err: err}
			return
		}
		// In TLS 1.3 the client finishes its handshake before the server has
		// checked the client certificate; a read makes the server's verdict
		// reach the client either as data or as an alert.
		id, err := PeerID(tc.ConnectionState())
		if err == nil {
			_, err = tc.Write([]byte{1})
		}
		serverDone <- side{id: id, err: err}
	}()

	var res clusterHandshakeResult
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	tc := tls.Client(conn, client)
	res.clientErr = tc.Handshake()
	if res.clientErr == nil {
		res.clientSaw, res.clientErr = PeerID(tc.ConnectionState())
	}
	if res.clientErr == nil {
		var b [1]byte
		_, res.clientErr = tc.Read(b[:])
	}
	conn.Close()
	s := <-serverDone
	res.serverSaw, res.serverErr = s.id, s.err
	return res
}

func TestClusterTLSHandshake(t *testing.T) {
	_, cs := clusterTLSFixture(t, 3)
	res := clusterHandshake(t, cs[1].ServerTLSConfig(), cs[0].ClientTLSConfig(2))
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("handshake failed: server: %v; client: %v", res.serverErr, res.clientErr)
	}
	if res.serverSaw != 1 {
		t.Errorf("server saw client id %d, want 1", res.serverSaw)
	}
	if res.clientSaw != 2 {
		t.Errorf("client saw server id %d, want 2", res.clientSaw)
	}
	if cs[2].ID() != 3 {
		t.Errorf("ID() = %d, want 3", cs[2].ID())
	}
}

func TestClusterTLSRejects(t *testing.T) {
	ca, cs := clusterTLSFixture(t, 2)
	_, strangers := clusterTLSFixture(t, 2) // same ids, another CA

	selfSigned := selfSignedClusterTLS(t, 1)
	expired, err := ca.issue(1, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// New refuses an expired certificate, so build the identity by
	// hand, as an attacker with an old certificate would.
	expiredCert, err := tls.X509KeyPair(expired.CertPEM, expired.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	expiredTLS := &Identity{id: 1, cert: expiredCert, ca: cs[0].ca, pool: cs[0].pool}

	noCert := cs[0].ClientTLSConfig(2)
	noCert.Certificates = nil

	tests := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		// which side must fail, and a substring of its error
		serverWant string
		clientWant string
	}{
		{
			name:       "client cert from another CA",
			server:     cs[1].ServerTLSConfig(),
			client:     clusterTrustAnyServer(strangers[0].ClientTLSConfig(2)),
			serverWant: "certificate signed by unknown authority",
		},
		{
			name:       "server cert from another CA",
			server:     strangers[1].ServerTLSConfig(),
			client:     cs[0].ClientTLSConfig(2),
			clientWant: "not a valid certificate of this cluster",
		},
		{
			name:       "self-signed client cert",
			server:     cs[1].ServerTLSConfig(),
			client:     clusterTrustAnyServer(selfSigned.ClientTLSConfig(2)),
			serverWant: "certificate signed by unknown authority",
		},
		{
			name:       "self-signed server cert",
			server:     selfSigned.ServerTLSConfig(),
			client:     cs[1].ClientTLSConfig(1),
			clientWant: "not a valid certificate of this cluster",
		},
		{
			name:       "no client cert",
			server:     cs[1].ServerTLSConfig(),
			client:     clusterTrustAnyServer(noCert),
			serverWant: "client didn't provide a certificate",
		},
		{
			name:       "expired client cert",
			server:     cs[1].ServerTLSConfig(),
			client:     clusterTrustAnyServer(expiredTLS.ClientTLSConfig(2)),
			serverWant: "expired",
		},
		{
			name:       "expired server cert",
			server:     expiredTLS.ServerTLSConfig(),
			client:     cs[1].ClientTLSConfig(1),
			clientWant: "expired",
		},
		{
			name:       "wrong server id",
			server:     cs[1].ServerTLSConfig(),
			client:     cs[0].ClientTLSConfig(3),
			clientWant: "dialed cosigner 3 but reached cosigner 2",
		},
		{
			name:   "TLS 1.2 client",
			server: cs[1].ServerTLSConfig(),
			client: func() *tls.Config {
				c := cs[0].ClientTLSConfig(2)
				c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				return c
			}(),
			serverWant: "unsupported versions",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := clusterHandshake(t, tt.server, tt.client)
			if res.serverErr == nil && res.clientErr == nil {
				t.Fatal("handshake succeeded")
			}
			if tt.serverWant != "" && (res.serverErr == nil || !strings.Contains(res.serverErr.Error(), tt.serverWant)) {
				t.Errorf("server error = %v, want it to contain %q", res.serverErr, tt.serverWant)
			}
			if tt.clientWant != "" && (res.clientErr == nil || !strings.Contains(res.clientErr.Error(), tt.clientWant)) {
				t.Errorf("client error = %v, want it to contain %q", res.clientErr, tt.clientWant)
			}
			// Whoever refused, the server never learned a client identity.
			if res.serverErr != nil && res.serverSaw != 0 {
				t.Errorf("server accepted client %d", res.serverSaw)
			}
		})
	}
}

// clusterTrustAnyServer makes a client that accepts any server, so that a test sees
// the server's verdict on the client rather than the client's on the server.
// It also always sends its certificate: crypto/tls would otherwise withhold
// one that the server's list of acceptable CAs does not name, and an attacker
// would not.
func clusterTrustAnyServer(c *tls.Config) *tls.Config {
	c.VerifyConnection = nil
	if len(c.Certificates) > 0 {
		cert := c.Certificates[0]
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c
}

// selfSignedClusterTLS makes a certificate that looks like a cluster
// certificate of id but is its own CA.
func selfSignedClusterTLS(t *testing.T, id int) *Identity {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cosigner-1"},
		URIs:                  []*url.URL{certid.URI(id)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	// It is valid as its own cluster: its CA is itself.
	return mustClusterTLS(t, certPEM, &Cert{ID: id, CertPEM: certPEM, KeyPEM: keyPEM})
}

func TestClusterTLSFiles(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue(2)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := ca.CertPEM()
	ca.Discard()
	if _, err := ca.Issue(3); err == nil {
		t.Error("Issue after Discard succeeded")
	}

	dir := filepath.Join(t.TempDir(), "cosigner-2")
	if err := WriteFiles(dir, caPEM, c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CAFile, CertFile, KeyFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", name, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	if err := WriteFiles(dir, caPEM, c); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second write: err = %v, want a refusal to overwrite", err)
	}

	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID() != 2 {
		t.Errorf("loaded id %d, want 2", loaded.ID())
	}

	keyPath := filepath.Join(dir, KeyFile)
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("load with a 0644 key: err = %v, want a hint to chmod", err)
	}
	if err := os.Chmod(keyPath, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("load without CA file: err = %v, want not-exist", err)
	}
}

func TestClusterTLSNewRejects(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ca.Issue(1)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ca.Issue(2)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.issue(1, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                   string
		caPEM, certPEM, keyPEM []byte
		want                   string
	}{
		{"other CA", other.CertPEM(), c1.CertPEM, c1.KeyPEM, "unknown authority"},
		{"leaf as CA", c2.CertPEM, c1.CertPEM, c1.KeyPEM, "not a CA"},
		{"key of another cosigner", ca.CertPEM(), c1.CertPEM, c2.KeyPEM, "private key does not match"},
		{"expired", ca.CertPEM(), expired.CertPEM, expired.KeyPEM, "expired"},
		{"garbage CA", []byte("junk"), c1.CertPEM, c1.KeyPEM, "no PEM CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.caPEM, tt.certPEM, tt.keyPEM)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	for _, id := range []int{0, -1, MaxID + 1} {
		if _, err := ca.Issue(id); err == nil {
			t.Errorf("Issue(%d) succeeded", id)
		}
	}
}

func TestClusterTLSCertID(t *testing.T) {
	tests := []struct {
		name string
		cn   string
		uris []string
		want int // 0: error
	}{
		{"good", "cosigner-7", []string{"cosigner://7"}, 7},
		{"no URI", "cosigner-7", nil, 0},
		{"two URIs", "cosigner-7", []string{"cosigner://7", "cosigner://8"}, 0},
		{"CN mismatch", "cosigner-8", []string{"cosigner://7"}, 0},
		{"leading zero", "cosigner-07", []string{"cosigner://07"}, 0},
		{"zero", "cosigner-0", []string{"cosigner://0"}, 0},
		{"wrong scheme", "cosigner-7", []string{"spiffe://7"}, 0},
		{"path", "cosigner-7", []string{"cosigner://7/x"}, 0},
		{"too big", "cosigner-65536", []string{"cosigner://65536"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := &x509.Certificate{Subject: pkix.Name{CommonName: tt.cn}}
			for _, s := range tt.uris {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				cert.URIs = append(cert.URIs, u)
			}
			got, err := certID(cert)
			if tt.want == 0 {
				if err == nil {
					t.Errorf("certID = %d, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("certID = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
	if _, err := PeerID(tls.ConnectionState{}); err == nil {
		t.Error("PeerID of a state without certificates succeeded")
	}
}

// clusterPingServer answers Ping with the caller's id as seen in its certificate.
type clusterPingServer struct {
	cosignerv1.UnimplementedCosignerServer
}

func (clusterPingServer) Ping(ctx context.Context, _ *cosignerv1.PingRequest) (*cosignerv1.PingResponse, error) {
	id, err := PeerIDFromContext(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return &cosignerv1.PingResponse{SignerId: uint32(id)}, nil
}

// TestClusterTLSGRPC runs the Cosigner gRPC service over cluster TLS: a
// member learns its own id back from the server; a client without a cluster
// certificate, or dialing the wrong id, gets nothing.
func TestClusterTLSGRPC(t *testing.T) {
	_, cs := clusterTLSFixture(t, 3)
	_, strangers := clusterTLSFixture(t, 1)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cs[1].ServerTLSConfig())))
	cosignerv1.RegisterCosignerServer(srv, clusterPingServer{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	ping := func(cfg *tls.Config) (*cosignerv1.PingResponse, error) {
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cosignerv1.NewCosignerClient(conn).Ping(ctx, &cosignerv1.PingRequest{})
	}

	resp, err := ping(cs[2].ClientTLSConfig(2))
	if err != nil {
		t.Fatalf("member ping: %v", err)
	}
	if resp.GetSignerId() != 3 {
		t.Errorf("server saw caller %d, want 3", resp.GetSignerId())
	}

	noCert := cs[0].ClientTLSConfig(2)
	noCert.Certificates = nil
	tests := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"no client certificate", noCert, ""},
		{"another cluster's certificate", clusterTrustAnyServer(strangers[0].ClientTLSConfig(2)), ""},
		{"wrong server id", cs[0].ClientTLSConfig(3), "dialed cosigner 3 but reached cosigner 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := ping(tt.cfg)
			if err == nil {
				t.Fatalf("ping succeeded: %v", resp)
			}
			if status.Code(err) != codes.Unavailable {
				t.Errorf("code %v, want Unavailable: %v", status.Code(err), err)
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
