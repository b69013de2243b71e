//go:build unix

package gp

import (
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestInheritedSocket: the plugin takes the descriptor the host named,
// closes the original number and removes the variable, so the plugin's own
// children inherit neither.
func TestInheritedSocket(t *testing.T) {
	hostEnd, child, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer hostEnd.Close()
	fd := rawFD(t, child)
	t.Setenv(SocketEnv, strconv.Itoa(fd))
	conn, err := InheritedSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := os.LookupEnv(SocketEnv); ok {
		t.Errorf("%s is still in the environment", SocketEnv)
	}
	if _, err := fcntlGetFD(fd); err != syscall.EBADF {
		t.Errorf("descriptor %d is still open after InheritedSocket (err %v)", fd, err)
	}
	if _, err := hostEnd.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
		t.Errorf("read %q, %v through the inherited socket; want ping", buf, err)
	}
}

// TestInheritedSocketNotASocket: a descriptor that is not a socket is
// reported and left open (it belongs to someone else).
func TestInheritedSocketNotASocket(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	t.Setenv(SocketEnv, strconv.Itoa(int(r.Fd())))
	conn, err := InheritedSocket()
	if conn != nil || err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Fatalf("InheritedSocket on a pipe = %v, %v; want an error saying it is not a socket", conn, err)
	}
	if _, err := fcntlGetFD(int(r.Fd())); err != nil {
		t.Errorf("the pipe was closed: %v", err)
	}
	t.Setenv(SocketEnv, "three")
	if _, err := InheritedSocket(); err == nil || !strings.Contains(err.Error(), `"three" is not a file descriptor`) {
		t.Errorf("InheritedSocket with a bad number = %v", err)
	}
	os.Unsetenv(SocketEnv)
	if conn, err := InheritedSocket(); conn != nil || err != nil {
		t.Errorf("InheritedSocket without the variable = %v, %v; want nothing", conn, err)
	}
}

// TestConnectSocketWrongToken: a socket that does not carry the host's
// token is refused and closed.
func TestConnectSocketWrongToken(t *testing.T) {
	hostEnd, child, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	defer hostEnd.Close()
	t.Setenv(SocketEnv, strconv.Itoa(rawFD(t, child)))
	s := &server{p: &Plugin{Socket: NewSocketSlot(InheritedSocket())}}
	hostEnd.Write(make([]byte, tokenSize)) // zeros
	token := []byte("0123456789abcdef")
	err = s.ConnectSocket(SocketArgs{Token: token}, nil)
	if err == nil || !strings.Contains(err.Error(), "wrong token") {
		t.Fatalf("ConnectSocket with the wrong token = %v", err)
	}
	if n, err := hostEnd.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the refused socket is still open: read %d, %v", n, err)
	}
	if err := s.ConnectSocket(SocketArgs{Token: token}, nil); err == nil || !strings.Contains(err.Error(), "already taken") {
		t.Errorf("a second ConnectSocket = %v; want already taken", err)
	}
}

// rawFD moves f's descriptor to a bare number, as a plugin process
// inherits it (no *os.File that would close it again when collected).
func rawFD(t *testing.T, f *os.File) int {
	fd, err := syscall.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return fd
}

func fcntlGetFD(fd int) (uintptr, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
	if e != 0 {
		return 0, e
	}
	return r, nil
}
