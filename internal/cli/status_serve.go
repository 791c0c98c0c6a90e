package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/cluster"
	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/source"
	"github.com/strata-gitops/strata/internal/statuspage"
)

// serveStatus serves strata status as a read-only web page on addr until
// the command's context ends (Ctrl-C): --env, or every environment of
// strata.yaml without --env. The clusters of each environment come from
// strata.yaml at --revision, read once; their status is read again for
// every page view, at most once every 2 s.
func serveStatus(cmd *cobra.Command, addr string, o *statusOptions) error {
	ctx := cmd.Context()
	repo, snap, err := o.openForServe(ctx)
	if err != nil {
		return err
	}
	cfg, err := desired.LoadConfig(snap)
	if err != nil {
		return err
	}
	names := cfg.EnvironmentNames()
	if o.env != "" {
		if _, err := cfg.Environment(o.env); err != nil {
			return err
		}
		names = []string{o.env}
	}
	envs := make([]statuspage.LiveEnvironment, len(names))
	for i, n := range names {
		e, _ := cfg.Environment(n)
		envs[i] = statuspage.LiveEnvironment{Name: n, Clusters: e.Clusters}
	}
	connect := &cluster.KubeconfigDir{Dir: o.kubeconfigDir}
	defer connect.Close()
	live := &statuspage.Live{Connect: connect, Environments: envs}
	if repo != nil {
		live.Subject = commitSubjects(repo)
	}
	opts := statuspage.Options{KubeconfigDir: o.kubeconfigDir}
	if abs, err := filepath.Abs(o.kubeconfigDir); err == nil {
		opts.KubeconfigDir = abs
	}
	if !source.IsRemote(o.repo) {
		// strata rollback runs git in a local checkout; for a remote
		// repository the page says to run it from a checkout.
		if abs, err := filepath.Abs(o.repo); err == nil {
			opts.Repo = abs
		}
	}
	srv := &http.Server{
		Handler:           statuspage.New(live, opts),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--serve %s: %w", addr, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "strata status of %s: http://%s/ (read-only, refreshes every 5s; Ctrl-C stops)\n",
		strings.Join(names, ", "), displayAddr(ln.Addr()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err = srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		return nil
	}
	return err
}

// openForServe returns the repository (for commit subjects; nil when
// --worktree reads a directory that is no repository) and the snapshot
// strata.yaml is read from.
func (o *statusOptions) openForServe(ctx context.Context) (*source.Repository, *source.Snapshot, error) {
	if o.worktree {
		snap, err := o.snapshot(ctx)
		if err != nil {
			return nil, nil, err
		}
		repo, _ := source.Open(ctx, o.repo, source.OpenOptions{})
		return repo, snap, nil
	}
	repo, err := source.Open(ctx, o.repo, source.OpenOptions{})
	if err != nil {
		return nil, nil, err
	}
	rev, err := repo.Resolve(o.revision)
	if err != nil {
		return nil, nil, err
	}
	snap, err := repo.Snapshot(rev)
	return repo, snap, err
}

// commitSubjects returns a commit's subject line from repo, remembering
// it (commits do not change). A commit a remote repository does not know
// yet makes it fetch, at most every 30 s.
func commitSubjects(repo *source.Repository) func(ctx context.Context, commit string) string {
	var (
		mu        sync.Mutex
		known     = map[string]string{}
		lastFetch time.Time
	)
	remote := source.IsRemote(repo.Location)
	return func(ctx context.Context, commit string) string {
		mu.Lock()
		defer mu.Unlock()
		if s, ok := known[commit]; ok {
			return s
		}
		rev, err := repo.Resolve(commit)
		if err != nil && remote && time.Since(lastFetch) > 30*time.Second {
			lastFetch = time.Now()
			if repo.Fetch(ctx) == nil {
				rev, err = repo.Resolve(commit)
			}
		}
		if err != nil {
			return ""
		}
		known[commit] = rev.Subject()
		return known[commit]
	}
}

// displayAddr turns a listener address into one a browser can open.
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
