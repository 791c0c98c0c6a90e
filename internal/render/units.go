package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// How an environment is cut into units.
//
// kustomize renders a kustomization by accumulating its resources (each
// sub-kustomization accumulated the same way, recursively), running the
// kustomization's own generators and transformers over what it
// accumulated, and — once, at the top — hashing generated names, fixing
// references to renamed objects everywhere, resolving vars and sorting.
// Its accumulation is quadratic in the number of objects of one
// kustomization, which is why one large environment is slow.
//
// A level (a kustomization on the way down from the environment) can be
// split into its resources when everything it adds acts object by object:
// namespace, labels, annotations, images, replicas, patches selected by a
// target, and components made only of those. Each resource entry then
// becomes a unit of its own (consecutive file entries form one unit), and
// a directory entry is split again the same way. A unit is rendered by
// kustomize from the environment's top, through a view of the repository
// in which each level above the unit lists only the entry that leads to
// it: the same transformers, in the same files (so that relative paths in
// them resolve as before), see only the unit's objects.
//
// The top-level, whole-environment steps stay sound only when nothing in
// the environment renames an object (no prefix or suffix, no generator,
// no replacement, no name-changing patch, no vars, no custom
// configurations) — those make the whole environment one unit. Two checks
// after rendering (guard.go) fall back to one unit as well: two units
// holding the same object, and a RoleBinding subject or webhook service
// that names a ServiceAccount or Service of another unit (the only
// references kustomize rewrites without a rename). A unit that fails to
// render falls back too, so that errors read as kustomize gives them.

// plan is the cut of one environment.
type plan struct {
	units []*unit
	// whole says why the environment is one unit ("" when it is split).
	whole string
	// cacheable is false when the environment reads anything outside the
	// revision (a remote base), which no observation can key.
	cacheable bool
}

// unit is one piece of the environment, rendered by running kustomize on
// top over the revision with files replaced.
type unit struct {
	id    string            // for logs and tests: the chain of directories and entries
	top   string            // FS directory kustomize runs on
	files map[string][]byte // FS path → replaced or added file
	// replicas are the replicas entries of the levels above the unit,
	// turned into patches ("kustomization file\x00name"): kustomize fails
	// when such an entry matches nothing in the whole environment, which
	// crossUnit checks over all units.
	replicas []string
}

// replicaKinds are the kinds kustomize's replicas field acts on.
const replicaKinds = "Deployment|ReplicationController|ReplicaSet|StatefulSet"

// Keys a level may have and still be split into its resources: they act
// on each object alone.
var perObjectKeys = map[string]bool{
	"apiVersion": true, "kind": true, "metadata": true, "resources": true,
	"namespace": true, "commonLabels": true, "labels": true, "commonAnnotations": true,
	"images": true, "replicas": true, "patches": true, "patchesJson6902": true,
	"generatorOptions": true, "sortOptions": true, "buildMetadata": true,
}

// Keys that may rename objects or act across all of them wherever they
// are in the environment: with one of them, the environment is one unit.
var wholeKeys = map[string]bool{
	"namePrefix": true, "nameSuffix": true, "vars": true, "replacements": true,
	"configMapGenerator": true, "secretGenerator": true, "generators": true,
	"transformers": true, "validators": true, "helmCharts": true,
	"helmChartInflationGenerator": true, "helmGlobals": true, "openapi": true,
	"configurations": true, "crds": true, "bases": true, "patchesStrategicMerge": true,
}

// Every key kustomize knows that is in neither list above.
var otherKeys = map[string]bool{"components": true}

// kfile is one parsed kustomization (or Component).
type kfile struct {
	dir  string // FS directory
	file string // FS path of the kustomization file
	m    map[string]any
}

