package contract

// The test plugin's streaming methods: readers, writers, files and
// connections passed in or handed back (the rest of service is in
// service.go).

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
)

func (s *service) Pour(w io.Writer, n, size int) (int, string, error) {
	return s.Flood(func() error {
		_, err := w.Write(make([]byte, size))
		return err
	}, n)
}

func (s *service) Copy(w io.Writer, r io.Reader) (int64, error) { return io.Copy(w, r) }

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func (s *service) Walk(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			out = append(out, path+"/")
			return nil
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(string(data), "\n")
		out = append(out, fmt.Sprintf("%s %d %s", path, len(data), first[:min(len(first), 8)]))
		return nil
	})
	return out, err
}

func (s *service) Files(big int) (fs.FS, error) { return FilesTree(big), nil }

func (s *service) OpenBlob(n int) (Blob, error) { return blob{bytes.NewReader(Pattern(n))}, nil }

type blob struct{ r *bytes.Reader }

func (b blob) Read(p []byte) (int, error)              { return b.r.Read(p) }
func (b blob) ReadAt(p []byte, off int64) (int, error) { return b.r.ReadAt(p, off) }
func (b blob) Close() error                            { return nil }
func (b blob) Size() (int64, error)                    { return b.r.Size(), nil }
func (b blob) ReadChunk(ctx context.Context, p []byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}

func (b blob) Scribble(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xFF
	}
	return len(p), nil
}

func (s *service) Unzip(r io.ReaderAt, size int64) (map[string]string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	files := make(map[string]string, len(zr.File))
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
		files[f.Name] = string(b)
	}
	return files, nil
}

func (s *service) Tail(r io.ReadSeeker, off int64) (int64, []byte, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, nil, err
	}
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return size, nil, err
	}
	rest, err := io.ReadAll(r)
	return size, rest, err
}

func (s *service) OpenSeekable(n int) (io.ReadSeekCloser, error) {
	return nopSeekCloser{bytes.NewReader(Pattern(n))}, nil
}

type nopSeekCloser struct{ *bytes.Reader }

func (nopSeekCloser) Close() error { return nil }

func (s *service) Backwards(w io.WriterAt, n, chunk int) error {
	data := Pattern(n)
	for end := n; end > 0; end -= chunk {
		start := max(end-chunk, 0)
		if _, err := w.WriteAt(data[start:end], int64(start)); err != nil {
			return err
		}
	}
	return nil
}

func (s *service) Chat(conn io.ReadWriteCloser, n int) (string, error) {
	type result struct {
		b   []byte
		err error
	}
	read := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(conn)
		read <- result{b, err}
	}()
	for i := range n {
		if _, err := fmt.Fprintf(conn, "msg %d\n", i); err != nil {
			conn.Close()
			<-read
			return "", err
		}
	}
	r := <-read
	if err := conn.Close(); r.err == nil {
		r.err = err
	}
	return string(r.b), r.err
}

func (s *service) Producer(n int) (io.ReadCloser, error) {
	return nopCloser{bytes.NewReader(Pattern(n))}, nil
}

type consumer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (c *consumer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *consumer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (s *service) Consumer() (io.WriteCloser, error) {
	c := &consumer{}
	s.mu.Lock()
	s.consumed = c
	s.mu.Unlock()
	return c, nil
}

func (s *service) Consumed() (int, [32]byte, bool, error) {
	s.mu.Lock()
	c := s.consumed
	s.mu.Unlock()
	if c == nil {
		return 0, [32]byte{}, false, fmt.Errorf("no Consumer yet")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Len(), Sum(c.buf.Bytes()), c.closed, nil
}
