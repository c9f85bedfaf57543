package chatroom_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

func TestJoinWelcomesAndAnnounces(t *testing.T) {
	_, addr := startRoom(t)
	a := dial(t, addr, 1)
	b := dial(t, addr, 2)
	a.expect(ts+" * %s joined", b)
	c := dial(t, addr, 3)
	a.expect(ts+" * %s joined", c)
	b.expect(ts+" * %s joined", c)
}

func TestRelayGoesToEveryoneButTheSender(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	a.send("hello\n")
	b.expect(ts+" %s say: hello", a)
	// Had a been sent its own line, it would arrive before b's.
	b.send("hi there\r\n")
	a.expect(ts+" %s say: hi there", b)
}

func TestEmptyLinesAreIgnored(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	a.send("\n\r\n\x00\x1b\r\n") // empty, or empty once cleaned
	a.send("after\n")
	b.expect(ts+" %s say: after", a)
}

func TestExitSaysByeAndCloses(t *testing.T) {
	for _, line := range []string{"exit\n", "EXIT\n", "  Exit \t\r\n", "eXiT\n"} {
		t.Run(strconv.Quote(line), func(t *testing.T) {
			room, addr := startRoom(t)
			a, b := dialPair(t, addr)

			a.send(line)
			a.expect("* bye")
			a.expectClosed()
			b.expect(ts+" * %s left", a)
			eventually(t, func() bool { return room.Stats().Clients == 1 }, "a is gone")
		})
	}
}

func TestNotExitIsRelayed(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)
	for _, text := range []string{"exit now", "exits", "ex it"} {
		a.send(text + "\n")
		b.expect(ts+" %s say: %s", a, text)
	}
}

func TestDisconnectIsAnnounced(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)
	require.NoError(t, b.conn.Close())
	a.expect(ts+" * %s left", b)
}

func TestUnterminatedLastLineIsRelayed(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)
	b.send("last words")
	require.NoError(t, b.conn.(*net.TCPConn).CloseWrite())
	a.expect(ts+" %s say: last words", b)
	a.expect(ts+" * %s left", b)
}

func TestLineTooLong(t *testing.T) {
	const max = 16
	_, addr := startRoom(t, chatroom.WithBufferSize(max))
	a, b := dialPair(t, addr)

	exact := strings.Repeat("x", max)
	tests := []struct {
		name, send string
		relayed    bool
	}{
		{"exactly the limit", exact + "\n", true},
		{"the limit with CRLF", exact + "\r\n", true},
		{"one byte over", exact + "y\n", false},
		{"one byte over with CRLF", exact + "y\r\n", false},
		{"far over", strings.Repeat("z", 10*max) + "\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.send(tt.send)
			if tt.relayed {
				b.expect(ts+" %s say: %s", a, exact)
			} else {
				a.expect("* error: message too long (max %d bytes)", max)
			}
			// The connection stays, and framing is intact.
			a.send("still here\n")
			b.expect(ts+" %s say: still here", a)
		})
	}
}

// TestLineTooLongIsAnsweredAtTheLimit: a client streaming a line with no
// newline is told at once, not when (if ever) its newline comes; the rest
// of the line is discarded as it arrives, and the next line is relayed.
func TestLineTooLongIsAnsweredAtTheLimit(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	a.send(strings.Repeat("m", 1<<20)) // 1 MiB, no newline yet
	a.expect("* error: message too long (max %d bytes)", chatroom.DefaultBufferSize)
	a.send(strings.Repeat("m", 1<<20) + "\nafter\n") // more of it, its end, and a line
	b.expect(ts+" %s say: after", a)
	a.send("again\n")
	b.expect(ts+" %s say: again", a)
	// One error for the whole line: nothing else came back to a.
	require.NoError(t, a.conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := a.in.ReadByte()
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "a second reply for one long line")
}

