// Package testhsm connects tests to a YubiHSM2 simulator through cosigner's
// real client. It is apart from testkit because it imports hsm, whose own
// tests use testkit.
package testhsm

import (
	"context"
	"testing"
	"time"

	"github.com/cosigner/cosigner/cosigner/hsm"
	"github.com/cosigner/cosigner/internal/testkit"
	"github.com/cosigner/cosigner/test/yubihsmsim"
)

// Dial opens a client of sim with the given request timeout, closed when
// the test ends.
func Dial(t testing.TB, sim *yubihsmsim.Sim, timeout time.Duration) *hsm.Client {
	t.Helper()
	h, err := hsm.Dial(context.Background(), hsm.Options{Addr: sim.URL(), AuthKeyID: 1, Password: yubihsmsim.DefaultPassword, Timeout: timeout}, testkit.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}
