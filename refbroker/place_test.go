package refbroker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refplug/refplug/internal/testutil"
)

// Tests of filled bytes read straight into the caller's buffer
// (frameReader.placeable).

// returnFrame is a return to call seq, in a frame: status, count n, the
// error's encoding, and the filled bytes, then extra.
func returnFrame(seq uint64, status byte, n int64, errEnc []byte, filled, extra []byte) []byte {
	body := []byte{msgReturn}
	body = binary.AppendUvarint(body, seq)
	body = append(body, status)
	body = binary.AppendVarint(body, n)
	body = append(body, errEnc...)
	body = binary.AppendUvarint(body, uint64(len(filled)))
	body = append(body, filled...)
	body = append(body, extra...)
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

func seeded(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + seed)
	}
	return b
}

// TestPlaceFilledBytes: a frame is placed only when it is the return the
// caller waits for, succeeding, with as many bytes filled as its count,
// no more than the buffer holds, and nothing after them; then the frame
// ends where they begin and the buffer holds them, and nothing past them
// is written. Any other frame comes whole and the buffer is not touched.
func TestPlaceFilledBytes(t *testing.T) {
	const seq = 7
	data := seeded(40000, 1)
	nilErr := []byte{errTagNil}
	for _, tc := range []struct {
		name   string
		frame  []byte
		want   bool // placed
		dstLen int
	}{
		{"the awaited return", returnFrame(seq, statusOK, 40000, nilErr, data, nil), true, 64 << 10},
		{"filling the whole buffer", returnFrame(seq, statusOK, 40000, nilErr, data, nil), true, 40000},
		{"another call's return", returnFrame(seq+1, statusOK, 40000, nilErr, data, nil), false, 64 << 10},
		{"a count other than the bytes filled", returnFrame(seq, statusOK, 39999, nilErr, data, nil), false, 64 << 10},
		{"a negative count", returnFrame(seq, statusOK, -40000, nilErr, data, nil), false, 64 << 10},
		{"bytes after the filled ones", returnFrame(seq, statusOK, 40000, nilErr, data, []byte{1, 2, 3}), false, 64 << 10},
		{"more than the buffer holds", returnFrame(seq, statusOK, 40000, nilErr, data, nil), false, 39999},
		{"an error with the count", returnFrame(seq, statusOK, 40000, []byte{errTagSentinel, 3, 'E', 'O', 'F'}, data, nil), false, 64 << 10},
		{"a failed call", returnFrame(seq, statusFailed, 40000, nilErr, data, nil), false, 64 << 10},
		{"a short frame", returnFrame(seq, statusOK, 100, nilErr, data[:100], nil), false, 64 << 10},
	} {
		dst := bytes.Repeat([]byte{0xAA}, tc.dstLen)
		f := frameReader{br: bufio.NewReaderSize(bytes.NewReader(tc.frame), 4096), want: &placement{seq: seq, dst: dst}}
		frame, over, err := f.next(1 << 30)
		if err != nil || over != nil {
			t.Fatalf("%s: %v %v", tc.name, err, over)
		}
		_, k := binary.Uvarint(tc.frame)
		whole := tc.frame[k:]
		switch {
		case f.placed != tc.want:
			t.Errorf("%s: placed = %v, want %v", tc.name, f.placed, tc.want)
		case tc.want && (!bytes.Equal(frame, whole[:len(whole)-len(data)]) || !bytes.Equal(dst[:len(data)], data) || bytes.Count(dst[len(data):], []byte{0xAA}) != len(dst)-len(data)):
			t.Errorf("%s: placed wrongly: a frame of %d bytes (want %d); data in place %v; the rest of the buffer untouched %v", tc.name, len(frame), len(whole)-len(data), bytes.Equal(dst[:len(data)], data), bytes.Count(dst[len(data):], []byte{0xAA}) == len(dst)-len(data))
		case !tc.want && (!bytes.Equal(frame, whole) || bytes.Count(dst, []byte{0xAA}) != len(dst)):
			t.Errorf("%s: the frame did not come whole (%v), or the buffer was written (%v)", tc.name, bytes.Equal(frame, whole), bytes.Count(dst, []byte{0xAA}) != len(dst))
		}
	}
}

