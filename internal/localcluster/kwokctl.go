package localcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// kwokctl runs kwokctl with KWOK_WORKDIR=Home/kwok and returns its combined
// output; the error carries the interesting part of that output.
func (m *Manager) kwokctl(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(m.bin, "kwokctl"), args...)
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+m.Workdir())
	cmd.Dir = m.home
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The components kwokctl starts are detached and write to their own log
	// files, but never let a stray inherited descriptor hang us.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	m.log.Debug("kwokctl", "args", args, "err", err, "output", out.String())
	if err != nil {
		return out.Bytes(), fmt.Errorf("kwokctl %s: %w%s", strings.Join(args, " "), err, summarize(out.Bytes()))
	}
	return out.Bytes(), nil
}

// summarize turns kwokctl's JSON log lines into "\n  msg key=value" lines,
// keeping the warnings and errors (or the last lines when there are none).
func summarize(out []byte) string {
	var all, bad []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			all = append(all, line)
			continue
		}
		msg := fmt.Sprint(rec["msg"])
		for _, k := range []string{"cluster", "component", "err", "error"} {
			if v, ok := rec[k]; ok {
				msg += fmt.Sprintf(" %s=%v", k, v)
			}
		}
		all = append(all, msg)
		if lvl := fmt.Sprint(rec["level"]); lvl == "WARN" || lvl == "ERROR" {
			bad = append(bad, msg)
		}
	}
	lines := bad
	if len(lines) == 0 {
		lines = all
	}
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// portKeys are the KwokctlConfiguration options of the binary runtime that
// name a host port. kwokctl picks free ports itself by counting down from
// 32767, which collides when several kwokctl run at once (concurrent creates,
// other users' clusters) and lets another cluster take the ports of a stopped
// one; strata picks them at random instead.
var portKeys = []string{
	"etcdPeerPort", "etcdPort", "kubeApiserverPort",
	"kwokControllerPort", "kubeControllerManagerPort", "kubeSchedulerPort",
}

// port range strata picks from: below kwokctl's own range (counting down from
// 32767) and below Linux's ephemeral range (32768-60999).
const portMin, portMax = 20000, 30000

var portLineRE = regexp.MustCompile(`(?m)^\s*[A-Za-z]*[pP]ort:\s*(\d+)\s*$`)

// usedPorts returns the ports recorded in the configs of every cluster
// under Home, running or stopped.
func (m *Manager) usedPorts() map[int]bool {
	used := map[int]bool{}
	names, _ := m.Clusters()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(m.ClusterDir(n), "kwok.yaml"))
		if err != nil {
			continue
		}
		for _, sm := range portLineRE.FindAllSubmatch(b, -1) {
			if p, err := strconv.Atoi(string(sm[1])); err == nil {
				used[p] = true
			}
		}
	}
	return used
}

