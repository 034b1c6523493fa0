package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stopGrace is how long a process gets to exit after SIGTERM before it is
// killed.
const stopGrace = 10 * time.Second

// Process is a child process whose combined stdout and stderr are written to
// a log file and kept in memory line by line, so tests can wait for a line
// without polling the file.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its output is drained
	err  error         // Wait's result, valid after done

	// mu guards lines and changed.
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

// StartProcess starts bin with args, its output captured in logPath. The
// process is stopped (SIGTERM, then SIGKILL after a grace period) when the
// test ends; if the test failed, the tail of its log is printed.
func StartProcess(t testing.TB, name, logPath string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p, err := startProcess(name, logPath, env, bin, args...)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- last lines of %s (%s) ---\n%s", name, logPath, p.Tail(40))
		}
	})
	return p
}

func startProcess(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = pw
	cmd.Stderr = pw
	// Own process group, so a test's Ctrl-C does not reach the child first
	// and our SIGTERM reaches only the child.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		f.Close()
		pw.Close()
		return nil, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		p.copyLines(pr, f)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		<-copied
		f.Close()
		close(p.done)
		p.mu.Lock()
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}()
	return p, nil
}

func (p *Process) copyLines(r io.Reader, f *os.File) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(f, line)
		p.mu.Lock()
		p.lines = append(p.lines, line)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	// Drain whatever a scanner error left behind so the child never blocks.
	_, _ = io.Copy(f, r)
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode returns the exit code once the process has exited (-1 if it was
// killed by a signal or is still running).
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Lines returns a copy of every output line so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Tail returns the last n output lines joined by newlines.
func (p *Process) Tail(n int) string {
	lines := p.Lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ErrExited is returned by WaitLine when the process exits before a
// matching line appears.
var ErrExited = errors.New("process exited")

// WaitLine waits until an output line at index >= from satisfies match, and
// returns its index and text. It fails with ctx's error or ErrExited.
func (p *Process) WaitLine(ctx context.Context, from int, match func(string) bool) (int, string, error) {
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				line := p.lines[i]
				p.mu.Unlock()
				return i, line, nil
			}
		}
		from = max(from, len(p.lines))
		changed := p.changed
		p.mu.Unlock()
		if p.Exited() {
			// Output is fully drained once done is closed: one last look.
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if from >= n {
				return -1, "", fmt.Errorf("%s: %w (%v)", p.Name, ErrExited, p.err)
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return -1, "", fmt.Errorf("%s: waiting for a log line: %w", p.Name, ctx.Err())
		}
	}
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if p.Exited() {
		return nil
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the process to exit, killing it if it has
// not exited after a grace period. It is safe to call more than once.
func (p *Process) Stop() {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		p.Kill()
	}
}

// Wait waits for the process to exit or ctx to end, and returns the exit
// error (nil for exit code 0).
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for exit: %w", p.Name, ctx.Err())
	}
}

// Output returns all output lines joined by newlines.
func (p *Process) Output() string {
	var b bytes.Buffer
	for _, l := range p.Lines() {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
