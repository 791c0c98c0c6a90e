package source

import (
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"time"
)

// DirFS returns the snapshot's content as a read-only io/fs.FS rooted at
// the repository root, for readers such as the policy loader.
func (s *Snapshot) DirFS() fs.FS { return snapFS{s} }

type snapFS struct{ s *Snapshot }

func (f snapFS) path(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	return f.s.Path(name), nil
}

func (f snapFS) Open(name string) (fs.File, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, err
	}
	if !f.s.FS.Exists(p) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	if f.s.FS.IsDir(p) {
		entries, err := f.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &dirFile{name: name, entries: entries}, nil
	}
	data, err := f.s.FS.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return &memFile{name: name, data: data}, nil
}

func (f snapFS) ReadFile(name string) ([]byte, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, err
	}
	if !f.s.FS.Exists(p) || f.s.FS.IsDir(p) {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	return f.s.FS.ReadFile(p)
}

func (f snapFS) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := f.path(name)
	if err != nil {
		return nil, err
	}
	if !f.s.FS.IsDir(p) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	names, err := f.s.FS.ReadDir(p)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]fs.DirEntry, len(names))
	for i, n := range names {
		e := entry{name: n, dir: f.s.FS.IsDir(filepath.Join(p, n))}
		if !e.dir {
			data, err := f.s.FS.ReadFile(filepath.Join(p, n))
			if err != nil {
				return nil, err
			}
			e.size = int64(len(data))
		}
		out[i] = e
	}
	return out, nil
}

type entry struct {
	name string
	size int64
	dir  bool
}

func (e entry) Name() string               { return e.name }
func (e entry) IsDir() bool                { return e.dir }
func (e entry) Type() fs.FileMode          { return info{dir: e.dir}.Mode().Type() }
func (e entry) Info() (fs.FileInfo, error) { return info{name: e.name, size: e.size, dir: e.dir}, nil }

type info struct {
	name string
	size int64
	dir  bool
}

func (i info) Name() string { return i.name }
func (i info) Size() int64  { return i.size }
func (i info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o555
	}
	return 0o444
}
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return i.dir }
func (i info) Sys() any           { return nil }

type memFile struct {
	name string
	data []byte
	off  int
}

func (m *memFile) Stat() (fs.FileInfo, error) {
	return info{name: filepath.Base(m.name), size: int64(len(m.data))}, nil
}
func (m *memFile) Close() error { return nil }
func (m *memFile) Read(b []byte) (int, error) {
	if m.off >= len(m.data) {
		return 0, io.EOF
	}
	n := copy(b, m.data[m.off:])
	m.off += n
	return n, nil
}

type dirFile struct {
	name    string
	entries []fs.DirEntry
}

func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if n <= 0 {
		out := d.entries
		d.entries = nil
		return out, nil
	}
	if len(d.entries) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(d.entries))
	out := d.entries[:n]
	d.entries = d.entries[n:]
	return out, nil
}

func (d *dirFile) Stat() (fs.FileInfo, error) {
	return info{name: filepath.Base(d.name), dir: true}, nil
}
func (d *dirFile) Close() error { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: fs.ErrInvalid}
}
