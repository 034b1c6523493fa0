package cluster

// Messages of the log lines that mark what a cosigner does, for whoever
// follows its log (operators' alerting, the end-to-end tests): each is a
// constant message with attributes (chain, height, round, step, ...).
const (
	// LogLeading: this cosigner became the Raft leader and dials the nodes
	// (attributes: cosigner, term).
	LogLeading = "leading: dialing nodes"
	// LogStoppedLeading: it lost or gave up leadership and closed the node
	// connections.
	LogStoppedLeading = "stopped leading: node connections closed"
	// LogHandedOver: a stopping leader handed leadership over (attribute:
	// leader).
	LogHandedOver = "stopping: handed leadership over"
	// LogReleasedShare: it released a signature share (debug level;
	// attributes: chain, height, round, step, block, messages).
	LogReleasedShare = "released share"
)

// Messages of the leader's warnings about one cosigner.
const (
	// LogPeerRefused: a cosigner refused a share request by its own mark
	// (regression or conflict) and the leader signs without it (warn;
	// attributes: peer, reason, chain, height, round, step, last_height,
	// last_round, last_step, err, hint).
	LogPeerRefused = "cosigner refused by its own mark: signing without it"
	// LogDuplicateID: two live processes answer as one cosigner id (two
	// boot ids, alternating); the leader no longer uses it (error;
	// attributes: peer, boot_ids, hint).
	LogDuplicateID = "two live processes answer as one cosigner id: no longer using it"
)
