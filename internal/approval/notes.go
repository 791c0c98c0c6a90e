package approval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strata-gitops/strata/internal/labels"
)

// Store keeps approvals as git notes: the note of a tree object under
// refs/notes/strata-approvals holds every approval of that tree, for every
// environment and reviewer, one DSSE envelope per line (compact JSON, lines
// sorted). The notes ref is an ordinary notes ref: `git notes
// --ref=strata-approvals show <tree>` prints it, `git push origin
// refs/notes/strata-approvals` shares it, and two diverged copies merge with
// `git notes merge -s cat_sort_uniq` or Store.Merge.
//
// Notes are read in the flat layout (a file named by the tree's object
// name) and in the fanout layouts git writes for many notes (ab/cdef…,
// ab/cd/ef…). A new note goes where git would look first: at the depth the
// notes tree already uses, flat when it has none.
//
// The zero Store uses labels.ApprovalsNotesRef, the committer of the
// repository's git configuration (or "strata") and the current time.
type Store struct {
	// Ref is the notes ref; empty means labels.ApprovalsNotesRef.
	Ref plumbing.ReferenceName
	// Committer signs the notes commits; nil takes user.name and
	// user.email from the git configuration.
	Committer *object.Signature
	// Now returns the time of notes commits; nil means time.Now.
	Now func() time.Time
}

func (s Store) ref() plumbing.ReferenceName {
	if s.Ref == "" {
		return plumbing.ReferenceName(labels.ApprovalsNotesRef)
	}
	return s.Ref
}

// List returns the approvals stored for tree (in any environment), or nil
// when there are none.
func (s Store) List(repo *git.Repository, tree string) ([]Envelope, error) {
	if !objectName.MatchString(tree) {
		return nil, fmt.Errorf("tree %q is not a full lowercase git object name", tree)
	}
	_, _, root, err := s.head(repo)
	if err != nil || root == nil {
		return nil, err
	}
	data, _, err := readNote(repo, root, tree)
	if err != nil {
		return nil, err
	}
	return ParseEnvelopes(data), nil
}

// Add stores e as an approval of tree for env. An earlier approval of the
// same tree and environment by the same reviewer is replaced; every other
// approval is kept.
func (s Store) Add(repo *git.Repository, tree, env string, e Envelope) error {
	st, err := e.Statement()
	if err != nil {
		return fmt.Errorf("not an approval: %w", err)
	}
	if st.Tree != tree || st.Environment != env {
		return fmt.Errorf("the approval is for tree %s in %s, not tree %s in %s", shortHash(st.Tree), st.Environment, shortHash(tree), env)
	}
	ref, parent, root, err := s.head(repo)
	if err != nil {
		return err
	}
	var old []Envelope
	var paths [][]string
	if root != nil {
		var data []byte
		data, paths, err = readNote(repo, root, tree)
		if err != nil {
			return err
		}
		old = ParseEnvelopes(data)
	}
	envs := make([]Envelope, 0, len(old)+1)
	for _, o := range old {
		if ost, err := o.Statement(); err == nil && ost.Environment == env && ost.Reviewer == st.Reviewer {
			continue
		}
		envs = append(envs, o)
	}
	envs = append(envs, e)
	content, err := FormatEnvelopes(envs)
	if err != nil {
		return err
	}
	newRoot, err := writeNote(repo, root, tree, paths, content)
	if err != nil {
		return err
	}
	var parents []plumbing.Hash
	if parent != nil {
		parents = append(parents, parent.Hash)
	}
	return s.commit(repo, ref, newRoot.Hash, parents,
		fmt.Sprintf("Notes added by 'strata approve'\n\n%s approves tree %s for %s\n", st.Reviewer, tree, env))
}

