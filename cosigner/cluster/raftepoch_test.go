package cluster

import (
	"crypto/sha256"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/clustertls"
	"github.com/cosigner/cosigner/cosigner/share"
)

// raftHandshake runs one TLS handshake from cosigner 2 (client) to
// cosigner 1 (server) over loopback and returns both sides' errors.
func raftHandshake(t *testing.T, server *tls.Config, client *tls.Config) (srvErr, cliErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3: the client's certificate is checked when the server
			// reads; read the client's byte.
			_, err = tc.Read(make([]byte, 1))
		}
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, client)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if cliErr = tc.Handshake(); cliErr == nil {
		_, cliErr = tc.Write([]byte{1})
	}
	return <-done, cliErr
}

func TestRaftLinksCarryTheEpoch(t *testing.T) {
	ca, err := clustertls.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]*clustertls.Identity, 3)
	for id := 1; id <= 2; id++ {
		cert, err := ca.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		if ids[id], err = clustertls.New(ca.CertPEM(), cert.CertPEM, cert.KeyPEM); err != nil {
			t.Fatal(err)
		}
	}
	epoch := func(n uint64, group string) share.Epoch {
		return share.Epoch{Number: n, Group: sha256.Sum256([]byte(group))}
	}
	// configs returns cosigner 1's server and cosigner 2's client
	// configuration; a nil epoch is a build from before epochs.
	configs := func(srvEpoch, cliEpoch *share.Epoch) (*tls.Config, *tls.Config) {
		srv, cli := ids[1].ServerTLSConfig(), ids[2].ClientTLSConfig(1)
		if srvEpoch != nil {
			srv, _ = epochRaftTLS(*srvEpoch, ids[1].ServerTLSConfig(), ids[1].ClientTLSConfig)
		}
		if cliEpoch != nil {
			_, f := epochRaftTLS(*cliEpoch, ids[2].ServerTLSConfig(), ids[2].ClientTLSConfig)
			cli = f(1)
		}
		return srv, cli
	}
	e1, e2, e2other := epoch(1, "dealt"), epoch(2, "reshared"), epoch(2, "another reshare")
	for _, tc := range []struct {
		name     string
		srv, cli *share.Epoch
		ok       bool
		want     string // in the refusing side's error
	}{
		{"same epoch 1", &e1, &e1, true, ""},
		{"same epoch 2", &e2, &e2, true, ""},
		{"old share dials", &e2, &e1, false, ""},
		{"old share answers", &e1, &e2, false, ""},
		{"same number, other group", &e2, &e2other, false, ""},
		{"pre-epoch build dials epoch 1", &e1, nil, true, ""},
		{"pre-epoch build answers epoch 1", nil, &e1, true, ""},
		{"pre-epoch build dials epoch 2", &e2, nil, false, "without an epoch"},
		{"pre-epoch build answers epoch 2", nil, &e2, false, "without an epoch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := configs(tc.srv, tc.cli)
			srvErr, cliErr := raftHandshake(t, srv, cli)
			if tc.ok {
				if srvErr != nil || cliErr != nil {
					t.Fatalf("handshake failed: server %v, client %v", srvErr, cliErr)
				}
				return
			}
			if srvErr == nil && cliErr == nil {
				t.Fatal("cosigners of different epochs completed a Raft handshake")
			}
			if tc.want != "" {
				if (srvErr == nil || !strings.Contains(srvErr.Error(), tc.want)) && (cliErr == nil || !strings.Contains(cliErr.Error(), tc.want)) {
					t.Errorf("errors server %v, client %v: want one naming %q", srvErr, cliErr, tc.want)
				}
			}
		})
	}
}
