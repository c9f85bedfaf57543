//go:build unix

package chatroom

import (
	"io"
	"net"
	"os"
	"syscall"
)

// On Unix the hub uses a TCP or Unix-domain connection's socket directly
// for two things the net package does not offer: waiting for input without
// a read buffer, and reading and writing without ever blocking (a polled
// client's turn, the hub's flush). The calls themselves are sys_linux.go's
// or sys_unix.go's.

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

// socketInput waits for a socket's input without reading it, so that the
// reader holds no buffer while there is nothing to read; and reads it
// without waiting, for a polled client's turn.
type socketInput struct {
	rc   syscall.RawConn
	has  bool                  // the last peek found input or the end of input
	err  error                 // ... or an error, which the peek took from the socket
	wait func(fd uintptr) bool // in.peekWait, bound once so that a peek does not allocate
	poll func(fd uintptr)      // in.peekPoll, likewise

	p    []byte           // Read's buffer,
	n    int              // what it read,
	rerr error            // and its error
	read func(fd uintptr) // in.readOnce, bound once
}

// readiness returns the input side of the socket rc.
func readiness(rc syscall.RawConn) *socketInput {
	in := &socketInput{rc: rc}
	in.wait, in.poll, in.read = in.peekWait, in.peekPoll, in.readOnce
	return in
}

// await blocks until the socket has input or an error, without reading
// it: it peeks one byte with MSG_PEEK under the runtime's poller, so the
// goroutine waits as it would in Read, with the connection's read
// deadline, but without a buffer. It returns the socket's error, if any:
// a peek takes it from the socket, so the next Read would not see it.
func (in *socketInput) await() error {
	in.err = nil
	if err := in.rc.Read(in.wait); err != nil {
		return err
	}
	return in.err
}

// ready reports at once, without waiting, whether the socket has input or
// the end of input; or returns its error.
func (in *socketInput) ready() (bool, error) {
	in.has, in.err = false, nil
	if err := in.rc.Control(in.poll); err != nil {
		return false, err
	}
	return in.has, in.err
}

func (in *socketInput) peekWait(fd uintptr) bool {
	return in.peek(fd) // false: nothing yet; the runtime waits for the socket
}

func (in *socketInput) peekPoll(fd uintptr) {
	in.peek(fd)
}

// peek reports whether the socket has input, the end of input, or an error
// (kept in in.err), without taking any input.
func (in *socketInput) peek(fd uintptr) bool {
	// The runtime keeps the socket non-blocking: no input is EAGAIN.
	switch _, err := sysPeek(fd); err {
	case syscall.EAGAIN:
		return false
	case nil:
		in.has = true
	default:
		in.err = err
	}
	return true
}

// Read reads what the socket has, without waiting: it is a polled client's
// turn, which reads only once a peek (ready) found input. It reports
// errWouldBlock if there is none after all, and io.EOF at the end of
// input.
func (in *socketInput) Read(p []byte) (int, error) {
	in.p = p
	err := in.rc.Control(in.read)
	n, rerr := in.n, in.rerr
	in.p, in.n, in.rerr = nil, 0, nil
	switch {
	case err != nil:
		return 0, err
	case rerr == syscall.EAGAIN:
		return 0, errWouldBlock
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (in *socketInput) readOnce(fd uintptr) {
	in.n, in.rerr = sysRead(fd, in.p)
}

// socketWriter makes single non-blocking writes to sockets. The hub
// goroutine owns one, so that its callback is bound once and a write
// allocates nothing.
type socketWriter struct {
	p     []byte
	n     int
	err   error
	write func(fd uintptr) // w.writeOnce
}

func newSocketWriter() *socketWriter {
	w := new(socketWriter)
	w.write = w.writeOnce
	return w
}

func (w *socketWriter) writeOnce(fd uintptr) {
	w.n, w.err = sysWrite(fd, w.p) // never waits: what did not fit is a writer goroutine's
}

// tryWrite writes as much of p to the socket as it takes at once, and
// returns how much that was. It never blocks, and does not look at the
// connection's write deadline: only writer goroutines set one. Any error
// (a full socket, a closed connection) reports 0: the caller then leaves
// the rest to a writer goroutine, which waits, or meets the error itself.
// The caller is the connection's only writer (see client).
func (w *socketWriter) tryWrite(rc syscall.RawConn, p []byte) int {
	w.p = p
	err := rc.Control(w.write)
	w.p = nil
	if err != nil || w.err != nil || w.n < 0 {
		return 0
	}
	return w.n
}

// rateLimitedReadBuffer is the kernel's receive buffer for the TCP
// clients of a hub with flood control: small (the kernel's own default
// grows to megabytes), so that what a client sends beyond its rate waits
// on its side, and its writes block, instead of piling up in the hub's
// socket to be read at the rate long after it stopped. 16 KiB is over a
// thousand short lines.
const rateLimitedReadBuffer = 16 << 10

// limitReadBuffer sets the receive buffer of ln's socket to
// rateLimitedReadBuffer, if ln is a TCP listener: the connections it
// accepts inherit it, and the window each offers, from its first SYN-ACK,
// fits it. It is set on the listener and not on each connection because
// an accepted connection has already offered a window for the larger
// buffer: its client may send more than the smaller one holds, the kernel
// drops what overflows, and the client's retransmissions back off for
// seconds at a time, long after the rate allowed its lines.
func limitReadBuffer(ln net.Listener) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rateLimitedReadBuffer)
	})
}
