package rollback_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/strata-gitops/strata/internal/rollback"
	"github.com/strata-gitops/strata/internal/source"
)

// hermetic keeps the user's git configuration (signing, hooks, identity)
// out of the tests: every repository sets what it needs itself.
func hermetic(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("the git CLI is required: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "gitconfig")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", empty)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

// run runs git in dir and returns its trimmed output.
func run(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newRepo returns a work tree on branch main with a local identity.
func newRepo(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, "init", "--quiet", "-b", "main")
	run(t, dir, "config", "user.name", "Dev Eloper")
	run(t, dir, "config", "user.email", "dev@example.com")
	return dir
}

// commit writes files and commits them, returning the commit.
func commit(t *testing.T, dir, msg string, files map[string]string) string {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run(t, dir, "add", "-A")
	run(t, dir, "commit", "--quiet", "-m", msg)
	return run(t, dir, "rev-parse", "HEAD")
}

func tree(t *testing.T, dir, rev string) string {
	t.Helper()
	return run(t, dir, "rev-parse", rev+"^{tree}")
}

// history makes three commits: c1 creates the files, c2 changes the
// replicas, c3 changes the replicas again (so reverting c2 conflicts) and
// adds an unrelated file.
func history(t *testing.T, dir string) (c1, c2, c3 string) {
	t.Helper()
	c1 = commit(t, dir, "initial", map[string]string{
		"overlays/prod/app.yaml": "replicas: 1\n",
		"overlays/prod/db.yaml":  "size: small\n",
	})
	c2 = commit(t, dir, "scale app", map[string]string{"overlays/prod/app.yaml": "replicas: 2\n"})
	c3 = commit(t, dir, "scale app again, grow db", map[string]string{
		"overlays/prod/app.yaml": "replicas: 3\n",
		"overlays/prod/db.yaml":  "size: large\n",
	})
	return c1, c2, c3
}

func TestRevert(t *testing.T) {
	hermetic(t)
	ctx := context.Background()
	dir := newRepo(t)
	_, _, c3 := history(t, dir)

	got, err := rollback.Revert(ctx, dir, c3)
	if err != nil {
		t.Fatalf("Revert: %v", err)
	}
	if head := run(t, dir, "rev-parse", "HEAD"); got != head {
		t.Errorf("Revert returned %s, HEAD is %s", got, head)
	}
	if parent := run(t, dir, "rev-parse", got+"^"); parent != c3 {
		t.Errorf("the revert's parent is %s, want the reverted commit %s", parent, c3)
	}
	if a, b := tree(t, dir, got), tree(t, dir, c3+"^"); a != b {
		t.Errorf("the revert's tree %s differs from the tree before the reverted commit %s", a, b)
	}
	if msg := run(t, dir, "log", "-1", "--format=%B", got); !strings.Contains(msg, `Revert "scale app again, grow db"`) || !strings.Contains(msg, c3) {
		t.Errorf("revert message:\n%s", msg)
	}
	if s := run(t, dir, "status", "--porcelain"); s != "" {
		t.Errorf("work tree not clean after the revert:\n%s", s)
	}

	// An older commit that does not conflict: only its change is undone.
	dir2 := newRepo(t)
	commit(t, dir2, "one", map[string]string{"a.yaml": "a: 1\n"})
	c2 := commit(t, dir2, "two", map[string]string{"b.yaml": "b: 1\n"})
	commit(t, dir2, "three", map[string]string{"c.yaml": "c: 1\n"})
	if _, err := rollback.Revert(ctx, dir2, c2); err != nil {
		t.Fatalf("Revert of an older commit: %v", err)
	}
	if files := run(t, dir2, "ls-tree", "--name-only", "HEAD"); files != "a.yaml\nc.yaml" {
		t.Errorf("files after reverting %s: %q, want a.yaml and c.yaml", c2, files)
	}
}

func TestRevertConflict(t *testing.T) {
	hermetic(t)
	ctx := context.Background()
	dir := newRepo(t)
	_, c2, c3 := history(t, dir)

	got, err := rollback.Revert(ctx, dir, c2)
	if err == nil {
		t.Fatalf("Revert of a conflicting commit = %s, want an error", got)
	}
	for _, want := range []string{"resolve the conflict by hand (git revert " + c2 + ")", "or revert a later commit first"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got != "" {
		t.Errorf("Revert returned commit %q with the error", got)
	}
	if head := run(t, dir, "rev-parse", "HEAD"); head != c3 {
		t.Errorf("HEAD moved to %s, want %s", head, c3)
	}
	if s := run(t, dir, "status", "--porcelain"); s != "" {
		t.Errorf("work tree not clean after a failed revert:\n%s", s)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "REVERT_HEAD")); !os.IsNotExist(err) {
		t.Errorf(".git/REVERT_HEAD exists after a failed revert (stat: %v): a revert is still in progress", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git", "sequencer")); !os.IsNotExist(err) {
		t.Errorf(".git/sequencer exists after a failed revert (stat: %v)", err)
	}
	// The repository is usable: a later commit reverts cleanly.
	if _, err := rollback.Revert(ctx, dir, c3); err != nil {
		t.Errorf("Revert after the aborted one: %v", err)
	}
}

func TestRevertUnknownCommit(t *testing.T) {
	hermetic(t)
	dir := newRepo(t)
	history(t, dir)
	if _, err := rollback.Revert(context.Background(), dir, "0123456789012345678901234567890123456789"); err == nil {
		t.Fatal("Revert of an unknown commit succeeded")
	}
	if s := run(t, dir, "status", "--porcelain"); s != "" {
		t.Errorf("work tree not clean:\n%s", s)
	}
}

// newRemote returns a bare repository holding history on main and a clone
// of it with a local identity.
func newRemote(t *testing.T) (bare, clone string, c1, c2, c3 string) {
	t.Helper()
	src := newRepo(t)
	c1, c2, c3 = history(t, src)
	bare = filepath.Join(t.TempDir(), "config.git")
	run(t, "", "init", "--quiet", "--bare", "-b", "main", bare)
	run(t, src, "push", "--quiet", bare, "main:main")
	clone = filepath.Join(t.TempDir(), "clone")
	run(t, "", "clone", "--quiet", bare, clone)
	run(t, clone, "config", "user.name", "Dev Eloper")
	run(t, clone, "config", "user.email", "dev@example.com")
	return bare, clone, c1, c2, c3
}

func TestPush(t *testing.T) {
	hermetic(t)
	ctx := context.Background()
	bare, clone, _, _, c3 := newRemote(t)

	rev, err := rollback.Revert(ctx, clone, c3)
	if err != nil {
		t.Fatal(err)
	}
	if err := rollback.Push(ctx, clone, "origin"); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got := run(t, bare, "rev-parse", "refs/heads/main"); got != rev {
		t.Errorf("remote main = %s, want the revert %s", got, rev)
	}

	// The current branch is pushed under its own name.
	run(t, clone, "checkout", "--quiet", "-b", "rollback-x")
	feature := commit(t, clone, "on a branch", map[string]string{"x.yaml": "x: 1\n"})
	if err := rollback.Push(ctx, clone, "origin"); err != nil {
		t.Fatalf("Push of a branch: %v", err)
	}
	if got := run(t, bare, "rev-parse", "refs/heads/rollback-x"); got != feature {
		t.Errorf("remote rollback-x = %s, want %s", got, feature)
	}
	if got := run(t, bare, "rev-parse", "refs/heads/main"); got != rev {
		t.Errorf("pushing a branch moved main to %s", got)
	}
}

func TestPushRejected(t *testing.T) {
	hermetic(t)
	ctx := context.Background()
	bare, clone, _, _, _ := newRemote(t)
	// Someone else pushes first: a non-fast-forward push fails.
	other := filepath.Join(t.TempDir(), "other")
	run(t, "", "clone", "--quiet", bare, other)
	run(t, other, "config", "user.name", "Other")
	run(t, other, "config", "user.email", "other@example.com")
	commit(t, other, "meanwhile", map[string]string{"m.yaml": "m: 1\n"})
	run(t, other, "push", "--quiet", "origin", "main")
	commit(t, clone, "mine", map[string]string{"n.yaml": "n: 1\n"})
	err := rollback.Push(ctx, clone, "origin")
	if err == nil || !strings.Contains(err.Error(), "git push") {
		t.Fatalf("Push over a newer remote = %v, want an error naming git push", err)
	}
}

// openRepo opens the config repository as the reconciler does.
func openRepo(t *testing.T, location string) *source.Repository {
	t.Helper()
	r, err := source.Open(context.Background(), location, source.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAutoRevert(t *testing.T) {
	for _, tt := range []struct {
		name string
		url  func(bare string) string
	}{
		{"path", func(bare string) string { return bare }},
		{"file URL", func(bare string) string { return "file://" + bare }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hermetic(t)
			ctx := context.Background()
			bare, _, _, _, c3 := newRemote(t)
			id := rollback.Identity{Name: "strata bot", Email: "strata@example.com"}
			reason := "Deployment prod/app did not become healthy within 5m0s"

			got, err := rollback.AutoRevert(ctx, openRepo(t, tt.url(bare)), "main", c3, reason, id)
			if err != nil {
				t.Fatalf("AutoRevert: %v", err)
			}
			if head := run(t, bare, "rev-parse", "refs/heads/main"); head != got {
				t.Fatalf("remote main = %s, want the revert %s", head, got)
			}
			if parent := run(t, bare, "rev-parse", got+"^"); parent != c3 {
				t.Errorf("the revert's parent is %s, want %s", parent, c3)
			}
			if a, b := tree(t, bare, got), tree(t, bare, c3+"^"); a != b {
				t.Errorf("the revert's tree %s differs from the tree before %s (%s)", a, c3, b)
			}
			who := run(t, bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>", got)
			if want := "strata bot <strata@example.com>|strata bot <strata@example.com>"; who != want {
				t.Errorf("author|committer = %q, want %q", who, want)
			}
			msg := run(t, bare, "log", "-1", "--format=%B", got)
			for _, want := range []string{
				`Revert "scale app again, grow db"`,
				"strata reverted " + c3 + " automatically: " + reason,
			} {
				if !strings.Contains(msg, want) {
					t.Errorf("commit message lacks %q:\n%s", want, msg)
				}
			}
			if subject := strings.SplitN(msg, "\n", 2)[0]; subject != `Revert "scale app again, grow db"` {
				t.Errorf("subject = %q", subject)
			}
		})
	}
}

func TestAutoRevertFailures(t *testing.T) {
	hermetic(t)
	ctx := context.Background()
	bare, _, _, c2, c3 := newRemote(t)
	id := rollback.Identity{Name: "strata bot", Email: "strata@example.com"}
	repo := openRepo(t, bare)

	// c2 is no longer the head: the newer c3 supersedes it.
	_, err := rollback.AutoRevert(ctx, repo, "main", c2, "unhealthy", id)
	var moved *source.BranchMovedError
	if !errors.As(err, &moved) {
		t.Errorf("AutoRevert of a commit the branch moved past = %v, want a BranchMovedError", err)
	}
	if _, err := rollback.AutoRevert(ctx, repo, "no-such-branch", c3, "unhealthy", id); err == nil {
		t.Error("AutoRevert on a missing branch succeeded")
	}
	if head := run(t, bare, "rev-parse", "refs/heads/main"); head != c3 {
		t.Errorf("a failed auto-revert moved main to %s", head)
	}
}

const target = "abcdef0123456789abcdef0123456789abcdef01"

func TestWaitConverges(t *testing.T) {
	var mu sync.Mutex
	polls := map[string]int{}
	state := func(_ context.Context, cluster string) rollback.ClusterState {
		mu.Lock()
		defer mu.Unlock()
		polls[cluster]++
		switch {
		case cluster == "onprem" && polls[cluster] < 3:
			// Still at the old revision, then at the new one but not healthy.
			if polls[cluster] == 1 {
				return rollback.ClusterState{Revision: "0ld", Converged: true, Detail: "old revision"}
			}
			return rollback.ClusterState{Revision: target, Detail: "1 progressing"}
		default:
			return rollback.ClusterState{Revision: target, Converged: true, Detail: "3 healthy"}
		}
	}
	type call struct {
		Cluster string
		Detail  string
	}
	var calls []call
	var afters []time.Duration
	progress := func(cluster string, after time.Duration, s rollback.ClusterState) {
		calls = append(calls, call{cluster, s.Detail})
		afters = append(afters, after)
	}
	start := time.Now().Add(-time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	took, err := rollback.Wait(ctx, []string{"public", "private", "onprem"}, target, start, state, progress)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	want := []call{{"public", "3 healthy"}, {"private", "3 healthy"}, {"onprem", "3 healthy"}}
	if diff := cmp.Diff(want, calls); diff != "" {
		t.Errorf("progress calls, once per cluster (-want +got):\n%s", diff)
	}
	for i, a := range afters {
		if a < time.Second || a > took {
			t.Errorf("progress %d after %v, want between the start (1s ago) and the total %v", i, a, took)
		}
	}
	if took < time.Second {
		t.Errorf("Wait took %v, measured from start it is at least 1s", took)
	}
	// Converged clusters are not polled again.
	if polls["public"] != 1 || polls["private"] != 1 || polls["onprem"] != 3 {
		t.Errorf("polls = %v, want public 1, private 1, onprem 3", polls)
	}
}

func TestWaitNoClusters(t *testing.T) {
	took, err := rollback.Wait(context.Background(), nil, target, time.Now(), func(context.Context, string) rollback.ClusterState {
		t.Fatal("state called without clusters")
		return rollback.ClusterState{}
	}, func(string, time.Duration, rollback.ClusterState) { t.Fatal("progress called without clusters") })
	if err != nil || took < 0 {
		t.Errorf("Wait() = %v, %v", took, err)
	}
}

func TestWaitTimesOut(t *testing.T) {
	old := "0123456789abcdef0123456789abcdef01234567"
	state := func(_ context.Context, cluster string) rollback.ClusterState {
		switch cluster {
		case "public":
			return rollback.ClusterState{Revision: target, Converged: true, Detail: "ok"}
		case "private":
			return rollback.ClusterState{Revision: old, Converged: true, Detail: "unreachable: connection refused"}
		default:
			return rollback.ClusterState{Revision: target, Detail: "Deployment ledger/db: 0/1 ready"}
		}
	}
	var calls []string
	progress := func(cluster string, _ time.Duration, _ rollback.ClusterState) { calls = append(calls, cluster) }
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := rollback.Wait(ctx, []string{"public", "private", "onprem"}, target, began, state, progress)
	if err == nil {
		t.Fatal("Wait converged with two clusters pending")
	}
	if time.Since(began) > 5*time.Second {
		t.Errorf("Wait returned %v after its deadline", time.Since(began))
	}
	msg := err.Error()
	for _, want := range []string{
		"not converged on abcdef012345",
		"private (at 0123456789ab: unreachable: connection refused)",
		"onprem (at abcdef012345: Deployment ledger/db: 0/1 ready)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "public") {
		t.Errorf("error names the converged cluster: %q", msg)
	}
	if diff := cmp.Diff([]string{"public"}, calls); diff != "" {
		t.Errorf("progress calls (-want +got):\n%s", diff)
	}
}

// mergeHistory makes main: c1, then a merge commit of a feature branch that
// changes the replicas (a pull request merged with a merge commit, which
// keeps its approvals: same tree). It returns c1 and the merge.
func mergeHistory(t *testing.T, dir string) (c1, merge string) {
	t.Helper()
	c1 = commit(t, dir, "initial", map[string]string{"overlays/prod/app.yaml": "replicas: 1\n"})
	run(t, dir, "checkout", "--quiet", "-b", "feature")
	commit(t, dir, "scale app", map[string]string{"overlays/prod/app.yaml": "replicas: 5\n"})
	run(t, dir, "checkout", "--quiet", "main")
	commit(t, dir, "unrelated", map[string]string{"README.md": "docs\n"})
	run(t, dir, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #7 from feature", "feature")
	return c1, run(t, dir, "rev-parse", "HEAD")
}

// Reverting the revision a cluster runs means undoing what the merge brought
// to the branch, i.e. reverting against the first parent.
func TestRevertMergeCommit(t *testing.T) {
	hermetic(t)
	dir := newRepo(t)
	_, merge := mergeHistory(t, dir)
	got, err := rollback.Revert(context.Background(), dir, merge)
	if err != nil {
		t.Fatalf("Revert of a merge commit: %v", err)
	}
	if a, b := tree(t, dir, got), tree(t, dir, merge+"^1"); a != b {
		t.Errorf("the revert's tree %s differs from the first parent's %s", a, b)
	}
}

func TestAutoRevertMergeCommit(t *testing.T) {
	hermetic(t)
	src := newRepo(t)
	_, merge := mergeHistory(t, src)
	bare := filepath.Join(t.TempDir(), "config.git")
	run(t, "", "init", "--quiet", "--bare", "-b", "main", bare)
	run(t, src, "push", "--quiet", bare, "main:main")
	got, err := rollback.AutoRevert(context.Background(), openRepo(t, "file://"+bare), "main", merge, "unhealthy", rollback.Identity{Name: "strata bot", Email: "strata@example.com"})
	if err != nil {
		t.Fatalf("AutoRevert of a merge commit: %v", err)
	}
	if a, b := tree(t, bare, got), tree(t, bare, merge+"^1"); a != b {
		t.Errorf("the revert's tree %s differs from the first parent's %s", a, b)
	}
}
