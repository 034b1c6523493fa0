package hsm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certusone/yubihsm-go/commands"
	"github.com/cosigner/cosigner/privval"
	"github.com/cosigner/cosigner/test/yubihsmsim"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestSim(t *testing.T) *yubihsmsim.Sim {
	t.Helper()
	sim, err := yubihsmsim.New(yubihsmsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func dialTestHSM(t *testing.T, sim *yubihsmsim.Sim, timeout time.Duration) *Client {
	t.Helper()
	h, err := Dial(context.Background(), Options{Addr: sim.URL(), AuthKeyID: 1, Password: yubihsmsim.DefaultPassword, Timeout: timeout}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

func TestHSMKeys(t *testing.T) {
	sim := newTestSim(t)
	h := dialTestHSM(t, sim, time.Second)
	ctx := context.Background()

	if serial, fw, err := h.DeviceInfo(ctx); err != nil || serial != 12345678 || fw == "" {
		t.Fatalf("device info: serial %d firmware %q, %v", serial, fw, err)
	}
	seed := testKey.Seed()
	if err := h.ImportEd25519(ctx, 10, "kira-1", seed, false); err != nil {
		t.Fatal(err)
	}
	if err := h.ImportEd25519(ctx, 10, "again", seed, false); !errors.Is(err, ErrExists) {
		t.Fatalf("import over key 10: %v, want ErrExists", err)
	}
	if err := h.ImportEd25519(ctx, 11, "backup", seed, true); err != nil {
		t.Fatal(err)
	}
	gen, err := h.GenerateEd25519(ctx, 12, "generated", false)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := sim.PublicKey(12); !gen.Equal(want) {
		t.Fatalf("generated key's public key %x, the device holds %x", gen, want)
	}

	keys, err := h.List(ctx, TypeAsymmetric)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("list: %+v", keys)
	}
	for _, k := range keys {
		switch k.ID {
		case 10, 11:
			if !k.PublicKey.Equal(testKey.Public()) {
				t.Errorf("key %d: public key %x", k.ID, k.PublicKey)
			}
		}
		wantExport := k.ID == 11
		if got := k.Capabilities&commands.CapabilityExportableUnderWrap != 0; got != wantExport {
			t.Errorf("key %d: exportable under wrap = %v", k.ID, got)
		}
		if k.Capabilities&commands.CapabilityAsymmetricSignEddsa == 0 {
			t.Errorf("key %d cannot sign", k.ID)
		}
	}
	if keys[0].Label != "kira-1" {
		t.Errorf("label %q", keys[0].Label)
	}

	for _, id := range []uint16{10, 12} {
		pub, err := h.PublicKey(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("vote sign bytes")
		sig, err := h.SignEd25519(ctx, id, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub, msg, sig) {
			t.Fatalf("key %d: signature does not verify", id)
		}
	}
	if _, err := h.SignEd25519(ctx, 99, []byte("m")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sign with unknown key: %v, want ErrNotFound", err)
	}

	data := bytes.Repeat([]byte{0xab}, 700)
	if id, err := h.PutOpaque(ctx, 20, "blob", data); err != nil || id != 20 {
		t.Fatal(err)
	}
	got, err := h.GetOpaque(ctx, 20)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get opaque: %v", err)
	}
	if err := h.Delete(ctx, 20, TypeOpaque); err != nil {
		t.Fatal(err)
	}
	if _, err := h.GetOpaque(ctx, 20); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get deleted opaque: %v, want ErrNotFound", err)
	}
	if id, err := h.PutOpaque(ctx, 0, "picked", data); err != nil || id != 1 {
		t.Fatalf("put opaque with id 0: id %d, %v; want the device to pick 1", id, err)
	}
	if _, err := h.PutOpaque(ctx, 21, "big", make([]byte, MaxOpaqueSize+1)); err == nil {
		t.Fatal("put an opaque object over the device's limit")
	}
}

func TestHSMErrors(t *testing.T) {
	sim := newTestSim(t)
	ctx := context.Background()
	t.Run("wrong password", func(t *testing.T) {
		_, err := Dial(ctx, Options{Addr: sim.Addr(), AuthKeyID: 1, Password: "wrong"}, quietLog())
		if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "wrong password") {
			t.Fatalf("got %v, want ErrAuth naming the password", err)
		}
	})
	t.Run("unknown auth key", func(t *testing.T) {
		_, err := Dial(ctx, Options{Addr: sim.Addr(), AuthKeyID: 7, Password: "x"}, quietLog())
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("got %v, want ErrAuth", err)
		}
	})
	t.Run("missing capability", func(t *testing.T) {
		if err := sim.PutAuthKey(3, "signer", "pw", commands.Domain1, yubihsmsim.CapSignEddsa, 0); err != nil {
			t.Fatal(err)
		}
		h, err := Dial(ctx, Options{Addr: sim.Addr(), AuthKeyID: 3, Password: "pw"}, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.ImportEd25519(ctx, 30, "", testKey.Seed(), false); !errors.Is(err, ErrPermission) {
			t.Fatalf("import without put-asymmetric: %v, want ErrPermission", err)
		}
	})
	t.Run("connector down", func(t *testing.T) {
		down := newTestSim(t)
		addr := down.Addr()
		down.Stop()
		start := time.Now()
		_, err := Dial(ctx, Options{Addr: addr, AuthKeyID: 1, Password: yubihsmsim.DefaultPassword}, quietLog())
		if !errors.Is(err, ErrUnreachable) {
			t.Fatalf("got %v, want ErrUnreachable", err)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Fatalf("dial took %v", d)
		}
	})
}

// TestHSMRestart takes the connector away mid-run: requests fail within
// the timeout while it is away, and the next request after it is back opens
// a new session and succeeds.
func TestHSMRestart(t *testing.T) {
	sim := newTestSim(t)
	const timeout = 500 * time.Millisecond
	h := dialTestHSM(t, sim, timeout)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 1, "", testKey.Seed(), false); err != nil {
		t.Fatal(err)
	}
	msg := []byte("m")
	if _, err := h.SignEd25519(ctx, 1, msg); err != nil {
		t.Fatal(err)
	}

	sim.Stop()
	start := time.Now()
	if _, err := h.SignEd25519(ctx, 1, msg); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("sign while the connector is away: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > timeout+300*time.Millisecond {
		t.Fatalf("failing sign took %v, budget %v", d, timeout)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	sig, err := h.SignEd25519(ctx, 1, msg)
	if err != nil {
		t.Fatalf("sign after the connector came back: %v", err)
	}
	if !ed25519.Verify(testKey.Public().(ed25519.PublicKey), msg, sig) {
		t.Fatal("signature does not verify")
	}

	// A device that answers too slowly fails the request within budget.
	sim.SetDelay(5 * time.Second)
	start = time.Now()
	if _, err := h.SignEd25519(ctx, 1, msg); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("sign on a hanging device: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > timeout+300*time.Millisecond {
		t.Fatalf("failing sign took %v, budget %v", d, timeout)
	}
	sim.SetDelay(0)
	if _, err := h.SignEd25519(ctx, 1, msg); err != nil {
		t.Fatalf("sign after the device recovered: %v", err)
	}
}

// TestHSMSoftsign signs votes with the key in the simulator under the sign
// state rules; while the device is away a request fails and the state does
// not move; afterwards signing resumes where it stopped.
func TestHSMSoftsign(t *testing.T) {
	sim := newTestSim(t)
	h := dialTestHSM(t, sim, 500*time.Millisecond)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 5, testChain, testKey.Seed(), false); err != nil {
		t.Fatal(err)
	}
	state, path := newTestState(t, Mark{Height: 1})
	key, err := NewKey(ctx, h, 5, 500*time.Millisecond, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public()
	if !pub.Equal(testKey.Public()) {
		t.Fatalf("public key %x", pub)
	}
	if _, err := NewKey(ctx, h, 6, 500*time.Millisecond, quietLog()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key id: %v", err)
	}
	s := NewSoftsign(quietLog())
	if err := s.AddChainKey(testChain, key, state); err != nil {
		t.Fatal(err)
	}
	if err := s.AddChainKey(testChain, key, state); err == nil {
		t.Fatal("added a chain twice")
	}
	t0 := time.Unix(1700000000, 0).UTC()
	req := vote(5, 0, privval.StepPrecommit, "A", t0)
	req.ExtSignBytes = []byte("extension")
	resp, err := s.Sign(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) || !ed25519.Verify(pub, req.ExtSignBytes, resp.ExtSignature) {
		t.Fatal("signature or extension signature does not verify")
	}
	if _, err := s.Sign(ctx, vote(5, 0, privval.StepPrecommit, "B", t0)); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting precommit: %v, want ErrConflict", err)
	}

	sim.Stop()
	if _, err := s.Sign(ctx, vote(6, 0, privval.StepPrevote, "A", t0)); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("sign while the device is away: %v", err)
	}
	if m, err := ReadMark(path, testChain); err != nil || m.Height != 5 {
		t.Fatalf("state after a failed sign: %+v, %v; want height 5", m, err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	req = vote(6, 0, privval.StepPrevote, "A", t0)
	resp, err = s.Sign(ctx, req)
	if err != nil {
		t.Fatalf("sign after restart: %v", err)
	}
	if !ed25519.Verify(pub, req.SignBytes, resp.Signature) {
		t.Fatal("signature after restart does not verify")
	}
	if m, _ := ReadMark(path, testChain); m.Height != 6 {
		t.Fatalf("state height %d after signing 6", m.Height)
	}
}

// TestSealShare seals a 2-of-3 share in the simulator, points the
// configuration at it, and reads it back as NewCluster does.
func TestSealShare(t *testing.T) {
	sim := newTestSim(t)
	out := filepath.Join(t.TempDir(), "shards")
	_, key, _ := ed25519.GenerateKey(nil)
	if _, err := Shard(key, out, ShardOptions{Threshold: 2, Shares: 3, ChainID: "kira-1", Nodes: []string{"tcp://127.0.0.1:26659"}}); err != nil {
		t.Fatal(err)
	}
	home := ShardDir(out, 2)
	cfgText, err := os.ReadFile(filepath.Join(home, ConfigFileName))
	if err != nil {
		t.Fatal(err)
	}
	cfgText = append(cfgText, []byte("\n[hsm]\nconnector = \""+sim.Addr()+"\"\npassword_file = \"hsm_password\"\n")...)
	if err := os.WriteFile(filepath.Join(home, ConfigFileName), cfgText, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "hsm_password"), []byte(yubihsmsim.DefaultPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := LoadShare(cfg.Path(cfg.Threshold.ShareFile), cfg.Path(cfg.Threshold.GroupFile))
	if err != nil {
		t.Fatal(err)
	}
	opts, err := OptionsFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Dial(context.Background(), opts, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, id, err := SealShare(context.Background(), h, cfg, 100); err != nil || id != 100 {
		t.Fatal(err)
	}
	objs, err := h.List(context.Background(), TypeOpaque)
	if err != nil || len(objs) != 1 || objs[0].Label != ShareLabel(2) {
		t.Fatalf("opaque objects %+v, %v", objs, err)
	}
	if err := SetShareHSMObject(home, 100); err != nil {
		t.Fatal(err)
	}
	if err := SetShareHSMObject(home, 100); err == nil {
		t.Fatal("sealed twice")
	}
	if err := RemoveFileDurably(cfg.Path(cfg.Threshold.ShareFile)); err != nil {
		t.Fatal(err)
	}
	cfg, err = LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Threshold.ShareHSMObject != 100 {
		t.Fatalf("share_hsm_object = %d", cfg.Threshold.ShareHSMObject)
	}
	got, err := loadClusterShare(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), orig.Bytes()) {
		t.Fatal("the share read from the device differs from the original")
	}

	// The wrong object, and no device.
	cfg.Threshold.ShareHSMObject = 101
	if _, err := loadClusterShare(cfg, quietLog()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing object: %v, want ErrNotFound", err)
	}
	sim.Stop()
	cfg.Threshold.ShareHSMObject = 100
	if _, err := loadClusterShare(cfg, quietLog()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("no device: %v, want ErrUnreachable", err)
	}
}

// TestHSMKeepAlive: Run echoes often enough that the device never drops
// the idle session, and closes the session when stopped.
func TestHSMKeepAlive(t *testing.T) {
	sim, err := yubihsmsim.New(yubihsmsim.Options{SessionTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	h, err := Dial(context.Background(), Options{Addr: sim.Addr(), AuthKeyID: 1, Password: yubihsmsim.DefaultPassword,
		KeepAlive: 50 * time.Millisecond}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	// Wait for echoes spanning several session timeouts.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := sim.WaitCount(wctx, yubihsmsim.CmdEcho, 20); err != nil {
		t.Fatal(err)
	}
	if n := sim.Count(yubihsmsim.CmdCreateSession); n != 1 {
		t.Fatalf("%d sessions created; the keep-alive should have kept the first", n)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if n := sim.Sessions(); n != 0 {
		t.Fatalf("%d sessions open after Run returned", n)
	}
}

// BenchmarkHSMSign measures one device signature through the simulator:
// HTTP to the connector, SCP03 encryption and MACs on both sides, ed25519.
// Real hardware takes about 100 ms instead.
func BenchmarkHSMSign(b *testing.B) {
	sim, err := yubihsmsim.New(yubihsmsim.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	h, err := Dial(context.Background(), Options{Addr: sim.Addr(), AuthKeyID: 1, Password: yubihsmsim.DefaultPassword}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 1, "", testKey.Seed(), false); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 120) // about a vote's sign bytes
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.SignEd25519(ctx, 1, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHSMMetrics(t *testing.T) {
	sim := newTestSim(t)
	h := dialTestHSM(t, sim, time.Second)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	h.SetMetrics(m)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 1, "", testKey.Seed(), false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := h.SignEd25519(ctx, 1, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.SignEd25519(ctx, 2, []byte("m")); err == nil {
		t.Fatal("signed with a missing key")
	}
	sim.Stop()
	if _, err := h.SignEd25519(ctx, 1, []byte("m")); err == nil {
		t.Fatal("signed without a device")
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SignEd25519(ctx, 1, []byte("m")); err != nil {
		t.Fatal(err)
	}
	if n := histCount(t, reg, "cosigner_hsm_request_duration_seconds", "sign_eddsa"); n != 4 {
		t.Errorf("sign_eddsa observations = %d, want 4", n)
	}
	for kind, want := range map[string]float64{"not_found": 1, "unreachable": 1} {
		if got := testutil.ToFloat64(m.errors.WithLabelValues(kind)); got != want {
			t.Errorf("errors{kind=%q} = %v, want %v", kind, got, want)
		}
	}
	if got := testutil.ToFloat64(m.sessionsOpened); got != 1 {
		t.Errorf("sessions opened = %v, want 1 (the reopen after the restart)", got)
	}
}

func histCount(t *testing.T, reg *prometheus.Registry, name, command string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == command {
					return mt.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// TestHSMConfigRoundTrip: a configuration with [hsm], hsm_key_id and
// share_hsm_object survives Marshal and strict parsing.
func TestHSMConfigRoundTrip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HSM.Connector = "http://127.0.0.1:12345"
	cfg.HSM.AuthKeyID = 2
	cfg.HSM.RequestTimeout = "750ms"
	cfg.Chains = []ChainConfig{{ID: "kira-1", HSMKeyID: 7, Bech32Prefix: "kira", Nodes: []string{"tcp://10.0.0.2:26659"}}}
	got, err := ParseConfig(cfg.Marshal())
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

// TestHSMAdmin: status lists chains whose key is in the device, and
// readiness reports the device away.
func TestHSMAdmin(t *testing.T) {
	sim := newTestSim(t)
	h := dialTestHSM(t, sim, 300*time.Millisecond)
	ctx := context.Background()
	if err := h.ImportEd25519(ctx, 5, "", testKey.Seed(), false); err != nil {
		t.Fatal(err)
	}
	state, _ := newTestState(t, Mark{Height: 3})
	key, err := NewKey(ctx, h, 5, 300*time.Millisecond, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	hs := NewSoftsign(quietLog())
	if err := hs.AddChainKey(testChain, key, state); err != nil {
		t.Fatal(err)
	}
	m, err := NewMetrics(prometheus.NewRegistry(), "test")
	if err != nil {
		t.Fatal(err)
	}
	admin := NewSoftsignAdmin(hs, m, "test")
	st := admin.Status(ctx)
	if len(st.Chains) != 1 || !st.Ready {
		t.Fatalf("status: %+v", st)
	}
	sim.Stop()
	if _, err := hs.Sign(ctx, vote(4, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0))); err == nil {
		t.Fatal("signed without a device")
	}
	if err := admin.Ready(); err == nil || !strings.Contains(err.Error(), "yubihsm") {
		t.Fatalf("ready with the device away: %v", err)
	}
	if err := sim.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Sign(ctx, vote(4, 0, privval.StepPrevote, "A", time.Unix(1700000000, 0))); err != nil {
		t.Fatal(err)
	}
	if err := admin.Ready(); err != nil {
		t.Fatalf("ready after the device came back: %v", err)
	}
}
