package source_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/strata-gitops/strata/internal/source"
)

// BenchmarkFetchNewCommit is the reconciler's first step after a push hook:
// fetch the followed branch (one new commit) from a git server over HTTP
// into an on-disk mirror, resolve it and read a file of its tree. The
// commit and its push are outside the timer.
func BenchmarkFetchNewCommit(b *testing.B) {
	f := newFixture(b)
	url := server(b, f)
	r := open(b, url, source.OpenOptions{Branch: "master", Dir: filepath.Join(b.TempDir(), "mirror")})
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		writeFile(b, f.dir, "overlays/prod/extra.yaml", fmt.Sprintf("n: %d\n", i))
		commitAll(b, f.repo, fmt.Sprintf("change %d", i), alice)
		push(b, f, "refs/heads/master:refs/heads/master")
		b.StartTimer()
		if err := r.Fetch(ctx); err != nil {
			b.Fatal(err)
		}
		rev, err := r.ResolveBranch("master")
		if err != nil {
			b.Fatal(err)
		}
		snap, err := r.Snapshot(rev)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := snap.ReadFile("overlays/prod/extra.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}