// Merge merges the notes of ref other into the store's ref: a note that
// exists on one side is taken, the notes of a tree that both sides changed
// are joined (every approval of either side, duplicates once). It reports
// whether the store's ref changed.
func (s Store) Merge(repo *git.Repository, other plumbing.ReferenceName) (bool, error) {
	otherRef, err := repo.Reference(other, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	ref, local, root, err := s.head(repo)
	if err != nil {
		return false, err
	}
	theirs, err := repo.CommitObject(otherRef.Hash())
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", other, err)
	}
	if local == nil {
		return true, repo.Storer.CheckAndSetReference(plumbing.NewHashReference(s.ref(), theirs.Hash), nil)
	}
	if local.Hash == theirs.Hash {
		return false, nil
	}
	if ok, err := theirs.IsAncestor(local); err != nil || ok {
		return false, err
	}
	if ok, err := local.IsAncestor(theirs); err != nil {
		return false, err
	} else if ok {
		return true, repo.Storer.CheckAndSetReference(plumbing.NewHashReference(s.ref(), theirs.Hash), ref)
	}
	theirRoot, err := theirs.Tree()
	if err != nil {
		return false, err
	}
	theirNotes, err := listNotes(repo, theirRoot, "")
	if err != nil {
		return false, err
	}
	names := make([]string, 0, len(theirNotes))
	for name := range theirNotes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ours, paths, err := readNote(repo, root, name)
		if err != nil {
			return false, err
		}
		var theirData []byte
		for _, h := range theirNotes[name] {
			b, err := readBlob(repo, h)
			if err != nil {
				return false, err
			}
			theirData = append(theirData, b...)
			theirData = append(theirData, '\n')
		}
		content, err := FormatEnvelopes(append(ParseEnvelopes(ours), ParseEnvelopes(theirData)...))
		if err != nil {
			return false, err
		}
		if bytes.Equal(content, ours) {
			continue
		}
		if root, err = writeNote(repo, root, name, paths, content); err != nil {
			return false, err
		}
	}
	return true, s.commit(repo, ref, root.Hash, []plumbing.Hash{local.Hash, theirs.Hash},
		fmt.Sprintf("Notes merged by 'strata approve'\n\nMerge %s into %s\n", other, s.ref()))
}

// head returns the notes ref, its commit and its tree; all nil when the ref
// does not exist yet.
func (s Store) head(repo *git.Repository) (*plumbing.Reference, *object.Commit, *object.Tree, error) {
	ref, err := repo.Reference(s.ref(), true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading %s: %w", s.ref(), err)
	}
	c, err := repo.CommitObject(ref.Hash())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading %s: %w", s.ref(), err)
	}
	t, err := c.Tree()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading %s: %w", s.ref(), err)
	}
	return ref, c, t, nil
}

func (s Store) commit(repo *git.Repository, old *plumbing.Reference, root plumbing.Hash, parents []plumbing.Hash, msg string) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	sig := s.committer(repo)
	sig.When = now()
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: root, ParentHashes: parents}
	obj := repo.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return err
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return err
	}
	if err := repo.Storer.CheckAndSetReference(plumbing.NewHashReference(s.ref(), h), old); err != nil {
		return fmt.Errorf("updating %s: %w (another process changed it; try again)", s.ref(), err)
	}
	return nil
}

func (s Store) committer(repo *git.Repository) object.Signature {
	if s.Committer != nil {
		return *s.Committer
	}
	sig := object.Signature{Name: "strata", Email: "strata@localhost"}
	if cfg, err := repo.ConfigScoped(gitconfig.GlobalScope); err == nil {
		if cfg.User.Name != "" {
			sig.Name = cfg.User.Name
		}
		if cfg.User.Email != "" {
			sig.Email = cfg.User.Email
		}
	}
	return sig
}