func TestHostileTextIsCleaned(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	tests := []struct{ name, send, want string }{
		{"tab kept", "a\tb", "a\tb"},
		{"escape sequence", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"bell and backspace", "ding\x07\x08", "ding"},
		{"carriage return inside", "fake\rline", "fakeline"},
		{"DEL", "a\x7fb", "ab"},
		{"C1 CSI", "a\u009b31mb", "a31mb"},
		{"bidi override", "abc\u202edcba", "abcdcba"},
		{"bidi isolates", "\u2066x\u2067y\u2068z\u2069", "xyz"},
		{"bidi marks", "\u200eL\u200fR\u061cA", "LRA"},
		{"line separator forges a line", "hi\u2028" + ts + " * someone left", "hi" + ts + " * someone left"},
		{"paragraph separator", "a\u2029b", "ab"},
		{"invisible characters", "ex\u200bit \u2060x\ufeff", "exit x"},
		{"joiners kept", "\u0915\u094d\u200d\u0937 \U0001F469\u200d\U0001F4BB", "\u0915\u094d\u200d\u0937 \U0001F469\u200d\U0001F4BB"},
		{"invalid UTF-8", "bad\xff\xfebytes", "bad\ufffd\ufffdbytes"},
		{"truncated rune", "caf\xc3", "caf\ufffd"},
		{"valid UTF-8 kept", "héllo wörld ✓ 你好", "héllo wörld ✓ 你好"},
		{"forged line", "hi\n" + ts + " someone say: x", "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.send(tt.send + "\n")
			b.expect(ts+" %s say: %s", a, tt.want)
			if tt.name == "forged line" {
				// The second half arrives as its own line from a, not
				// as someone else's.
				b.expect(ts+" %s say: %s someone say: x", a, ts)
			}
		})
	}
}

func TestRoomFull(t *testing.T) {
	room, addr := startRoom(t, chatroom.WithMaxClients(2))
	a, b := dialPair(t, addr)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	refused := &client{t: t, conn: conn, in: bufio.NewReader(conn)}
	refused.expect("* room is full (2 clients)")
	refused.expectClosed()

	// Nobody noticed: the next thing a sees is b's line.
	b.send("still two\n")
	a.expect(ts+" %s say: still two", b)
	s := room.Stats()
	assert.Equal(t, 2, s.Clients)
	assert.Equal(t, uint64(1), s.Refused)

	// A place frees up.
	b.send("exit\n")
	b.expect("* bye")
	a.expect(ts+" * %s left", b)
	c := dial(t, addr, 2)
	a.expect(ts+" * %s joined", c)
}

func TestIdleTimeout(t *testing.T) {
	room, addr := startRoom(t, chatroom.WithIdleTimeout(300*time.Millisecond))
	a, b := dialPair(t, addr)
	// a keeps talking, and stays; b says nothing and is cut off.
	stop := make(chan struct{})
	talking := make(chan struct{})
	go func() {
		defer close(talking)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				a.conn.Write([]byte("ping\n"))
			}
		}
	}()
	defer func() { close(stop); <-talking }()

	skipped := 0
	for {
		line := b.line()
		if line == "* idle timeout" {
			break
		}
		require.Equal(t, ts+" "+a.name+" say: ping", line)
		skipped++
	}
	b.expectClosed()
	a.waitFor(ts + " * " + b.name + " left")
	eventually(t, func() bool { return room.Stats().Clients == 1 }, "only a is left")
}

func TestIdleTimeoutCutsOffATrickle(t *testing.T) {
	_, addr := startRoom(t, chatroom.WithIdleTimeout(200*time.Millisecond))
	a := dial(t, addr, 1)
	// A byte at a time, never a newline: the clock restarts only at a
	// whole line, so this does not keep the client in.
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if _, err := a.conn.Write([]byte("x")); err != nil {
			break
		}
		a.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if s, err := a.in.ReadString('\n'); err == nil {
			assert.Equal(t, "* idle timeout\n", s)
			break
		}
	}
	a.expectClosed()
}

