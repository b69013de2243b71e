// Command exits is not a plugin: it prints a line and exits with status 2.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "exits: I am not a plugin")
	os.Exit(2)
}
