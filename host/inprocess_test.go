package host_test

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/internal/scenario"
	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
	"github.com/refplug/refplug/testdata/contract"
)

// TestInProcess: objects served with InProcess cross as a plugin's do:
// every broker scenario passes against the test plugin's service served
// in this process, as it does against the plugin process. Close ends both
// sides: calls then fail with ErrDisconnected, and Exited says so.
func TestInProcess(t *testing.T) {
	c, err := host.InProcess(map[string]any{"svc": contract.NewService(nil)}, host.WithLogger(testutil.Logger(t, "host")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Transport() != "inprocess" || c.Version() != 1 || c.Exited() {
		t.Errorf("Transport, Version, Exited = %q, %d, %v; want inprocess, 1, false", c.Transport(), c.Version(), c.Exited())
	}
	if err := c.Ping(); err != nil {
		t.Errorf("Ping: %v", err)
	}
	svc := dispenseSvc(t, c)
	scenario.Run(t, svc)
	if _, err := c.ReattachInfo(); err == nil || !strings.Contains(err.Error(), "no plugin process") {
		t.Errorf("ReattachInfo = %v; want an error saying there is no process", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if !c.Exited() {
		t.Error("Exited() = false after Close")
	}
	if state, exited := c.ExitStatus(); state != nil || !exited {
		t.Errorf("ExitStatus = %v, %v; want nil, true", state, exited)
	}
	if _, err := svc.Sum(1, 2); !errors.Is(err, refbroker.ErrDisconnected) {
		t.Errorf("Sum after Close = %v; want ErrDisconnected", err)
	}
}

type noMethods struct{ N int }

// TestInProcessRefuses: InProcess refuses what plugin.Serve refuses, and
// every option that applies only to a plugin process, naming them.
func TestInProcessRefuses(t *testing.T) {
	svc := contract.NewService(nil)
	for _, tc := range []struct {
		objects map[string]any
		opts    []host.Option
		want    string
	}{
		{nil, nil, "no objects to serve"},
		{map[string]any{"svc": svc, "gone": nil}, nil, `the object named "gone" is nil`},
		{map[string]any{"data": noMethods{}}, nil, `the object named "data": host_test.noMethods has no methods`},
		{map[string]any{"svc": svc}, []host.Option{host.WithArgs("x"), host.WithVersions(2)}, "WithArgs, WithVersions apply only to a plugin process"},
		{map[string]any{"svc": svc}, []host.Option{host.WithTLS(&tls.Config{}), host.WithHandshake("K", "V")}, "WithHandshake, WithTLS apply only to a plugin process"},
		{map[string]any{"svc": svc}, []host.Option{host.WithMaxConcurrentCalls(-1)}, "WithMaxConcurrentCalls"},
	} {
		c, err := host.InProcess(tc.objects, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("InProcess(%v) = %v; want an error containing %q", tc.objects, err, tc.want)
		}
		if c != nil {
			c.Close()
		}
	}
}