// readNote returns the note of name in the notes tree root (the notes at
// every path where git would find one, joined) and those paths.
func readNote(repo *git.Repository, root *object.Tree, name string) ([]byte, [][]string, error) {
	if root == nil {
		return nil, nil, nil
	}
	var data []byte
	var paths [][]string
	var walk func(t *object.Tree, prefix []string, rest string) error
	walk = func(t *object.Tree, prefix []string, rest string) error {
		for _, e := range t.Entries {
			switch {
			case e.Name == rest && e.Mode.IsFile():
				b, err := readBlob(repo, e.Hash)
				if err != nil {
					return err
				}
				if len(data) > 0 {
					data = append(data, '\n')
				}
				data = append(data, b...)
				paths = append(paths, append(append([]string{}, prefix...), e.Name))
			case e.Mode == filemode.Dir && len(e.Name) == 2 && len(rest) > 2 && strings.HasPrefix(rest, e.Name):
				sub, err := repo.TreeObject(e.Hash)
				if err != nil {
					return err
				}
				if err := walk(sub, append(append([]string{}, prefix...), e.Name), rest[2:]); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, nil, name); err != nil {
		return nil, nil, fmt.Errorf("reading the note of %s: %w", shortHash(name), err)
	}
	return data, paths, nil
}

// listNotes returns every note of the notes tree t: object name → blobs.
func listNotes(repo *git.Repository, t *object.Tree, prefix string) (map[string][]plumbing.Hash, error) {
	out := map[string][]plumbing.Hash{}
	for _, e := range t.Entries {
		name := prefix + e.Name
		switch {
		case e.Mode.IsFile() && objectName.MatchString(name):
			out[name] = append(out[name], e.Hash)
		case e.Mode == filemode.Dir && len(e.Name) == 2 && len(name) < 40:
			sub, err := repo.TreeObject(e.Hash)
			if err != nil {
				return nil, err
			}
			subNotes, err := listNotes(repo, sub, name)
			if err != nil {
				return nil, err
			}
			for k, v := range subNotes {
				out[k] = append(out[k], v...)
			}
		}
	}
	return out, nil
}

// fanout returns how many two-character directory levels the notes tree
// uses (0 for the flat layout), judged by its first entries.
func fanout(repo *git.Repository, t *object.Tree) int {
	depth := 0
	for t != nil && depth < 19 {
		var next *object.Tree
		for _, e := range t.Entries {
			if e.Mode == filemode.Dir && len(e.Name) == 2 && isHex(e.Name) {
				next, _ = repo.TreeObject(e.Hash)
				break
			}
			if e.Mode.IsFile() && len(e.Name) == 40-2*depth && isHex(e.Name) {
				return depth
			}
		}
		if next == nil {
			return depth
		}
		t = next
		depth++
	}
	return depth
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// writeNote replaces the note of name in root (removing it from every path
// in old) with content and returns the new notes tree.
func writeNote(repo *git.Repository, root *object.Tree, name string, old [][]string, content []byte) (*object.Tree, error) {
	target := []string{}
	if len(old) > 0 {
		target = old[0]
	} else {
		rest := name
		for range fanout(repo, root) {
			target = append(target, rest[:2])
			rest = rest[2:]
		}
		target = append(target, rest)
	}
	var err error
	for _, p := range old {
		if root, err = setPath(repo, root, p, plumbing.ZeroHash); err != nil {
			return nil, err
		}
	}
	blob, err := writeBlob(repo, content)
	if err != nil {
		return nil, err
	}
	return setPath(repo, root, target, blob)
}

// setPath returns t with the file at path set to blob (removed when blob is
// the zero hash), writing the changed trees. Directories left empty are
// removed; the root is kept (possibly empty).
func setPath(repo *git.Repository, t *object.Tree, path []string, blob plumbing.Hash) (*object.Tree, error) {
	var entries []object.TreeEntry
	if t != nil {
		entries = append(entries, t.Entries...)
	}
	idx := -1
	for i, e := range entries {
		if e.Name == path[0] {
			idx = i
			break
		}
	}
	var entry *object.TreeEntry
	if len(path) == 1 {
		if !blob.IsZero() {
			entry = &object.TreeEntry{Name: path[0], Mode: filemode.Regular, Hash: blob}
		}
	} else {
		var sub *object.Tree
		if idx >= 0 && entries[idx].Mode == filemode.Dir {
			var err error
			if sub, err = repo.TreeObject(entries[idx].Hash); err != nil {
				return nil, err
			}
		}
		newSub, err := setPath(repo, sub, path[1:], blob)
		if err != nil {
			return nil, err
		}
		if len(newSub.Entries) > 0 {
			entry = &object.TreeEntry{Name: path[0], Mode: filemode.Dir, Hash: newSub.Hash}
		}
	}
	switch {
	case entry != nil && idx >= 0:
		entries[idx] = *entry
	case entry != nil:
		entries = append(entries, *entry)
	case idx >= 0:
		entries = append(entries[:idx], entries[idx+1:]...)
	}
	return writeTree(repo, entries)
}

// writeTree stores a tree with entries in git's order (a directory sorts
// as its name followed by "/").
func writeTree(repo *git.Repository, entries []object.TreeEntry) (*object.Tree, error) {
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	t := &object.Tree{Entries: entries}
	obj := repo.Storer.NewEncodedObject()
	if err := t.Encode(obj); err != nil {
		return nil, err
	}
	h, err := repo.Storer.SetEncodedObject(obj)
	if err != nil {
		return nil, err
	}
	t.Hash = h
	return t, nil
}

func writeBlob(repo *git.Repository, content []byte) (plumbing.Hash, error) {
	obj := repo.Storer.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return repo.Storer.SetEncodedObject(obj)
}

func readBlob(repo *git.Repository, h plumbing.Hash) ([]byte, error) {
	b, err := repo.BlobObject(h)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
