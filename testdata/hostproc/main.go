// Command hostproc is a host for the tests: it loads the plugin named by
// its argument, prints the plugin's process ID, and waits to be killed.
// With "-reattach" first, it loads the plugin WithReattachable, prints its
// ReattachInfo as JSON, and exits without closing it. With "-crash N"
// first, it loads the plugin N times, and each time has it exit as its
// first call (svc's Exit), then closes it; with "-close N", it loads the
// plugin N times and closes it at once each time, with no call between.
// Both log at debug level, and exit 0 if every life went so.
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
		check(err)
		info, err := c.ReattachInfo()
		check(err)
		b, _ := json.Marshal(info)
		fmt.Println(string(b))
		os.Exit(0) // without Close: the plugin stays for the next host
	}
	if len(os.Args) == 4 && os.Args[1] == "-crash" {
		n, _ := strconv.Atoi(os.Args[2])
		logger := host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: os.Stderr}))
		for range n {
			c, svc := loadSvc(os.Args[3], logger)
			svc.Exit(1)
			for !c.Exited() {
				time.Sleep(time.Millisecond)
			}
			c.Close()
		}
		os.Exit(0)
	}
	if len(os.Args) == 4 && os.Args[1] == "-close" {
		n, _ := strconv.Atoi(os.Args[2])
		logger := host.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: os.Stderr}))
		for range n {
			c, err := host.Load(os.Args[3], logger)
			check(err)
			check(c.Close())
		}
		os.Exit(0)
	}
	_, svc := loadSvc(os.Args[1], logger)
	pid, err := svc.Pid()
	check(err)
	fmt.Println(pid)
	time.Sleep(time.Hour) // until the test kills us
}

// loadSvc loads the plugin at path and dispenses its "svc".
func loadSvc(path string, opts ...host.Option) (*host.Client, contract.Service) {
	c, err := host.Load(path, opts...)
	check(err)
	svc, err := host.Dispense[contract.Service](c, "svc")
	check(err)
	return c, svc
}

// check ends the process, saying why, if err is not nil.
func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
