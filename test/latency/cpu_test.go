package latency

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosigner/cosigner/test/harness"
)

// clockTick is one tick of utime and stime in /proc/PID/stat: 1/USER_HZ,
// which Linux fixes at 100 for every user-space interface whatever the
// kernel's own HZ (sysconf(_SC_CLK_TCK) = 100; `getconf CLK_TCK`).
const clockTick = 10 * time.Millisecond

// processCPU returns the user plus system CPU time that process pid has
// used so far, all its threads included, from fields 14 (utime) and 15
// (stime) of /proc/PID/stat. Its resolution is one clockTick.
func processCPU(pid int) (time.Duration, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return parseStat(path, string(data))
}

// parseStat reads utime and stime from the text of /proc/PID/stat. The
// command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseStat(path, stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no command name in %q", path, stat)
	}
	// fields[0] is field 3 (state), so utime (14) and stime (15) are
	// fields[11] and fields[12].
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("%s: %d fields after the command name, want at least 13", path, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: utime or stime %q: %w", path, f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// cpuReading is the CPU time of every signer process of a target at one
// moment.
type cpuReading map[*harness.Process]time.Duration

// readCPU reads the CPU time of every process in procs.
func readCPU(procs []*harness.Process) (cpuReading, error) {
	r := cpuReading{}
	for _, p := range procs {
		if p.Exited() {
			return nil, fmt.Errorf("%s exited", p.Name)
		}
		d, err := processCPU(p.Pid())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name, err)
		}
		r[p] = d
	}
	return r, nil
}

// since returns the CPU time each process of r used after start. Both
// must read the same processes: one that started or stopped in between
// has no figure for the interval.
func (r cpuReading) since(start cpuReading) (cpuReading, error) {
	d := cpuReading{}
	for p, t := range r {
		t0, ok := start[p]
		if !ok {
			return nil, fmt.Errorf("%s started during the measurement", p.Name)
		}
		d[p] = t - t0
	}
	if len(start) != len(r) {
		return nil, fmt.Errorf("%d signer processes at the start of the measurement, %d at its end", len(start), len(r))
	}
	return d, nil
}

// total returns the CPU time of all processes of r.
func (r cpuReading) total() time.Duration {
	var sum time.Duration
	for _, t := range r {
		sum += t
	}
	return sum
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, stat string
		want       time.Duration
		wantErr    bool
	}{
		{"cat", "16817 (cat) R 16774 16774 7779 0 -1 4194304 98 0 0 0 7 3 0 0 20 0 1 0 49519 3133440 359", 100 * time.Millisecond, false},
		{"parentheses and spaces in the name", "42 (a) b (c)) S 1 42 42 0 -1 0 0 0 0 0 250 50 0 0 20 0 9 0 1 1 1", 3 * time.Second, false},
		{"truncated", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 250", 0, true},
		{"no name", "42 x S 1", 0, true},
		{"not a number", "42 (x) S 1 42 42 0 -1 0 0 0 0 0 a 50 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat("stat", tt.stat)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseStat(%q) = %v, %v; want %v, error %v", tt.stat, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestProcessCPUSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc/self/stat: the latency harness reads CPU time on Linux only")
	}
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}
