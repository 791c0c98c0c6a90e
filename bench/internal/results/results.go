// Package results holds what the benchmark programs under bench/ share
// when they report: the machine they ran on, the strata binary they
// measured, and their section of bench/RESULTS.md.
package results

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// UpdateSection replaces the section of file that starts with the line
// header (up to the next "## " header) with section, or appends section;
// every other section stays. A missing file is created. A file inside a git
// checkout is written only if the checkout is clean (CheckRecordable).
func UpdateSection(file, header, section string) error {
	if err := CheckRecordable(file); err != nil {
		return err
	}
	old, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	text := string(old)
	if text == "" {
		text = "# strata benchmarks\n\n"
	}
	lines := strings.SplitAfter(text, "\n")
	start, end := -1, len(lines)
	for i, l := range lines {
		t := strings.TrimRight(l, "\r\n")
		if start < 0 && t == header {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(t, "## ") {
			end = i
			break
		}
	}
	var out string
	if start < 0 {
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if !strings.HasSuffix(text, "\n\n") {
			text += "\n"
		}
		out = text + section
	} else {
		out = strings.Join(lines[:start], "") + section + strings.Join(lines[end:], "")
	}
	return os.WriteFile(file, []byte(out), 0o644)
}

// ErrNoModule is ModuleRoot's error when no go.mod is found.
var ErrNoModule = errors.New("no go.mod above the working directory")

// ModuleRoot finds the strata module: `go env GOMOD`, else the first
// directory up from the working directory with a go.mod.
func ModuleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		gomod := strings.TrimSpace(string(out))
		if gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrNoModule
		}
		dir = parent
	}
}

// BuildStrata builds root/cmd/strata into the binary out, saying so on
// stderr.
func BuildStrata(ctx context.Context, root, out string) error {
	fmt.Fprintf(os.Stderr, "building %s/cmd/strata …\n", root)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/strata")
	cmd.Dir = root
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/strata in %s: %v\n%s", root, err, output)
	}
	return nil
}

// GoVersion is `go version` run in dir, without its "go version " prefix,
// or this program's Go version if that fails.
func GoVersion(dir string) string {
	cmd := exec.Command("go", "version")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
}

// GitState describes the checkout in dir: " at commit X" and whether files
// differed from it (RESULTS.md files aside); "" outside a git checkout.
func GitState(dir string) string {
	head, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	s := " at commit " + strings.TrimSpace(string(head))
	if dirty, err := dirtyPaths(dir); err == nil && len(dirty) > 0 {
		s += fmt.Sprintf(" plus uncommitted changes (%d paths in git status)", len(dirty))
	}
	return s
}

// Machine describes the machine a benchmark ran on.
type Machine struct {
	NProc                       int
	CPU, Mem, Kernel, GoVersion string
}

// ReadMachine describes this machine: nproc, the CPU model from
// /proc/cpuinfo, MemTotal from /proc/meminfo, `uname -sr` and this
// program's Go version and platform.
func ReadMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), CPU: "unknown CPU", Mem: "unknown memory", Kernel: runtime.GOOS,
		GoVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if out, err := exec.Command("nproc").Output(); err == nil {
		fmt.Sscan(string(out), &m.NProc)
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		for _, l := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				fmt.Sscan(rest, &kb)
			}
		}
		if kb > 0 {
			m.Mem = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// LoadAvg is the 1-, 5- and 15-minute load averages from /proc/loadavg,
// or "unknown".
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// PrefixWriter prefixes every line written to W with Prefix.
type PrefixWriter struct {
	mu     sync.Mutex
	W      io.Writer
	Prefix string
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		if _, err := fmt.Fprintf(p.W, "%s%s", p.Prefix, line); err != nil {
			return 0, err
		}
		b = b[len(line):]
	}
	return n, nil
}
