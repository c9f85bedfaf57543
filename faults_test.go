package chatroom_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Fault injection: hostile or broken clients and listeners. Each test checks
// that the room cuts off the culprit alone and keeps serving everyone else.
// The slow reader, the trickle and the failing listener are in room_test.go
// (TestSlowReaderDoesNotDelayOthers, TestIdleTimeoutCutsOffATrickle,
// TestServeReturnsAcceptErrors).

// reset aborts a TCP connection with a RST instead of a FIN.
func reset(t *testing.T, c *client) {
	t.Helper()
	tc := c.conn.(*net.TCPConn)
	require.NoError(t, tc.SetLinger(0))
	require.NoError(t, tc.Close())
}

func TestResetMidLine(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	b.send("half a line, never fini")
	reset(t, b)
	a.expect(ts+" * %s left", b)

	// Nothing of the half line was relayed, and the room goes on.
	c := dial(t, addr, 2)
	a.expect(ts+" * %s joined", c)
	c.send("next\n")
	a.expect(ts+" %s say: next", c)
}

// TestResetMidFlush resets a client while the room is blocked writing a
// backlog to it: the writer fails, the client leaves, and a receiver that
// reads gets every line regardless.
func TestResetMidFlush(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln})
	addr := ln.Addr().String()
	sender := dial(t, addr, 1)
	reader := dial(t, addr, 2)
	stuck := dial(t, addr, 3)
	stuck.conn.(*net.TCPConn).SetReadBuffer(4096)
	sender.expect(ts+" * %s joined", reader)
	sender.expect(ts+" * %s joined", stuck)
	reader.expect(ts+" * %s joined", stuck)

	const lines = 300 // 300 KB: far more than the stuck client's buffers
	payload := strings.Repeat("f", 1000)
	go func() {
		var b strings.Builder
		for i := range lines {
			fmt.Fprintf(&b, "%d %s\n", i, payload)
		}
		sender.conn.Write([]byte(b.String()))
	}()
	for i := range lines {
		require.Equal(t, fmt.Sprintf("%s %s say: %d %s", ts, sender, i, payload), reader.line())
	}
	reset(t, stuck) // its writer is blocked on a full socket by now
	reader.expect(ts+" * %s left", stuck)
	sender.waitFor(ts + " * " + stuck.name + " left")
	eventually(t, func() bool { return room.Stats().Clients == 2 }, "the stuck client is gone")
	// Its writer counts the backlog it could not write once its write fails.
	eventually(t, func() bool { return room.Stats().Dropped > 0 }, "its backlog was discarded")
}

// TestVanishedPeer: a peer that vanishes without closing (it never reads
// and never writes again) is cut off by the idle timeout when the room is
// quiet, and by the write timeout when it is not.
func TestVanishedPeer(t *testing.T) {
	t.Run("quiet room, idle timeout", func(t *testing.T) {
		_, addr := startRoom(t, chatroom.WithIdleTimeout(300*time.Millisecond))
		gone := dial(t, addr, 1)
		gone.expect("* idle timeout") // what it finds if it ever comes back
		gone.expectClosed()
	})
	t.Run("busy room, write timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		// An outbox too deep to fill: only the write deadline can act.
		room := serveOn(t, smallBufferListener{ln},
			chatroom.WithOutboxSize(1_000_000), chatroom.WithWriteTimeout(200*time.Millisecond))
		addr := ln.Addr().String()
		sender := dial(t, addr, 1)
		gone := dial(t, addr, 2)
		gone.conn.(*net.TCPConn).SetReadBuffer(4096)
		sender.expect(ts+" * %s joined", gone)
		listener := dial(t, addr, 3)
		sender.expect(ts+" * %s joined", listener)

		payload := strings.Repeat("w", 500)
		for i := 0; ; i++ {
			require.Less(t, i, 100_000, "the vanished peer was never evicted")
			sender.send(fmt.Sprintf("%d %s\n", i, payload))
			line := listener.line()
			if line == ts+" * "+gone.name+" left (too slow)" {
				break
			}
			require.Equal(t, fmt.Sprintf("%s %s say: %d %s", ts, sender, i, payload), line)
		}
		assert.Equal(t, uint64(1), room.Stats().Evicted)
	})
}

// TestConnectionStorm dials 1 000 clients at once into a room limited to
// 100: exactly 100 get in, the other 900 are told the room is full, and no
// descriptor is left open afterwards.
func TestConnectionStorm(t *testing.T) {
	const dialers, limit = 1000, 100
	fds := openFDs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom(chatroom.WithMaxClients(limit))
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()

	var mu sync.Mutex
	var admitted []net.Conn
	refused, failed := 0, 0
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			conn.SetReadDeadline(time.Now().Add(waitLimit))
			in := bufio.NewReader(conn)
			first, _ := in.ReadString('\n')
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.HasPrefix(first, "* welcome "):
				admitted = append(admitted, conn)
				return
			case first == fmt.Sprintf("* room is full (%d clients)\n", limit):
				if _, err := in.ReadByte(); err != nil { // then closed
					refused++
				}
			default:
				failed++
			}
			conn.Close()
		}()
	}
	wg.Wait()
	assert.Equal(t, limit, len(admitted))
	assert.Equal(t, dialers-limit, refused)
	assert.Zero(t, failed)
	s := room.Stats()
	assert.Equal(t, limit, s.Clients)
	assert.Equal(t, uint64(dialers-limit), s.Refused)

	for _, c := range admitted {
		c.Close()
	}
	eventually(t, func() bool { return room.Stats().Clients == 0 }, "everyone left")
	require.NoError(t, room.Close())
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
	eventually(t, func() bool { return openFDs(t) <= fds }, "descriptors back to where they were")
}

