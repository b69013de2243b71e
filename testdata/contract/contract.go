// Package contract is the test contract shared by refplug's tests and the
// test plugins built from testdata/. It exercises every rule of what
// crosses how; Service is implemented by NewService, served both in-process
// (refbroker tests) and from a real plugin process (host tests).
package contract

// Unregistered is left out on purpose: the tests need one interface
// without a proxy.
//go:generate go run github.com/refplug/refplug/cmd/refgen -type Sink,Thing,Counter,Host,Service,Blob,Tally,Factory,Wides,UsesUnregistered,Mismatched

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"strings"
	"testing/fstest"
	"time"

	"github.com/refplug/refplug/refbroker"
)

// ErrNotFound is a sentinel the tests check with errors.Is on the far side.
var ErrNotFound = errors.New("contract: not found")

// Point is plain data.
type Point struct{ X, Y int }

// Doc is by-value data with references inside it.
type Doc struct {
	ID     string
	Tags   []string
	Meta   map[string]int
	Loc    *Point
	When   time.Time
	Body   []byte
	Grid   [2][2]float64
	Parts  []Point
	Extra  any
	Nested *Doc
	OnSave func(id string) error // a func at depth
	Sink   Sink                  // an interface at depth
	hidden int                   // unexported: does not cross
}

// SetHidden sets the unexported field (to check it does not cross).
func (d *Doc) SetHidden(v int) { d.hidden = v }

// Hidden reads the unexported field.
func (d *Doc) Hidden() int { return d.hidden }

// Sink receives strings.
type Sink interface {
	Put(s string) error
}

// Thing is an object with a name.
type Thing interface {
	Name() string
}

// Counter is an object returned by the plugin, whose methods return more
// objects.
type Counter interface {
	Add(n int) (int, error)
	Child(name string) (Counter, error)
	Label() (string, error)
}

// Host is implemented on the host side, for re-entrant calls.
type Host interface {
	Ping(depth int) (int, error)
}

