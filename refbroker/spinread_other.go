//go:build !unix

package refbroker

// canSpin: reads do not spin on this system (spinread.go).
const canSpin = false

func (s *spinReader) readFD(uintptr) bool {
	panic("refbroker: a spinning read without canSpin")
}