// TestShutdownRacesJoinsAndMessages shuts a room down while clients keep
// arriving and talking: Shutdown returns cleanly, every client that got in
// is told the server is shutting down as its last line, and nothing is
// left running (goleak).
func TestShutdownRacesJoinsAndMessages(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	addr := ln.Addr().String()

	const workers = 16
	var admitted, toldShutdown, otherEnd sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := net.DialTimeout("tcp", addr, waitLimit)
				if err != nil {
					return // the listener is closed
				}
				id := fmt.Sprintf("%d/%d", w, i)
				conn.SetDeadline(time.Now().Add(waitLimit))
				in := bufio.NewReader(conn)
				if line, err := in.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* welcome") {
					conn.Close()
					continue
				}
				admitted.Store(id, true)
				go func() { // talk while reading
					for j := range 20 {
						if _, err := fmt.Fprintf(conn, "%s says %d\n", id, j); err != nil {
							return
						}
					}
				}()
				var last string
				for {
					line, err := in.ReadString('\n')
					if err != nil {
						break
					}
					last = line
				}
				conn.Close()
				if last == "* server shutting down\n" {
					toldShutdown.Store(id, true)
				} else {
					otherEnd.Store(id, last)
				}
				// Only shutdown ends a connection here: keep the clients
				// in the room until then.
				return
			}
		}()
	}
	eventually(t, func() bool { return room.Stats().Joined >= workers }, "every worker got in")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, room.Shutdown(ctx))
	close(stop)
	wg.Wait()
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)

	count := func(m *sync.Map) (n int) {
		m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	otherEnd.Range(func(id, last any) bool {
		t.Errorf("client %v ended with %q, not the shutdown line", id, last)
		return true
	})
	assert.Equal(t, count(&admitted), count(&toldShutdown))
	assert.Equal(t, uint64(count(&admitted)), room.Stats().Joined)
}

func TestMegabyteLine(t *testing.T) {
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	go a.conn.Write([]byte(strings.Repeat("m", 1<<20) + "\nafter\n"))
	a.expect("* error: message too long (max %d bytes)", chatroom.DefaultBufferSize)
	b.expect(ts+" %s say: after", a)
}

func TestOnlyCarriageReturns(t *testing.T) {
	_, addr := startRoom(t, chatroom.WithBufferSize(64))
	a, b := dialPair(t, addr)

	a.send("\r\n\r\r\r\n") // empty once the ending and the controls go
	a.send(strings.Repeat("\r", 5000) + "\n")
	a.expect("* error: message too long (max 64 bytes)")
	a.send("ok\n")
	b.expect(ts+" %s say: ok", a) // b heard nothing before it

	a.send(strings.Repeat("\r", 5000)) // and then hangs up, mid-line
	require.NoError(t, a.conn.(*net.TCPConn).CloseWrite())
	a.expect("* error: message too long (max 64 bytes)")
	b.expect(ts+" * %s left", a)
}

// TestMemoryBoundedUnderFlood floods a room in which every receiver has
// stopped reading. Each of them holds at most outbox lines, and lines are
// shared, so the heap stays below outbox x line size x clients plus a
// constant; every silent client is evicted and the sender is not.
func TestMemoryBoundedUnderFlood(t *testing.T) {
	const (
		outbox   = 64
		silent   = 50
		lineSize = 1000
		lines    = 5000
		// The constant: the runtime's own, the test's buffers, and garbage
		// between collections.
		slack = 8 << 20
	)
	bound := uint64(outbox*(lineSize+64)*silent + slack)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln}, chatroom.WithOutboxSize(outbox), chatroom.WithWriteTimeout(0))
	addr := ln.Addr().String()
	sender := dial(t, addr, 1)
	for i := range silent {
		c := dial(t, addr, 2+i)
		c.conn.(*net.TCPConn).SetReadBuffer(4096)
		sender.expect(ts+" * %s joined", c)
	}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-sampling:
				return
			case <-tick.C:
			}
		}
	}()

	go func() {
		line := strings.Repeat("F", lineSize-1) + "\n"
		for range lines {
			if _, err := sender.conn.Write([]byte(line)); err != nil {
				return
			}
		}
	}()
	for range silent {
		line := sender.line()
		require.True(t, strings.HasSuffix(line, " left (too slow)"), line)
	}
	eventually(t, func() bool { return room.Stats().Messages == lines }, "the whole flood went through")
	close(sampling)
	<-sampled

	growth := peak - min(peak, base)
	t.Logf("heap grew by %d KiB at most; bound %d KiB", growth>>10, bound>>10)
	assert.Less(t, growth, bound)
	s := room.Stats()
	assert.Equal(t, uint64(silent), s.Evicted)
	assert.Equal(t, 1, s.Clients)
}