func (k *kfile) strings(key string) []string {
	l, _ := k.m[key].([]any)
	out := make([]string, 0, len(l))
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

// planner cuts an environment.
type planner struct {
	fs    filesys.FileSystem
	kusts map[string]*kfile
	whole []string // reasons the environment is one unit
	open  map[string]bool
	seen  map[string]bool
	units []*unit
	// remote is set when an entry is not in the revision.
	remote bool
}

// planEnvironment cuts the environment whose top kustomization is in dir
// (the overlay, or the window wrapper in files). files are added to the
// revision's filesystem for every unit.
func planEnvironment(fsys filesys.FileSystem, top string, files map[string][]byte) *plan {
	view := newViewFS(fsys, files)
	p := &planner{fs: view, kusts: map[string]*kfile{}, open: map[string]bool{}, seen: map[string]bool{}}
	p.scan(top, false)
	pl := &plan{cacheable: !p.remote}
	if len(p.whole) == 0 {
		if k := p.kusts[top]; k != nil {
			if k.m["sortOptions"] != nil {
				p.whole = append(p.whole, k.file+": sortOptions sorts the whole environment")
			}
			if k.m["buildMetadata"] != nil {
				p.whole = append(p.whole, k.file+": buildMetadata")
			}
		}
	}
	if len(p.whole) > 0 {
		slices.Sort(p.whole)
		pl.whole = strings.Join(slices.Compact(p.whole), "; ")
		pl.units = []*unit{{id: "(whole environment)", top: top, files: files}}
		return pl
	}
	if why := p.unsplittable(p.kusts[top]); why != "" {
		p.whole = append(p.whole, "the environment level acts across its resources: "+why)
	}
	if len(p.whole) == 0 {
		p.split([]*kfile{p.kusts[top]}, nil, files)
	}
	if len(p.whole) > 0 {
		pl.whole = strings.Join(p.whole, "; ")
		pl.units = []*unit{{id: "(whole environment)", top: top, files: files}}
		return pl
	}
	pl.units = p.units
	return pl
}

// load reads the kustomization in dir (nil and a reason when there is
// none or it does not parse: the whole render then says what is wrong).
func (p *planner) load(dir string) *kfile {
	if k, ok := p.kusts[dir]; ok {
		return k
	}
	var found []string
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if f := filepath.Join(dir, name); p.fs.Exists(f) && !p.fs.IsDir(f) {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		p.whole = append(p.whole, fmt.Sprintf("%s has %d kustomization files", dir, len(found)))
		p.kusts[dir] = nil
		return nil
	}
	data, err := p.fs.ReadFile(found[0])
	var m map[string]any
	if err == nil {
		err = yaml.Unmarshal(data, &m)
	}
	if err == nil {
		// What kustomize refuses when it loads the file: a unit render
		// reads a rewritten copy of it, which must not hide the error.
		err = validKustomization(data)
	}
	if err != nil {
		p.whole = append(p.whole, fmt.Sprintf("%s: %v", found[0], err))
		p.kusts[dir] = nil
		return nil
	}
	if m == nil {
		m = map[string]any{}
	}
	k := &kfile{dir: dir, file: found[0], m: m}
	p.kusts[dir] = k
	return k
}

func validKustomization(data []byte) error {
	var k types.Kustomization
	if err := k.Unmarshal(data); err != nil {
		return err
	}
	k.FixKustomization()
	if err := k.CheckEmpty(); err != nil {
		return err
	}
	if errs := k.EnforceFields(); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// scan reads every kustomization and component of the environment below
// dir, noting what makes the environment one unit.
func (p *planner) scan(dir string, component bool) {
	if p.open[dir] {
		p.whole = append(p.whole, dir+" includes itself")
		return
	}
	if p.seen[dir] {
		return
	}
	p.seen[dir] = true
	p.open[dir] = true
	defer delete(p.open, dir)
	k := p.load(dir)
	if k == nil {
		return
	}
	if kind, _ := k.m["kind"].(string); (kind == "Component") != component {
		p.whole = append(p.whole, fmt.Sprintf("%s: kind %q where a %s is expected", k.file, kind, map[bool]string{true: "Component", false: "Kustomization"}[component]))
	}
	for key := range k.m {
		switch {
		case wholeKeys[key]:
			p.whole = append(p.whole, fmt.Sprintf("%s: %s", k.file, key))
		case !perObjectKeys[key] && !otherKeys[key]:
			p.whole = append(p.whole, fmt.Sprintf("%s: unknown field %s", k.file, key))
		}
	}
	for _, key := range []string{"patches", "patchesJson6902"} {
		l, _ := k.m[key].([]any)
		for _, e := range l {
			pm, _ := e.(map[string]any)
			opts, _ := pm["options"].(map[string]any)
			if opts["allowNameChange"] == true || opts["allowKindChange"] == true {
				p.whole = append(p.whole, fmt.Sprintf("%s: a patch may rename objects", k.file))
			}
		}
	}
	for _, key := range []string{"resources", "components"} {
		for _, e := range k.strings(key) {
			switch kind, target := p.entry(dir, e); kind {
			case "dir":
				p.scan(target, key == "components")
			case "file":
				if key == "components" {
					p.whole = append(p.whole, fmt.Sprintf("%s: component %s is a file", k.file, e))
				}
			default:
				p.remote = true
				p.whole = append(p.whole, fmt.Sprintf("%s: %s %q is not in the revision", k.file, key, e))
			}
		}
	}
}

// entry resolves a resources or components entry of the kustomization in
// dir: "dir", "file", or "" when it is neither (remote, or missing).
func (p *planner) entry(dir, e string) (string, string) {
	if e == "" || strings.Contains(e, "://") || strings.HasPrefix(e, "git@") {
		return "", ""
	}
	t := filepath.Join(dir, filepath.FromSlash(e))
	if filepath.IsAbs(filepath.FromSlash(e)) {
		t = filepath.Clean(e)
	}
	switch {
	case p.fs.IsDir(t):
		return "dir", t
	case p.fs.Exists(t):
		return "file", t
	}
	return "", ""
}

// unsplittable says why a level's own content does not act object by
// object ("" when it does).
func (p *planner) unsplittable(k *kfile) string {
	for key := range k.m {
		if !perObjectKeys[key] && key != "components" {
			return k.file + ": " + key
		}
	}
	if !targeted(k) {
		return k.file + ": a patch without a target"
	}
	if reps, ok := k.m["replicas"]; ok {
		l, ok := reps.([]any)
		if !ok || k.m["patchesJson6902"] != nil {
			// patchesJson6902 runs before replicas and could set them too.
			return k.file + ": replicas with patchesJson6902"
		}
		for _, r := range l {
			rm, _ := r.(map[string]any)
			name, _ := rm["name"].(string)
			if _, isNum := rm["count"].(float64); name == "" || !isNum || len(rm) != 2 {
				return k.file + ": a replicas entry that is not {name, count}"
			}
		}
	}
	for _, c := range k.strings("components") {
		_, dir := p.entry(k.dir, c)
		ck := p.kusts[dir]
		if ck == nil || len(ck.strings("resources")) > 0 || len(ck.strings("components")) > 0 || ck.m["replicas"] != nil {
			return fmt.Sprintf("%s: component %s adds objects, components or replicas", k.file, c)
		}
		if why := p.unsplittable(ck); why != "" {
			return why
		}
	}
	return ""
}

// targeted says whether every patch of k selects its objects by a target
// (a patch without one names a single object and fails where it is absent).
func targeted(k *kfile) bool {
	for _, key := range []string{"patches", "patchesJson6902"} {
		l, _ := k.m[key].([]any)
		for _, e := range l {
			pm, _ := e.(map[string]any)
			if pm["target"] == nil {
				return false
			}
		}
	}
	return true
}

// split adds the units of the last level of chain; entries are the
// entries that lead from each level to the next (len(chain)-1 of them).
func (p *planner) split(chain []*kfile, entries []string, files map[string][]byte) {
	k := chain[len(chain)-1]
	if p.unsplittable(k) != "" {
		p.addUnit(chain, entries, nil, files)
		return
	}
	var run []string
	flush := func() {
		if len(run) > 0 {
			p.addUnit(chain, entries, run, files)
			run = nil
		}
	}
	for _, e := range k.strings("resources") {
		kind, target := p.entry(k.dir, e)
		if kind == "file" {
			run = append(run, e)
			continue
		}
		flush()
		p.split(append(slices.Clone(chain), p.kusts[target]), append(slices.Clone(entries), e), files)
	}
	flush()
}

// addUnit adds the unit that renders chain's last level whole (own nil)
// or only the file entries own of it.
func (p *planner) addUnit(chain []*kfile, entries, own []string, files map[string][]byte) {
	u := &unit{top: chain[0].dir, files: map[string][]byte{}}
	for f, data := range files {
		u.files[f] = data
	}
	ids := []string{}
	for i, k := range chain {
		var list []string
		switch {
		case i < len(entries):
			list = []string{entries[i]}
			ids = append(ids, path.Join(filepath.ToSlash(k.dir), entries[i]))
		case own != nil:
			list = own
			ids = append(ids, fmt.Sprintf("%s [%s]", filepath.ToSlash(k.dir), strings.Join(own, " ")))
		default:
			continue
		}
		m := make(map[string]any, len(k.m))
		for key, v := range k.m {
			m[key] = v
		}
		l := make([]any, len(list))
		for j, s := range list {
			l[j] = s
		}
		m["resources"] = l
		if reps, ok := k.m["replicas"].([]any); ok {
			// kustomize's replicas fail where the named object is absent;
			// a patch selecting the same objects (by kind and name, with no
			// rename anywhere) does not. It runs after the level's other
			// patches and before the transformers that cannot touch
			// spec.replicas, as replicas do.
			patches, _ := k.m["patches"].([]any)
			patches = slices.Clone(patches)
			for _, r := range reps {
				rm := r.(map[string]any)
				name := rm["name"].(string)
				n, _ := json.Marshal(name)
				c, _ := json.Marshal(rm["count"])
				patches = append(patches, map[string]any{
					"target": map[string]any{"kind": replicaKinds, "name": regexp.QuoteMeta(name)},
					"patch":  fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: %s\nspec:\n  replicas: %s\n", n, c),
				})
				u.replicas = append(u.replicas, k.file+"\x00"+name)
			}
			delete(m, "replicas")
			m["patches"] = patches
		}
		data, err := yaml.Marshal(m)
		if err != nil {
			// A map read from YAML marshals; if it ever does not, the
			// environment is rendered whole.
			p.whole = append(p.whole, fmt.Sprintf("%s: %v", k.file, err))
			continue
		}
		u.files[k.file] = data
	}
	if own == nil {
		ids = append(ids, filepath.ToSlash(chain[len(chain)-1].dir))
	}
	u.id = ids[len(ids)-1]
	p.units = append(p.units, u)
}
