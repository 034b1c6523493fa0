package cluster

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"

	"github.com/cosigner/cosigner/cosigner/share"
)

// raftEpochProto is the TLS application protocol (ALPN) a cosigner offers
// and accepts on its Raft links: the epoch's group hash, so that two
// cosigners of different epochs cannot complete a Raft handshake, and one
// holding an old share can neither vote nor lead. The cosigner service
// refuses such a peer by the epoch every RPC carries (EpochGuard); Raft has
// no such field, so the check is in the handshake.
func raftEpochProto(e share.Epoch) string {
	return "cosigner-raft/" + hex.EncodeToString(e.Group[:16])
}

// epochRaftTLS returns Raft's server configuration and client configuration
// function with the epoch check added to those of the cluster identity.
//
// A TLS server with application protocols refuses a client that offers only
// others (no_application_protocol), so cosigners of different epochs fail
// the handshake on either side. A build from before epochs offers none and
// selects none: it is accepted, and accepts, only while this cosigner is at
// epoch 1, as EpochGuard accepts its epoch-less messages; from epoch 2 on,
// a link without the protocol is refused.
func epochRaftTLS(e share.Epoch, server *tls.Config, client func(peerID int) *tls.Config) (*tls.Config, func(peerID int) *tls.Config) {
	proto := raftEpochProto(e)
	check := func(prev func(tls.ConnectionState) error) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			if prev != nil {
				if err := prev(cs); err != nil {
					return err
				}
			}
			switch {
			case cs.NegotiatedProtocol == proto:
				return nil
			case cs.NegotiatedProtocol == "" && e.Number <= 1:
				return nil // a build from before epochs, at epoch 1
			case cs.NegotiatedProtocol == "":
				return fmt.Errorf("raft link without an epoch: this cosigner is at epoch %d (group %s), which a cosigner from before epochs cannot hold", e.Number, e.Short())
			default:
				return fmt.Errorf("raft link of another epoch (%q): this cosigner is at epoch %d (group %s)", cs.NegotiatedProtocol, e.Number, e.Short())
			}
		}
	}
	srv := server.Clone()
	srv.NextProtos = []string{proto}
	srv.VerifyConnection = check(srv.VerifyConnection)
	return srv, func(peerID int) *tls.Config {
		c := client(peerID).Clone()
		c.NextProtos = []string{proto}
		c.VerifyConnection = check(c.VerifyConnection)
		return c
	}
}
