package host_test

import (
	"os/exec"
	"testing"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/refplug/refplug/internal/baseline"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/testdata/contract"
)

func benchSvc(b *testing.B) contract.Service {
	b.Helper()
	c, err := host.Load(bin+"/svcplugin", host.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	svc, err := host.Dispense[contract.Service](c, "svc")
	if err != nil {
		b.Fatal(err)
	}
	return svc
}

// BenchmarkPlainCall: one call with small arguments to a real plugin process.
func BenchmarkPlainCall(b *testing.B) {
	svc := benchSvc(b)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := svc.Sum(1, 2); err != nil || n != 3 {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkCallback: one call passing a func that the plugin calls once.
func BenchmarkCallback(b *testing.B) {
	svc := benchSvc(b)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := svc.Apply(func(x int) int { return x + 1 }, 1); err != nil || n != 2 {
			b.Fatal(n, err)
		}
	}
}

func baselineCalc(b *testing.B) baseline.Calc {
	b.Helper()
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  baseline.Handshake,
		Plugins:          goplugin.PluginSet{"calc": &baseline.Plugin{}},
		Cmd:              exec.Command(bin + "/rpcplugin"),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolNetRPC},
		Logger:           hclog.NewNullLogger(),
	})
	b.Cleanup(c.Kill)
	rc, err := c.Client()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := rc.Dispense("calc")
	if err != nil {
		b.Fatal(err)
	}
	return raw.(baseline.Calc)
}

func BenchmarkBaselinePlainCall(b *testing.B) {
	calc := baselineCalc(b)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := calc.Sum(1, 2); err != nil || n != 3 {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkBaselineCallback(b *testing.B) {
	calc := baselineCalc(b)
	b.ReportAllocs()
	for b.Loop() {
		if n, err := calc.Apply(func(x int) int { return x + 1 }, 1); err != nil || n != 2 {
			b.Fatal(n, err)
		}
	}
}
