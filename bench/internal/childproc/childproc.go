// Package childproc runs the long-lived processes a benchmark measures
// (reconcilers, controllers, webhook servers): each in its own process group
// with its output in a log file, stopped with everything it started, and
// read from /proc for its peak memory and CPU time.
package childproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is a started child process.
type Process struct {
	Name string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
	// Err is the process's exit error, once it exited.
	Err error
}

// Start runs bin with args and the environment plus env, output to logPath.
// The child dies with this process (Pdeathsig), so a crash of the benchmark
// leaves nothing running.
func Start(name, logPath string, env []string, bin string, args ...string) (*Process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, Log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.Err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop ends the process group: SIGTERM, then SIGKILL after 10 s.
func (p *Process) Stop() {
	if p == nil || p.Exited() {
		return
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
		<-p.done
	}
}

// Tail is the last n lines of the log, for error messages.
func (p *Process) Tail(n int) string {
	data, _ := os.ReadFile(p.Log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CPU is the user+system time the process used so far (0 once it is gone).
func (p *Process) CPU() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return 0
	}
	// utime and stime are fields 14 and 15; the command name before them
	// is parenthesised and may hold spaces.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}

// PeakRSS is the process's peak resident set (VmHWM) in bytes, 0 once it
// is gone.
func (p *Process) PeakRSS() int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// FreePort asks the kernel for a free loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SelfPeakKiB is this process's own peak resident set so far, in KiB
// (getrusage RUSAGE_SELF).
func SelfPeakKiB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss
}

// ExitedPeakKiB is an exited child's peak resident set in KiB (its
// ru_maxrss), or -1 when that figure cannot be told apart from the
// parent's. Linux reports a child's peak as at least the parent's at the
// child's start — Go starts a child with a vfork that shares the parent's
// memory, and exec keeps the larger of the two peaks — so a figure not
// above parentKiB (SelfPeakKiB taken just before the start) may be the
// parent's own.
func ExitedPeakKiB(ps *os.ProcessState, parentKiB int64) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru.Maxrss <= parentKiB {
		return -1
	}
	return ru.Maxrss
}

// PeakMiB formats a peak in KiB as MiB, or says it was unmeasured when it
// is negative (ExitedPeakKiB could not tell it from the harness's own).
func PeakMiB(kib int64) string {
	if kib < 0 {
		return "unmeasured (≤ the harness's own peak)"
	}
	return fmt.Sprintf("%d MiB", kib>>10)
}
