package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// promSample is one line of the Prometheus text format.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads a Prometheus text exposition.
func scrape(ctx context.Context, url string) ([]promSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return parseProm(data)
}

func parseProm(data []byte) ([]promSample, error) {
	var out []promSample
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s := promSample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			s.name = line[:i]
			rest = line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			rest = rest[1:]
			for {
				rest = strings.TrimLeft(rest, ", ")
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
				eq := strings.Index(rest, "=\"")
				if eq < 0 {
					return nil, fmt.Errorf("bad metric line %q", line)
				}
				key := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				for {
					if rest == "" {
						return nil, fmt.Errorf("bad metric line %q", line)
					}
					ch := rest[0]
					rest = rest[1:]
					if ch == '\\' && rest != "" {
						switch rest[0] {
						case 'n':
							val.WriteByte('\n')
						default:
							val.WriteByte(rest[0])
						}
						rest = rest[1:]
						continue
					}
					if ch == '"' {
						break
					}
					val.WriteByte(ch)
				}
				s.labels[key] = val.String()
			}
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("bad metric line %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("bad metric line %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// value returns the sum of the samples named name whose labels include want.
func value(ss []promSample, name string, want map[string]string) (float64, bool) {
	sum, found := 0.0, false
	for _, s := range ss {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			sum += s.value
			found = true
		}
	}
	return sum, found
}

// histogram is a Prometheus histogram (cumulative buckets).
type histogram struct {
	les    []float64 // upper bounds, ascending, +Inf last
	counts []float64 // cumulative
	sum    float64
	count  float64
}

func readHistogram(ss []promSample, name string, want map[string]string) histogram {
	byLE := map[float64]float64{}
	for _, s := range ss {
		if s.name != name+"_bucket" {
			continue
		}
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if !ok {
			continue
		}
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err != nil {
			continue
		}
		byLE[le] += s.value
	}
	var h histogram
	for le := range byLE {
		h.les = append(h.les, le)
	}
	slices.Sort(h.les)
	for _, le := range h.les {
		h.counts = append(h.counts, byLE[le])
	}
	h.sum, _ = value(ss, name+"_sum", want)
	h.count, _ = value(ss, name+"_count", want)
	return h
}

// minus is h - before (the observations in between).
func (h histogram) minus(before histogram) histogram {
	out := histogram{les: h.les, counts: make([]float64, len(h.counts)), sum: h.sum - before.sum, count: h.count - before.count}
	for i := range h.counts {
		out.counts[i] = h.counts[i]
		if i < len(before.counts) && before.les[i] == h.les[i] {
			out.counts[i] -= before.counts[i]
		}
	}
	return out
}

// quantile estimates quantile q like PromQL's histogram_quantile (linear
// within the bucket) and returns the bucket's bounds too.
func (h histogram) quantile(q float64) (est, lo, hi float64) {
	if h.count == 0 || len(h.les) == 0 {
		return math.NaN(), 0, 0
	}
	rank := q * h.count
	prevLE, prevCount := 0.0, 0.0
	for i, le := range h.les {
		if h.counts[i] >= rank {
			if math.IsInf(le, 1) {
				return prevLE, prevLE, le
			}
			inBucket := h.counts[i] - prevCount
			if inBucket <= 0 {
				return le, prevLE, le
			}
			return prevLE + (le-prevLE)*(rank-prevCount)/inBucket, prevLE, le
		}
		prevLE, prevCount = le, h.counts[i]
	}
	return prevLE, prevLE, math.Inf(1)
}

// within is the fraction of observations at or below the bucket bound le.
func (h histogram) within(le float64) float64 {
	for i, b := range h.les {
		if b == le && h.count > 0 {
			return h.counts[i] / h.count
		}
	}
	return math.NaN()
}

// procStats are a process's CPU time and memory from /proc.
type procStats struct {
	cpu          time.Duration // utime + stime
	hwmKiB       int64         // VmHWM: peak resident set
	rssKiB       int64
	threads      int
	volCtxSwitch int64
	nvCtxSwitch  int64
}

var clkTck = func() int64 {
	if out, err := exec.Command("getconf", "CLK_TCK").Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}()

func readProc(pid int) (procStats, error) {
	var p procStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// Fields after the command (which may contain spaces) start at state.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return p, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	if len(f) < 13 {
		return p, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	p.cpu = time.Duration((ut + st) * int64(time.Second) / clkTck)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	// Context switches are counted per thread.
	if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		for _, t := range tasks {
			ts, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(ts), "\n") {
				k, v, _ := strings.Cut(l, ":")
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				switch k {
				case "voluntary_ctxt_switches":
					p.volCtxSwitch += n
				case "nonvoluntary_ctxt_switches":
					p.nvCtxSwitch += n
				}
			}
		}
	}
	for _, l := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			p.hwmKiB = n
		case "VmRSS":
			p.rssKiB = n
		case "Threads":
			p.threads = int(n)
		}
	}
	return p, nil
}

// cpuTimes is the machine's aggregate CPU time from /proc/stat.
type cpuTimes struct{ busy, total int64 }

func readCPUTimes() cpuTimes {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var t cpuTimes
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		t.total += n
		if i != 3 && i != 4 { // idle, iowait
			t.busy += n
		}
	}
	return t
}

// busyFraction is the share of all CPUs that was busy between a and b.
func busyFraction(a, b cpuTimes) float64 {
	if b.total <= a.total {
		return math.NaN()
	}
	return float64(b.busy-a.busy) / float64(b.total-a.total)
}
