package host_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/testdata/contract"
)

// pluginPath is where the test plugins (built from testdata/ by TestMain)
// are; in a real host this is the path of the plugin binary.
func pluginPath(name string) string { return filepath.Join(bin, name) }

func ExampleLoad() {
	client, err := host.Load(pluginPath("svcplugin"), host.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	svc, err := host.Dispense[contract.Service](client, "svc")
	if err != nil {
		fmt.Println(err)
		return
	}
	// A host func crosses by reference: the plugin calls it back.
	n, err := svc.Apply(func(x int) int { return x * 2 }, 21)
	fmt.Println(n, err)
	// Output: 42 <nil>
}

func ExampleDispense() {
	client, err := host.Load(pluginPath("svcplugin"), host.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	// An unknown name is an error that lists what the plugin serves.
	_, err = host.Dispense[contract.Service](client, "store")
	fmt.Println(err != nil)

	svc, err := host.Dispense[contract.Service](client, "svc")
	if err != nil {
		fmt.Println(err)
		return
	}
	// Objects returned by the plugin are proxies too.
	counter, _ := svc.NewCounter("requests")
	counter.Add(2)
	n, _ := counter.Add(3)
	fmt.Println(n)
	// Sentinel errors survive the trip.
	_, err = svc.Lookup("missing")
	fmt.Println(errors.Is(err, contract.ErrNotFound))
	// Output:
	// true
	// 5
	// true
}

// LoadContext ends a start when its context does: here a program that
// never completes go-plugin's handshake is given 200 ms.
func ExampleLoadContext() {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := host.LoadContext(ctx, pluginPath("hangs"), host.WithLogger(hclog.NewNullLogger()))
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	// Output: true
}

// WithCallTimeout bounds the calls a host cannot bound itself: a method
// without a context that hangs in the plugin (here svcplugin's Block,
// which waits for an Open that never comes) returns at the timeout.
func ExampleWithCallTimeout() {
	client, err := host.Load(pluginPath("svcplugin"), host.WithLogger(hclog.NewNullLogger()), host.WithCallTimeout(100*time.Millisecond))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	svc, err := host.Dispense[contract.Service](client, "svc")
	if err != nil {
		fmt.Println(err)
		return
	}
	err = svc.Block("never opened")
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	fmt.Println(err)
	// Output:
	// true
	// refbroker: contract.Service.Block: no answer within the call timeout of 100ms (Options.CallTimeout): context deadline exceeded
}

// Manager.LoadAs names a plugin; Unload ends it and frees the name.
func ExampleManager_LoadAs() {
	m := host.NewManager(host.LoadOptions(host.WithLogger(hclog.NewNullLogger())))
	defer m.Close()
	if err := m.LoadAs("calc", pluginPath("svcplugin")); err != nil {
		fmt.Println(err)
		return
	}
	svc, err := host.DispenseFrom[contract.Service](m, "calc", "svc")
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := svc.Sum(1, 2, 3)
	fmt.Println(n, err, m.Names())
	fmt.Println(m.Unload("calc"), m.Names())
	// Output:
	// 6 <nil> [calc]
	// <nil> []
}

func ExampleInProcess() {
	// The test plugin's service, served in this process: what crosses,
	// crosses as it would between host and plugin.
	client, err := host.InProcess(map[string]any{"svc": contract.NewService(nil)}, host.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	svc, err := host.Dispense[contract.Service](client, "svc")
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := svc.Apply(func(x int) int { return x + 1 }, 41)
	fmt.Println(n, err)
	// Output: 42 <nil>
}
