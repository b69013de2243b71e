package scenario

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/refplug/refplug/testdata/contract"
)

// FileSystems: io/fs built in, both ways. The callee walks a directory of
// the caller's on disk (os.DirFS: fs.WalkDir, fs.ReadFile, through the
// callee's proxy) and sees every directory and file; the callee's own
// filesystem passes testing/fstest's checks of an fs.FS through the
// caller's proxy (open, read, seek, ReadAt, directory listings in parts,
// Stat, ReadFile, ReadDir, Sub, Glob), a file of more than one remote
// read comes whole, and fs's errors keep their identity.
func FileSystems(t *testing.T, svc contract.Service) {
	dir := t.TempDir()
	for name, data := range map[string]string{"a.txt": "alpha\n", "d/b.txt": "bravo\nmore\n", "d/e/big.bin": string(contract.Pattern(3<<20 + 5))} {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := svc.Walk(os.DirFS(dir))
	want := []string{"./", "a.txt 6 alpha", "d/", "d/b.txt 11 bravo", "d/e/", "d/e/big.bin 3145733 " + string(contract.Pattern(8)), "empty/"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("the callee walked the caller's directory:\n%q, %v\nwant\n%q", got, err, want)
	}
	if _, err := svc.Walk(os.DirFS(filepath.Join(dir, "missing"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Walk of a missing directory = %v; want fs.ErrNotExist", err)
	}

	small, err := svc.Files(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fstest.TestFS(small, "a.txt", "dir/b.txt", "dir/sub/c.txt"); err != nil {
		t.Error(err)
	}
	fi, err := fs.Stat(small, "dir/b.txt")
	wantInfo := contract.FilesTree(0)["dir/b.txt"]
	if err != nil || fi.Name() != "b.txt" || fi.Size() != int64(len(wantInfo.Data)) || fi.Mode() != wantInfo.Mode || !fi.ModTime().Equal(wantInfo.ModTime) || fi.Sys() != nil {
		t.Errorf("Stat through the proxy = %v, %v", fi, err)
	}
	if _, err := small.Open("nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing file = %v; want fs.ErrNotExist", err)
	}

	const big = 2<<20 + 13
	tree, err := svc.Files(big)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := fs.ReadFile(tree, "dir/sub/big.bin"); err != nil || !bytes.Equal(data, contract.Pattern(big)) {
		t.Errorf("ReadFile of %d bytes = %d bytes, %v", big, len(data), err)
	}
	f, err := tree.Open("dir/sub/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if pos, err := f.(io.Seeker).Seek(-3, io.SeekEnd); pos != big-3 || err != nil {
		t.Errorf("Seek(-3, end) = %d, %v", pos, err)
	}
	if rest, err := io.ReadAll(f); err != nil || !bytes.Equal(rest, contract.Pattern(big)[big-3:]) {
		t.Errorf("the read after the seek = %v, %v", rest, err)
	}
	matches, err := fs.Glob(tree, "dir/*/*.txt")
	if err != nil || strings.Join(matches, " ") != "dir/sub/c.txt" {
		t.Errorf("Glob = %q, %v", matches, err)
	}
}
