package chatroom_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Transports: TLS, Unix sockets, net.Pipe through ServeConn, and
// wrapped connections.

func TestTLS(t *testing.T) {
	t.Parallel()
	serverCfg, clientCfg := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	serveOn(t, tls.NewListener(ln, serverCfg))
	addr := ln.Addr().String()

	dialTLS := func(online int) *client {
		conn, err := tls.Dial("tcp", addr, clientCfg)
		require.NoError(t, err)
		return welcome(t, conn, conn.LocalAddr().String(), online)
	}
	a := dialTLS(1)
	b := dialTLS(2)
	a.Expect(ts+" * %s joined", b)
	a.Send("over tls\n")
	b.Expect(ts+" %s say: over tls", a)
	b.Send("exit\n")
	b.Expect("* bye")
	b.ExpectClosed()
	a.Expect(ts+" * %s left", b)
}

// TestTLSHandshakeIsBounded: a client that opens a TCP connection to a TLS
// room and never says hello is dropped after the write timeout, and takes
// no place in the room meanwhile.
func TestTLSHandshakeIsBounded(t *testing.T) {
	t.Parallel()
	serverCfg, _ := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, tls.NewListener(ln, serverCfg), chatroom.WithWriteTimeout(200*time.Millisecond))
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(waitLimit))
	_, err = bufio.NewReader(conn).ReadByte()
	assert.Error(t, err, "the room hangs up")
	assert.Zero(t, room.Stats().Joined)
}

// TestShutdownDoesNotWaitForTLSHandshakes: a connection that never sends
// its ClientHello is not a member, and a graceful Shutdown of a TLS room
// returns as soon as the members have their goodbye, not when the
// handshake would time out (an hour here). Under synctest over net.Pipe,
// so "as soon as" is exact: no time passes.
func TestShutdownDoesNotWaitForTLSHandshakes(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		serverCfg, clientCfg := selfSigned(t) // in the bubble: valid at its clock
		clientCfg.ServerName = "127.0.0.1"
		room := chatroom.NewRoom(chatroom.WithClock(fixedClock), chatroom.WithWriteTimeout(time.Hour))

		serve := func(name string) (net.Conn, <-chan error) {
			local, remote := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- room.ServeConn(tls.Server(namedConn{remote, name}, serverCfg)) }()
			return local, done
		}
		memberConn, memberDone := serve("member")
		member := welcome(t, tls.Client(memberConn, clientCfg), "member", 1)
		silent, silentDone := serve("silent") // never says a word
		defer silent.Close()
		synctest.Wait() // the silent handshake is waiting for its ClientHello

		start := time.Now()
		shutdownDone := make(chan error, 1)
		go func() { shutdownDone <- room.Shutdown(context.Background()) }()
		member.Expect("* server shutting down")
		member.ExpectClosed()
		require.NoError(t, <-shutdownDone)
		assert.Zero(t, time.Since(start), "Shutdown waited for a handshake")
		assert.ErrorIs(t, <-memberDone, chatroom.ErrRoomClosed)
		assert.ErrorIs(t, <-silentDone, chatroom.ErrRoomClosed)
		assert.Zero(t, room.Stats().Refused)
	})
}

