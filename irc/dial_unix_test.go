//go:build unix

package irc_test

import (
	"net"
	"syscall"
	"testing"
)

// smallBufferDialer dials with a small kernel receive buffer, so that a
// client that does not read fills the hub's socket after a few hundred
// kilobytes, not megabytes.
func smallBufferDialer(testing.TB) *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
}
