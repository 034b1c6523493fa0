package raft

import (
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	c := DefaultConfig()
	c.ID = 1
	c.DataDir = "/var/lib/cosigner/raft"
	c.Peers = []Peer{{1, "10.0.0.1:7100"}, {2, "10.0.0.2:7100"}, {3, "10.0.0.3:7100"}}
	return c
}

func TestConfigValidate(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string
	}{
		{"zero id", func(c *Config) { c.ID = 0 }, "ID 0 out of range 1..65535"},
		{"id not a peer", func(c *Config) { c.ID = 4 }, "ID 4 is not in Peers"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir is empty"},
		{"no peers", func(c *Config) { c.Peers = nil }, "Peers is empty"},
		{"duplicate peer id", func(c *Config) { c.Peers[2].ID = 2 }, "Peers[2].ID 2 appears twice"},
		{"duplicate address", func(c *Config) { c.Peers[2].Address = "10.0.0.2:7100" }, "is also the address of peer 2"},
		{"address without port", func(c *Config) { c.Peers[1].Address = "10.0.0.2" }, `Peers[1].Address "10.0.0.2"`},
		{"peer port 0", func(c *Config) { c.Peers[1].Address = "10.0.0.2:0" }, "not a number 1..65535"},
		{"bad bind", func(c *Config) { c.BindAddress = "nope" }, `BindAddress "nope"`},
		{"heartbeat too low", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout 1ms out of range"},
		{"election in seconds", func(c *Config) { c.ElectionTimeout = 300 * time.Second }, "ElectionTimeout 5m0s out of range"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "LeaderLeaseTimeout 1s is above HeartbeatTimeout"},
		{"election below heartbeat", func(c *Config) { c.ElectionTimeout = 100 * time.Millisecond }, "ElectionTimeout 100ms is below HeartbeatTimeout"},
		{"commit timeout zero", func(c *Config) { c.CommitTimeout = 0 }, "CommitTimeout 0s out of range"},
		{"io timeout zero", func(c *Config) { c.IOTimeout = 0 }, "IOTimeout 0s out of range"},
		{"retain zero", func(c *Config) { c.SnapshotRetain = 0 }, "SnapshotRetain 0 is below 1"},
		{"threshold zero", func(c *Config) { c.SnapshotThreshold = 0 }, "SnapshotThreshold 0 is below 1"},
		{"interval zero", func(c *Config) { c.SnapshotInterval = 0 }, "SnapshotInterval 0s out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Peers = append([]Peer(nil), c.Peers...)
			tt.modify(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
