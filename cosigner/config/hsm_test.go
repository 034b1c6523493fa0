package config

import (
	"testing"
	"time"
)

// TestHSMConfigRoundTrip: a configuration with [hsm], hsm_key_id and
// share_hsm_object survives Marshal and strict parsing.
func TestHSMConfigRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HSM.Connector = "http://127.0.0.1:12345"
	cfg.HSM.AuthKeyID = 2
	cfg.HSM.RequestTimeout = "750ms"
	cfg.Chains = []ChainConfig{{ID: "kira-1", HSMKeyID: 7, Bech32Prefix: "kira", Nodes: []string{"tcp://10.0.0.2:26659"}}}
	got, err := Parse(cfg.Marshal())
	if err != nil {
		t.Fatalf("%v\n%s", err, cfg.Marshal())
	}
	if got.HSM != cfg.HSM || got.Chains[0].HSMKeyID != 7 || got.Chains[0].Key != "" {
		t.Fatalf("round trip: %+v %+v", got.HSM, got.Chains[0])
	}
	if got.HSM.Timeout() != 750*time.Millisecond {
		t.Fatalf("timeout %v", got.HSM.Timeout())
	}
}
