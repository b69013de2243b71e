package refbroker

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"time"
)

// io/fs built in: a host can hand a plugin a filesystem (os.DirFS, an
// embed.FS, an fstest.MapFS) for fs.WalkDir, fs.Glob, template.ParseFS or
// http.FS, and a plugin can return one.
//
//   - fs.FS crosses by reference (and so do fs.StatFS, fs.ReadDirFS and
//     fs.ReadFileFS, as an fs.FS). On the wire it also has Stat and
//     ReadDir, which the owner answers with fs.Stat and fs.ReadDir (so
//     through Open where its FS has no faster way): the proxy is an
//     fs.StatFS and fs.ReadDirFS, one round trip each instead of three,
//     and an fs.ReadFileFS, whose ReadFile opens and streams the file.
//   - fs.File and fs.ReadDirFile cross by reference. A file's reads cross
//     as an io.Reader's (with io.Copy's fast way); its proxy also has the
//     methods io/fs lets a file have — ReadDir (fs.ReadDirFile), Seek
//     (io.Seeker) and ReadAt (io.ReaderAt; as an io.ReaderAt crosses) —
//     which fail, saying so, where the file lacks them. The owner runs a
//     file's calls one at a time (Close aside), as it does a stream's.
//   - fs.FileInfo and fs.DirEntry cross by value: name, size, mode and
//     modification time (Sys is nil on the receiving side); a DirEntry
//     carries its Info, or the error its Info returned.
//   - What a remote filesystem answers is checked where io/fs's helpers
//     would trust it: a nil file, FileInfo or entry without an error, or
//     more entries than asked for, is an error for the caller.

// fileInfoWire is how an fs.FileInfo crosses (nil: a nil FileInfo).
type fileInfoWire struct {
	Name    string
	Size    int64
	Mode    uint32
	ModTime time.Time
}

// dirEntryWire is how an fs.DirEntry crosses (nil: a nil DirEntry).
type dirEntryWire struct {
	Name    string
	Type    uint32
	Info    fs.FileInfo // nil if InfoErr
	InfoErr error
}

// fsWire is how an fs.FS crosses.
type fsWire interface {
	Open(name string) (fs.File, error)
	Stat(name string) (fs.FileInfo, error)
	ReadDir(name string) ([]fs.DirEntry, error)
}

// fileWire is how an fs.File (or fs.ReadDirFile) crosses.
type fileWire interface {
	Stat() (fs.FileInfo, error)
	ReadAtMost(n int) ([]byte, error)
	ReadDir(n int) ([]fs.DirEntry, error)
	Seek(offset int64, whence int) (int64, error)
	ReadSpan(n int, off int64) ([]byte, error)
	Close() error
}

var (
	fileInfoType = reflect.TypeFor[fs.FileInfo]()
	dirEntryType = reflect.TypeFor[fs.DirEntry]()
)

func fileInfoToWire(v reflect.Value) reflect.Value {
	w := reflect.New(reflect.TypeFor[*fileInfoWire]()).Elem()
	if v.IsNil() {
		return w
	}
	fi := v.Interface().(fs.FileInfo)
	w.Set(reflect.ValueOf(&fileInfoWire{Name: fi.Name(), Size: fi.Size(), Mode: uint32(fi.Mode()), ModTime: fi.ModTime()}))
	return w
}

func fileInfoFromWire(w reflect.Value, _ *decoder) (reflect.Value, error) {
	v := reflect.New(fileInfoType).Elem()
	if !w.IsNil() {
		v.Set(reflect.ValueOf(remoteFileInfo{*w.Interface().(*fileInfoWire)}))
	}
	return v, nil
}

func dirEntryToWire(v reflect.Value) reflect.Value {
	w := reflect.New(reflect.TypeFor[*dirEntryWire]()).Elem()
	if v.IsNil() {
		return w
	}
	e := v.Interface().(fs.DirEntry)
	info, err := e.Info()
	if err != nil {
		info = nil
	} else if info == nil {
		err = errors.New("refbroker: fs.DirEntry.Info returned no information and no error")
	}
	w.Set(reflect.ValueOf(&dirEntryWire{Name: e.Name(), Type: uint32(e.Type()), Info: info, InfoErr: err}))
	return w
}

