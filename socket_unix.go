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

// socketInput waits for a socket's input without reading it, so that the
// reader holds no buffer while there is nothing to read.
type socketInput struct {
	rc   syscall.RawConn
	has  bool                  // the last peek found input or the end of input
	err  error                 // ... or an error, which the peek took from the socket
	wait func(fd uintptr) bool // in.peekWait, bound once so that a peek does not allocate
	poll func(fd uintptr) bool // in.peekPoll, likewise
}

// readiness returns the input side of the socket rc.
func readiness(rc syscall.RawConn) *socketInput {
	in := &socketInput{rc: rc}
	in.wait, in.poll = in.peekWait, in.peekPoll
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
	if err := in.rc.Read(in.poll); err != nil {
		return false, err
	}
	return in.has, in.err
}

func (in *socketInput) peekWait(fd uintptr) bool {
	return in.peek(fd) // false: nothing yet; the runtime waits for the socket
}

func (in *socketInput) peekPoll(fd uintptr) bool {
	in.peek(fd)
	return true // never wait
}

// peek reports whether the socket has input, the end of input, or an error
// (kept in in.err), without taking any input.
func (in *socketInput) peek(fd uintptr) bool {
	var b [1]byte
	// The runtime keeps the socket non-blocking: no input is EAGAIN.
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
	switch err {
	case syscall.EAGAIN, syscall.EINTR:
		return false
	case nil:
		in.has = true
	default:
		in.err = err
	}
	return true
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
