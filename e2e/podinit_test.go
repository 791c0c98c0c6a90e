package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The helper process that becomes a container (see pod_test.go): the test
// binary itself, started again in new namespaces, running only TestPodInit.

// podMount is one bind mount of the container.
type podMount struct {
	Source, Target string
	ReadOnly       bool
}

// podSpec is what the helper process needs to become the container.
type podSpec struct {
	Root         string
	Argv, Env    []string
	WorkingDir   string
	Mounts       []podMount
	UID, GID     int
	Groups       []int
	Hostname     string
	ReadOnlyRoot bool
}

// pod is a running container; logs holds its stdout and stderr.
type pod struct {
	name string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// run starts the helper process, which becomes the container.
func (n *node) run(t *testing.T, name, dir string, ps podSpec) *pod {
	t.Helper()
	specFile := filepath.Join(dir, "pod.json")
	b, err := json.Marshal(ps)
	must(t, err)
	must(t, os.WriteFile(specFile, b, 0o600))
	p := &pod{name: name, logs: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestPodInit$")
	p.cmd.Env = append(os.Environ(), podInitEnv+"="+specFile)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	// Its own mount, PID and UTS namespaces: its mounts, its /proc, its
	// hostname (the pod's name); this machine's network.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting pod %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	if testing.Verbose() {
		t.Logf("pod %s: %s", name, strings.Join(ps.Argv, " "))
	}
	return p
}

// stop sends SIGTERM, as the kubelet does, and SIGKILL after 20 s.
func (p *pod) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the container has ended.
func (p *pod) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// uids are the real and effective user IDs the container's process runs
// as, from this machine's /proc.
func (p *pod) uids() (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			f := strings.Fields(rest)
			return strings.Join(f[:2], " "), nil
		}
	}
	return "", fmt.Errorf("no Uid line in /proc/%d/status", p.cmd.Process.Pid)
}

// tail is the end of the container's output.
func (p *pod) tail() string {
	s := p.logs.String()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// TestPodInit is not a test: it is the helper process that start runs in a
// new mount namespace. It mounts the volumes into the image's root, makes
// the root read-only, chroots into it, takes the container's user and
// executes the container's command. Without its environment variable it
// does nothing.
func TestPodInit(t *testing.T) {
	specFile := os.Getenv(podInitEnv)
	if specFile == "" {
		return
	}
	err := func() error {
		b, err := os.ReadFile(specFile)
		if err != nil {
			return err
		}
		var ps podSpec
		if err := json.Unmarshal(b, &ps); err != nil {
			return err
		}
		return becomeContainer(ps)
	}()
	fmt.Fprintf(os.Stderr, "pod init: %v\n", err)
	os.Exit(127)
}

func becomeContainer(ps podSpec) error {
	runtime.LockOSThread()
	// Nothing mounted here may reach this machine's mount table.
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := syscall.Sethostname([]byte(ps.Hostname)); err != nil {
		return fmt.Errorf("hostname: %w", err)
	}
	root := ps.Root
	if err := syscall.Mount(root, root, "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding the image's root: %w", err)
	}
	for _, m := range ps.Mounts {
		target := filepath.Join(root, m.Target)
		if err := syscall.Mount(m.Source, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("mounting %s at %s: %w", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := syscall.Mount("", target, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("making %s read-only: %w", m.Target, err)
			}
		}
	}
	if err := syscall.Mount("proc", filepath.Join(root, "proc"), "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if ps.ReadOnlyRoot {
		if err := syscall.Mount("", root, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making the root read-only: %w", err)
		}
	}
	if err := syscall.Chroot(root); err != nil {
		return fmt.Errorf("chroot %s: %w", root, err)
	}
	wd := ps.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := syscall.Chdir(wd); err != nil {
		return fmt.Errorf("working directory %s: %w", wd, err)
	}
	if err := syscall.Setgroups(ps.Groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", ps.Groups, err)
	}
	if err := syscall.Setgid(ps.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", ps.GID, err)
	}
	if err := syscall.Setuid(ps.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", ps.UID, err)
	}
	// A change of credentials clears the parent-death signal: set it again
	// so that the container dies with the test.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		return fmt.Errorf("prctl: %w", errno)
	}
	return syscall.Exec(ps.Argv[0], ps.Argv, ps.Env)
}

// syncBuffer is a bytes.Buffer safe for the process's two output pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