func dirEntryFromWire(w reflect.Value, _ *decoder) (reflect.Value, error) {
	v := reflect.New(dirEntryType).Elem()
	if !w.IsNil() {
		e := *w.Interface().(*dirEntryWire)
		if e.Info == nil && e.InfoErr == nil { // a peer's answer, not to be trusted
			e.InfoErr = fmt.Errorf("refbroker: fs.DirEntry.Info of %q: the peer sent no information and no error", e.Name)
		}
		v.Set(reflect.ValueOf(remoteDirEntry{e}))
	}
	return v, nil
}

// remoteFileInfo is an fs.FileInfo that crossed.
type remoteFileInfo struct{ w fileInfoWire }

func (i remoteFileInfo) Name() string       { return i.w.Name }
func (i remoteFileInfo) Size() int64        { return i.w.Size }
func (i remoteFileInfo) Mode() fs.FileMode  { return fs.FileMode(i.w.Mode) }
func (i remoteFileInfo) ModTime() time.Time { return i.w.ModTime }
func (i remoteFileInfo) IsDir() bool        { return i.Mode().IsDir() }
func (i remoteFileInfo) Sys() any           { return nil }
func (i remoteFileInfo) String() string     { return fs.FormatFileInfo(i) }

// remoteDirEntry is an fs.DirEntry that crossed.
type remoteDirEntry struct{ w dirEntryWire }

func (e remoteDirEntry) Name() string               { return e.w.Name }
func (e remoteDirEntry) IsDir() bool                { return e.Type().IsDir() }
func (e remoteDirEntry) Type() fs.FileMode          { return fs.FileMode(e.w.Type).Type() }
func (e remoteDirEntry) Info() (fs.FileInfo, error) { return e.w.Info, e.w.InfoErr }
func (e remoteDirEntry) String() string             { return fs.FormatDirEntry(e) }

type fsAdapter struct{ fsys fs.FS }

func (a fsAdapter) Open(name string) (fs.File, error)          { return a.fsys.Open(name) }
func (a fsAdapter) Stat(name string) (fs.FileInfo, error)      { return fs.Stat(a.fsys, name) }
func (a fsAdapter) ReadDir(name string) ([]fs.DirEntry, error) { return fs.ReadDir(a.fsys, name) }

type fileAdapter struct {
	readerAdapter
	f fs.File
}

func (a fileAdapter) Stat() (fs.FileInfo, error) { return a.f.Stat() }

func (a fileAdapter) ReadDir(n int) ([]fs.DirEntry, error) {
	d, ok := a.f.(fs.ReadDirFile)
	if !ok {
		return nil, lacks("ReadDir", "fs.ReadDirFile")
	}
	return d.ReadDir(n)
}

func (a fileAdapter) Seek(offset int64, whence int) (int64, error) {
	s, ok := a.f.(io.Seeker)
	if !ok {
		return 0, lacks("Seek", "io.Seeker")
	}
	return s.Seek(offset, whence)
}

func (a fileAdapter) ReadSpan(n int, off int64) ([]byte, error) {
	ra, ok := a.f.(io.ReaderAt)
	if !ok {
		return nil, lacks("ReadAt", "io.ReaderAt")
	}
	return serveReadAt("fs.File.ReadAt", n, a.max, ra, off)
}

func (a fileAdapter) Close() error { return a.f.Close() }

// lacks is the error of an optional method a remote fs.File does not have.
func lacks(method, iface string) error {
	return fmt.Errorf("refbroker: fs.File.%s: the remote file is not an %s", method, iface)
}

type fsProxy struct{ *Ref }

// The proxies check what a remote filesystem answers where io/fs's own
// helpers trust it (fs.WalkDir calls a FileInfo's and a DirEntry's
// methods): a nil file, FileInfo or DirEntry without an error is an error
// here, not a nil pointer for the caller to trip on.

func (p fsProxy) Open(name string) (fs.File, error) {
	var f fs.File
	err := p.Invoke("Open", []any{name}, &f)
	if err == nil && f == nil {
		err = noAnswer("fs.FS.Open", name)
	}
	return f, err
}

func (p fsProxy) Stat(name string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := p.Invoke("Stat", []any{name}, &fi)
	if err == nil && fi == nil {
		err = noAnswer("fs.FS.Stat", name)
	}
	return fi, err
}

