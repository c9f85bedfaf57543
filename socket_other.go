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

func readiness(syscall.RawConn) func() error { return nil }

type socketWriter struct{}

func newSocketWriter() *socketWriter { return new(socketWriter) }

func (*socketWriter) tryWrite(syscall.RawConn, []byte) int { return 0 }
