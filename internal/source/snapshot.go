package source

import (
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// maxSymlinkDepth bounds the resolution of symbolic links inside a tree.
const maxSymlinkDepth = 8

// Snapshot is the content of one revision as a filesystem for kustomize.
type Snapshot struct {
	// Revision is the commit the content comes from (HEAD in work-tree mode,
	// nil for a work tree without commits).
	Revision *Revision
	// FS is read-only for a commit.
	FS filesys.FileSystem
	// Root is the repository root inside FS.
	Root string
	// WorkTree is true when the content is the work tree as it is on disk.
	WorkTree bool
}

// Path returns the FS path of a repository-relative slash path.
func (s *Snapshot) Path(rel string) string {
	return filepath.Join(s.Root, filepath.FromSlash(rel))
}

// ReadFile reads a repository-relative slash path.
func (s *Snapshot) ReadFile(rel string) ([]byte, error) {
	return s.FS.ReadFile(s.Path(rel))
}

// RevisionLabel names the snapshot's content for messages and annotations.
func (s *Snapshot) RevisionLabel() string {
	switch {
	case s.Revision == nil:
		return "worktree"
	case s.WorkTree:
		return s.Revision.Commit + "+worktree"
	default:
		return s.Revision.Commit
	}
}

// Snapshot returns the tree of rev as a read-only in-memory filesystem.
func (r *Repository) Snapshot(rev *Revision) (*Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.repo.CommitObject(plumbing.NewHash(rev.Commit))
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", rev.Short(), err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("reading tree of %s: %w", rev.Short(), err)
	}
	mem := filesys.MakeFsInMemory()
	err = tree.Files().ForEach(func(f *object.File) error {
		data, err := readTreeFile(tree, f, 0)
		if err != nil {
			return err
		}
		if data == nil {
			return nil
		}
		return mem.WriteFile("/"+f.Name, data)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the tree of %s: %w", rev.Short(), err)
	}
	return &Snapshot{Revision: rev, FS: readOnly{mem}, Root: "/"}, nil
}

// readTreeFile returns a file's content, following symbolic links that stay
// inside the tree. A link out of the tree yields nil (the file is absent,
// and a render that needs it fails naming it).
func readTreeFile(tree *object.Tree, f *object.File, depth int) ([]byte, error) {
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || f.Mode != filemode.Symlink {
		return data, err
	}
	if depth >= maxSymlinkDepth || path.IsAbs(string(data)) {
		return nil, nil
	}
	target := path.Clean(path.Join(path.Dir(f.Name), string(data)))
	tf, err := tree.File(target)
	if err != nil {
		if errors.Is(err, object.ErrFileNotFound) || errors.Is(err, object.ErrDirectoryNotFound) {
			return nil, nil
		}
		return nil, err
	}
	return readTreeFile(tree, tf, depth+1)
}

// WorkTreeSnapshot returns the work tree as it is on disk, uncommitted
// changes included (for local iteration with --worktree). The revision is
// HEAD when there is one.
func (r *Repository) WorkTreeSnapshot() (*Snapshot, error) {
	if r.WorkDir == "" {
		return nil, fmt.Errorf("%s has no work tree: --worktree needs a local checkout", r.Location)
	}
	s := &Snapshot{FS: filesys.MakeFsOnDisk(), Root: r.WorkDir, WorkTree: true}
	if rev, err := r.Resolve("HEAD"); err == nil {
		s.Revision = rev
	}
	return s, nil
}

// DirSnapshot returns a directory that is not a git repository as it is.
func DirSnapshot(dir string) (*Snapshot, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	return &Snapshot{FS: filesys.MakeFsOnDisk(), Root: abs, WorkTree: true}, nil
}

// readOnly rejects every write so that nothing in a render can change a
// revision's content.
type readOnly struct{ filesys.FileSystem }

var errReadOnly = errors.New("the content of a git revision is read-only")

func (ro readOnly) Open(path string) (filesys.File, error) {
	f, err := ro.FileSystem.Open(path)
	if err != nil {
		return nil, err
	}
	return readOnlyFile{f}, nil
}

type readOnlyFile struct{ filesys.File }

func (readOnlyFile) Write([]byte) (int, error) { return 0, errReadOnly }

func (readOnly) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (readOnly) Mkdir(string) error                  { return errReadOnly }
func (readOnly) MkdirAll(string) error               { return errReadOnly }
func (readOnly) RemoveAll(string) error              { return errReadOnly }
func (readOnly) WriteFile(string, []byte) error      { return errReadOnly }