// TestSlowClientIsEvicted covers both ways of being too slow: an outbox
// that fills, and a write that misses its deadline. The slow client is a
// net.Pipe nobody reads, so its first write never completes.
func TestSlowClientIsEvicted(t *testing.T) {
	tests := []struct {
		name string
		opts []chatroom.Option
	}{
		{"outbox full", []chatroom.Option{chatroom.WithOutboxSize(4), chatroom.WithWriteTimeout(0)}},
		{"write timeout", []chatroom.Option{chatroom.WithWriteTimeout(100 * time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			room, addr := startRoom(t, tt.opts...)
			a, b := dialPair(t, addr)

			local, remote := net.Pipe()
			defer local.Close()
			served := make(chan error, 1)
			go func() { served <- room.ServeConn(namedConn{remote, "slow"}) }()
			a.expect(ts + " * slow joined")
			b.expect(ts + " * slow joined")

			// a talks; b hears every line; slow never reads.
			for i := 0; ; i++ {
				a.send(fmt.Sprintf("line %d\n", i))
				line := b.line()
				if line == ts+" * slow left (too slow)" {
					break
				}
				require.Equal(t, fmt.Sprintf("%s %s say: line %d", ts, a.name, i), line)
				require.Less(t, i, 10000, "slow was never evicted")
			}
			a.waitFor(ts + " * slow left (too slow)")
			select {
			case err := <-served:
				assert.ErrorIs(t, err, chatroom.ErrTooSlow)
			case <-time.After(waitLimit):
				t.Fatal("ServeConn did not return for the evicted client")
			}
			s := room.Stats()
			assert.Equal(t, uint64(1), s.Evicted)
			assert.Equal(t, 2, s.Clients)
		})
	}
}

// TestSlowReaderDoesNotDelayOthers runs a conversation over TCP in which
// one client never reads: everyone else gets every line, in order, and the
// silent one is evicted once its socket and outbox are full.
func TestSlowReaderDoesNotDelayOthers(t *testing.T) {
	// Small kernel buffers on the server side, so the silent client's
	// socket fills after a few lines instead of a few megabytes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln}, chatroom.WithOutboxSize(16), chatroom.WithWriteTimeout(time.Minute))
	addr := ln.Addr().String()

	sender := dial(t, addr, 1)
	silent := dial(t, addr, 2)
	silent.conn.(*net.TCPConn).SetReadBuffer(4096)
	sender.expect(ts+" * %s joined", silent)
	const receivers = 4
	var rs []*client
	for i := range receivers {
		r := dial(t, addr, 3+i)
		rs = append(rs, r)
		sender.expect(ts+" * %s joined", r)
	}

	// The receivers report each line they get; the sender sends the next
	// once all of them have the last, so no healthy outbox ever holds more
	// than one line, while the silent client's grows until it is evicted.
	const lines = 1000
	payload := strings.Repeat("p", 200)
	got := make(chan int)
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next := 0; next < lines; {
				line := r.line()
				if !strings.Contains(line, " say: ") {
					continue // joins and the silent client's eviction
				}
				if !assert.Equal(t, fmt.Sprintf("%s %s say: %d %s", ts, sender.name, next, payload), line, "receiver %d", i) {
					return
				}
				got <- next
				next++
			}
		}()
	}
	for i := range lines {
		sender.send(fmt.Sprintf("%d %s\n", i, payload))
		for range receivers {
			select {
			case <-got:
			case <-time.After(waitLimit):
				t.Fatalf("line %d did not reach every receiver", i)
			}
		}
	}
	wg.Wait()
	sender.waitFor(ts + " * " + silent.name + " left (too slow)")
	s := room.Stats()
	assert.Equal(t, uint64(1), s.Evicted)
	assert.Equal(t, 1+receivers, s.Clients)
}

// TestStalledReaderGetsEveryLineWhole has a client stop reading until its
// socket is full, so that the room's non-blocking writes to it end part way
// through a line and a writer goroutine takes over from there; when it reads
// again, every line must arrive whole and in order, and nobody is evicted.
func TestStalledReaderGetsEveryLineWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln}, chatroom.WithWriteTimeout(time.Minute))
	addr := ln.Addr().String()
	sender, stalled := dialPair(t, addr)

	// 1 000 lines of about 1 000 bytes: far more than the server's 4 KiB
	// send buffer and the client's default receive buffer hold, and fewer
	// than the outbox does (1 024 lines).
	const lines = 1000
	payload := strings.Repeat("0123456789", 99)
	var all strings.Builder
	for i := range lines {
		fmt.Fprintf(&all, "%03d %s\n", i, payload)
	}
	sender.send(all.String())
	eventually(t, func() bool { return room.Stats().Messages == lines }, "the room relayed every line")

	for i := range lines {
		require.Equal(t, fmt.Sprintf("%s %s say: %03d %s", ts, sender.name, i, payload), stalled.line(), "line %d", i)
	}
	s := room.Stats()
	assert.Zero(t, s.Evicted)
	assert.Equal(t, 2, s.Clients)
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

