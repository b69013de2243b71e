//go:build unix

package refbroker

import (
	"syscall"
	"time"
)

// canSpin: reads can spin on this system (spinread.go).
const canSpin = true

// readFD is the spinning read of s.read's buffer, given to RawConn.Read:
// it tries again for up to spinRead while there is nothing to read, then
// returns false to wait in the poller; it keeps its results in s.read.
func (s *spinReader) readFD(fd uintptr) bool {
	r := &s.read
	for {
		r.n, r.err = syscall.Read(int(fd), r.p)
		switch {
		case r.err == syscall.EINTR:
			continue
		case r.err == syscall.EAGAIN && time.Since(r.start) < spinRead:
			continue
		case r.err == syscall.EAGAIN:
			return false // wait in the poller
		}
		r.caught = time.Since(r.start) < spinRead
		return true
	}
}
