package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// An observation is one question kustomize asked the filesystem during a
// unit's render and the answer it got: a file's git blob hash (or that it
// could not be read), whether a path exists or is a directory, a
// directory's listing, a glob's matches. A unit whose observations all
// give the same answers on another revision renders to the same output
// there (kustomize reads nothing else: no clock, no network — remote
// resources make an environment uncacheable, see plan.cacheable).
type observation struct {
	Op     string `json:"op"`
	Path   string `json:"path"`
	Answer string `json:"answer"`
}

// Operations recorded.
const (
	opRead    = "read"
	opExists  = "exists"
	opIsDir   = "isdir"
	opReadDir = "readdir"
	opGlob    = "glob"
	opAbs     = "abs"
	opWalk    = "walk"
)

// ask answers op on path against fsys; recording and validation share it,
// so that a cache hit asks exactly the questions the render asked.
func ask(fsys filesys.FileSystem, op, p string) string {
	switch op {
	case opRead:
		data, err := fsys.ReadFile(p)
		if err != nil {
			return "error"
		}
		return plumbing.ComputeHash(plumbing.BlobObject, data).String()
	case opExists:
		return strconv.FormatBool(fsys.Exists(p))
	case opIsDir:
		return strconv.FormatBool(fsys.IsDir(p))
	case opReadDir:
		names, err := fsys.ReadDir(p)
		if err != nil {
			return "error"
		}
		slices.Sort(names)
		return digest(strings.Join(names, "\x00"))
	case opGlob:
		m, err := fsys.Glob(p)
		if err != nil {
			return "error"
		}
		slices.Sort(m)
		return digest(strings.Join(m, "\x00"))
	case opAbs:
		d, f, err := fsys.CleanedAbs(p)
		if err != nil {
			return "error"
		}
		return string(d) + "\x00" + f
	case opWalk:
		var b strings.Builder
		err := fsys.Walk(p, func(q string, info fs.FileInfo, err error) error {
			if err != nil {
				b.WriteString("error " + q + "\x00")
				return nil
			}
			b.WriteString(q + "\x00")
			if !info.IsDir() {
				b.WriteString(ask(fsys, opRead, q) + "\x00")
			}
			return nil
		})
		if err != nil {
			return "error"
		}
		return digest(b.String())
	}
	return "unknown op"
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// valid says whether every observation gets the same answer from fsys.
func valid(fsys filesys.FileSystem, obs []observation) bool {
	for _, o := range obs {
		if ask(fsys, o.Op, o.Path) != o.Answer {
			return false
		}
	}
	return true
}

// recordingFS is a read-only view of a revision's filesystem that records
// every question asked of it. Writes are refused: a render never writes.
type recordingFS struct {
	filesys.FileSystem
	mu  sync.Mutex
	obs map[[2]string]string
}

func newRecordingFS(fsys filesys.FileSystem) *recordingFS {
	return &recordingFS{FileSystem: fsys, obs: map[[2]string]string{}}
}

func (r *recordingFS) note(op, p string) {
	a := ask(r.FileSystem, op, p)
	r.mu.Lock()
	r.obs[[2]string{op, p}] = a
	r.mu.Unlock()
}

// observations returns what was recorded, sorted.
func (r *recordingFS) observations() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]observation, 0, len(r.obs))
	for k, a := range r.obs {
		out = append(out, observation{Op: k[0], Path: k[1], Answer: a})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Op < out[j].Op
	})
	return out
}

func (r *recordingFS) Open(p string) (filesys.File, error) {
	r.note(opRead, p)
	return r.FileSystem.Open(p)
}

func (r *recordingFS) ReadFile(p string) ([]byte, error) {
	r.note(opRead, p)
	return r.FileSystem.ReadFile(p)
}

func (r *recordingFS) IsDir(p string) bool {
	r.note(opIsDir, p)
	return r.FileSystem.IsDir(p)
}

func (r *recordingFS) Exists(p string) bool {
	r.note(opExists, p)
	return r.FileSystem.Exists(p)
}

func (r *recordingFS) ReadDir(p string) ([]string, error) {
	r.note(opReadDir, p)
	return r.FileSystem.ReadDir(p)
}

