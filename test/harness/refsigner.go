package harness

import (
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmted25519 "github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/libs/log"
	cmtprivval "github.com/cometbft/cometbft/privval"
)

// ReferenceSigner is CometBFT v0.38.17's own remote signer running in the
// test process.
type ReferenceSigner struct {
	PubKey ed25519.PublicKey
	// StatePath is its FilePV's priv_validator_state.json.
	StatePath string
	server    *cmtprivval.SignerServer
}

// Stop stops the signer and closes its connection to the node.
func (r *ReferenceSigner) Stop() {
	if r.server.IsRunning() {
		_ = r.server.Stop()
	}
}

// StartReferenceSigner runs CometBFT v0.38.17's own remote signer in this
// process: a privval.SignerServer serving a FilePV that dials addr
// (tcp://host:port with SecretConnection, or unix:///path). If keyFile is
// empty a fresh key is generated in t.TempDir(); otherwise keyFile (a
// priv_validator_key.json) is used with an empty sign state. The signer
// stops when the test ends.
//
// It is the reference our own signer is compared with, the signer an
// operator migrates from, and it checks the harness's chain setup
// independently of cosigner.
func StartReferenceSigner(t testing.TB, addr, chainID, keyFile string) *ReferenceSigner {
	t.Helper()
	dir := t.TempDir()
	statePath := filepath.Join(dir, "priv_validator_state.json")
	var pv *cmtprivval.FilePV
	if keyFile == "" {
		pv = cmtprivval.GenFilePV(filepath.Join(dir, "priv_validator_key.json"), statePath)
		pv.Save()
	} else {
		pv = cmtprivval.LoadFilePVEmptyState(keyFile, statePath)
	}
	var dialer cmtprivval.SocketDialer
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		dialer = cmtprivval.DialTCPFn(addr, 5*time.Second, cmted25519.GenPrivKey())
	case strings.HasPrefix(addr, "unix://"):
		dialer = cmtprivval.DialUnixFn(strings.TrimPrefix(addr, "unix://"))
	default:
		t.Fatalf("reference signer: unsupported address %q", addr)
	}
	endpoint := cmtprivval.NewSignerDialerEndpoint(log.NewNopLogger(), dialer,
		cmtprivval.SignerDialerEndpointConnRetries(600),
		cmtprivval.SignerDialerEndpointRetryWaitInterval(50*time.Millisecond),
	)
	server := cmtprivval.NewSignerServer(endpoint, chainID, pv)
	if err := server.Start(); err != nil {
		t.Fatalf("start reference signer: %v", err)
	}
	ref := &ReferenceSigner{StatePath: statePath, server: server}
	t.Cleanup(ref.Stop)
	pub, err := pv.GetPubKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.Bytes()) != ed25519.PublicKeySize {
		t.Fatal(fmt.Errorf("reference signer: unexpected key type %s", pub.Type()))
	}
	ref.PubKey = ed25519.PublicKey(pub.Bytes())
	return ref
}
