//go:build !linux

package gp

import "os"

// pipeBuffered cannot tell here.
func pipeBuffered(*os.File) (int, bool) { return 0, false }
