// Package bench is the interface refbench measures, served three ways from
// one implementation: through refplug, and through go-plugin net/rpc glue
// written by hand the way go-plugin's users write it (an RPC client and
// server per interface, a MuxBroker stream with its own rpc.Server per
// callback).
package bench

import (
	"errors"
	"fmt"
	"net/rpc"
	"runtime"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/refbroker"
)

// Record is one element of a Batch.
type Record struct {
	ID    int64
	Name  string
	Score float64
	Tags  []string
}

// Batch is a struct with a large slice.
type Batch struct {
	Label   string
	Records []Record
}

// Item is a host object the plugin holds references to.
type Item interface {
	ID() (int, error)
}

// Memory is the serving process's heap after a garbage collection.
type Memory struct {
	HeapAlloc uint64
	Held      int
}

// Bench is the measured interface.
type Bench interface {
	Plain(a, b int) (int, error)
	Callback(fn func(int) int, n int) (int, error)
	CallbackN(fn func(int) int, times int) (int, error)
	Bytes(b []byte) ([]byte, error)
	Struct(b Batch) (Batch, error)
	Hold(items []Item) error
	Drop() error
	Memory() (Memory, error)
}

// Impl is the one implementation every way serves.
type Impl struct {
	mu   sync.Mutex
	held []Item
}

func (*Impl) Plain(a, b int) (int, error)                   { return a + b, nil }
func (*Impl) Callback(fn func(int) int, n int) (int, error) { return fn(n), nil }

func (*Impl) CallbackN(fn func(int) int, times int) (int, error) {
	v := 0
	for range times {
		v = fn(v)
	}
	return v, nil
}

func (*Impl) Bytes(b []byte) ([]byte, error) { return b, nil }
func (*Impl) Struct(b Batch) (Batch, error)  { return b, nil }

func (s *Impl) Hold(items []Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = append(s.held, items...)
	return nil
}

func (s *Impl) Drop() error {
	s.mu.Lock()
	s.held = nil
	s.mu.Unlock()
	runtime.GC() // collect the proxies, so their releases go out now
	return nil
}

func (s *Impl) Memory() (Memory, error) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.mu.Lock()
	defer s.mu.Unlock()
	return Memory{HeapAlloc: ms.HeapAlloc, Held: len(s.held)}, nil
}

// ---- refplug: one proxy per interface ----

type benchProxy struct{ *refbroker.Ref }

func (p benchProxy) Plain(a, b int) (int, error) {
	var v int
	err := p.Invoke("Plain", []any{a, b}, &v)
	return v, err
}

func (p benchProxy) Callback(fn func(int) int, n int) (int, error) {
	var v int
	err := p.Invoke("Callback", []any{fn, n}, &v)
	return v, err
}

func (p benchProxy) CallbackN(fn func(int) int, times int) (int, error) {
	var v int
	err := p.Invoke("CallbackN", []any{fn, times}, &v)
	return v, err
}

func (p benchProxy) Bytes(b []byte) ([]byte, error) {
	var v []byte
	err := p.Invoke("Bytes", []any{b}, &v)
	return v, err
}

func (p benchProxy) Struct(b Batch) (Batch, error) {
	var v Batch
	err := p.Invoke("Struct", []any{b}, &v)
	return v, err
}

func (p benchProxy) Hold(items []Item) error { return p.Invoke("Hold", []any{items}) }
func (p benchProxy) Drop() error             { return p.Invoke("Drop", nil) }

func (p benchProxy) Memory() (Memory, error) {
	var v Memory
	err := p.Invoke("Memory", nil, &v)
	return v, err
}

type itemProxy struct{ *refbroker.Ref }

func (p itemProxy) ID() (int, error) {
	var v int
	err := p.Invoke("ID", nil, &v)
	return v, err
}

func init() {
	refbroker.RegisterInterface[Bench](func(r *refbroker.Ref) Bench { return benchProxy{r} })
	refbroker.RegisterInterface[Item](func(r *refbroker.Ref) Item { return itemProxy{r} })
}

// ---- hand-written go-plugin net/rpc glue ----

// Handshake is the net/rpc baseline plugin's handshake.
var Handshake = goplugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "REFBENCH_NETRPC", MagicCookieValue: "baseline"}

// NetRPCPlugin is the go-plugin plugin of the baseline.
type NetRPCPlugin struct{ Impl Bench }

