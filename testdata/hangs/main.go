// Command hangs is not a plugin: it never completes the handshake, and
// stays up until it is killed.
package main

import "time"

func main() {
	time.Sleep(24 * time.Hour)
}