func (p fsProxy) ReadDir(name string) ([]fs.DirEntry, error) {
	var entries []fs.DirEntry
	err := p.Invoke("ReadDir", []any{name}, &entries)
	if bad := checkEntries("fs.FS.ReadDir", entries); bad != nil {
		return nil, bad
	}
	return entries, err
}

// noAnswer is the error of a remote call that returned nil and no error.
func noAnswer(what, name string) error {
	return fmt.Errorf("refbroker: %s(%q): the remote filesystem returned nothing and no error", what, name)
}

// checkEntries returns an error if entries holds a nil entry.
func checkEntries(what string, entries []fs.DirEntry) error {
	for i, e := range entries {
		if e == nil {
			return fmt.Errorf("refbroker: %s: the remote filesystem returned a nil entry (%d of %d)", what, i, len(entries))
		}
	}
	return nil
}

// ReadFile opens the named file and reads it to the end.
func (p fsProxy) ReadFile(name string) ([]byte, error) {
	f, err := p.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

type fileProxy struct{ *Ref }

func (p fileProxy) Read(b []byte) (int, error)         { return remoteRead(p.Ref, b) }
func (p fileProxy) WriteTo(w io.Writer) (int64, error) { return remoteWriteTo(p.Ref, w) }
func (p fileProxy) ReadAt(b []byte, off int64) (int, error) {
	return remoteReadAt(p.Ref, b, off)
}
func (p fileProxy) Seek(offset int64, whence int) (int64, error) {
	return remoteSeek(p.Ref, offset, whence)
}
func (p fileProxy) Close() error { return p.Invoke("Close", nil) }

func (p fileProxy) Stat() (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := p.Invoke("Stat", nil, &fi)
	if err == nil && fi == nil {
		err = noAnswer("fs.File.Stat", "")
	}
	return fi, err
}

func (p fileProxy) ReadDir(n int) ([]fs.DirEntry, error) {
	var entries []fs.DirEntry
	err := p.Invoke("ReadDir", []any{n}, &entries)
	if n > 0 && len(entries) > n { // a peer's count, not to be trusted
		return nil, fmt.Errorf("refbroker: fs.ReadDirFile.ReadDir(%d): the remote file returned %d entries", n, len(entries))
	}
	if bad := checkEntries("fs.ReadDirFile.ReadDir", entries); bad != nil {
		return nil, bad
	}
	return entries, err
}

func init() {
	converters[fileInfoType] = converter{wire: reflect.TypeFor[*fileInfoWire](), to: fileInfoToWire, from: fileInfoFromWire}
	converters[dirEntryType] = converter{wire: reflect.TypeFor[*dirEntryWire](), to: dirEntryToWire, from: dirEntryFromWire}
	adapt(nil, func(fsys fs.FS, _ int) fsWire { return fsAdapter{fsys} })
	fileReads := [][]string{{"Stat", "ReadAtMost", "ReadDir", "Seek", "ReadSpan"}}
	adapt(fileReads, func(f fs.File, max int) fileWire { return fileAdapter{readerAdapter{f, max}, f} })
	adapt(fileReads, func(f fs.ReadDirFile, max int) fileWire { return fileAdapter{readerAdapter{f, max}, f} })
	adapt(nil, func(fsys fs.StatFS, _ int) fsWire { return fsAdapter{fsys} })
	adapt(nil, func(fsys fs.ReadDirFS, _ int) fsWire { return fsAdapter{fsys} })
	adapt(nil, func(fsys fs.ReadFileFS, _ int) fsWire { return fsAdapter{fsys} })
	RegisterInterface[fs.FS](func(r *Ref) fs.FS { return fsProxy{r} })
	RegisterInterface[fs.StatFS](func(r *Ref) fs.StatFS { return fsProxy{r} })
	RegisterInterface[fs.ReadDirFS](func(r *Ref) fs.ReadDirFS { return fsProxy{r} })
	RegisterInterface[fs.ReadFileFS](func(r *Ref) fs.ReadFileFS { return fsProxy{r} })
	RegisterInterface[fs.File](func(r *Ref) fs.File { return fileProxy{r} })
	RegisterInterface[fs.ReadDirFile](func(r *Ref) fs.ReadDirFile { return fileProxy{r} })
}