func (p *NetRPCPlugin) Server(b *goplugin.MuxBroker) (any, error) {
	return &RPCServer{impl: p.Impl, broker: b}, nil
}

func (p *NetRPCPlugin) Client(b *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	return &rpcClient{client: c, broker: b}, nil
}

// Args carry the parameters of the baseline's calls.
type PlainArgs struct{ A, B int }

// CallbackArgs name the broker stream a callback is served on.
type CallbackArgs struct {
	FnID uint32
	N    int
}

var errNotSupported = errors.New("bench: not supported by the net/rpc baseline")

type rpcClient struct {
	client *rpc.Client
	broker *goplugin.MuxBroker
}

func (c *rpcClient) Plain(a, b int) (int, error) {
	var r int
	err := c.client.Call("Plugin.Plain", PlainArgs{a, b}, &r)
	return r, err
}

// serveFunc serves fn on a new broker stream, as go-plugin users do.
func (c *rpcClient) serveFunc(fn func(int) int) uint32 {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, &FuncServer{fn: fn})
	return id
}

func (c *rpcClient) Callback(fn func(int) int, n int) (int, error) {
	var r int
	err := c.client.Call("Plugin.Callback", CallbackArgs{FnID: c.serveFunc(fn), N: n}, &r)
	return r, err
}

func (c *rpcClient) CallbackN(fn func(int) int, times int) (int, error) {
	var r int
	err := c.client.Call("Plugin.CallbackN", CallbackArgs{FnID: c.serveFunc(fn), N: times}, &r)
	return r, err
}

func (c *rpcClient) Bytes(b []byte) ([]byte, error) {
	var r []byte
	err := c.client.Call("Plugin.Bytes", b, &r)
	return r, err
}

func (c *rpcClient) Struct(b Batch) (Batch, error) {
	var r Batch
	err := c.client.Call("Plugin.Struct", b, &r)
	return r, err
}

func (c *rpcClient) Hold([]Item) error { return errNotSupported }
func (c *rpcClient) Drop() error       { return errNotSupported }

func (c *rpcClient) Memory() (Memory, error) {
	var r Memory
	err := c.client.Call("Plugin.Memory", 0, &r)
	return r, err
}

// RPCServer is the net/rpc server the baseline plugin runs.
type RPCServer struct {
	impl   Bench
	broker *goplugin.MuxBroker
}

func (s *RPCServer) Plain(a PlainArgs, r *int) (err error) {
	*r, err = s.impl.Plain(a.A, a.B)
	return err
}

// dialFunc connects to a host callback's stream.
func (s *RPCServer) dialFunc(id uint32) (func(int) int, func() error, error) {
	conn, err := s.broker.Dial(id)
	if err != nil {
		return nil, nil, err
	}
	client := rpc.NewClient(conn)
	var callErr error
	fn := func(x int) int {
		var out int
		if err := client.Call("Plugin.Call", x, &out); err != nil && callErr == nil {
			callErr = err
		}
		return out
	}
	done := func() error {
		client.Close()
		if callErr != nil {
			return fmt.Errorf("callback: %w", callErr)
		}
		return nil
	}
	return fn, done, nil
}

func (s *RPCServer) Callback(a CallbackArgs, r *int) error {
	fn, done, err := s.dialFunc(a.FnID)
	if err != nil {
		return err
	}
	v, err := s.impl.Callback(fn, a.N)
	if derr := done(); derr != nil {
		return derr
	}
	*r = v
	return err
}

func (s *RPCServer) CallbackN(a CallbackArgs, r *int) error {
	fn, done, err := s.dialFunc(a.FnID)
	if err != nil {
		return err
	}
	v, err := s.impl.CallbackN(fn, a.N)
	if derr := done(); derr != nil {
		return derr
	}
	*r = v
	return err
}

func (s *RPCServer) Bytes(b []byte, r *[]byte) (err error) {
	*r, err = s.impl.Bytes(b)
	return err
}

func (s *RPCServer) Struct(b Batch, r *Batch) (err error) {
	*r, err = s.impl.Struct(b)
	return err
}

func (s *RPCServer) Memory(_ int, r *Memory) (err error) {
	*r, err = s.impl.Memory()
	return err
}

// FuncServer serves one host callback on its own stream.
type FuncServer struct{ fn func(int) int }

func (f *FuncServer) Call(x int, out *int) error {
	*out = f.fn(x)
	return nil
}
