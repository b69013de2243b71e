// Package refbroker carries Go method calls between two processes, driven
// by reflection: plain data crosses by value, and every interface or func
// that crosses, at any depth, becomes a reference the other side calls
// back through. refplug's host and plugin packages run one Conn per plugin
// over a go-plugin stream; a Conn also works over any reliable byte stream
// (net.Pipe, a socket).
//
// # Contracts and proxies
//
// A contract is a Go interface both sides compile against. Go cannot build
// a type with methods at run time, so each interface that crosses needs a
// proxy: a struct that embeds *Ref and forwards each method with Invoke,
// registered from an init function of the contract's package:
//
//	type storeProxy struct{ *refbroker.Ref }
//
//	func (p storeProxy) Get(key string) ([]byte, error) {
//		var v []byte
//		err := p.Invoke("Get", []any{key}, &v)
//		return v, err
//	}
//
//	func init() {
//		refbroker.RegisterInterface[Store](func(r *refbroker.Ref) Store { return storeProxy{r} })
//	}
//
// cmd/refgen generates these proxies (go generate). Funcs need no proxy:
// the receiver gets a func of the exact type, built with reflect.MakeFunc.
// io.Reader, io.Writer, io.Closer, io.ReadCloser, io.WriteCloser,
// io.ReadWriter, io.ReadWriteCloser, io.ReaderAt, io.WriterAt, io.Seeker,
// io.ReadSeeker, io.ReadSeekCloser, fmt.Stringer, http.Handler,
// http.ResponseWriter, fs.FS (and fs.StatFS, fs.ReadDirFS and
// fs.ReadFileFS), fs.File and fs.ReadDirFile have proxies
// registered by this package; an io.Reader (and an io.ReaderAt) crosses
// with a wire method that returns the bytes read, which moves only what
// was read (builtin.go, builtin_seek.go, builtin_rw.go, builtin_fs.go). An
// *http.Request crosses by value with its body streamed and the call's
// context as its own (builtin_http.go); fs.FileInfo and fs.DirEntry cross
// by value (builtin_fs.go).
//
// # What crosses how
//
// The static type at each position (parameter, result, struct field,
// slice or map element) decides:
//
//  1. Booleans, numbers, strings, and structs, pointers, slices, arrays and
//     maps of them cross by value, as encoding/gob would copy them: exported
//     struct fields only, pointers followed, nil and empty slices and maps
//     kept apart. Types that implement gob.GobEncoder/GobDecoder or
//     encoding.BinaryMarshaler/BinaryUnmarshaler (time.Time, for one) cross
//     as the bytes they marshal to. A value nested deeper than 1000 levels
//     (a cycle) is refused.
//  2. An error crosses by value: its text, and the chain it wraps (%w, or
//     Unwrap() []error). errors.Is holds on the far side for sentinels
//     registered with RegisterError on both sides, as it did on the
//     sender (also where the error's own Is method made the match);
//     the standard library's common sentinels (context.Canceled,
//     errors.ErrUnsupported, io.EOF, the io/fs ones, fs.SkipDir,
//     os.ErrDeadlineExceeded, net.ErrClosed, http.ErrServerClosed, …:
//     RegisterError lists them) are registered already. An error of a
//     type registered with RegisterType crosses as that type, so errors.As
//     finds it. An error that comes back to the side it came from (a
//     callback's errStop that the peer returns wrapped, an error passed
//     and returned) is the very error again, while it is among the last 64
//     errors that side sent on the connection (errhome.go): errors.Is
//     needs no registration there.
//  3. A value in a position of interface type (other than error and
//     context.Context) or func type crosses by reference: the receiver gets
//     the proxy registered for the interface, or a func of the exact type,
//     that forwards each call to the owner. A position of type any carries
//     types registered with RegisterType (basic types and common slices
//     and maps already are) by value, errors as errors, and funcs and
//     objects (values implementing an interface with a registered proxy,
//     fmt.Stringer aside) by reference, arriving as a *Ref. Any other
//     value in an any is refused with an error naming its type and the
//     RegisterType call to add: nothing is silently turned into a
//     reference the receiver cannot use.
//     A parameter that is a pointer to data (or an any holding one of a
//     registered type; an *http.Request aside) is restored: the value it
//     points to when the method returns is copied back into the caller's
//     (outparams.go), its funcs and objects crossing as a result's do,
//     so functional options (func(*Config)) that set a hook work. So
//     is the buffer of a method shaped as a read, as io.Reader's Read and
//     io.ReaderAt's ReadAt are: named Read, or Read followed by a capital
//     letter, its first parameter after a context a byte slice, its
//     results (int, error); the first n bytes of the callee's copy are
//     copied into the caller's p[:n] (read from the stream straight into
//     it, where the caller reads its own return); as io.Reader requires,
//     the callee must not keep p, whose memory serves the next message
//     once it returns. io.Reader's Read and io.ReaderAt's ReadAt (by name
//     and exact type), which may use p as scratch and must not read it,
//     get a zeroed buffer of p's length: p's bytes do not cross. Any
//     other byte slice argument is the callee's copy.
//  4. A reference that comes back to the side that owns it arrives as the
//     original object, never a proxy of a proxy. Sending the same object
//     again reuses its reference; the receiver keeps one proxy per remote
//     object.
//  5. A reference grants only the methods of the static interface type it
//     crossed as, not every method of the object behind it, and comes home
//     only where that grant covers what is asked of it: as an interface all
//     of whose methods were granted, as the func type it was sent as, or as
//     any only if it was sent as any. Elsewhere the message fails.
//  6. A context.Context first parameter carries its deadline (as the time
//     remaining) and cancellation (not its values): cancelling the caller's
//     context cancels the callee's, with the same Err and context.Cause, and
//     the caller returns ctx.Err() at once even if the other side never
//     answers.
//  7. A panic in a called method, on either side, returns to the caller as
//     an error naming the method and carrying the panic value; the stack is
//     logged on the side that panicked, which goes on serving.
//  8. Channels, unsafe pointers, a context.Context anywhere but first, and
//     map keys that hold references cannot cross: Dispense reports them,
//     naming the method and parameter.
//
// # Limits
//
// Options bound what a peer can make a Conn hold: the size of one message
// (MaxMessageSize, 64 MiB), the peer's calls (and Dispense, Describe and
// CallJSON requests) running at once (MaxConcurrentCalls, 1024) and the
// bytes of their messages (MaxServedBytes, 256 MiB; more are refused at
// once, never queued), the data waiting to be written to a
// peer that is slow to read (MaxQueuedBytes, 16 MiB; callers wait, and
// return when their context ends), and the peer's objects this side
// holds proxies for (MaxImports, 1,048,576), and this side's objects the
// peer holds, which stay alive here until it releases them (MaxExports,
// 1,048,576). The peer's type descriptions are bounded too (65536 types,
// 4 MiB, 262144 methods, structs and fields), and decoding allocates with
// the bytes received, not with the counts the peer claims: at most 256 KiB
// and 64 bytes a byte of the message, and, apart, 128 bytes a byte (1 GiB
// at most) for the fields of this side's structs the peer's version lacks
// (zero values: a contract that gained fields). A peer that breaks the protocol (a
// malformed message, a reused call number) ends the connection; the
// reason is logged and is in Err. A peer that does not answer holds a call
// until the caller's context ends; calls whose caller has no context to
// give (methods without one, Dispense, Describe, CallJSON) are bounded by
// CallTimeout, if set.
//
// # Contract checks
//
// Dispense sends the interface's method signatures and the layouts of
// every struct reachable from them; the serving side checks its object has
// every method (extra methods are fine) and that its structs of the same
// names can be read into each other, and answers with every difference
// otherwise (DispenseContext gives up when its context ends first).
// Structs whose layouts differ compatibly (fields added,
// removed, reordered; numbers widened or narrowed) are decoded by field
// name, never into another field; identical ones positionally. A reference that arrives later is
// checked the same way against the sender's static type, once per pair of
// types, so a peer built from another version of a contract fails the
// call that hands over the mismatched object, naming the methods.
//
// The two sides may also be built with different versions of refbroker.
// Each announces what it reads in its first message (features.go), and
// neither sends the other what it could not read: out-parameters holding
// funcs or objects are restored, io.Reader's Read and io.ReaderAt's
// ReadAt send their buffer's length rather than its bytes, and Ping sends
// a ping rather than a Describe, only to a peer that announced it reads
// them.
//
// # Inspection
//
// Describe and CallJSON list the roots a peer serves and call their
// methods with JSON arguments, for tools that have no Go contract.
//
// # Concurrency
//
// Calls may be made from any number of goroutines at once, and are
// re-entrant: a method may call back into the side that called it, to any
// depth, and may block. A call that arrives while nothing else waits to be
// read is run by the connection's reader goroutine itself, which saves a
// goroutine hand-off (on a small machine, most of a call's cost); when
// that call makes a call of its own (a callback), it reads that call's
// return itself, serving what else arrives meanwhile on other goroutines,
// and the reading passes to another goroutine once it has run for 1–2 ms
// without calling out, so a blocked or long method delays other messages
// by at most that. A call that arrives with others behind it runs
// on a goroutine of its own: one that has served before and waits for the
// next call (keeping the stack it grew), if one waits, or a new one; never
// behind another call. (So a method runs on a goroutine the connection
// owns and goes on using: one that locks its OS thread must unlock it
// before it returns.) On a side without roots (a host), a caller reads
// its own return when nobody else reads, which saves the hand-off from
// the reader to the caller: when the peer holds none of the side's
// objects, or its recent calls came back without callbacks. A call of the
// peer's that such a caller reads is served by a reader goroutine, never
// by the caller, and the role is read again within a millisecond of being
// left free while the peer may call.
//
// Byte slices of 64 KiB and more cross without copies on either side: they
// are written from the sender's slice and received as part of the frame
// they arrived in. Once the receiver drops such a slice, the collector
// finds the frame unused and its buffer is read into again (a finalizer
// takes it back; at most 16 MiB kept per process, each buffer given up if
// not read into again within two collections), so repeated large
// arguments and results mostly avoid fresh memory and the collections it
// brings. io.Copy through a reader or writer proxy moves a megabyte per
// round trip (the proxies are io.WriterTo and io.ReaderFrom)
// and reuses its buffers. An io.Copy from a reader proxy into a writer
// proxy of the same peer (both plain io.Reader or io.ReadCloser, io.Writer
// or io.WriteCloser) asks the peer to make the copy between its own
// objects: nothing crosses but the call (unless Options.CallTimeout is
// set, which bounds each read and write instead).
//
// A variadic parameter is passed to Invoke as one slice. A method or func
// whose last result is an error type other than error (*model.AppError)
// returns, for a call that fails before its results arrive, the value
// RegisterFailure builds from the failure, never nil (Dispense refuses such
// a method until one is registered). One without an error-like result
// returns zero values, and the failure is logged (at warn level when the
// connection is gone, debug level in a plugin (Options.Side) whose host is
// gone, error level otherwise).
//
// # Lifetimes
//
// An exported object stays in its owner's export table while the other
// side holds a proxy for it. When the proxy is garbage collected, or
// released with Release, the owner is told in a batched release message
// naming how many sends of the reference it covers, and drops the object
// once every send is released. Calls through a released proxy fail with
// ErrReleased; every call fails with ErrDisconnected once the connection
// has ended. A call whose message, or whose return, is over a side's
// Options.MaxMessageSize fails with an error matching ErrMessageTooLarge;
// the built-in streams cut their reads and writes to fit both sides'
// limits instead (docs/wire.md).
//
// # Where things are
//
// One concern per file: conn.go (Options, Conn, its lifecycle and Stats,
// and the state its one mutex guards), frame.go (frames and buffers),
// writequeue.go (write batching, its bound, interrupted writes), reader.go
// (reading and dispatch, inline serving), callerread.go (callers reading
// their own returns, and borrowing the reading from an inline call), spinread.go (reads that spin briefly where the next
// frame is due), framereader.go (frames read across interruptions),
// call.go (outgoing calls and their
// returns), serve.go (incoming calls and replies), servers.go (the
// goroutines that serve calls aside, reused), context.go (contexts
// across the wire), bootstrap.go (Dispense), export.go and import.go (the two
// reference tables), release.go (releases, the decode order they wait
// for, and the flusher that sends them and cancels), typeinfo.go (type
// info and the nested contract check), layout.go, layoutplan.go and
// layouttable.go (struct layouts: describing them, and decoding by field
// name when the two sides' differ), ref.go (Ref,
// Invoke, func proxies, Release), and the type layer: classify.go (how a
// type crosses), codec.go and composite.go (value codecs), plan.go (call
// plans), contract.go (contract checks); errwire.go (errors on the wire),
// registry.go (registrations), builtin.go (the standard library's
// interfaces; builtin_copy.go, an io.Copy between two streams of the peer
// made by the peer), inspect.go (Describe, CallJSON, Ping).
//
// The wire protocol is described in docs/wire.md at the root of the
// repository; wire_test.go holds the code to it.
package refbroker
