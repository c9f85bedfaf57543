//go:build linux

package chatroom_test

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// TestFloodControlOffersAWindowItsBufferHolds: with flood control on, Serve
// gives its TCP listener the small receive buffer before any handshake, so
// the window each connection offers its client fits that buffer. A buffer
// lowered on the connection after its handshake leaves a window offered
// for megabytes: a client that sends fast overflows the buffer, the kernel
// drops what does not fit, and the client's retransmissions back off for
// seconds at a time, long after its rate allowed its lines (irc's
// TestSlowClientIsEvicted took 26 to 39 s instead of 2 in a third of its
// runs). A connection whose handshake the kernel completed before Serve
// began keeps the kernel's buffer.
func TestFloodControlOffersAWindowItsBufferHolds(t *testing.T) {
	t.Parallel()
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_window_scaling"); err == nil && strings.TrimSpace(string(b)) == "0" {
		t.Skip("TCP window scaling is off on this machine: every window is unscaled")
	}
	for _, tc := range []struct {
		name  string
		opts  []chatroom.Option
		small bool
	}{
		{"flood control", nil, true},
		{"no flood control", []chatroom.Option{noFloodControl}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, addr := startRoom(t, tc.opts...)
			dial(t, addr, 1) // once it is welcomed, Serve has set up the listener
			c := dial(t, addr, 2)
			scale := offeredWindowScale(t, c.Conn)
			if tc.small {
				assert.Zero(t, scale, "the window the hub offers is scaled for a buffer of megabytes")
			} else {
				assert.Positive(t, scale, "the kernel's own buffer offers a scaled window")
			}
		})
	}
}

// offeredWindowScale returns the window scale the other end of conn
// offered in its handshake (tcp_info's tcpi_snd_wscale): 0 for a window
// of at most 64 KiB, more for a larger buffer.
func offeredWindowScale(t *testing.T, conn net.Conn) int {
	t.Helper()
	rc, err := conn.(*net.TCPConn).SyscallConn()
	require.NoError(t, err)
	var info [104]byte // struct tcp_info; its seventh byte holds the window scales
	var errno syscall.Errno
	require.NoError(t, rc.Control(func(fd uintptr) {
		n := uint32(len(info))
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&n)), 0)
	}))
	require.Zero(t, errno, "getsockopt TCP_INFO: %v", errno)
	return int(info[6] & 0x0f) // tcpi_snd_wscale, the low 4 bits
}
