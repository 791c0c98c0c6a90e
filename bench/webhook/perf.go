package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// perfResult is a perf(1) profile of the real webhook process under the
// same load (an extra, unmeasured phase: sampling slows the process).
type perfResult struct {
	file     string
	duration time.Duration
	samples  string
	self     []string    // perf report --no-children, first rows
	spots    [][3]string // function, children %, what
}

// perfSpots extends hotSpots with what only the real process does.
var perfSpots = []struct{ fn, what string }{
	{"net/http.(*http2serverConn).serve", "HTTP/2 server connection loop (frames, flow control, TLS writes)"},
	{"net/http.(*http2serverConn).readFrames", "HTTP/2 frame reader (TLS reads)"},
	{"net/http.(*http2serverConn).runHandler", "HTTP/2 stream handler goroutines (everything the handler does)"},
	{"crypto/tls.(*Conn).Read", "TLS reads (decrypt)"},
	{"crypto/tls.(*Conn).Write", "TLS writes (encrypt)"},
	{"sigs.k8s.io/controller-runtime/pkg/webhook.(*DefaultServer).Register.instrumentedHook.func1", "controller-runtime's instrumentation around /validate"},
	{"runtime.findRunnable", "Go scheduler looking for work (idle P)"},
	{"runtime.netpoll", "network poller"},
	{"internal/runtime/syscall.Syscall6", "system calls"},
	{"runtime.futex", "futex (thread sleep/wake)"},
}

// renice sets the nice value of every thread of this process (threads made
// later inherit it from the thread that makes them).
func renice(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
			return fmt.Errorf("setpriority(%d) on thread %d: %w (a negative -nice needs root or CAP_SYS_NICE)", n, tid, err)
		}
	}
	return nil
}

// setScheduler puts every thread of this process under SCHED_FIFO with
// priority prio, or back under SCHED_OTHER when prio is 0 (threads made
// later, and child processes, inherit it).
func setScheduler(prio int) error {
	policy := 1 // SCHED_FIFO
	if prio == 0 {
		policy = 0 // SCHED_OTHER
	}
	param := struct{ priority int32 }{int32(prio)}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param))); e != 0 {
			return fmt.Errorf("sched_setscheduler(%d, policy %d, priority %d): %w (-rt needs root or CAP_SYS_NICE)", tid, policy, prio, e)
		}
	}
	return nil
}

// schedOf describes the scheduling of a process from /proc/PID/stat: nice
// (field 19), rt_priority (40) and policy (41).
func schedOf(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "?"
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 39 {
		return "?"
	}
	switch f[38] {
	case "1":
		return "SCHED_FIFO priority " + f[37]
	case "2":
		return "SCHED_RR priority " + f[37]
	}
	return "SCHED_OTHER nice " + f[16]
}

// perfProfile records the webhook with perf while the generator sends the
// same load for d.
func perfProfile(ctx context.Context, pid int, dir string, d time.Duration, load func(time.Duration)) (*perfResult, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return nil, fmt.Errorf("-perf needs perf(1) in PATH")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "webhook.perf.data")
	cmd := exec.CommandContext(ctx, perf, "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", file)
	logf, err := os.Create(filepath.Join(dir, "perf-record.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(300 * time.Millisecond)
	load(d)
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil && ctx.Err() == nil {
		// perf exits non-zero on SIGINT on some versions; the data counts.
		if _, statErr := os.Stat(file); statErr != nil {
			return nil, fmt.Errorf("perf record: %v (see %s)", err, logf.Name())
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &perfResult{file: file, duration: d}
	self, err := exec.CommandContext(ctx, perf, "report", "-i", file, "--stdio", "--no-children", "--sort", "symbol", "-g", "none", "--percent-limit", "0.7").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %v", err)
	}
	children, err := exec.CommandContext(ctx, perf, "report", "-i", file, "--stdio", "--children", "--sort", "symbol", "-g", "none").Output()
	if err != nil {
		return nil, fmt.Errorf("perf report --children: %v", err)
	}
	for _, l := range strings.Split(string(self), "\n") {
		if strings.HasPrefix(l, "# Samples") && p.samples == "" {
			p.samples = strings.TrimSpace(strings.TrimPrefix(l, "#"))
		}
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") && len(p.self) < 30 {
			p.self = append(p.self, strings.TrimRight(t, " -"))
		}
	}
	childPct := map[string]string{}
	for _, l := range strings.Split(string(children), "\n") {
		f := strings.Fields(l)
		// "  45.00%     1.00%  [.] symbol  -  -"
		if len(f) >= 4 && strings.HasSuffix(f[0], "%") && strings.HasPrefix(f[2], "[") {
			if _, seen := childPct[f[3]]; !seen {
				childPct[f[3]] = f[0]
			}
		}
	}
	for _, s := range append(append([]struct{ fn, what string }{}, hotSpots...), perfSpots...) {
		if v, ok := childPct[s.fn]; ok {
			p.spots = append(p.spots, [3]string{s.fn, v, s.what})
		}
	}
	txt := "# perf report --children\n" + string(children)
	if err := os.WriteFile(filepath.Join(dir, "perf-report.txt"), []byte(txt), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *perfResult) text(w *os.File) {
	fmt.Fprintf(w, "\nperf profile of the running webhook (%s of the same load, %s):\n", p.duration, p.samples)
	for _, s := range p.spots {
		fmt.Fprintf(w, "  %7s  %-75s %s\n", s[1], s[0], s[2])
	}
	fmt.Fprintf(w, "data in %s\n", p.file)
}

func (p *perfResult) markdown(b *strings.Builder) {
	b.WriteString("### perf profile of the running webhook\n\n")
	fmt.Fprintf(b, "`-perf DIR` records the `strata webhook` process with `perf record -e cpu-clock -F 999 -g` during an extra %s of the same load (not part of the measurement above; %s). Share of samples with each function on the stack (`perf report --children`):\n\n", p.duration, p.samples)
	b.WriteString("| function | children % | what |\n|---|--:|---|\n")
	for _, s := range p.spots {
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", s[0], s[1], s[2])
	}
	b.WriteString("\n<details><summary>perf report --no-children (self)</summary>\n\n```\n")
	b.WriteString(strings.Join(p.self, "\n"))
	b.WriteString("\n```\n</details>\n\n")
}