// Service is the root object the test plugin serves as "svc".
type Service interface {
	Echo(d Doc) (Doc, error)
	Sum(xs ...int) (int, error)
	Lookup(key string) (string, error)
	Apply(fn func(int) int, n int) (int, error)
	ApplyN(fn func(int) int, times int) (int, error)
	Fanout(sinks []Sink, byName map[string]Sink, msg string) error
	CallFields(d Doc) error
	NewCounter(name string) (Counter, error)
	IsMine(c Counter) (bool, error)
	Keep(t Thing) (bool, error)
	Kept() (Thing, error)
	Same(t Thing) (Thing, error)
	EchoAny(v any) (any, error)
	Wait(ctx context.Context, started func()) error
	Deadline(ctx context.Context) (time.Duration, bool, error)
	Cancelled() (int, error)
	Hang(ctx context.Context) error
	Unhang() error
	// Block waits until Open(gate) is called; Blocked reports whether a
	// Block(gate) is waiting.
	Block(gate string) error
	Blocked(gate string) (bool, error)
	Open(gate string) error
	Panic(msg string) (int, error)
	Bounce(h Host, depth int) (int, error)
	Narrow(t Thing) (string, error)
	Observe(fn func(string)) error
	// Later calls fn(n) on a goroutine of its own, as an event source
	// calls a handler: that call may still be on its way, or running,
	// when Later returns.
	Later(fn func(int), n int) error
	Exit(code int) error
	// Copy copies r to w (both the caller's), returning the count.
	Copy(w io.Writer, r io.Reader) (int64, error)
	// Producer returns a reader of n deterministic bytes (see Pattern).
	Producer(n int) (io.ReadCloser, error)
	// Consumer returns a writer; Consumed reports what reached it.
	Consumer() (io.WriteCloser, error)
	Consumed() (n int, sum [32]byte, closed bool, err error)
	// Describe calls s.String.
	Describe(s fmt.Stringer) (string, error)
	// Count yields 0..n-1; Yielded reports how many values it produced.
	Count(n int) (iter.Seq[int], error)
	// Enumerate yields (index, word) pairs of words.
	Enumerate(words []string) (iter.Seq2[int, string], error)
	// Pid is the serving process's ID.
	Pid() (int, error)
	// Health reports the serving side's goroutine count (after letting the
	// garbage collector run) and its connection's counts.
	Health() (Health, error)
	// LaunderAny and LaunderCloser hand s back in positions of other
	// types, as a plugin trying to widen its grant would.
	LaunderAny(s Sink) (any, error)
	LaunderCloser(s Sink) (io.Closer, error)
	// Flood calls fn n times at once and reports how many calls failed,
	// with the first failure's text.
	Flood(fn func() error, n int) (failed int, first string, err error)
	// Pour writes size bytes to w n times at once and reports how many
	// writes failed, with the first failure's text.
	Pour(w io.Writer, n, size int) (failed int, first string, err error)
	// Hoard asks f for n counters and keeps every one it gets, as a
	// plugin that never releases would; it reports how many it got and
	// the first failure's text.
	Hoard(f Factory, n int) (got int, first string, err error)
	// OpenFile opens path in the serving process (an *fs.PathError when
	// it does not exist); Fail returns a *CodeError with code, wrapped.
	OpenFile(path string) error
	Fail(code int) error
	// GetUser returns the user named id, or an *AppError (404) — the way
	// Mattermost's API reports failure; PanicUser panics.
	GetUser(id string) (*User, *AppError)
	PanicUser() (*User, *AppError)
	// Print writes s to its process's standard output and, prefixed
	// "err: ", to its standard error, as plain code does.
	Print(s string) error
	// Logs logs msg through log/slog's default logger at each level from
	// Debug to Error, with attributes and groups, and through the
	// standard log package.
	Logs(msg string) error
	// Fill fills cfg; FillAny unmarshals JSON into dest, as Mattermost's
	// LoadPluginConfiguration(dest any) does: out-parameters.
	Fill(cfg *Settings) error
	FillAny(dest any) error
	// Schedule applies opts to a new Job named name (Go's functional
	// options: pointers to data holding a func and an object), then calls
	// the job's OnDone and writes to its Log.
	Schedule(ctx context.Context, name string, opts ...JobOption) (string, error)
	// Visit calls fn for each of paths and returns its first error,
	// wrapped with the path ("visit b: …").
	Visit(paths []string, fn func(path string) error) error
	// After returns d as Go writes it ("1.5s").
	After(d time.Duration) (string, error)
	// Upload receives data and returns its length.
	Upload(ctx context.Context, data []byte) (int, error)
	// Reason reports how the context of the last Wait ended: its Err and
	// its context.Cause.
	Reason() (err, cause string, e error)
	// OpenBlob returns a Blob of n deterministic bytes (see Pattern).
	OpenBlob(n int) (Blob, error)
	// OpenTally returns a Tally that takes at most limit bytes.
	OpenTally(limit int64) (Tally, error)
	// Unzip reads the zip archive r of size bytes (archive/zip, through
	// io.ReaderAt) and returns its files' contents by name.
	Unzip(r io.ReaderAt, size int64) (map[string]string, error)
	// Tail seeks r to its end to learn its size, then to off, and returns
	// the size and what follows off.
	Tail(r io.ReadSeeker, off int64) (size int64, rest []byte, err error)
	// OpenSeekable returns a reader of n deterministic bytes (see
	// Pattern) that seeks.
	OpenSeekable(n int) (io.ReadSeekCloser, error)
	// Backwards writes Pattern(n) into w in chunks of chunk bytes, the
	// last chunk first.
	Backwards(w io.WriterAt, n, chunk int) error
	// Chat reads conn until EOF on one goroutine while it writes "msg 0"
	// to "msg n-1", a line each, on another, then closes conn and returns
	// what it read: full duplex, as a protocol on a connection is.
	Chat(conn io.ReadWriteCloser, n int) (string, error)
	// Walk lists every directory ("path/") and file ("path size first
	// line") of fsys, as plugin code would: fs.WalkDir, fs.ReadFile.
	Walk(fsys fs.FS) ([]string, error)
	// Files returns a filesystem of the serving side's: FilesTree(big).
	Files(big int) (fs.FS, error)
}

// Tally is a writer of a contract's own: it keeps what it is given, up to
// its limit; a Write past it takes what fits and fails.
type Tally interface {
	Write(p []byte) (int, error)
	// Got returns what it took.
	Got() ([]byte, error)
}