// TestTLSRefusedBeforeHandshake: a TLS connection that its address's
// limits refuse is closed at once, with no handshake and no line, so that
// connections that never send their ClientHello cannot hold the places of
// those waiting to be admitted for the write timeout (an hour here): 300
// of them from one IPv6 /64, more than there are places, and a client from
// another address still joins at once.
func TestTLSRefusedBeforeHandshake(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		serverCfg, clientCfg := selfSigned(t)
		clientCfg.ServerName = "127.0.0.1"
		room := chatroom.NewRoom(chatroom.WithClock(fixedClock), chatroom.WithWriteTimeout(time.Hour),
			chatroom.WithMaxPerHost(1), chatroom.WithJoinRate(0, 0))
		defer room.Close()
		serve := func(addr string) (net.Conn, <-chan error) {
			local, remote := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- room.ServeConn(tls.Server(namedConn{remote, addr}, serverCfg)) }()
			return local, done
		}

		silent, _ := serve("[2001:db8:1:2::1]:1") // its /64's one place, held
		defer silent.Close()
		synctest.Wait() // in its handshake
		for i := range 300 {
			conn, done := serve(fmt.Sprintf("[2001:db8:1:2::%x]:1", i+2))
			start := time.Now()
			require.ErrorIs(t, <-done, chatroom.ErrTooManyFromHost, "connection %d", i+2)
			require.Zero(t, time.Since(start), "connection %d was held before it was refused", i+2)
			n, err := conn.Read(make([]byte, 1))
			assert.Zero(t, n, "a line without a handshake")
			assert.ErrorIs(t, err, io.EOF)
			conn.Close()
		}

		start := time.Now()
		memberConn, _ := serve("[2001:db8:9::1]:1")
		member := welcome(t, tls.Client(memberConn, clientCfg), "[2001:db8:9::1]:1", 1)
		assert.Zero(t, time.Since(start), "the member waited")
		assert.Equal(t, uint64(300), room.Stats().Refused)
		member.Conn.Close()
	})
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "room.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	serveOn(t, ln)

	// A Unix client has no address of its own: the room sees "@" (or ""),
	// and makes the names unique with a suffix.
	dialUnix := func(suffix string, online int) *client {
		conn, err := net.Dial("unix", path)
		require.NoError(t, err)
		return welcome(t, conn, conn.LocalAddr().String()+suffix, online)
	}
	a := dialUnix("", 1)
	b := dialUnix("#2", 2)
	c := dialUnix("#3", 3)
	a.Expect(ts+" * %s joined", b)
	a.Expect(ts+" * %s joined", c)
	a.Send("over a unix socket\n")
	b.Expect(ts+" * %s joined", c)
	b.Expect(ts+" %s say: over a unix socket", a)
	c.Expect(ts+" %s say: over a unix socket", a)
}

func TestServeConnOverPipe(t *testing.T) {
	t.Parallel()
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock))
	defer room.Close()
	alice, aliceDone := pipeClient(t, room, "alice", 1)
	bob, bobDone := pipeClient(t, room, "bob", 2)
	alice.Expect(ts + " * bob joined")

	alice.Send("hi bob\n")
	bob.Expect(ts + " alice say: hi bob")
	bob.Send("exit\n")
	bob.Expect("* bye")
	bob.ExpectClosed()
	alice.Expect(ts + " * bob left")
	assert.NoError(t, <-bobDone, "ServeConn returns nil after exit")

	require.NoError(t, alice.Conn.Close())
	assert.NoError(t, <-aliceDone, "ServeConn returns nil after a hang-up")
}

// TestWrappedTCPConnIsUsedThroughItsMethods serves connections of a type
// that embeds *net.TCPConn, as a protocol sniffer or a metering wrapper
// does, and overrides Read and Write. The socket underneath shows through
// the embedding, but the room must read and write through the wrapper: the
// line the sniffer had already read must be relayed at once, and every
// byte the clients get must have gone through the wrapper's Write.
func TestWrappedTCPConnIsUsedThroughItsMethods(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	wl := &wrappingListener{Listener: ln}
	serveOn(t, wl)
	addr := ln.Addr().String()

	a := dial(t, addr, 1)
	b := dial(t, addr, 2) // the second connection: its wrapper holds "sniffed\n"
	a.Expect(ts+" * %s joined", b)
	a.Expect(ts+" %s say: sniffed", b)

	got := []string{ // every line the two clients were sent, and read
		fmt.Sprintf("* welcome %s, 1 online", a), fmt.Sprintf("* welcome %s, 2 online", b),
		fmt.Sprintf("%s * %s joined", ts, b), fmt.Sprintf("%s %s say: sniffed", ts, b),
	}
	var want int64
	for _, l := range got {
		want += int64(len(l) + 1)
	}
	eventually(t, func() bool { return wl.written.Load() == want }, "every byte went through the wrapper's Write")
}

// wrappingListener wraps each accepted connection in a wrappedConn; the
// second one comes with a line its sniffer had already read.
type wrappingListener struct {
	net.Listener
	accepted int
	written  atomic.Int64 // bytes written through every wrapper
}

func (l *wrappingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted++
	w := &wrappedConn{TCPConn: c.(*net.TCPConn), written: &l.written}
	if l.accepted == 2 {
		w.sniffed = []byte("sniffed\n")
	}
	return w, nil
}

type wrappedConn struct {
	*net.TCPConn
	sniffed []byte // read from the socket before the room got the connection
	written *atomic.Int64
}

func (c *wrappedConn) Read(p []byte) (int, error) {
	if len(c.sniffed) > 0 {
		n := copy(p, c.sniffed)
		c.sniffed = c.sniffed[n:]
		return n, nil
	}
	return c.TCPConn.Read(p)
}

func (c *wrappedConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	c.written.Add(int64(n))
	return n, err
}
