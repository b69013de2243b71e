package refbroker_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// Files hands out filesystems and reads the ones it is given.
type Files interface {
	Tree() (fs.FS, error)
	Small() (fs.FS, error)
	Bare() (fs.FS, error)
	Readable() (fs.ReadFileFS, error)
	Broken() (fs.FS, error)
	Info(fsys fs.FS, name string) (fs.FileInfo, []fs.DirEntry, error)
}

type filesProxy struct{ *refbroker.Ref }

func (p filesProxy) Tree() (fs.FS, error) {
	var f fs.FS
	err := p.Invoke("Tree", nil, &f)
	return f, err
}

func (p filesProxy) Small() (fs.FS, error) {
	var f fs.FS
	err := p.Invoke("Small", nil, &f)
	return f, err
}

func (p filesProxy) Bare() (fs.FS, error) {
	var f fs.FS
	err := p.Invoke("Bare", nil, &f)
	return f, err
}

func (p filesProxy) Readable() (fs.ReadFileFS, error) {
	var f fs.ReadFileFS
	err := p.Invoke("Readable", nil, &f)
	return f, err
}

func (p filesProxy) Broken() (fs.FS, error) {
	var f fs.FS
	err := p.Invoke("Broken", nil, &f)
	return f, err
}

func (p filesProxy) Info(fsys fs.FS, name string) (fs.FileInfo, []fs.DirEntry, error) {
	var fi fs.FileInfo
	var entries []fs.DirEntry
	err := p.Invoke("Info", []any{fsys, name}, &fi, &entries)
	return fi, entries, err
}

func init() {
	refbroker.RegisterInterface[Files](func(r *refbroker.Ref) Files { return filesProxy{r} })
}

// bigFile is the size of the file larger than one remote read in
// contract.FilesTree.
const bigFile = 3<<20 + 7

func small() fstest.MapFS { return contract.FilesTree(0) }
func tree() fstest.MapFS  { return contract.FilesTree(bigFile) }

// bareFS serves files with only fs.File's own methods: no ReadDir, Seek
// or ReadAt.
type bareFS struct{ m fstest.MapFS }

type bareFile struct{ f fs.File }

func (b bareFile) Stat() (fs.FileInfo, error) { return b.f.Stat() }
func (b bareFile) Read(p []byte) (int, error) { return b.f.Read(p) }
func (b bareFile) Close() error               { return b.f.Close() }

func (b bareFS) Open(name string) (fs.File, error) {
	f, err := b.m.Open(name)
	if err != nil {
		return nil, err
	}
	return bareFile{f}, nil
}

type files struct{}

func (files) Tree() (fs.FS, error)  { return tree(), nil }
func (files) Small() (fs.FS, error) { return small(), nil }
func (files) Bare() (fs.FS, error)  { return bareFS{tree()}, nil }

func (files) Readable() (fs.ReadFileFS, error) { return small(), nil }
func (files) Broken() (fs.FS, error)           { return brokenFS{}, nil }

// brokenFS answers nil and no error wherever io/fs lets it answer nil, as
// a buggy or hostile plugin's filesystem might.
type brokenFS struct{}

func (brokenFS) Open(string) (fs.File, error)          { return nil, nil }
func (brokenFS) Stat(string) (fs.FileInfo, error)      { return nil, nil }
func (brokenFS) ReadDir(string) ([]fs.DirEntry, error) { return []fs.DirEntry{nil}, nil }

// emptyEntry's Info returns nothing and no error.
type emptyEntry struct{}

func (emptyEntry) Name() string               { return "x" }
func (emptyEntry) IsDir() bool                { return false }
func (emptyEntry) Type() fs.FileMode          { return 0 }
func (emptyEntry) Info() (fs.FileInfo, error) { return nil, nil }

// entriesFS lists one emptyEntry.
type entriesFS struct{ fstest.MapFS }

func (entriesFS) ReadDir(string) ([]fs.DirEntry, error) { return []fs.DirEntry{emptyEntry{}}, nil }

func (files) Info(fsys fs.FS, name string) (fs.FileInfo, []fs.DirEntry, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, nil, err
	}
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return fi, nil, nil
	}
	return fi, entries, nil
}

