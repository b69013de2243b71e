//go:build unix && !linux

package gp

import "errors"

// CanAwaitExit says whether AwaitExit works on this system.
const CanAwaitExit = false

// AwaitExit is not available here: Close ends the plugin's group after a
// grace period instead.
func AwaitExit(pid int) error { return errors.ErrUnsupported }

// ExitedNow cannot tell here: it reports false.
func ExitedNow(pid int) bool { return false }

// KillDescendants is not available here.
func KillDescendants() {}

// CanTellHostExiting says whether HostExiting works on this system.
const CanTellHostExiting = false

// HostExiting cannot tell here.
func HostExiting(int) bool { return false }