// pickPorts returns n distinct ports that nothing listens on, not in used.
func pickPorts(n int, used map[int]bool) ([]int, error) {
	var ports []int
	taken := map[int]bool{}
	for tries := 0; len(ports) < n; tries++ {
		if tries > 2000 {
			return nil, fmt.Errorf("no free TCP ports found in %d-%d", portMin, portMax)
		}
		p := portMin + rand.IntN(portMax-portMin)
		if used[p] || taken[p] || !portFree(p) {
			continue
		}
		taken[p] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// reservePorts picks n free ports that no cluster under Home uses and that
// no other create of this Manager picked.
func (m *Manager) reservePorts(n int) ([]int, error) {
	m.portsMu.Lock()
	defer m.portsMu.Unlock()
	used := m.usedPorts()
	for p := range m.reserved {
		used[p] = true
	}
	ports, err := pickPorts(n, used)
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		m.reserved[p] = true
	}
	return ports, nil
}

// portFree reports whether p can be bound on loopback and on all addresses
// (the components bind 0.0.0.0).
func portFree(p int) bool {
	for _, host := range []string{"127.0.0.1", ""} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}

// create runs kwokctl create cluster with strata's binaries and fresh ports,
// and writes the cluster's self-contained kubeconfig.
func (m *Manager) create(ctx context.Context, name string) error {
	if err := os.MkdirAll(filepath.Join(m.Workdir(), "clusters"), 0o750); err != nil {
		return err
	}
	if err := os.MkdirAll(m.KubeconfigDir(), 0o700); err != nil {
		return err
	}
	ports, err := m.reservePorts(len(portKeys))
	if err != nil {
		return err
	}
	var conf strings.Builder
	conf.WriteString("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration\noptions:\n")
	for i, k := range portKeys {
		fmt.Fprintf(&conf, "  %s: %d\n", k, ports[i])
	}
	f, err := os.CreateTemp(m.Workdir(), "."+name+"-ports-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(conf.String()); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	b := func(n string) string { return filepath.Join(m.bin, n) }
	// -c replaces the default ~/.kwok/kwok.yaml, so a user's kwok settings do
	// not leak into strata's clusters.
	_, err = m.kwokctl(ctx, "-c", f.Name(), "--name", name, "create", "cluster",
		"--runtime", "binary",
		"--etcd-binary", b("etcd"),
		"--kube-apiserver-binary", b("kube-apiserver"),
		"--kube-controller-manager-binary", b("kube-controller-manager"),
		"--kube-scheduler-binary", b("kube-scheduler"),
		"--kwok-controller-binary", b("kwok"),
		"--kubeconfig", m.KubeconfigPath(name),
		// Restarts (Stop, Start) must not leave the cluster idle: with node
		// leases the restarted kwok-controller waits up to 200s for the lease
		// its killed predecessor held before it manages the fake node's pods,
		// and a restarted controller-manager or scheduler waits out the
		// leader lease of the killed one. Without leases kwok heartbeats the
		// node through its status instead; one instance needs no election.
		"--node-lease-duration-seconds", "0",
		"--extra-args", "kube-controller-manager=leader-elect=false",
		"--extra-args", "kube-scheduler=leader-elect=false",
	)
	if err != nil {
		// Leave nothing half-made behind: the next Up starts from scratch.
		if _, derr := m.kwokctl(context.WithoutCancel(ctx), "--name", name, "delete", "cluster", "--kubeconfig", m.KubeconfigPath(name)); derr != nil {
			m.log.Warn("cleaning up after a failed create", "cluster", name, "err", derr)
		}
		_ = os.Remove(m.KubeconfigPath(name))
		return fmt.Errorf("creating cluster %s: %w", name, err)
	}
	return m.writeKubeconfig(ctx, name)
}

// writeKubeconfig replaces Home/clusters/<name>.kubeconfig with kwokctl's
// self-contained one (certificates embedded), so the file can be copied or
// stored in a Secret.
func (m *Manager) writeKubeconfig(ctx context.Context, name string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(m.bin, "kwokctl"), "--name", name, "get", "kubeconfig")
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+m.Workdir())
	cmd.Dir = m.home
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil || !bytes.Contains(stdout.Bytes(), []byte("server:")) {
		return fmt.Errorf("kwokctl get kubeconfig for cluster %s: %v%s", name, err, summarize(stderr.Bytes()))
	}
	if err := os.MkdirAll(m.KubeconfigDir(), 0o700); err != nil {
		return err
	}
	path := m.KubeconfigPath(name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, stdout.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// pids returns the process ids recorded in a cluster's pids/ directory that
// still run a program of that cluster.
func (m *Manager) pids(name string) []int {
	dir := m.ClusterDir(name)
	entries, err := os.ReadDir(filepath.Join(dir, "pids"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, "pids", e.Name()))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 1 {
			continue
		}
		if processOf(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// processes counts the cluster's pid files (one per component) and the
// processes among them that run.
func (m *Manager) processes(name string) (alive, all int) {
	entries, err := os.ReadDir(filepath.Join(m.ClusterDir(name), "pids"))
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".pid") {
			all++
		}
	}
	return len(m.pids(name)), all
}

// processOf reports whether pid is a live (not zombie) process whose command
// line mentions dir.
func processOf(pid int, dir string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(dir))
}

// waitGone waits until none of pids runs a program of dir; kwokctl sends
// SIGKILL and does not wait for processes it did not start itself.
func waitGone(ctx context.Context, pids []int, dir string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var alive []int
		for _, p := range pids {
			if processOf(p, dir) {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of %s still run 15s after they were stopped", alive, dir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL to the processes of a cluster; the fallback when
// kwokctl cannot delete it.
func kill(pids []int) {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// Stop stops every process of cluster name (kwokctl stop cluster), keeping
// its data; Start brings it back.
func (m *Manager) Stop(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if !m.exists(name) {
		return fmt.Errorf("no cluster %s under %s: create it with `strata dev up --clusters %s`", name, m.home, name)
	}
	start := time.Now()
	pids := m.pids(name)
	if _, err := m.kwokctl(ctx, "--name", name, "stop", "cluster"); err != nil {
		return err
	}
	if err := waitGone(ctx, pids, m.ClusterDir(name)); err != nil {
		return err
	}
	m.printf("cluster %s: stopped in %s", name, since(start))
	return nil
}

// Start starts a stopped cluster (kwokctl start cluster) and waits until its
// apiserver answers again.
func (m *Manager) Start(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if !m.exists(name) {
		return fmt.Errorf("no cluster %s under %s: create it with `strata dev up --clusters %s`", name, m.home, name)
	}
	start := time.Now()
	if _, err := m.kwokctl(ctx, "--name", name, "start", "cluster"); err != nil {
		return fmt.Errorf("%w\n(if a port is taken, recreate the cluster: strata dev down --clusters %s && strata dev up --clusters %s)", err, name, name)
	}
	if err := m.waitAPIServer(ctx, name); err != nil {
		return err
	}
	m.printf("cluster %s: started in %s", name, since(start))
	return nil
}

// Down deletes the named clusters (every cluster under Home when none are
// named) and their kubeconfigs, then removes Home/clusters and Home/kwok when
// they are empty. Clusters that are already gone are fine.
func (m *Manager) Down(ctx context.Context, names ...string) error {
	if err := validateNames(names); err != nil {
		return err
	}
	if len(names) == 0 {
		var err error
		if names, err = m.Clusters(); err != nil {
			return err
		}
		// Kubeconfigs whose cluster directory is already gone.
		if entries, err := os.ReadDir(m.KubeconfigDir()); err == nil {
			for _, e := range entries {
				if n, ok := strings.CutSuffix(e.Name(), ".kubeconfig"); ok && ValidateName(n) == nil && !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
	}
	var errs []error
	for _, n := range names {
		if err := m.deleteOne(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	for _, d := range []string{m.KubeconfigDir(), filepath.Join(m.Workdir(), "clusters"), m.Workdir()} {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) && !isNotEmpty(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}

func (m *Manager) deleteOne(ctx context.Context, name string) error {
	start := time.Now()
	dir := m.ClusterDir(name)
	existed := m.exists(name)
	pids := m.pids(name)
	var errs []error
	if existed {
		// --kubeconfig: otherwise kwokctl edits ~/.kube/config.
		if _, err := m.kwokctl(ctx, "--name", name, "delete", "cluster", "--kubeconfig", m.KubeconfigPath(name)); err != nil {
			m.log.Warn("kwokctl delete failed; killing the cluster's processes", "cluster", name, "err", err)
			kill(m.pids(name))
		}
		if err := waitGone(ctx, pids, dir); err != nil {
			kill(pids)
			if err := waitGone(ctx, pids, dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.Remove(m.KubeconfigPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting cluster %s: %w", name, err)
	}
	if existed {
		m.printf("cluster %s: deleted in %s", name, since(start))
	} else {
		m.printf("cluster %s: already gone", name)
	}
	return nil
}
