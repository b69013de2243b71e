package refbroker

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"sync/atomic"
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
	// base says body begins its allocation and carries no finalizer
	// (takeFrame); frameBase says so of the frame next returned last.
	base, frameBase bool
	// An oversized frame being skipped: its length, its first bytes
	// (type and sequence number, to fail its call) and what is left.
	over     bool
	overSize uint64
	overHead []byte
	overLeft uint64
	// A caller reading for its own return to a method that fills a buffer
	// (want) has the filled bytes read straight into that buffer: the
	// frame's first bytes are read into head (peek) to find whether it is
	// that return and where its filled bytes begin; if so they go into
	// tail, the caller's buffer, and the frame returned ends before them
	// (placed).
	want     *placement
	peek     bool
	head     [placeHead]byte
	tail     []byte
	tailHave int
	placed   bool
	// Frames placed, and frames whose placing was interrupted, so far
	// (for tests).
	nPlaced, nUntailed atomic.Uint64
}

// placement is where a caller that reads for its own return wants the
// bytes filled into its buffer: the return to the call numbered seq, to a
// method that fills (methodPlan.fills) dst, with results (int, error).
type placement struct {
	seq uint64
	dst []byte
}

// placeMin is the smallest frame whose filled bytes are placed: below it
// the copy out of the frame costs less than the look ahead.
const placeMin = 16 << 10

// placeHead is how much of a frame is read to decide where its tail goes:
// more than a return's head (type, sequence number, status, the count, a
// nil error, the filled length: at most 33 bytes).
const placeHead = 64

// oversized is a frame over the size limit that was skipped unread.
type oversized struct {
	size uint64
	head []byte // up to its first 16 bytes
}

var errLengthOverflow = errors.New("a frame's length prefix overflows 64 bits")

// next returns the next frame, or, for one longer than max, what is known
// of it once it has been skipped. On an error, what was read is kept.
//
// placed reports, after a frame is returned, whether its filled bytes went
// into the buffer f.want named rather than into the frame.
func (f *frameReader) next(max int) (frame []byte, over *oversized, err error) {
	f.placed = false
	if f.body == nil && !f.over {
		if err := f.header(max); err != nil {
			return nil, nil, err
		}
	}
	if f.over {
		return f.skip()
	}
	for f.have < f.size && f.tail == nil {
		if f.have == len(f.body) {
			if f.peek {
				f.decide()
				continue
			}
			f.body = f.grow()
		}
		n, err := f.br.Read(f.body[f.have:])
		f.have += n
		if err != nil && f.have < f.size {
			return nil, nil, unexpected(err)
		}
	}
	for f.tailHave < len(f.tail) {
		n, err := f.br.Read(f.tail[f.tailHave:])
		f.tailHave += n
		if err != nil && f.tailHave < len(f.tail) {
			// Whoever reads next goes on into a buffer of the frame's own:
			// the caller whose buffer this is may be on its way out.
			f.untail()
			return nil, nil, unexpected(err)
		}
	}
	if f.placed = f.tail != nil; f.placed {
		f.nPlaced.Add(1)
	}
	frame, f.body, f.have, f.size, f.tail, f.tailHave = f.body, nil, 0, 0, nil, 0
	f.frameBase, f.base = f.base, false
	return frame, nil, nil
}

// decide is called once the first bytes of a frame a caller may want
// placed are in head: if the frame is that caller's return, with its
// filled bytes last, they are read into the caller's buffer (tail) and the
// frame's buffer holds what precedes them; otherwise the frame is read as
// any other.
func (f *frameReader) decide() {
	f.peek = false
	head := f.body[:f.have]
	if at, ok := f.placeable(head); ok {
		body, base := takeFrame(at)
		copy(body, head[:at])
		f.tail = f.want.dst[:f.size-at]
		f.tailHave = copy(f.tail, head[at:])
		f.body, f.have, f.base = body, at, base
		return
	}
	body, base := takeFrame(min(f.size, frameStep))
	copy(body, head)
	f.body, f.base = body, base
}

// placeable reports whether a frame beginning with head is the return
// f.want waits for, succeeding, its count n equal to the bytes filled, its
// error nil, and those bytes, which fit the caller's buffer, the rest of
// the frame; and if so, where they begin. The decoder checks it all again
// (readFilled).
func (f *frameReader) placeable(head []byte) (at int, ok bool) {
	w := f.want
	if w == nil {
		return 0, false
	}
	d := decoder{buf: head}
	if d.byte1() != msgReturn || d.uvarint() != w.seq || d.byte1() != statusOK {
		return 0, false
	}
	count := d.varint()
	if d.byte1() != errTagNil {
		return 0, false
	}
	filled := d.uvarint()
	if d.err != nil || count < 0 || uint64(count) != filled || filled > uint64(len(w.dst)) || uint64(f.size-d.off) != filled {
		return 0, false
	}
	return d.off, true
}

// untail goes back to reading the frame whose filled bytes were being
// placed into a buffer of its own, what was placed copied over.
func (f *frameReader) untail() {
	have := f.have + f.tailHave
	body, base := takeFrame(min(f.size, max(frameStep, have)))
	copy(body, f.body[:f.have])
	copy(body[f.have:], f.tail[:f.tailHave])
	giveFrame(f.body, f.base)
	f.body, f.have, f.tail, f.tailHave, f.base = body, have, nil, 0, base
	f.nUntailed.Add(1)
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
	b := append(f.body[:f.have:f.have], make([]byte, n-f.have)...)
	giveFrame(f.body, f.base)
	f.base = true
	return b
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
					if f.want != nil && f.size >= placeMin && f.size-placeHead <= len(f.want.dst) {
						f.peek = true
						f.body, f.base = f.head[:], false
					} else {
						f.body, f.base = takeFrame(min(f.size, frameStep))
					}
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