func TestBroadcast(t *testing.T) {
	room, addr := startRoom(t)
	a, b := dialPair(t, addr)

	require.NoError(t, room.Broadcast("maintenance at noon"))
	a.expect(ts + " * maintenance at noon")
	b.expect(ts + " * maintenance at noon")

	require.NoError(t, room.Broadcast("two\nlines\x1b"))
	a.expect(ts + " * twolines")

	require.NoError(t, room.Shutdown(context.Background()))
	assert.ErrorIs(t, room.Broadcast("too late"), chatroom.ErrRoomClosed)
}

func TestShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock))
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	addr := ln.Addr().String()
	a, b := dialPair(t, addr)

	require.NoError(t, room.Shutdown(context.Background()))
	for _, c := range []*client{a, b} {
		c.expect("* server shutting down")
		c.expectClosed()
	}
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "the listener is closed")

	// The room stays closed.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.ErrorIs(t, room.Serve(ln2), chatroom.ErrRoomClosed)
	_, err = ln2.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "Serve closes the listener it is given")
	local, remote := net.Pipe()
	defer local.Close()
	assert.ErrorIs(t, room.ServeConn(remote), chatroom.ErrRoomClosed)
	assert.NoError(t, room.Shutdown(context.Background()), "a second Shutdown")
	assert.NoError(t, room.Close(), "Close after Shutdown")
	s := room.Stats()
	assert.Equal(t, 0, s.Clients)
	assert.Equal(t, uint64(2), s.Left)
}

// TestShutdownContextExpires shuts a room down while a client never reads
// and writes have no timeout: Shutdown gives up when its context ends,
// closes the client, and still returns only once every goroutine is gone
// (which goleak checks at the end of the package).
func TestShutdownContextExpires(t *testing.T) {
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock), chatroom.WithWriteTimeout(0))
	ok, _ := pipeClient(t, room, "reader", 1)
	local, remote := net.Pipe()
	defer local.Close()
	served := make(chan error, 1)
	go func() { served <- room.ServeConn(namedConn{remote, "stuck"}) }()
	ok.expect(ts + " * stuck joined")

	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		ok.expect("* server shutting down")
		ok.expectClosed()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := room.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
	<-shutdownDone
}

func TestCloseIsImmediate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	a := dial(t, ln.Addr().String(), 1)
	require.NoError(t, room.Close())
	a.expectClosed()
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
}

func TestTLS(t *testing.T) {
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
	a.expect(ts+" * %s joined", b)
	a.send("over tls\n")
	b.expect(ts+" %s say: over tls", a)
	b.send("exit\n")
	b.expect("* bye")
	b.expectClosed()
	a.expect(ts+" * %s left", b)
}

// TestTLSHandshakeIsBounded: a client that opens a TCP connection to a TLS
// room and never says hello is dropped after the write timeout, and takes
// no place in the room meanwhile.
func TestTLSHandshakeIsBounded(t *testing.T) {
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

func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "room.sock")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	serveOn(t, ln)

	dialUnix := func(online int) *client {
		conn, err := net.Dial("unix", path)
		require.NoError(t, err)
		// A Unix client has no address of its own: the room sees "@" or "".
		return welcome(t, conn, conn.LocalAddr().String(), online)
	}
	a := dialUnix(1)
	b := dialUnix(2)
	a.expect(ts+" * %s joined", b)
	a.send("over a unix socket\n")
	b.expect(ts+" %s say: over a unix socket", a)
}

