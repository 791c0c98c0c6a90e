// Package cpumeter tells a benchmark's own CPU use from that of the other
// work on a shared machine, which the load average cannot: the machine's
// busy time (/proc/stat) minus the CPU time of the benchmark's processes
// (/proc/PID/stat): this process and every process whose command line
// names a marker, such as the run's temporary directory that its clusters
// and reconcilers are started with.
package cpumeter

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

// tick is USER_HZ, the unit of the times in /proc/stat and /proc/PID/stat;
// Linux shows it as 100 to user space whatever the kernel's own HZ.
const tick = time.Second / 100

// Meter reads the machine's and the benchmark's CPU time.
type Meter struct {
	// Marker is a string in the command line of every process, besides
	// this one, whose CPU time is the benchmark's own.
	Marker string
	// WithChildren counts this process's reaped children (cutime+cstime)
	// as its own too: the short-lived tools it ran and waited for. Leave it
	// off to subtract their time yourself (from getrusage) per measurement.
	WithChildren bool
}

// Reading is a point-in-time reading of a Meter.
type Reading struct {
	// Busy is the CPU time every core spent busy since boot.
	Busy time.Duration
	// Ours is the CPU time of the benchmark's live processes.
	Ours time.Duration
	At   time.Time
}

// Read reads the machine's and the benchmark's CPU time now.
func (m Meter) Read() Reading {
	return Reading{Busy: MachineBusy(), Ours: m.Ours(), At: time.Now()}
}

// Other is the CPU time other work used between a and b, given the CPU
// time of the children that ran and exited in between (which no live
// process accounts for).
func Other(a, b Reading, children time.Duration) time.Duration {
	return max(0, (b.Busy-a.Busy)-(b.Ours-a.Ours)-children)
}

// OtherCores is Other as a number of cores busy over the wall time between
// a and b; 0 if no time passed.
func OtherCores(a, b Reading, children time.Duration) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return float64(Other(a, b, children)) / float64(wall)
}

// WaitQuiet waits until other work used less than maxCores cores over a
// 5-second window, at most maxWait, so that a measurement can start on a
// quiet machine. It returns the last window's figure and how long it
// waited.
func (m Meter) WaitQuiet(ctx context.Context, maxCores float64, maxWait time.Duration) (float64, time.Duration, error) {
	start := time.Now()
	for {
		a := m.Read()
		select {
		case <-ctx.Done():
			return 0, time.Since(start), ctx.Err()
		case <-time.After(5 * time.Second):
		}
		load := OtherCores(a, m.Read(), 0)
		if load < maxCores || time.Since(start) >= maxWait {
			return load, time.Since(start), nil
		}
	}
}

// MachineBusy is the CPU time every core spent busy since boot, 0 if
// /proc/stat cannot be read.
func MachineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	return parseBusy(data)
}

// parseBusy sums the busy columns of the "cpu" line of /proc/stat: user,
// nice, system, irq, softirq and steal; idle and iowait are not busy.
func parseBusy(procStat []byte) time.Duration {
	line, _, _ := bytes.Cut(procStat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		sum += v
	}
	return time.Duration(sum) * tick
}

// Ours sums the CPU time of this process (with its reaped children if
// m.WithChildren) and of every live process whose command line names
// m.Marker.
func (m Meter) Ours() time.Duration {
	self := os.Getpid()
	sum, _ := processCPU(self, m.WithChildren)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(m.Marker)) {
			continue
		}
		if c, ok := processCPU(pid, false); ok {
			sum += c
		}
	}
	return sum
}

// processCPU is utime+stime of pid, plus cutime+cstime with children;
// false if the process is gone.
func processCPU(pid int, children bool) (time.Duration, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseProcessCPU(string(data), children)
}

func parseProcessCPU(stat string, children bool) (time.Duration, bool) {
	// Count fields after the parenthesised command name, which may hold
	// spaces and parentheses: state is field 3, utime 14, stime 15,
	// cutime 16, cstime 17.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	n := 13 // up to stime
	if children {
		n = 15 // up to cstime
	}
	if len(f) < n {
		return 0, false
	}
	var sum int64
	for _, s := range f[11:n] {
		v, _ := strconv.ParseInt(s, 10, 64)
		sum += v
	}
	return time.Duration(sum) * tick, true
}
