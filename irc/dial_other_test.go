//go:build !unix

package irc_test

import (
	"net"
	"testing"
)

// smallBufferDialer skips the test: only Unix's receive buffer is set
// here.
func smallBufferDialer(t testing.TB) *net.Dialer {
	t.Skip("a small receive buffer is set on Unix only")
	return nil
}
