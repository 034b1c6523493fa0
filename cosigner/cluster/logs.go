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
