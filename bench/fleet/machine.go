package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The clusters share the machine with whatever else runs on it; the load
// average cannot tell the benchmark's own clusters from other work. A
// cpuMeter can: the machine's busy CPU (/proc/stat) minus the CPU of the
// benchmark's own processes (this one, its reconcilers and its clusters,
// all found by their command line naming the run's temporary directory).
type cpuMeter struct {
	marker string // the run's temporary directory
	self   int
}

// cpuReading is a point-in-time reading of a cpuMeter.
type cpuReading struct {
	at         time.Time
	busy, mine time.Duration
}

func (m cpuMeter) read() cpuReading {
	return cpuReading{at: time.Now(), busy: machineBusy(), mine: m.own()}
}

// otherCores is the CPU that other work used between r0 and r1, in cores.
func otherCores(r0, r1 cpuReading) float64 {
	wall := r1.at.Sub(r0.at).Seconds()
	if wall <= 0 {
		return 0
	}
	other := (r1.busy - r0.busy) - (r1.mine - r0.mine)
	return max(0, other.Seconds()/wall)
}

const userHZ = time.Second / 100

// machineBusy is the CPU time every core spent busy since boot (/proc/stat:
// user, nice, system, irq, softirq, steal).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return parseBusy(line)
}

func parseBusy(line string) time.Duration {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		v, _ := strconv.ParseInt(f[i], 10, 64)
		sum += v
	}
	return time.Duration(sum) * userHZ
}

// own sums utime+stime of this process (with its reaped children: git,
// kwokctl) and of every process whose command line names the marker.
func (m cpuMeter) own() time.Duration {
	var sum time.Duration
	if d, ok := procCPU(m.self, true); ok {
		sum += d
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == m.self {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(m.marker)) {
			continue
		}
		if c, ok := procCPU(pid, false); ok {
			sum += c
		}
	}
	return sum
}

// procCPU reads utime+stime of pid, plus cutime+cstime with children.
func procCPU(pid int, children bool) (time.Duration, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseProcCPU(string(data), children)
}

func parseProcCPU(stat string, children bool) (time.Duration, bool) {
	// Fields after the parenthesised command name (which may hold spaces):
	// state is field 3, utime 14, stime 15, cutime 16, cstime 17.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 15 {
		return 0, false
	}
	n := 13 // utime, stime
	if children {
		n = 15
	}
	var sum int64
	for _, s := range f[11:n] {
		v, _ := strconv.ParseInt(s, 10, 64)
		sum += v
	}
	return time.Duration(sum) * userHZ, true
}
