//go:build unix

package chatroom

import (
	"io"
	"syscall"
)

// readiness returns a function that blocks until src, a socket, has input
// or an error to report, without reading it: it peeks one byte with
// MSG_PEEK under the runtime's poller, so the goroutine waits as it would
// in Read, with the connection's read deadline, but without a buffer. It
// returns nil for a reader that is not a socket (TLS, net.Pipe, adapters).
func readiness(src io.Reader) func() error {
	sc, ok := src.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	peek := func(fd uintptr) bool {
		var b [1]byte
		// The runtime keeps the socket non-blocking: no input is EAGAIN.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		// Input, the end of input (0 bytes), or an error: Read reports it.
		return err != syscall.EAGAIN && err != syscall.EINTR
	}
	return func() error { return rc.Read(peek) }
}
