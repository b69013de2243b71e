package refbroker_test

import (
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/internal/testutil"
	"github.com/refplug/refplug/refbroker"
)

// TestFailureInLastResultIsNotLoggedAsLost: a failed call whose last
// result is a registered failure type hands the caller the failure, as
// an error result would; the caller's log must not call it an error
// swallowed into zero values.
func TestFailureInLastResultIsNotLoggedAsLost(t *testing.T) {
	a, b := net.Pipe()
	server := refbroker.NewConn(a, refbroker.Options{Roots: map[string]any{"accounts": accounts{}}, Logger: hclog.NewNullLogger()})
	defer server.Close()
	var logged testutil.Buffer
	client := refbroker.NewConn(b, refbroker.Options{Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logged})})
	defer client.Close()

	acc, err := refbroker.Dispense[Accounts](client, "accounts")
	if err != nil {
		t.Fatal(err)
	}
	if _, ae := acc.Balance("x"); ae == nil || ae.Status != 500 {
		t.Fatalf("Balance after a panic = %v; want the registered failure", ae)
	}
	if s := logged.String(); strings.Contains(s, "zero values") || strings.Contains(s, "[ERROR]") {
		t.Errorf("the caller's log reports a failure its caller was given:\n%s", s)
	}
}
