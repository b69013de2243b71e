package gp

import (
	"bytes"
	"encoding/binary"
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
	// say.)
	if pidfdExited(fd) == yes {
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
		// A pidfd is readable once its process has exited. Ask whether it
		// has, rather than trust an event: the poller's readiness from
		// when the pidfd was added is forgotten as the read begins, so a
		// process that exited before would be waited for forever. Where
		// waitid cannot be asked about a pidfd (Linux 5.3), the first
		// wake says it.
		switch pidfdExited(fd) {
		case yes:
			return true
		case no:
			return false
		}
		done := waited
		waited = true
		return done
	})
	return err == nil // or not pollable after all
}

// ExitedNow reports whether the child process pid has exited (or been
// reaped), without waiting and without reaping it: for a caller that must
// not wait for AwaitExit's goroutine to have run.
func ExitedNow(pid int) bool {
	var info [128]byte // siginfo_t: si_signo first
	_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info)), wExited|wNoWait|wNoHang, 0, 0)
	switch {
	case e == syscall.ECHILD: // reaped already (by go-plugin's Wait)
		return true
	case e != 0:
		return false
	}
	return int32(binary.NativeEndian.Uint32(info[:4])) == int32(syscall.SIGCHLD) // WNOHANG leaves it 0 for a running child
}

type answer int

const (
	no answer = iota
	yes
	cannotTell
)

// pidfdExited reports whether the child process of pidfd fd has exited
// (without reaping it).
func pidfdExited(fd uintptr) answer {
	var info [128]byte // siginfo_t: si_signo first
	_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPidfd, fd, uintptr(unsafe.Pointer(&info)), wExited|wNoWait|wNoHang, 0, 0)
	switch {
	case e == syscall.ECHILD: // reaped already
		return yes
	case e != 0:
		return cannotTell
	case int32(binary.NativeEndian.Uint32(info[:4])) == int32(syscall.SIGCHLD): // WNOHANG leaves it 0 for a running child
		return yes
	}
	return no
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

// CanTellHostExiting says whether HostExiting works on this system.
const CanTellHostExiting = true

// HostExiting reports whether process pid (the host that started this
// plugin) is exiting or has exited: gone from /proc, a zombie, or its
// leader marked as exiting (PF_EXITING, which the kernel sets as a
// process begins to exit, before it closes its files). A plugin that finds
// its socket closed can so tell the host's death, whose closing of every
// file it sees first, from an orderly hang-up, without waiting for the
// kernel to give it a new parent.
func HostExiting(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		_, self := os.Stat("/proc/self/stat")
		return self == nil // gone; without /proc, it cannot be told
	}
	// pid (comm) state ppid pgrp session tty tpgid flags ...: comm may
	// hold spaces and parentheses, so read after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 7 {
		return false
	}
	const pfExiting = 0x4
	flags, err := strconv.ParseUint(fields[6], 10, 64)
	return fields[0] == "Z" || fields[0] == "X" || err == nil && flags&pfExiting != 0
}
