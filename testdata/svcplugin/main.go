// Command svcplugin is the test plugin: it serves contract.NewService as
// "svc", as "args" a Thing whose name is its command-line arguments, and,
// when REFPLUG_TEST_VAR is set, as "launch" one whose name says how it was
// started. With REFPLUG_TEST_OLD_START=1 it starts as a plugin of a
// refplug without the early start would (it waits for go-plugin's
// Dispense); with REFPLUG_TEST_QUIT_BY_GOPLUGIN=1 as a plugin of a
// refplug that starts early but is ended through go-plugin's quit (it
// does not take the host's offer to quit when the host hangs up); with
// REFPLUG_TEST_SOCKET_GARBAGE=1 it first writes a byte of
// garbage down its socket, as a broken or hostile plugin might; with
// REFPLUG_TEST_HUGE_FRAME=FILE it serves as "hostile" a hugeFrame that
// announces a frame it never finishes (and creates FILE once it has sent
// the start of it); with REFPLUG_TEST_CALL_TIMEOUT=D its calls into the
// host are bounded by D (plugin.WithCallTimeout); with
// REFPLUG_TEST_MAX_MESSAGE=N its messages by N bytes
// (plugin.WithMaxMessageSize); with REFPLUG_TEST_STDERR=TEXT it first
// writes TEXT to its stderr, where go-plugin's log lines go. Once Serve
// returns it logs "svcplugin: served".
package main

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/refplug/refplug/plugin"
	"github.com/refplug/refplug/testdata/contract"
)

type args struct{}

func (args) Name() string { return strings.Join(os.Args[1:], " ") }

// launch describes how the process was started, for the launch-control
// tests: its working directory, a test variable, and whether it has PATH.
type launch struct{}

func (launch) Name() string {
	wd, _ := os.Getwd()
	return fmt.Sprintf("dir=%s var=%s path=%t", wd, os.Getenv("REFPLUG_TEST_VAR"), os.Getenv("PATH") != "")
}

// hugeFrame writes under refplug's feet, on a duplicate of the plugin's
// socket, as a hostile plugin could.
type hugeFrame struct {
	fd   int
	done string
}

// Announce writes the length prefix of a frame of almost 64 MiB (just
// under the default limit) and its first MiB, creates the file h.done once
// that is written (most of it read by the host: a socket pair buffers far
// less), and never returns.
func (h hugeFrame) Announce() {
	b := binary.AppendUvarint(nil, 64<<20-1<<10)
	b = append(b, make([]byte, 1<<20)...)
	f := os.NewFile(uintptr(h.fd), "socket")
	if _, err := f.Write(b); err == nil {
		os.WriteFile(h.done, nil, 0o600)
	}
	select {}
}

func main() {
	if text := os.Getenv("REFPLUG_TEST_STDERR"); text != "" {
		os.Stderr.WriteString(text)
	}
	roots := map[string]any{"svc": contract.NewService(plugin.Stats), "args": args{}}
	if os.Getenv("REFPLUG_TEST_VAR") != "" {
		roots["launch"] = launch{}
	}
	if os.Getenv("REFPLUG_TEST_OLD_START") == "1" {
		if os.Getenv("REFPLUG_MTLS") != "" {
			os.Setenv("REFPLUG_MTLS", "1") // what an older host asks for
		}
		os.Unsetenv("REFPLUG_EARLY") // which an older plugin ignores
	}
	if os.Getenv("REFPLUG_TEST_QUIT_BY_GOPLUGIN") == "1" {
		os.Unsetenv("REFPLUG_QUIT") // which such a plugin ignores
	}
	if os.Getenv("REFPLUG_TEST_SOCKET_GARBAGE") == "1" {
		if fd, err := strconv.Atoi(os.Getenv("REFPLUG_SOCKET_FD")); err == nil {
			syscall.Write(fd, []byte{0x42})
		}
	}
	if done := os.Getenv("REFPLUG_TEST_HUGE_FRAME"); done != "" {
		if fd, err := strconv.Atoi(os.Getenv("REFPLUG_SOCKET_FD")); err == nil {
			if dup, err := syscall.Dup(fd); err == nil {
				roots["hostile"] = hugeFrame{fd: dup, done: done}
			}
		}
	}
	if os.Getenv("REFPLUG_TEST_OWN_SLOG") == "1" {
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	}
	var opts []plugin.Option
	if d, err := time.ParseDuration(os.Getenv("REFPLUG_TEST_CALL_TIMEOUT")); err == nil {
		opts = append(opts, plugin.WithCallTimeout(d))
	}
	if n, err := strconv.Atoi(os.Getenv("REFPLUG_TEST_MAX_MESSAGE")); err == nil {
		opts = append(opts, plugin.WithMaxMessageSize(n))
	}
	plugin.Serve(roots, opts...)
	plugin.Logger().Info("svcplugin: served")
}
