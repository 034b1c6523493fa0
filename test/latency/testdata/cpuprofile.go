// This file is not part of cosigner. The latency harness compiles it into
// ./cmd/cosigner with `go build -overlay` when COSIGNER_CPUPROFILE names a
// directory, so the processes it measures can be profiled without a
// profiling switch in the product. An init function is the only hook an
// added file has.

package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
)

// init starts a CPU profile of `cosigner start` into
// $COSIGNER_CPUPROFILE/cosigner-<pid>.pprof and, with COSIGNER_TRACE=1, an
// execution trace into cosigner-<pid>.trace (for `go tool trace -pprof=
// sched|syscall|net`: where the wall time goes). SIGUSR1 stops and flushes
// both and logs the profile's path.
func init() {
	dir := os.Getenv("COSIGNER_CPUPROFILE")
	if dir == "" || len(os.Args) < 2 || os.Args[1] != "start" {
		return
	}
	base := filepath.Join(dir, fmt.Sprintf("cosigner-%d", os.Getpid()))
	f, err := os.Create(base + ".pprof")
	if err != nil {
		fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
		f.Close()
		return
	}
	var tf *os.File
	if os.Getenv("COSIGNER_TRACE") == "1" {
		if tf, err = os.Create(base + ".trace"); err == nil {
			err = trace.Start(tf)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "trace: %v\n", err)
			tf = nil
		}
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGUSR1)
	go func() {
		<-stop
		if tf != nil {
			trace.Stop()
			tf.Close()
		}
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
			return
		}
		fmt.Fprintf(os.Stderr, "cpuprofile written path=%s.pprof\n", base)
	}()
}
