package gp

import (
	"os"
	"syscall"
	"unsafe"
)

// pipeBuffered reports how many bytes wait in the pipe f writes to
// (FIONREAD, which Linux calls TIOCINQ, answers for either end).
func pipeBuffered(f *os.File) (n int, ok bool) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, false
	}
	var v int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&v)))
	}); err != nil || errno != 0 {
		return 0, false
	}
	return int(v), true
}
