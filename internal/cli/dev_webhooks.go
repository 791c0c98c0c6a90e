package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/localcluster"
	"github.com/strata-gitops/strata/webhook"
)

// devWebhooks runs one `strata webhook` process per local cluster, with the
// cluster's tier from strata.yaml, and registers it in its cluster.
type devWebhooks struct {
	home        string
	configPath  string
	policiesDir string
	out         io.Writer
}

func (d *devWebhooks) dir(name string) string { return filepath.Join(d.home, "webhooks", name) }

// tierOf finds the cluster in any environment of strata.yaml.
func tierOf(cfg *config.Config, name string) (config.Tier, string, bool) {
	for _, env := range cfg.EnvironmentNames() {
		for _, c := range cfg.Environments[env].Clusters {
			if c.Name == name {
				return c.Tier, env, true
			}
		}
	}
	return "", "", false
}

func (d *devWebhooks) start(ctx context.Context, m *localcluster.Manager, names []string) error {
	cfg, _, err := loadWebhookInputs(d.configPath, d.policiesDir)
	if err != nil {
		return fmt.Errorf("webhooks need strata.yaml and policies/ (run from the config repository or pass --config/--policies): %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, name := range names {
		tier, env, ok := tierOf(cfg, name)
		if !ok {
			fmt.Fprintf(d.out, "webhook %s: no cluster %q in %s, so no tier; not started\n", name, name, d.configPath)
			continue
		}
		start := time.Now()
		dir := d.dir(name)
		port, alive := d.running(name)
		if !alive {
			// The CA's key stays in dir: the webhook process renews its
			// certificates itself, for as long as the clusters run.
			if _, err := webhook.EnsureCertificates(dir, []string{"127.0.0.1", "localhost"}); err != nil {
				return fmt.Errorf("webhook %s: certificates in %s: %w", name, dir, err)
			}
			if port, err = d.spawn(self, name, tier, env, dir, m.KubeconfigPath(name)); err != nil {
				return err
			}
		}
		url := "https://127.0.0.1:" + strconv.Itoa(port)
		// The running webhook owns dir and may have renewed: read what it serves.
		ca, err := os.ReadFile(filepath.Join(dir, webhook.CAFile))
		if err != nil {
			return fmt.Errorf("webhook %s: %w (remove %s and run strata dev up again)", name, err, dir)
		}
		if err := waitHealthy(ctx, url, ca, 30*time.Second); err != nil {
			return fmt.Errorf("webhook %s did not answer at %s: %w (log: %s)", name, url, err, filepath.Join(dir, "webhook.log"))
		}
		rc, err := m.RESTConfig(name)
		if err != nil {
			return err
		}
		c, err := client.New(rc, client.Options{})
		if err != nil {
			return err
		}
		if err := webhook.Install(ctx, c, webhook.Target{URL: url, ExemptNamespaces: cfg.Webhook.ExemptNamespaces}, ca); err != nil {
			return fmt.Errorf("cluster %s: %w", name, err)
		}
		fmt.Fprintf(d.out, "webhook %s: tier %s at %s, registered (failurePolicy Fail) in %.1fs\n", name, tier, url, time.Since(start).Seconds())
	}
	return nil
}

// running reports the port of a live webhook process of cluster name.
func (d *devWebhooks) running(name string) (int, bool) {
	pid, port := readInt(filepath.Join(d.dir(name), "pid")), readInt(filepath.Join(d.dir(name), "port"))
	if pid <= 0 || port <= 0 || syscall.Kill(pid, 0) != nil {
		return 0, false
	}
	return port, true
}

func (d *devWebhooks) spawn(self, name string, tier config.Tier, env, dir, kubeconfig string) (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	cfgAbs, _ := filepath.Abs(d.configPath)
	polAbs, _ := filepath.Abs(d.policiesDir)
	logf, err := os.Create(filepath.Join(dir, "webhook.log"))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(self, "webhook", "--cluster", name, "--tier", string(tier), "--env", env,
		"--config", cfgAbs, "--policies", polAbs, "--cert-dir", dir, "--kubeconfig", kubeconfig,
		"--addr", "127.0.0.1:"+strconv.Itoa(port), "--metrics-addr", "0")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives `strata dev up`
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting webhook %s: %w", name, err)
	}
	for file, v := range map[string]int{"pid": cmd.Process.Pid, "port": port} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.Itoa(v)), 0o600); err != nil {
			return 0, err
		}
	}
	return port, cmd.Process.Release()
}

// stop ends the webhook processes of names (all when empty).
func (d *devWebhooks) stop(names []string) {
	if len(names) == 0 {
		entries, _ := os.ReadDir(filepath.Join(d.home, "webhooks"))
		for _, e := range entries {
			names = append(names, e.Name())
		}
	}
	for _, name := range names {
		if pid := readInt(filepath.Join(d.dir(name), "pid")); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for i := 0; i < 50 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Fprintf(d.out, "webhook %s: stopped\n", name)
		}
		_ = os.RemoveAll(d.dir(name))
	}
	_ = os.Remove(filepath.Join(d.home, "webhooks"))
}

func readInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitHealthy(ctx context.Context, url string, ca []byte, timeout time.Duration) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return last
}
