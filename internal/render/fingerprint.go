package render

import (
	"path"
	"strings"

	"github.com/strata-gitops/strata/internal/source"
)

// Fingerprint names what rendering overlay of snap with opts would give,
// without rendering or decoding anything: the key of every unit and the
// observations of its cached output that still hold on snap. Two
// revisions with the same fingerprint render the same objects, so a
// reconciler that placed them once can reuse the result (a commit that
// touches nothing the environment reads — another environment, a README —
// costs no render). It is "" when it cannot tell: no cache, an environment
// rendered whole or reading outside the revision, or a unit whose output is
// not cached for these inputs.
func Fingerprint(snap *source.Snapshot, overlay string, opts Options) string {
	if opts.Cache == nil || opts.Whole {
		return ""
	}
	dir := snap.Path(path.Clean(overlay))
	if !snap.FS.IsDir(dir) || !hasKustomization(snap, dir) {
		return ""
	}
	top, files := windowView(snap, dir, path.Clean(overlay), opts.Components)
	pl := planEnvironment(snap.FS, top, files)
	if pl.whole != "" || !pl.cacheable || len(pl.units) == 0 {
		return ""
	}
	prefix := cachePrefix(snap, opts)
	var b strings.Builder
	for _, u := range pl.units {
		key := unitKey(prefix, u)
		obs, ok := opts.Cache.observed(key, snap.FS)
		if !ok {
			return ""
		}
		b.WriteString(key + "\x00" + obs + "\n")
	}
	return digest(b.String())
}