func TestServeConnOverPipe(t *testing.T) {
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock))
	defer room.Close()
	alice, aliceDone := pipeClient(t, room, "alice", 1)
	bob, bobDone := pipeClient(t, room, "bob", 2)
	alice.expect(ts + " * bob joined")

	alice.send("hi bob\n")
	bob.expect(ts + " alice say: hi bob")
	bob.send("exit\n")
	bob.expect("* bye")
	bob.expectClosed()
	alice.expect(ts + " * bob left")
	assert.NoError(t, <-bobDone, "ServeConn returns nil after exit")

	require.NoError(t, alice.conn.Close())
	assert.NoError(t, <-aliceDone, "ServeConn returns nil after a hang-up")
}

// TestWrappedTCPConnIsUsedThroughItsMethods serves connections of a type
// that embeds *net.TCPConn, as a protocol sniffer or a metering wrapper
// does, and overrides Read and Write. The socket underneath shows through
// the embedding, but the room must read and write through the wrapper: the
// line the sniffer had already read must be relayed at once, and every
// byte the clients get must have gone through the wrapper's Write.
func TestWrappedTCPConnIsUsedThroughItsMethods(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	wl := &wrappingListener{Listener: ln}
	serveOn(t, wl)
	addr := ln.Addr().String()

	a := dial(t, addr, 1)
	b := dial(t, addr, 2) // the second connection: its wrapper holds "sniffed\n"
	a.expect(ts+" * %s joined", b)
	a.expect(ts+" %s say: sniffed", b)

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

func TestTwoListenersOneRoom(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	unix, err := net.Listen("unix", filepath.Join(t.TempDir(), "room.sock"))
	require.NoError(t, err)
	room := serveOn(t, tcp)
	served := make(chan error, 1)
	go func() { served <- room.Serve(unix) }()

	a := dial(t, tcp.Addr().String(), 1)
	conn, err := net.Dial("unix", unix.Addr().String())
	require.NoError(t, err)
	b := welcome(t, conn, conn.LocalAddr().String(), 2)
	a.expect(ts+" * %s joined", b)
	b.send("across listeners\n")
	a.expect(ts+" %s say: across listeners", b)

	require.NoError(t, room.Close())
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
}

// TestOrderPerSender has many senders talk at once to many receivers:
// every receiver gets every line of every sender exactly once, and each
// sender's lines in the order sent.
func TestOrderPerSender(t *testing.T) {
	const senders, receivers, lines = 6, 6, 300
	// Every sender sends all its lines in one write, with no flow control:
	// the outbox must hold the whole burst, since this test is about order,
	// not about slow clients.
	room, addr := startRoom(t, chatroom.WithOutboxSize(senders*lines))
	var all []*client
	for i := range senders + receivers {
		c := dial(t, addr, i+1)
		for _, prev := range all {
			prev.expect(ts+" * %s joined", c)
		}
		all = append(all, c)
	}
	byName := map[string]int{}
	for i, c := range all[:senders] {
		byName[c.name] = i
	}

	var wg sync.WaitGroup
	for _, r := range all[senders:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := make([]int, senders)
			for got := 0; got < senders*lines; got++ {
				line := r.line()
				name, text, ok := strings.Cut(strings.TrimPrefix(line, ts+" "), " say: ")
				if !assert.True(t, ok, "unexpected line %q", line) {
					return
				}
				s := byName[name]
				if !assert.Equal(t, fmt.Sprintf("m%d", next[s]), text, "from sender %d", s) {
					return
				}
				next[s]++
			}
		}()
	}
	for _, s := range all[:senders] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for i := range lines {
				fmt.Fprintf(&b, "m%d\n", i)
			}
			s.send(b.String()) // in one write: the room must frame it
		}()
	}
	// Senders hear each other too; drain them so their outboxes stay short.
	for i, s := range all[:senders] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range (senders - 1) * lines {
				s.line()
			}
			_ = i
		}()
	}
	wg.Wait()
	s := room.Stats()
	assert.Equal(t, uint64(senders*lines), s.Messages)
	assert.Zero(t, s.Evicted)
}