// TestPlaceAnyFrame: whatever a frame's first bytes say (here, a valid
// return's with bytes changed at random), the frame comes back whole, or
// placed exactly: its head, then the filled bytes in the buffer, nothing
// written past them.
func TestPlaceAnyFrame(t *testing.T) {
	const seq = 300
	rng := rand.New(rand.NewPCG(1, 2))
	data := seeded(20000, 3)
	valid := returnFrame(seq, statusOK, int64(len(data)), []byte{errTagNil}, data, nil)
	_, k := binary.Uvarint(valid)
	placed := 0
	for i := range 3000 {
		body := bytes.Clone(valid[k:])
		for range 1 + rng.IntN(3) {
			if i%4 != 0 { // a quarter stay valid
				body[rng.IntN(12)] = byte(rng.IntN(256))
			}
		}
		if i%7 == 0 {
			body = body[:len(body)-rng.IntN(40)]
		}
		frame := append(binary.AppendUvarint(nil, uint64(len(body))), body...)
		dst := bytes.Repeat([]byte{0xAA}, 16000+rng.IntN(8000))
		f := frameReader{br: bufio.NewReaderSize(bytes.NewReader(frame), 4096), want: &placement{seq: seq, dst: dst}}
		got, _, err := f.next(1 << 30)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !f.placed {
			if !bytes.Equal(got, body) || bytes.Count(dst, []byte{0xAA}) != len(dst) {
				t.Fatalf("frame %d, not placed: whole %v, buffer untouched %v", i, bytes.Equal(got, body), bytes.Count(dst, []byte{0xAA}) == len(dst))
			}
			continue
		}
		placed++
		n := len(body) - len(got)
		if !bytes.Equal(append(bytes.Clone(got), dst[:n]...), body) || bytes.Count(dst[n:], []byte{0xAA}) != len(dst)-n {
			t.Fatalf("frame %d placed wrongly", i)
		}
	}
	if placed == 0 {
		t.Error("no frame was placed")
	}
}

// stutter returns its data in reads of at most step bytes, failing once
// after failAt bytes, as a read interrupted by a deadline does.
type stutter struct {
	data   []byte
	step   int
	failAt int
	failed bool
}

var errStutter = errors.New("interrupted")

func (s *stutter) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), s.step, len(s.data))
	if !s.failed && s.failAt >= 0 {
		if s.failAt == 0 {
			s.failed = true
			return 0, errStutter
		}
		n = min(n, s.failAt)
		s.failAt -= n
	}
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// TestPlacingInterrupted: a caller interrupted while its filled bytes are
// read into its buffer leaves, from then on, its buffer alone: whoever
// reads next gets the whole frame, in a buffer of the frame's own. So is
// one interrupted while the frame's first bytes are read.
func TestPlacingInterrupted(t *testing.T) {
	const seq = 3
	data := seeded(200000, 5)
	frame := returnFrame(seq, statusOK, int64(len(data)), []byte{errTagNil}, data, nil)
	_, k := binary.Uvarint(frame)
	whole := frame[k:]
	for _, failAt := range []int{k + 10, k + 40, 5000, 100000, len(frame) - 1} {
		dst := bytes.Repeat([]byte{0xAA}, 256<<10)
		s := &stutter{data: frame, step: 3000, failAt: failAt}
		f := frameReader{br: bufio.NewReaderSize(s, 4096), want: &placement{seq: seq, dst: dst}}
		if _, _, err := f.next(1 << 30); !errors.Is(err, errStutter) {
			t.Fatalf("interrupted at %d: %v; want the read's error", failAt, err)
		}
		before := bytes.Clone(dst)
		f.want = nil // another reader goes on
		got, _, err := f.next(1 << 30)
		if err != nil || f.placed || !bytes.Equal(got, whole) {
			t.Errorf("interrupted at %d, the next reader got %d bytes (want %d), placed %v, equal %v: %v", failAt, len(got), len(whole), f.placed, bytes.Equal(got, whole), err)
		}
		if !bytes.Equal(dst, before) {
			t.Errorf("interrupted at %d: the caller's buffer was written after it was let go", failAt)
		}
	}
}

// filler fills the caller's buffer as the buffer's first 9 bytes say: a
// count (8 bytes) and whether to end with io.EOF; its bytes are a pattern
// of the count.
// filler's methods take their orders in the buffer (askFill), which
// crosses for them: io.Reader's Read itself gets a zeroed one.
type filler interface {
	ReadOrder(p []byte) (int, error)
	ReadChunk(ctx context.Context, p []byte) (int, error)
}

type fillerProxy struct{ *Ref }

func (p fillerProxy) ReadOrder(b []byte) (int, error) {
	var n int
	err := p.Invoke("ReadOrder", []any{b}, &n)
	return n, err
}

func (p fillerProxy) ReadChunk(ctx context.Context, b []byte) (int, error) {
	var n int
	err := p.Invoke("ReadChunk", []any{ctx, b}, &n)
	return n, err
}

func init() { RegisterInterface[filler](func(r *Ref) filler { return fillerProxy{r} }) }

type fillerImpl struct{}

func (fillerImpl) ReadOrder(p []byte) (int, error) {
	n := int(binary.LittleEndian.Uint64(p))
	eof := p[8] == 1
	copy(p[:n], seeded(n, n))
	if eof {
		return n, io.EOF
	}
	return n, nil
}

func (f fillerImpl) ReadChunk(_ context.Context, p []byte) (int, error) { return f.ReadOrder(p) }

