package cache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
)

// errCrash is returned by a memFS from the step at which it "loses power"
// and from every mutating step after it.
var errCrash = errors.New("simulated power loss")

// memFS is an in-memory file system for crash tests. It models what a
// power loss keeps: file contents as of their last fsync, and directory
// entries (creations, renames, removals) as of the directory's last fsync.
// Every mutating call is a numbered step; the crashAt-th fails (a write
// is cut in half first) and so does every later one.
type memFS struct {
	dir     string
	names   map[string]*memNode // current directory entries
	durable map[string]*memNode // entries as of the last SyncDir
	dirOK   bool

	locked bool // Lock is held

	steps   int
	crashAt int
	crashed bool
	trace   []string // description of each step
}

type memNode struct {
	data    []byte
	durable []byte
}

func newMemFS(dir string) *memFS {
	return &memFS{dir: dir, names: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// step counts a mutating call and reports whether it must fail.
func (m *memFS) step(desc string) error {
	m.steps++
	m.trace = append(m.trace, desc)
	if m.crashed {
		return errCrash
	}
	if m.steps == m.crashAt {
		m.crashed = true
		return errCrash
	}
	return nil
}

func (m *memFS) base(name string) string {
	if filepath.Dir(name) != m.dir {
		panic(fmt.Sprintf("memFS: %s outside %s", name, m.dir))
	}
	return filepath.Base(name)
}

// crashState returns the file system as it is found after the power loss:
// directory entries as of the last directory fsync (or, with keepNames,
// as they are, as a file system that happened to write its metadata
// would leave them), contents as of each file's last fsync, plus, with
// torn, the first half of what was appended to a file since.
func (m *memFS) crashState(keepNames, torn bool) *memFS {
	out := newMemFS(m.dir)
	out.dirOK = m.dirOK
	src := m.durable
	if keepNames {
		src = m.names
	}
	copies := map[*memNode]*memNode{}
	for name, n := range src {
		c := copies[n]
		if c == nil {
			data := slices.Clone(n.durable)
			if torn && len(n.data) > len(n.durable) && bytes.HasPrefix(n.data, n.durable) {
				data = append(data, n.data[len(n.durable):len(n.durable)+(len(n.data)-len(n.durable))/2]...)
			}
			c = &memNode{data: data, durable: slices.Clone(data)}
			copies[n] = c
		}
		out.names[name] = c
		out.durable[name] = c
	}
	return out
}

func (m *memFS) MkdirAll(dir string, perm fs.FileMode) error {
	if m.dirOK {
		return nil
	}
	if err := m.step("mkdir"); err != nil {
		return err
	}
	m.dirOK = true
	return nil
}

func (m *memFS) ReadDir(dir string) ([]string, error) {
	var names []string
	for n := range m.names {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	n := m.names[m.base(name)]
	if n == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return slices.Clone(n.data), nil
}

func (m *memFS) Open(name string) (io.ReadCloser, error) {
	data, err := m.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (m *memFS) Create(name string, perm fs.FileMode) (wfile, error) {
	b := m.base(name)
	if err := m.step("create " + b); err != nil {
		return nil, err
	}
	n := &memNode{}
	m.names[b] = n
	return &memHandle{fs: m, name: b, node: n}, nil
}

func (m *memFS) OpenAppend(name string, perm fs.FileMode) (wfile, error) {
	b := m.base(name)
	n := m.names[b]
	if n == nil {
		if err := m.step("create " + b); err != nil {
			return nil, err
		}
		n = &memNode{}
		m.names[b] = n
	}
	return &memHandle{fs: m, name: b, node: n}, nil
}

func (m *memFS) Rename(oldname, newname string) error {
	ob, nb := m.base(oldname), m.base(newname)
	if err := m.step("rename " + ob + " " + nb); err != nil {
		return err
	}
	n := m.names[ob]
	if n == nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(m.names, ob)
	m.names[nb] = n
	return nil
}

func (m *memFS) Remove(name string) error {
	b := m.base(name)
	if err := m.step("remove " + b); err != nil {
		return err
	}
	if m.names[b] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.names, b)
	return nil
}

func (m *memFS) SyncDir(dir string) error {
	if err := m.step("syncdir"); err != nil {
		return err
	}
	m.durable = make(map[string]*memNode, len(m.names))
	for k, v := range m.names {
		m.durable[k] = v
	}
	return nil
}

// Lock models flock(2): a second Lock before the first is released fails.
// Locks are not mutating steps: a power loss releases them.
func (m *memFS) Lock(dir string) (io.Closer, error) {
	if m.locked {
		return nil, &LockedError{Dir: dir}
	}
	m.locked = true
	return memLock{m}, nil
}

type memLock struct{ m *memFS }

func (l memLock) Close() error {
	l.m.locked = false
	return nil
}

// memHandle is an open memFS file; writes append.
type memHandle struct {
	fs   *memFS
	name string
	node *memNode
}

func (h *memHandle) Write(p []byte) (int, error) {
	if err := h.fs.step("write " + h.name); err != nil {
		if h.fs.steps == h.fs.crashAt {
			h.node.data = append(h.node.data, p[:len(p)/2]...) // a torn write
		}
		return 0, err
	}
	h.node.data = append(h.node.data, p...)
	return len(p), nil
}

func (h *memHandle) Sync() error {
	if err := h.fs.step("sync " + h.name); err != nil {
		return err
	}
	h.node.durable = slices.Clone(h.node.data)
	return nil
}

func (h *memHandle) Truncate(size int64) error {
	if err := h.fs.step("truncate " + h.name); err != nil {
		return err
	}
	if int(size) <= len(h.node.data) {
		h.node.data = h.node.data[:size]
	} else {
		h.node.data = append(h.node.data, make([]byte, int(size)-len(h.node.data))...)
	}
	return nil
}

func (h *memHandle) Close() error { return nil }

// files returns the names in the directory, for failure messages.
func (m *memFS) files() string {
	var names []string
	for n, node := range m.names {
		names = append(names, fmt.Sprintf("%s(%d)", n, len(node.data)))
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}
