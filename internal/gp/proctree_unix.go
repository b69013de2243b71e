//go:build unix

package gp

import (
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
)

// GroupEnv tells a plugin that its host started it as the leader of a
// process group of its own (see OwnGroup).
const GroupEnv = "REFPLUG_PROCESS_GROUP"

// OwnGroup makes cmd start the plugin as the leader of a new process
// group, so that the plugin and every process it starts can be ended
// together (KillGroup), whatever they hold open: a descendant holding the
// plugin's stderr would otherwise keep go-plugin, and so Close, waiting
// for as long as it lives. cmd.Cancel (for exec.CommandContext) ends the
// whole group; once leaderGone is true (the plugin itself has exited) it
// reports the process done, so that its exit status is not taken for a
// cancellation.
func OwnGroup(cmd *exec.Cmd, leaderGone *atomic.Bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Env = append(cmd.Env, GroupEnv+"=1")
	cmd.Cancel = func() error {
		err := KillGroup(cmd.Process.Pid)
		if leaderGone.Load() {
			return os.ErrProcessDone
		}
		return err
	}
}

// KeepOwnGroup sets Setpgid again, after the host's user may have
// replaced cmd.SysProcAttr (host.WithCmd).
func KeepOwnGroup(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}

// KillGroup ends the process group led by pid (the plugin and its
// descendants) with SIGKILL.
func KillGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if err == syscall.ESRCH {
		return os.ErrProcessDone
	}
	return err
}

// LeadsOwnGroup reports, in a plugin, whether its host started it as the
// leader of a process group of its own, and forgets the variable that said
// so (the plugin's own children must not inherit it).
func LeadsOwnGroup() bool {
	v, ok := os.LookupEnv(GroupEnv)
	os.Unsetenv(GroupEnv)
	return ok && v == "1" && syscall.Getpgrp() == os.Getpid()
}

// IgnoreBrokenPipes makes a write to a closed stdout or stderr (the host
// died) fail with EPIPE instead of ending the process with SIGPIPE.
func IgnoreBrokenPipes() { signal.Ignore(syscall.SIGPIPE) }
