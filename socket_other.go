//go:build !unix

package chatroom

import (
	"io"
	"net"
	"syscall"
)

// Off Unix the hub neither waits for input without a buffer nor writes
// from the hub goroutine: rawSocket reports no socket, so readers keep
// their buffer while idle and every write is a writer goroutine's.

func rawSocket(net.Conn) syscall.RawConn { return nil }

// limitReadBuffer leaves the listener's receive buffer as it is: flood
// control still reads a client at its rate, and what it sends beyond
// that waits in the kernel's buffers as they are.
func limitReadBuffer(net.Listener) {}

type socketInput struct{ rc syscall.RawConn } // rc is never set: there is no socket to wait on

func readiness(syscall.RawConn) *socketInput { return nil }

func (*socketInput) await() error { return nil }

func (*socketInput) ready() (bool, error) { return true, nil }

// Read is never called: only Linux polls (poller_linux.go).
func (*socketInput) Read([]byte) (int, error) { return 0, io.EOF }

type socketWriter struct{}

func newSocketWriter() *socketWriter { return new(socketWriter) }

func (*socketWriter) tryWrite(syscall.RawConn, []byte) int { return 0 }