// askFill sets p's first bytes to ask fillerImpl for n bytes.
func askFill(p []byte, n int, eof bool) {
	binary.LittleEndian.PutUint64(p, uint64(n))
	p[8] = 0
	if eof {
		p[8] = 1
	}
}

// TestFilledReturnsPlaced: through real calls, a caller that reads its own
// return gets what a method filled straight into its buffer when it can,
// and every read, placed or not, comes back as in process: the count, the
// error, p[:n] filled, and p[n:] as the caller left it.
func TestFilledReturnsPlaced(t *testing.T) {
	client, _ := quietPair(t, map[string]any{"f": fillerImpl{}}, noWrap)
	f, err := Dispense[filler](client, "f")
	if err != nil {
		t.Fatal(err)
	}
	placed := client.rd.fr.nPlaced.Load()
	for _, tc := range []struct {
		size, n int
		eof     bool
		place   bool
	}{
		{1 << 20, 1 << 20, false, true},
		{1 << 20, 300000, false, true},
		{1 << 20, 300000, true, false}, // the error comes with the bytes
		{1 << 20, 16, false, false},    // too few to be worth it
		{64 << 10, 64 << 10, false, true},
		{100, 100, false, false},
		{1 << 20, 0, false, false},
	} {
		p := bytes.Repeat([]byte{0xAA}, tc.size)
		askFill(p, tc.n, tc.eof)
		left := bytes.Clone(p)
		testutil.Eventually(t, "the reader role to be free", roleIs(client, roleFree))
		n, err := f.ReadOrder(p)
		wantErr := error(nil)
		if tc.eof {
			wantErr = io.EOF
		}
		if n != tc.n || err != wantErr || !bytes.Equal(p[:n], seeded(tc.n, tc.n)) || !bytes.Equal(p[n:], left[n:]) {
			t.Errorf("a read of %d into %d bytes (EOF %v): %d, %v; filled right %v, the rest as left %v", tc.n, tc.size, tc.eof, n, err, bytes.Equal(p[:n], seeded(tc.n, tc.n)), bytes.Equal(p[n:], left[n:]))
		}
		now := client.rd.fr.nPlaced.Load()
		if did := now > placed; did != tc.place {
			t.Errorf("a read of %d into %d bytes (EOF %v): placed %v, want %v", tc.n, tc.size, tc.eof, did, tc.place)
		}
		placed = now
	}
	// At once, each caller's bytes land in its own buffer, whoever reads.
	done := make(chan error, 4)
	for g := range 4 {
		go func() {
			p := make([]byte, 256<<10+g)
			for i := range 30 {
				n := 200000 + 1000*g + i
				askFill(p, n, false)
				got, err := f.ReadOrder(p)
				if err == nil && (got != n || !bytes.Equal(p[:n], seeded(n, n))) {
					err = errors.New("wrong data")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Errorf("concurrent reads: %v", err)
		}
	}
}

// countingTrickle is a trickle that counts the bytes read through it.
type countingTrickle struct {
	trickle
	n *atomic.Int64
}

func (c countingTrickle) Read(b []byte) (int, error) {
	n, err := c.trickle.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// TestPlacedReadInterrupted: a caller whose context ends while its filled
// bytes trickle into its buffer returns at once, and its buffer is not
// written after it returned; the next calls get their own bytes.
func TestPlacedReadInterrupted(t *testing.T) {
	var read atomic.Int64
	client, _ := quietPair(t, map[string]any{"f": fillerImpl{}}, func(c net.Conn) net.Conn { return countingTrickle{trickle{c}, &read} })
	f, err := Dispense[filler](client, "f")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		p := make([]byte, 2<<20)
		askFill(p, len(p), false)
		testutil.Eventually(t, "the reader role to be free", roleIs(client, roleFree))
		untailed := client.rd.fr.nUntailed.Load()
		ctx, cancel := context.WithCancel(context.Background())
		// Cancel once the return is partly in: its filled bytes go into p.
		base, at := read.Load(), int64(100<<10+i*400<<10)
		go func() {
			defer cancel()
			for deadline := time.Now().Add(10 * time.Second); read.Load()-base <= at && time.Now().Before(deadline); {
				time.Sleep(50 * time.Microsecond)
			}
		}()
		_, err := f.ReadChunk(ctx, p)
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a 2 MiB read through a trickle, cancelled %d KiB into its return: %v", at>>10, err)
		}
		if client.rd.fr.nUntailed.Load() == untailed {
			t.Fatalf("cancelled %d KiB into its return, the read was not interrupted while placing", at>>10)
		}
		left := bytes.Clone(p)
		q := make([]byte, 20000)
		askFill(q, 20000, false)
		if n, err := f.ReadOrder(q); err != nil || n != 20000 || !bytes.Equal(q, seeded(20000, 20000)) {
			t.Fatalf("the read after an interrupted one: %d, %v", n, err)
		}
		if !bytes.Equal(p, left) {
			t.Fatalf("the interrupted caller's buffer was written after its read returned")
		}
	}
}