func (r *recordingFS) Glob(p string) ([]string, error) {
	r.note(opGlob, p)
	return r.FileSystem.Glob(p)
}

func (r *recordingFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	r.note(opAbs, p)
	return r.FileSystem.CleanedAbs(p)
}

func (r *recordingFS) Walk(p string, fn filepath.WalkFunc) error {
	r.note(opWalk, p)
	return r.FileSystem.Walk(p, fn)
}

func (r *recordingFS) Create(string) (filesys.File, error) { return nil, errRenderWrite }
func (r *recordingFS) Mkdir(string) error                  { return errRenderWrite }
func (r *recordingFS) MkdirAll(string) error               { return errRenderWrite }
func (r *recordingFS) RemoveAll(string) error              { return errRenderWrite }
func (r *recordingFS) WriteFile(string, []byte) error      { return errRenderWrite }

var errRenderWrite = &fs.PathError{Op: "write", Path: "repository", Err: fs.ErrPermission}

// viewFS shows a filesystem with some files replaced or added (the unit's
// rewritten kustomizations, a window's wrapper kustomization) without
// copying or changing it. Paths are absolute and cleaned.
type viewFS struct {
	filesys.FileSystem
	files map[string][]byte
	dirs  map[string]bool
}

func newViewFS(base filesys.FileSystem, files map[string][]byte) *viewFS {
	v := &viewFS{FileSystem: base, files: map[string][]byte{}, dirs: map[string]bool{}}
	for p, data := range files {
		p = filepath.Clean(p)
		v.files[p] = data
		if d := filepath.Dir(p); !base.IsDir(d) {
			v.dirs[d] = true
		}
	}
	return v
}

func (v *viewFS) key(p string) string { return filepath.Clean(p) }

func (v *viewFS) ReadFile(p string) ([]byte, error) {
	if data, ok := v.files[v.key(p)]; ok {
		return slices.Clone(data), nil
	}
	return v.FileSystem.ReadFile(p)
}

func (v *viewFS) Open(p string) (filesys.File, error) {
	if data, ok := v.files[v.key(p)]; ok {
		return &memFile{Reader: bytes.NewReader(data), name: path.Base(p), size: int64(len(data))}, nil
	}
	return v.FileSystem.Open(p)
}

func (v *viewFS) Exists(p string) bool {
	k := v.key(p)
	if _, ok := v.files[k]; ok || v.dirs[k] {
		return true
	}
	return v.FileSystem.Exists(p)
}

func (v *viewFS) IsDir(p string) bool {
	k := v.key(p)
	if _, ok := v.files[k]; ok {
		return false
	}
	return v.dirs[k] || v.FileSystem.IsDir(p)
}

func (v *viewFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	k := v.key(p)
	if v.dirs[k] {
		return filesys.ConfirmedDir(k), "", nil
	}
	if _, ok := v.files[k]; ok {
		return filesys.ConfirmedDir(filepath.Dir(k)), filepath.Base(k), nil
	}
	return v.FileSystem.CleanedAbs(p)
}

func (v *viewFS) ReadDir(p string) ([]string, error) {
	k := v.key(p)
	var names []string
	if !v.dirs[k] {
		var err error
		if names, err = v.FileSystem.ReadDir(p); err != nil {
			return nil, err
		}
	}
	for f := range v.files {
		if filepath.Dir(f) == k && !slices.Contains(names, filepath.Base(f)) {
			names = append(names, filepath.Base(f))
		}
	}
	return names, nil
}

func (v *viewFS) Create(string) (filesys.File, error) { return nil, errRenderWrite }
func (v *viewFS) Mkdir(string) error                  { return errRenderWrite }
func (v *viewFS) MkdirAll(string) error               { return errRenderWrite }
func (v *viewFS) RemoveAll(string) error              { return errRenderWrite }
func (v *viewFS) WriteFile(string, []byte) error      { return errRenderWrite }

// memFile is a replaced file opened for reading.
type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Write([]byte) (int, error) { return 0, errRenderWrite }
func (f *memFile) Close() error              { return nil }
func (f *memFile) Stat() (os.FileInfo, error) {
	return memInfo{name: f.name, size: f.size}, nil
}

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() os.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