func filesPair(t *testing.T) Files {
	t.Helper()
	client, _ := refbroker.NewPair(t, refbroker.Options{Roots: map[string]any{"files": files{}}}, refbroker.Options{})
	f, err := refbroker.Dispense[Files](client, "files")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRemoteFS: a filesystem returned by the peer passes testing/fstest's
// own checks of an fs.FS (opening, reading, seeking, ReadAt, directory
// listings in parts, Stat, ReadFile, ReadDir, Sub, Glob), its errors are
// fs's (errors.Is holds for fs.ErrNotExist and fs.ErrInvalid), and a file
// without fs.File's optional methods says so when its proxy is asked for
// them.
func TestRemoteFS(t *testing.T) {
	f := filesPair(t)
	fsys, err := f.Small()
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(fsys, "a.txt", "dir/b.txt", "dir/sub/c.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := fsys.Open("missing.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file = %v; want fs.ErrNotExist", err)
	}

	// Declared as one of io/fs's richer filesystems, it crosses the same.
	rf, err := f.Readable()
	if err != nil {
		t.Fatal(err)
	}
	if data, err := rf.ReadFile("dir/b.txt"); err != nil || string(data) != string(small()["dir/b.txt"].Data) {
		t.Errorf("ReadFile through an fs.ReadFileFS = %q, %v", data, err)
	}

	// A file larger than a remote read: read whole, at an offset, after a
	// seek.
	big, err := f.Tree()
	if err != nil {
		t.Fatal(err)
	}
	want := contract.Pattern(bigFile)
	if data, err := fs.ReadFile(big, "dir/sub/big.bin"); err != nil || !bytes.Equal(data, want) {
		t.Errorf("ReadFile of %d bytes = %d bytes, %v", bigFile, len(data), err)
	}
	file, err := big.Open("dir/sub/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 2<<20)
	if n, err := file.(io.ReaderAt).ReadAt(p, 5); n != len(p) || err != nil || !bytes.Equal(p, want[5:5+len(p)]) {
		t.Errorf("ReadAt of 2 MiB at 5 = %d, %v", n, err)
	}
	if pos, err := file.(io.Seeker).Seek(-10, io.SeekEnd); pos != int64(len(want))-10 || err != nil {
		t.Errorf("Seek(-10, end) = %d, %v", pos, err)
	}
	if rest, err := io.ReadAll(file); err != nil || string(rest) != string(want[len(want)-10:]) {
		t.Errorf("reading after the seek = %q, %v", rest, err)
	}
	file.Close()
	fi, err := fs.Stat(fsys, "dir/b.txt")
	b := small()["dir/b.txt"]
	if err != nil || fi.Name() != "b.txt" || fi.Size() != int64(len(b.Data)) || fi.Mode() != b.Mode || !fi.ModTime().Equal(b.ModTime) || fi.IsDir() || fi.Sys() != nil {
		t.Errorf("Stat = %v, %v", fi, err)
	}

	bare, err := f.Bare()
	if err != nil {
		t.Fatal(err)
	}
	bareFile, err := bare.Open("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer bareFile.Close()
	file = bareFile
	if data, err := io.ReadAll(file); err != nil || string(data) != "alpha\n" {
		t.Errorf("reading a bare file = %q, %v", data, err)
	}
	if _, err := file.(io.Seeker).Seek(0, io.SeekStart); err == nil || !strings.Contains(err.Error(), "not an io.Seeker") {
		t.Errorf("Seek on a file without it = %v; want an error saying so", err)
	}
	if _, err := file.(io.ReaderAt).ReadAt(make([]byte, 1), 0); err == nil || !strings.Contains(err.Error(), "not an io.ReaderAt") {
		t.Errorf("ReadAt on a file without it = %v; want an error saying so", err)
	}
	dir, err := bare.Open("dir")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, err := dir.(fs.ReadDirFile).ReadDir(-1); err == nil || !strings.Contains(err.Error(), "not an fs.ReadDirFile") {
		t.Errorf("ReadDir on a directory without it = %v; want an error saying so", err)
	}
	if _, err := fs.ReadDir(bare, "dir"); err == nil {
		t.Error("fs.ReadDir through a directory without ReadDir succeeded")
	}
}

// TestBrokenRemoteFS: a remote filesystem that answers nil and no error
// (a nil file, FileInfo or directory entry, an entry whose Info says
// nothing) gives the caller errors, not nil values that io/fs's own
// helpers (fs.WalkDir) would call methods on and panic.
func TestBrokenRemoteFS(t *testing.T) {
	f := filesPair(t)
	broken, err := f.Broken()
	if err != nil {
		t.Fatal(err)
	}
	if file, err := broken.Open("a"); file != nil || err == nil || !strings.Contains(err.Error(), "returned nothing and no error") {
		t.Errorf("Open = %v, %v; want an error", file, err)
	}
	if fi, err := fs.Stat(broken, "a"); fi != nil || err == nil {
		t.Errorf("Stat = %v, %v; want an error", fi, err)
	}
	if entries, err := fs.ReadDir(broken, "."); entries != nil || err == nil || !strings.Contains(err.Error(), "nil entry") {
		t.Errorf("ReadDir = %v, %v; want an error", entries, err)
	}
	var walkErr error
	fs.WalkDir(broken, ".", func(_ string, _ fs.DirEntry, err error) error { walkErr = err; return nil })
	if walkErr == nil {
		t.Error("fs.WalkDir of a broken filesystem saw no error")
	}
	_, entries, err := f.Info(entriesFS{small()}, ".")
	if err != nil || len(entries) != 1 {
		t.Fatalf("Info = %v, %v", entries, err)
	}
	if info, err := entries[0].Info(); info != nil || err == nil || !strings.Contains(err.Error(), "no information and no error") {
		t.Errorf("DirEntry.Info = %v, %v; want an error", info, err)
	}
}

// TestFSPassedToThePeer: FileInfo and DirEntry cross by value with what
// their methods said, a DirEntry with its Info; a missing name is
// fs.ErrNotExist on the far side. (scenario.FileSystems has the peer walk
// a directory it is given.)
func TestFSPassedToThePeer(t *testing.T) {
	f := filesPair(t)
	fi, entries, err := f.Info(tree(), "dir/sub")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name() != "sub" || !fi.IsDir() {
		t.Errorf("FileInfo = %v", fi)
	}
	var names []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.Name() != e.Name() || info.IsDir() != e.IsDir() {
			t.Errorf("entry %s: Info = %v, %v", e.Name(), info, err)
		}
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "big.bin c.txt" {
		t.Errorf("entries = %q", names)
	}
	if _, _, err := f.Info(tree(), "nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Info of a missing name = %v; want fs.ErrNotExist", err)
	}
}
