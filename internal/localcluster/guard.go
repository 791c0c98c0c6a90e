package localcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// guardScript waits for EOF on its stdin — a pipe whose only writer is the
// process that started it, so EOF means that process ended, however it
// ended — then SIGKILLs every process whose command line mentions
// $STRATA_GUARD_DIR. The directory comes through the environment so that
// the guard's own command line does not match it.
const guardScript = `while read -r _; do :; done
for d in /proc/[0-9]*; do
  c=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) || continue
  case "$c" in *"$STRATA_GUARD_DIR"*) kill -9 "${d#/proc/}" 2>/dev/null;; esac
done`

var (
	guardsMu sync.Mutex
	// guards hold the write ends of the guards' pipes open until this
	// process ends; closing one (or a finalizer doing so) would fire its
	// guard early.
	guards []*os.File
)

// KillOnExit makes sure the clusters under the Manager's home do not
// outlive this process: a separate guard process SIGKILLs every process of
// the home (each cluster's apiserver, etcd, controllers and kwok, whose
// command lines name their directory under it) once this process has ended
// — also when it ends in a way that runs no deferred cleanup: a panic in a
// goroutine, os.Exit, SIGKILL. For benchmarks and tests with a temporary
// home; `strata dev up` keeps its clusters on purpose and does not call it.
func (m *Manager) KillOnExit() error {
	// The guard matches command lines by substring: a home like "/" or
	// "/tmp" would match processes that are not the clusters'.
	if home := filepath.Clean(m.home); !filepath.IsAbs(home) || strings.Count(home, "/") < 2 {
		return fmt.Errorf("guarding %q: the home must be an absolute path at least two directories deep (a temporary directory), or the guard would kill unrelated processes", m.home)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("guarding %s: %w", m.home, err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", guardScript)
	cmd.Env = append(os.Environ(), "STRATA_GUARD_DIR="+m.home)
	cmd.Stdin = r
	// Its own process group: an interrupt of the terminal's group leaves
	// the guard alive to clean up after this process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("guarding %s: starting the guard: %w", m.home, err)
	}
	go func() { _ = cmd.Wait() }()
	guardsMu.Lock()
	guards = append(guards, w)
	guardsMu.Unlock()
	return nil
}
