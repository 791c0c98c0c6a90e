// Package gitserver is the git side of the benchmarks that push: an
// in-process git server over HTTP, the platform team's checkout that pushes
// with the git CLI, and a client of strata's signed push hook.
package gitserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/fluxcd/pkg/gittestserver"
)

// Server is an in-process git server over HTTP (fluxcd's gittestserver)
// that notes when the reconciler fetches: every ref advertisement of
// git-upload-pack (the first request of any fetch).
type Server struct {
	srv *gittestserver.GitServer
	URL string

	mu      sync.Mutex
	fetches []time.Time
}

func Start() (*Server, error) {
	// gitkit logs every request with the standard logger: keep its errors.
	log.SetOutput(&dropLines{w: os.Stderr, substr: []byte("request: ")})
	srv, err := gittestserver.NewTempGitServer()
	if err != nil {
		return nil, err
	}
	g := &Server{srv: srv}
	srv.AutoCreate()
	srv.AddHTTPMiddlewares(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack" {
				g.mu.Lock()
				g.fetches = append(g.fetches, time.Now())
				g.mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	})
	if err := srv.StartHTTP(); err != nil {
		os.RemoveAll(srv.Root())
		return nil, err
	}
	g.URL = srv.HTTPAddress() + "/platform/config.git"
	return g, nil
}

// FirstFetchAfter is the first fetch at or after t, if any.
func (g *Server) FirstFetchAfter(t time.Time) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range g.fetches {
		if !f.Before(t) {
			return f, true
		}
	}
	return time.Time{}, false
}

// FetchesBetween counts the fetches from a up to b.
func (g *Server) FetchesBetween(a, b time.Time) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, f := range g.fetches {
		if !f.Before(a) && !f.After(b) {
			n++
		}
	}
	return n
}

func (g *Server) Stop() {
	g.srv.StopHTTP()
	os.RemoveAll(g.srv.Root())
}

// Work is the platform team's checkout; it pushes with the git CLI.
type Work struct {
	Dir string
}

func (w *Work) Git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{
		"-c", "user.name=platform oncall", "-c", "user.email=oncall@example.com",
		"-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main",
	}, args...)...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Commit commits everything and returns the commit.
func (w *Work) Commit(ctx context.Context, msg string) (string, error) {
	if _, err := w.Git(ctx, "add", "-A"); err != nil {
		return "", err
	}
	if _, err := w.Git(ctx, "commit", "-q", "--no-verify", "-m", msg); err != nil {
		return "", err
	}
	return w.Git(ctx, "rev-parse", "HEAD")
}

func (w *Work) Push(ctx context.Context) error {
	_, err := w.Git(ctx, "push", "-q", "origin", "HEAD:refs/heads/main")
	return err
}

// Hook POSTs GitHub-style signed push payloads to the reconciler's
// push hook.
type Hook struct {
	URL    string
	Secret []byte
}

func (h *Hook) Notify(ctx context.Context, commit string) error {
	body := []byte(fmt.Sprintf(`{"ref":"refs/heads/main","after":%q,"repository":{"full_name":"platform/config"}}`, commit))
	mac := hmac.New(sha256.New, h.Secret)
	mac.Write(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("push hook: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("push hook: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// dropLines writes to w every line that does not contain substr.
type dropLines struct {
	mu     sync.Mutex
	w      io.Writer
	substr []byte
}

func (d *dropLines) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		if !bytes.Contains(line, d.substr) {
			if _, err := d.w.Write(line); err != nil {
				return 0, err
			}
		}
		b = b[len(line):]
	}
	return n, nil
}
