//go:build !unix

package chatroom

import (
	"net"
	"syscall"
)

// Off Unix the room neither waits for input without a buffer nor writes
// from the room goroutine: rawSocket reports no socket, so readers keep
// their buffer while idle and every write is a writer goroutine's.

func rawSocket(net.Conn) syscall.RawConn { return nil }

type socketInput struct{ rc syscall.RawConn } // rc is never set: there is no socket to wait on

func readiness(syscall.RawConn) *socketInput { return nil }

func (*socketInput) await() error { return nil }

func (*socketInput) ready() (bool, error) { return true, nil }

type socketWriter struct{}

func newSocketWriter() *socketWriter { return new(socketWriter) }

func (*socketWriter) tryWrite(syscall.RawConn, []byte) int { return 0 }