// Blob is a file-like object of a contract's own: its reads fill the
// caller's buffer, as io.Reader's and io.ReaderAt's do.
type Blob interface {
	io.ReadCloser
	io.ReaderAt
	// ReadChunk is Read with a context.
	ReadChunk(ctx context.Context, p []byte) (int, error)
	// Scribble overwrites p with 0xFF and returns len(p): not a read, so
	// the caller's p stays as it was (arguments cross by value).
	Scribble(p []byte) (int, error)
	Size() (int64, error)
}

// Health is the serving side's view of itself.
type Health struct {
	Goroutines int
	Stats      refbroker.Stats
}

// Factory is served by testdata/skewplugin, built from an older contract.
type Factory interface {
	NewCounter(name string) (Counter, error)
}

// Wide is a kilobyte in memory. testdata/skewplugin's older contract has a
// Wide with no fields, which crosses in a byte.
type Wide struct {
	Pad [128]int64
}

// Wides is served by testdata/skewplugin, whose Wide has none of this
// side's fields: a slice of them decodes here into a kilobyte an element.
type Wides interface {
	Wides(n int) ([]Wide, error)
}

// BadService cannot cross: a channel parameter. refgen refuses it, so its
// proxy is written by hand, for the tests of Dispense's refusal.
type BadService interface {
	Watch(c chan int) error
}

type badServiceProxy struct{ *refbroker.Ref }

func (p badServiceProxy) Watch(c chan int) error { return p.Invoke("Watch", []any{c}) }

// Unregistered has no proxy registered.
type Unregistered interface {
	Do() error
}

// UsesUnregistered reaches an interface without a proxy.
type UsesUnregistered interface {
	Get() (Unregistered, error)
}

// Mismatched has a method whose signature differs from Service's.
type Mismatched interface {
	Echo(d Doc, extra int) (Doc, error)
	Missing() error
}

// CodeError is an error type registered with refbroker.RegisterType: it
// crosses as itself, so errors.As finds it on the far side.
type CodeError struct {
	Code int
	Msg  string
}

func (e *CodeError) Error() string { return fmt.Sprintf("code %d: %s", e.Code, e.Msg) }

// Settings is filled by Fill and FillAny.
type Settings struct {
	Name  string
	Level int
	Tags  []string
}

// Job is set up by JobOptions: data holding a func and an object.
type Job struct {
	Name   string
	Tries  int
	OnDone func(result string) error
	Log    io.Writer
}

// JobOption sets up a Job, as Go's functional options do.
type JobOption func(*Job)

// User is data returned with an *AppError.
type User struct{ ID, Name string }

// AppError is an error-like result type: a failed call must return one,
// never nil (see RegisterFailure below).
type AppError struct {
	Message string
	Status  int
}

func (e *AppError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Message) }

func init() {
	refbroker.RegisterInterface[BadService](func(r *refbroker.Ref) BadService { return badServiceProxy{r} })
	refbroker.RegisterFailure(func(err error) *AppError { return &AppError{Message: err.Error(), Status: 500} })
	refbroker.RegisterType(&CodeError{})
	refbroker.RegisterError(ErrNotFound)
	refbroker.RegisterType(Point{})
}

// Pattern returns n deterministic bytes, for checking streams.
// FilesTree is a filesystem of small files at several depths, an empty
// directory, modes and times, and, if big > 0, a file of Pattern(big).
func FilesTree(big int) fstest.MapFS {
	when := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	m := fstest.MapFS{
		"a.txt":         {Data: []byte("alpha\n"), Mode: 0o644, ModTime: when},
		"dir/b.txt":     {Data: []byte("bravo\nmore\n"), Mode: 0o600, ModTime: when.Add(time.Hour)},
		"dir/sub/c.txt": {Data: []byte("charlie\n" + strings.Repeat("c", 300)), ModTime: when},
		"empty":         {Mode: fs.ModeDir | 0o755},
	}
	if big > 0 {
		m["dir/sub/big.bin"] = &fstest.MapFile{Data: Pattern(big), Mode: 0o444}
	}
	return m
}

func Pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// Sum is the checksum Consumed reports.
func Sum(b []byte) [32]byte { return sha256.Sum256(b) }
