// Command hangs never completes go-plugin's handshake. If
// REFPLUG_TEST_PIDFILE names a file, it first writes its process ID there,
// so a test knows it has started.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	if f := os.Getenv("REFPLUG_TEST_PIDFILE"); f != "" {
		os.WriteFile(f, []byte(fmt.Sprint(os.Getpid())), 0o644)
	}
	time.Sleep(time.Hour)
}
