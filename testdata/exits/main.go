// Command exits is not a plugin: it prints a line and exits with status 2.
// With REFPLUG_TEST_RAW_STDERR set it first writes what a broken or
// hostile program might: terminal escapes, a NUL, bytes that are not
// UTF-8, and a last line without its newline.
package main

import (
	"fmt"
	"os"
)

func main() {
	if os.Getenv("REFPLUG_TEST_RAW_STDERR") != "" {
		os.Stderr.WriteString("\x1b[2J\x1b[31mred\x1b[0m and a NUL \x00 and \xff\xfe, a bell\a\n")
		fmt.Fprint(os.Stderr, "exits: I am not a plugin\x1b]0;title\x07")
		os.Exit(2)
	}
	fmt.Fprintln(os.Stderr, "exits: I am not a plugin")
	os.Exit(2)
}
