//go:build unix

package chatroom

import (
	"net"
	"syscall"
)

// On Unix the room uses a TCP or Unix-domain connection's socket directly
// for two things the net package does not offer: waiting for input without
// a read buffer, and writing without ever blocking.

// rawSocket returns conn's socket if conn is a *net.TCPConn or a
// *net.UnixConn, and nil otherwise (TLS, net.Pipe, adapters): those get
// neither of the two. A type that merely embeds one of them shows the
// socket too, but may read or write differently (a sniffer that has
// buffered input, a wrapper that counts or transforms what is written), so
// it is served only through its own Read and Write.
func rawSocket(conn net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := conn.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readiness returns a function that blocks until the socket has input or
// an error to report, without reading it: it peeks one byte with MSG_PEEK
// under the runtime's poller, so the goroutine waits as it would in Read,
// with the connection's read deadline, but without a buffer.
func readiness(rc syscall.RawConn) func() error {
	return func() error { return rc.Read(peek) }
}

func peek(fd uintptr) bool {
	var b [1]byte
	// The runtime keeps the socket non-blocking: no input is EAGAIN.
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
	// Input, the end of input (0 bytes), or an error: Read reports it.
	return err != syscall.EAGAIN && err != syscall.EINTR
}

// socketWriter makes single non-blocking writes to sockets. The room
// goroutine owns one, so that its callback is bound once and a write
// allocates nothing.
type socketWriter struct {
	p     []byte
	n     int
	err   error
	write func(fd uintptr) bool // w.writeOnce
}

func newSocketWriter() *socketWriter {
	w := new(socketWriter)
	w.write = w.writeOnce
	return w
}

func (w *socketWriter) writeOnce(fd uintptr) bool {
	w.n, w.err = syscall.Write(int(fd), w.p)
	return true // never wait for the socket: what did not fit is a writer goroutine's
}

// tryWrite writes as much of p to the socket as it takes at once, and
// returns how much that was. It never blocks. Any error (a full socket, a
// closed connection, a passed deadline) reports 0: the caller then leaves
// the rest to a writer goroutine, which waits, or meets the error itself.
func (w *socketWriter) tryWrite(rc syscall.RawConn, p []byte) int {
	w.p = p
	err := rc.Write(w.write)
	w.p = nil
	if err != nil || w.err != nil || w.n < 0 {
		return 0
	}
	return w.n
}
