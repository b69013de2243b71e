//go:build !unix

package gp

import (
	"errors"
	"os/exec"
	"sync/atomic"
)

// GroupEnv tells a plugin that its host started it as the leader of a
// process group of its own; there are none here.
const GroupEnv = "REFPLUG_PROCESS_GROUP"

// OwnGroup does nothing where there are no process groups.
func OwnGroup(cmd *exec.Cmd, leaderGone *atomic.Bool) {}

// KeepOwnGroup does nothing where there are no process groups.
func KeepOwnGroup(cmd *exec.Cmd) {}

// KillGroup is not supported where there are no process groups.
func KillGroup(pid int) error { return errors.ErrUnsupported }

// LeadsOwnGroup is false where there are no process groups.
func LeadsOwnGroup() bool { return false }

// CanAwaitExit says whether AwaitExit works on this system.
const CanAwaitExit = false

// AwaitExit is not available here.
func AwaitExit(pid int) error { return errors.ErrUnsupported }

// ExitedNow cannot tell here: it reports false.
func ExitedNow(pid int) bool { return false }

// KillDescendants is not available here.
func KillDescendants() {}

// IgnoreBrokenPipes does nothing here.
func IgnoreBrokenPipes() {}

// CanTellHostExiting says whether HostExiting works on this system.
const CanTellHostExiting = false

// HostExiting cannot tell here.
func HostExiting(int) bool { return false }
