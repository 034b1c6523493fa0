package hsm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/certusone/yubihsm-go/commands"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

var (
	newTestSim = testkit.Sim
	testKey    = testkit.Key
)

func quietLog() *slog.Logger { return testkit.Log }

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
	sim := testkit.Sim(b)
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
	h.metrics = m
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
