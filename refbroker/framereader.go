package refbroker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// frameReader reads frames from the stream. A read that fails with a
// timeout (a caller reading for its own return is interrupted that way
// when its context ends, see reader.go) keeps what it had read, so that
// the next read, by whoever reads next, goes on where it stopped.
type frameReader struct {
	br   *bufio.Reader
	hdr  [binary.MaxVarintLen64]byte
	nhdr int    // bytes of the length prefix read so far
	size int    // the length of the frame being read, once it is known
	body []byte // its buffer, which grows as its bytes arrive (frameStep)
	have int    // bytes of body read so far
	// An oversized frame being skipped: its length, its first bytes
	// (type and sequence number, to fail its call) and what is left.
	over     bool
	overSize uint64
	overHead []byte
	overLeft uint64
}

// oversized is a frame over the size limit that was skipped unread.
type oversized struct {
	size uint64
	head []byte // up to its first 16 bytes
}

var errLengthOverflow = errors.New("a frame's length prefix overflows 64 bits")

// next returns the next frame, or, for one longer than max, what is known
// of it once it has been skipped. On an error, what was read is kept.
func (f *frameReader) next(max int) (frame []byte, over *oversized, err error) {
	if f.body == nil && !f.over {
		if err := f.header(max); err != nil {
			return nil, nil, err
		}
	}
	if f.over {
		return f.skip()
	}
	for f.have < f.size {
		if f.have == len(f.body) {
			f.body = f.grow()
		}
		n, err := f.br.Read(f.body[f.have:])
		f.have += n
		if err != nil && f.have < f.size {
			return nil, nil, unexpected(err)
		}
	}
	frame, f.body, f.have, f.size = f.body, nil, 0, 0
	return frame, nil, nil
}

// frameStep bounds what a length prefix alone makes the reader allocate:
// a longer frame's buffer starts at frameStep and grows fourfold each time
// it is full (to the whole frame once that is at most frameStep more), so
// it holds at most four times the bytes that have arrived, plus
// frameStep. A peer that announces 64 MiB and sends ten bytes costs 4 MiB,
// not 64; a real 64 MiB message costs two copies (4 and 16 MiB), a 16 MiB
// one a copy of 4.
const frameStep = 4 << 20

// grow returns the frame's buffer with room for more of it, its bytes so
// far copied over.
func (f *frameReader) grow() []byte {
	n := 4 * len(f.body)
	if n+frameStep >= f.size {
		n = f.size
	}
	// append clears only the new part (make and copy would clear all).
	return append(f.body[:f.have:f.have], make([]byte, n-f.have)...)
}

// header reads the length prefix and sets up the frame it announces.
func (f *frameReader) header(max int) error {
	for {
		if f.nhdr > 0 {
			n, k := binary.Uvarint(f.hdr[:f.nhdr])
			switch {
			case k < 0 || (k == 0 && f.nhdr == len(f.hdr)):
				return errLengthOverflow
			case k > 0:
				f.nhdr = 0
				if n > uint64(max) {
					f.over, f.overSize, f.overLeft = true, n, n
					f.overHead = make([]byte, 0, min(n, 16))
				} else {
					f.size, f.have = int(n), 0
					f.body = getFrame(min(f.size, frameStep))
				}
				return nil
			}
		}
		b, err := f.br.ReadByte()
		if err != nil {
			if err == io.EOF && f.nhdr > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		f.hdr[f.nhdr] = b
		f.nhdr++
	}
}

// skip reads past an oversized frame, keeping its first bytes.
func (f *frameReader) skip() ([]byte, *oversized, error) {
	for len(f.overHead) < cap(f.overHead) {
		b, err := f.br.ReadByte()
		if err != nil {
			return nil, nil, unexpected(err)
		}
		f.overHead = append(f.overHead, b)
		f.overLeft--
	}
	for f.overLeft > 0 {
		n, err := f.br.Discard(int(min(f.overLeft, 1<<20)))
		f.overLeft -= uint64(n)
		if err != nil {
			return nil, nil, unexpected(err)
		}
	}
	o := &oversized{size: f.overSize, head: f.overHead}
	f.over, f.overHead = false, nil
	return nil, o, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
