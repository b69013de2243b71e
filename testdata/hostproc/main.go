// Command hostproc is a host for the tests: it loads the plugin named by
// its argument, prints the plugin's process ID, and waits to be killed.
// With "-reattach" first, it loads the plugin WithReattachable, prints its
// ReattachInfo as JSON, and exits without closing it. With "-crash N"
// first, it loads the plugin N times, and each time has it exit as its
// first call (svc's Exit), then closes it; it logs at debug level, and
// exits 0 if every life went so.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/refplug/refplug/host"
	"github.com/refplug/refplug/testdata/contract"
)

func main() {
	logger := host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: os.Stderr}))
	if len(os.Args) == 3 && os.Args[1] == "-reattach" {
		c, err := host.Load(os.Args[2], logger, host.WithReattachable(), host.WithAutoMTLS(false))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		info, err := c.ReattachInfo()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		b, _ := json.Marshal(info)
		fmt.Println(string(b))
		os.Exit(0) // without Close: the plugin stays for the next host
	}
	if len(os.Args) == 4 && os.Args[1] == "-crash" {
		n, _ := strconv.Atoi(os.Args[2])
		logger := host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: os.Stderr}))
		for range n {
			c, err := host.Load(os.Args[3], logger)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			svc, err := host.Dispense[contract.Service](c, "svc")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			svc.Exit(1)
			for !c.Exited() {
				time.Sleep(time.Millisecond)
			}
			c.Close()
		}
		os.Exit(0)
	}
	c, err := host.Load(os.Args[1], logger)
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
