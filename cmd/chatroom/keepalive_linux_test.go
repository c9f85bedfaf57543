package main

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestListenConfigKeepAlive checks the TCP keep-alive settings of a
// connection accepted through listenConfig, read back from its socket:
// Redis's rule (idle, a third of it between probes, 3 probes), or none.
func TestListenConfigKeepAlive(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                 string
		period               time.Duration
		on, idle, intvl, cnt int
	}{
		{name: "default", period: demoKeepAlive, on: 1, idle: 300, intvl: 100, cnt: 3},
		{name: "30s", period: 30 * time.Second, on: 1, idle: 30, intvl: 10, cnt: 3},
		{name: "off", period: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := listenConfig(tc.period).Listen(context.Background(), "tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			dialed, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
			require.NoError(t, err)
			defer dialed.Close()
			conn, err := ln.Accept()
			require.NoError(t, err)
			defer conn.Close()
			raw, err := conn.(*net.TCPConn).SyscallConn()
			require.NoError(t, err)
			opt := func(level, name int) int {
				var v int
				var optErr error
				require.NoError(t, raw.Control(func(fd uintptr) { v, optErr = syscall.GetsockoptInt(int(fd), level, name) }))
				require.NoError(t, optErr)
				return v
			}
			assert.Equal(t, tc.on, opt(syscall.SOL_SOCKET, syscall.SO_KEEPALIVE), "SO_KEEPALIVE")
			if tc.on == 0 {
				return
			}
			assert.Equal(t, tc.idle, opt(syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE), "TCP_KEEPIDLE")
			assert.Equal(t, tc.intvl, opt(syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL), "TCP_KEEPINTVL")
			assert.Equal(t, tc.cnt, opt(syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT), "TCP_KEEPCNT")
		})
	}
}
