// Package baseline is hand-written go-plugin net/rpc glue, written the way
// go-plugin's users write it: an RPC client and server per interface, and a
// MuxBroker stream with its own rpc.Server per callback. refplug's
// benchmarks measure themselves against it in the same run.
package baseline

import (
	"fmt"
	"net/rpc"

	goplugin "github.com/hashicorp/go-plugin"
)

// Calc is the interface served both by hand-written glue and by refplug.
type Calc interface {
	Sum(a, b int) (int, error)
	Apply(fn func(int) int, n int) (int, error)
}

// Handshake is the baseline plugin's handshake.
var Handshake = goplugin.HandshakeConfig{ProtocolVersion: 1, MagicCookieKey: "REFPLUG_BASELINE", MagicCookieValue: "netrpc"}

// Plugin is the go-plugin plugin for Calc.
type Plugin struct{ Impl Calc }

// Server runs in the plugin.
func (p *Plugin) Server(b *goplugin.MuxBroker) (any, error) {
	return &CalcServer{impl: p.Impl, broker: b}, nil
}

// Client runs in the host.
func (p *Plugin) Client(b *goplugin.MuxBroker, c *rpc.Client) (any, error) {
	return &calcClient{client: c, broker: b}, nil
}

// SumArgs are Sum's arguments.
type SumArgs struct{ A, B int }

// ApplyArgs are Apply's arguments: the callback travels as a broker ID.
type ApplyArgs struct {
	FnID uint32
	N    int
}

type calcClient struct {
	client *rpc.Client
	broker *goplugin.MuxBroker
}

func (c *calcClient) Sum(a, b int) (int, error) {
	var r int
	err := c.client.Call("Plugin.Sum", SumArgs{a, b}, &r)
	return r, err
}

func (c *calcClient) Apply(fn func(int) int, n int) (int, error) {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, &FuncServer{fn: fn})
	var r int
	err := c.client.Call("Plugin.Apply", ApplyArgs{FnID: id, N: n}, &r)
	return r, err
}

// CalcServer is the net/rpc server the plugin runs.
type CalcServer struct {
	impl   Calc
	broker *goplugin.MuxBroker
}

// Sum serves Calc.Sum.
func (s *CalcServer) Sum(a SumArgs, r *int) error {
	v, err := s.impl.Sum(a.A, a.B)
	*r = v
	return err
}

// Apply serves Calc.Apply, dialing the host's callback stream.
func (s *CalcServer) Apply(a ApplyArgs, r *int) error {
	conn, err := s.broker.Dial(a.FnID)
	if err != nil {
		return err
	}
	client := rpc.NewClient(conn)
	defer client.Close()
	var callErr error
	fn := func(x int) int {
		var out int
		if err := client.Call("Plugin.Call", x, &out); err != nil {
			callErr = err
		}
		return out
	}
	v, err := s.impl.Apply(fn, a.N)
	if callErr != nil {
		return fmt.Errorf("callback: %w", callErr)
	}
	*r = v
	return err
}

// FuncServer serves a host callback on its own stream.
type FuncServer struct{ fn func(int) int }

// Call calls the callback.
func (f *FuncServer) Call(x int, out *int) error {
	*out = f.fn(x)
	return nil
}

// Impl is the Calc both plugins serve.
type Impl struct{}

// Sum adds.
func (Impl) Sum(a, b int) (int, error) { return a + b, nil }

// Apply calls fn once.
func (Impl) Apply(fn func(int) int, n int) (int, error) { return fn(n), nil }
