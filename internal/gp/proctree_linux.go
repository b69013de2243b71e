package gp

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// CanAwaitExit says whether AwaitExit works on this system.
const CanAwaitExit = true

// AwaitExit blocks until process pid (a child of this process) has
// exited, without reaping it: go-plugin's Wait still does that. It lets the
// host end the plugin's descendants as soon as the plugin is gone. If
// go-plugin's Wait reaps the process first, AwaitExit returns nil too.
//
// It waits on a pidfd in the runtime's poller, which holds no thread (a
// host with hundreds of plugins would otherwise keep as many threads
// blocked); on a kernel without pidfds (before Linux 5.3) it blocks a
// thread in waitid.
func AwaitExit(pid int) error {
	if awaitPidfd(pid) {
		return nil
	}
	return awaitWaitid(pid)
}

// awaitPidfd is AwaitExit through a pidfd, which becomes readable when its
// process exits. It reports false, having waited for nothing, where there
// is no pollable pidfd.
func awaitPidfd(pid int) bool {
	const sysPidfdOpen = 434 // on every architecture Go supports on Linux
	fd, _, e := syscall.Syscall(sysPidfdOpen, uintptr(pid), syscall.O_NONBLOCK, 0)
	switch e {
	case 0:
	case syscall.ESRCH: // reaped already (by go-plugin's Wait)
		return true
	default:
		return false
	}
	// The pid may have been reaped, and taken by another process, before
	// the pidfd was opened: a process that is not this one's child (or
	// is reaped) has no exit for it to wait for. (Linux before 5.4 cannot
	// say: EINVAL.)
	var info [128]byte // siginfo_t
	_, _, e = syscall.Syscall6(syscall.SYS_WAITID, pPidfd, fd, uintptr(unsafe.Pointer(&info)), wExited|wNoWait|wNoHang, 0, 0)
	if e == syscall.ECHILD {
		syscall.Close(int(fd))
		return true
	}
	f := os.NewFile(fd, "pidfd") // non-blocking: in the poller
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	waited := false
	err = rc.Read(func(uintptr) bool {
		// A pidfd is readable only once its process has exited, and the
		// poller reports an fd that is readable when it is added.
		done := waited
		waited = true
		return done
	})
	return err == nil // or not pollable after all
}

// waitid's arguments.
const (
	pPID    = 1
	pPidfd  = 3
	wNoHang = 1
	wExited = 4
	wNoWait = 0x1000000
)

// awaitWaitid is AwaitExit in a blocking waitid.
func awaitWaitid(pid int) error {
	var info [128]byte // siginfo_t
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info)), wExited|wNoWait, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e == syscall.ECHILD { // reaped already (by go-plugin's Wait)
			return nil
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// KillDescendants ends, with SIGKILL, every other process of this
// process's group: in a plugin that leads its own group, the processes it
// started. The plugin calls it as it exits. Scanning /proc takes a few
// milliseconds, so it is skipped when this process has no children (the
// common case; a grandchild whose parent has exited is then missed).
func KillDescendants() {
	if !hasChildren() {
		return
	}
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:strings.IndexByte(s, ' ')]))
		if pgrp, _ := strconv.Atoi(f[2]); pgrp == self && pid != self && pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// hasChildren reports whether any thread of this process has a child
// process, or true if the kernel does not say.
func hasChildren() bool {
	lists, _ := filepath.Glob("/proc/self/task/*/children")
	if len(lists) == 0 {
		return true
	}
	for _, path := range lists {
		b, err := os.ReadFile(path)
		if err != nil || len(strings.TrimSpace(string(b))) > 0 {
			return true
		}
	}
	return false
}
