package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The machine may be shared: other jobs' CPU use during a measurement slows
// the clusters and the tools alike. cpuMeter tells how much CPU the rest of
// the machine used, so that every measurement can say how quiet it was, and
// so that a measurement can wait for a quiet machine before it starts.

// clockTick is USER_HZ, the unit of /proc/stat and /proc/PID/stat times.
const clockTick = 100

// cpuMeter measures CPU time used on the machine by processes other than
// the benchmark's: its own process, the processes whose command line
// mentions its temporary directory (the clusters' components), and the
// children it runs and waits for (strata, kubectl; their time comes from
// getrusage).
type cpuMeter struct {
	tmp string
}

type cpuSample struct {
	total, ours time.Duration
	at          time.Time
}

func (m *cpuMeter) sample() cpuSample {
	return cpuSample{total: machineBusy(), ours: m.oursNow(), at: time.Now()}
}

// foreign returns the CPU time others used between a and b, given the CPU
// time of the children that ran and exited in between.
func foreign(a, b cpuSample, children time.Duration) time.Duration {
	return max(0, (b.total-a.total)-(b.ours-a.ours)-children)
}

// machineBusy is the non-idle CPU time of all CPUs since boot (/proc/stat).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	// user nice system idle iowait irq softirq steal: skip idle and iowait.
	for i, v := range f[1:9] {
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick
}

// oursNow sums utime+stime of this process and of every live process whose
// command line mentions the benchmark's temporary directory.
func (m *cpuMeter) oursNow() time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	var ticks int64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pid != self {
			cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil || !bytes.Contains(cmd, []byte(m.tmp)) {
				continue
			}
		}
		ticks += procTicks(pid)
	}
	return time.Duration(ticks) * time.Second / clockTick
}

// procTicks is utime+stime of pid in clock ticks.
func procTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// waitQuiet waits until other processes used less than maxCPUs CPUs over a
// 5-second window, at most maxWait. It returns the last window's figure and
// how long it waited.
func (m *cpuMeter) waitQuiet(ctx context.Context, maxCPUs float64, maxWait time.Duration) (float64, time.Duration, error) {
	start := time.Now()
	for {
		a := m.sample()
		select {
		case <-ctx.Done():
			return 0, time.Since(start), ctx.Err()
		case <-time.After(5 * time.Second):
		}
		b := m.sample()
		load := float64(foreign(a, b, 0)) / float64(b.at.Sub(a.at))
		if load < maxCPUs || time.Since(start) >= maxWait {
			return load, time.Since(start), nil
		}
	}
}