// TestStats checks every counter after a scenario whose numbers are known.
func TestStats(t *testing.T) {
	room, addr := startRoom(t, chatroom.WithMaxClients(3))
	a, b := dialPair(t, addr)
	c := dial(t, addr, 3)
	a.expect(ts+" * %s joined", c)
	b.expect(ts+" * %s joined", c)

	conn, err := net.Dial("tcp", addr) // refused: full
	require.NoError(t, err)
	(&client{t: t, conn: conn, in: bufio.NewReader(conn)}).expect("* room is full (3 clients)")

	a.send("one\n")
	b.expect(ts+" %s say: one", a)
	c.expect(ts+" %s say: one", a)
	require.NoError(t, room.Broadcast("notice"))
	for _, x := range []*client{a, b, c} {
		x.expect(ts + " * notice")
	}
	c.send("exit\n")
	c.expect("* bye")
	a.expect(ts+" * %s left", c)
	b.expect(ts+" * %s left", c)

	// Lines written: 3 welcomes, 3 joined notices, 2 relayed, 3 notices,
	// a bye and 2 left notices.
	want := chatroom.Stats{
		Clients: 2, Joined: 3, Left: 1, Refused: 1,
		Messages: 2, Delivered: 14,
	}
	eventually(t, func() bool { return room.Stats() == want }, "stats settle")
	assert.Equal(t, want, room.Stats())
}

func TestServeReturnsAcceptErrors(t *testing.T) {
	errPermanent := errors.New("listener broke")
	ln := &flakyListener{
		errs:   []error{tempErr{}, tempErr{}, tempErr{}, errPermanent},
		closed: make(chan struct{}),
	}
	room := chatroom.NewRoom()
	defer room.Close()
	err := room.Serve(ln)
	assert.ErrorIs(t, err, errPermanent)
	assert.NotErrorIs(t, err, chatroom.ErrRoomClosed)
	assert.Equal(t, 4, ln.calls, "three temporary errors retried")
	select {
	case <-ln.closed:
	default:
		t.Error("Serve did not close its listener")
	}
}

// flakyListener fails Accept with errs, one per call, then blocks until
// closed.
type flakyListener struct {
	mu     sync.Mutex
	errs   []error
	calls  int
	closed chan struct{}
	once   sync.Once
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls++
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *flakyListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *flakyListener) Addr() net.Addr { return nameAddr("flaky") }

type tempErr struct{}

func (tempErr) Error() string   { return "temporary accept failure" }
func (tempErr) Timeout() bool   { return false }
func (tempErr) Temporary() bool { return true }

func TestInvalidOptionsPanicNamingTheOption(t *testing.T) {
	tests := []struct {
		opt  chatroom.Option
		name string
	}{
		{chatroom.WithBufferSize(0), "WithBufferSize"},
		{chatroom.WithBufferSize(-1), "WithBufferSize"},
		{chatroom.WithMaxClients(-1), "WithMaxClients"},
		{chatroom.WithIdleTimeout(-time.Second), "WithIdleTimeout"},
		{chatroom.WithWriteTimeout(-time.Second), "WithWriteTimeout"},
		{chatroom.WithOutboxSize(0), "WithOutboxSize"},
		{chatroom.WithLogger(nil), "WithLogger"},
		{chatroom.WithClock(nil), "WithClock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				assert.Contains(t, msg, "chatroom: "+tt.name)
			}()
			chatroom.NewRoom(tt.opt)
			t.Error("NewRoom did not panic")
		})
	}
}

// TestFiveHundredClients: 500 clients in one room over loopback all get a
// line sent by one of them.
func TestFiveHundredClients(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	const n = 500
	room, addr := startRoom(t)
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dial(t, addr, i+1)
	}
	sender := clients[0]
	sender.send("to all five hundred\n")
	want := ts + " " + sender.name + " say: to all five hundred"
	var wg sync.WaitGroup
	for _, c := range clients[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.waitFor(want) // after the joins that came after it
		}()
	}
	wg.Wait()
	s := room.Stats()
	assert.Equal(t, n, s.Clients)
	assert.Zero(t, s.Evicted)
}
