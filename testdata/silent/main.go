// Command silent is a test program that completes go-plugin's handshake
// (without AutoMTLS) and then never answers: what a stopped or wedged
// plugin looks like to the host after the handshake.
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

func main() {
	dir, err := os.MkdirTemp("", "silent")
	if err != nil {
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.Exit(1)
	}
	fmt.Printf("1|1|unix|%s|netrpc|\n", path)
	var held []net.Conn
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		held = append(held, c) // accepted, and never answered
	}
}
