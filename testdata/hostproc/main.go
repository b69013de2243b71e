// Command hostproc is a host for the tests to kill: it loads the plugin
// named by its argument, prints the plugin's process ID, and waits.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	c, err := host.Load(os.Args[1], host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr})))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	svc, err := host.Dispense[contract.Service](c, "svc")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pid, err := svc.Pid()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(pid)
	time.Sleep(time.Hour) // until the test kills us
}
