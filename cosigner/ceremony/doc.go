// Package ceremony runs a distributed key generation (threshold.NewDKG) or a
// resharing (threshold.NewReshare) among cosigners over the cluster's mutual
// TLS links, so that no machine ever holds the validator key.
//
// Use it from a command that runs on every participant at about the same
// time (`cosigner dkg`, `cosigner reshare`): each process calls Run with the
// same participant list and parameters, and Run returns this participant's
// share and the group key once every participant has completed, or an error
// and nothing.
//
// # API
//
//	share, group, err := ceremony.Run(ctx, ceremony.Options{
//		Self:         2,                        // our cosigner id, as in our TLS certificate
//		Participants: []ceremony.Participant{{ID: 1, Address: "10.0.0.1:7100"}, ...},
//		TLS:          identity,                 // clustertls.Load(home/tls)
//		Params:       params,                   // what the ceremony is; byte-identical everywhere
//		Timeout:      2 * time.Minute,
//	}, newProtocol)
//
// newProtocol is called once the long-term keys are known and confirmed:
// it gets a Setup (our cosigner id, our ephemeral long-term secret, every
// participant's long-term public key by cosigner id, the ceremony id) and
// returns a Protocol: the *threshold.DKG and how its identifiers map to
// cosigner ids (Dealers for the dealing group, Members for the receiving
// group; for a fresh DKG both are the identity on 1..N, for a resharing the
// old and the new ids may differ). FreshDKG(m, n) returns the Params and the
// newProtocol of a fresh M-of-N key generation among cosigners 1..N.
//
// A participant of a resharing that deals but is not in the new group gets
// an error wrapping threshold.ErrRetired once the resharing has completed.
//
// # Phases and wire
//
// Every participant listens on its own address (Options.Listen, default its
// Address in Participants) and dials every other one; a connection carries
// frames from the dialer to the acceptor only. Both ends present cluster
// certificates (clustertls), and a peer is known by the cosigner id in its
// certificate: the address plays no part in who it is.
//
//  1. hello: each participant sends its Params (prefixed with the participant
//     list), a fresh 32-byte nonce and a fresh long-term DKG public key
//     (threshold.GenerateLongterm, never stored), and its own Options.Extra
//     (a resharing dealer's sign-state marks). A peer whose Params differ
//     aborts the ceremony with an error quoting the first line that differs.
//  2. confirm: once it has every hello, each participant sends the SHA-256
//     transcript of the participant list, the Params and every (id, nonce,
//     long-term key, extra); every participant must confirm the same transcript
//     before anyone deals, or the ceremony aborts. The transcript is the
//     ceremony id given to the DKG, so no message of another run is accepted.
//  3. dkg: the DKG's messages, each routed to its recipient (a deal) or to
//     every other participant (a response). A message the DKG refuses (a
//     replay, another session, a bad signature, a sender that is not the
//     connection's cosigner) aborts the ceremony: an honest participant never
//     sends one.
//  4. done: once its DKG is complete, each participant sends a digest of the
//     group key it derived (empty for a retiring participant) and waits for
//     every other participant's; digests that differ abort.
//
// Any error aborts the whole ceremony: the participant that finds it sends
// an abort frame with the reason to every peer, and each of them returns an
// error naming that participant and quoting the reason. A peer whose
// connection closes before its done frame (a killed host) aborts the others
// at once, not at the timeout. Options.Timeout bounds everything, from the
// first dial (participants start within that window) to the last done; at
// the timeout the error names the participants still awaited.
//
// Run writes nothing. The caller writes the share only after Run returns it.
// A participant can complete while another aborts (its last done frame was
// lost): the caller's documentation must tell operators to discard every
// share of a ceremony that any participant reports aborted, and rerun it.
//
// Frame: length 4 (big-endian, of what follows) | type 1 | body. Bodies:
//
//	hello   version 2 | from 2 | nonce 32 | long-term key 32 | params length 4 | params | extra length 4 | extra
//	confirm transcript 32
//	dkg     a threshold.DKGMessage (threshold.DecodeDKGMessage)
//	done    group digest 32, or nothing (a retiring participant)
//	abort   reason (UTF-8, at most MaxReason bytes)
//
// Decoders are strict: exact lengths, known types and versions only.
package ceremony
