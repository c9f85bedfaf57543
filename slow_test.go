package chatroom_test

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Slow and vanished clients: whoever cannot keep up is evicted, and
// nobody else waits for it or loses a line.

// TestSlowClientIsEvicted covers both ways of being too slow: an outbox
// that fills, and a write that misses its deadline. It runs under
// testing/synctest over net.Pipe; the slow client is a pipe nobody reads,
// so its first write, the welcome, never completes.
func TestSlowClientIsEvicted(t *testing.T) {
	t.Parallel()
	const writeTimeout = 10 * time.Second
	tests := []struct {
		name      string
		opts      []chatroom.Option
		evictedAt int // the line of a's after which b hears slow leave
	}{
		// The welcome is in the writer's hands; lines 0-3 fill the outbox
		// of 4, and line 4 finds it full: b hears line 4, then slow leave.
		{"outbox full", []chatroom.Option{chatroom.WithOutboxSize(4), chatroom.WithWriteTimeout(0)}, 5},
		// Lines 0-3 at 0, 3, 6 and 9 s; the welcome's write times out at
		// 10 s, so b hears slow leave before line 4, said at 12 s.
		{"write timeout", []chatroom.Option{chatroom.WithWriteTimeout(writeTimeout)}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				room := pipeRoom(t, tt.opts...)
				a, _ := pipeClient(t, room, "a", 1)
				b, _ := pipeClient(t, room, "b", 2)
				a.Expect(ts + " * b joined")

				local, remote := net.Pipe()
				defer local.Close()
				joined := time.Now()
				var gone time.Duration
				served := make(chan error, 1)
				go func() {
					err := room.ServeConn(namedConn{remote, "slow"})
					gone = time.Since(joined)
					served <- err
				}()
				a.Expect(ts + " * slow joined")
				b.Expect(ts + " * slow joined")
				synctest.Wait() // slow's writer is stuck in the welcome's write

				// a says a line every 3 s; b hears every one, then slow leave.
				left := ts + " * slow left (too slow)"
				i := 0
				for ; ; i++ {
					require.Less(t, i, 100, "slow was never evicted")
					a.Send(fmt.Sprintf("line %d\n", i))
					line := b.Line()
					if line == left {
						break
					}
					require.Equal(t, fmt.Sprintf("%s a say: line %d", ts, i), line)
					time.Sleep(3 * time.Second)
				}
				assert.Equal(t, tt.evictedAt, i)
				a.Expect("%s", left)
				assert.ErrorIs(t, <-served, chatroom.ErrTooSlow)
				if tt.name == "write timeout" {
					assert.Equal(t, writeTimeout, gone, "evicted when the write timeout passed, to the instant")
				}
				s := room.Stats()
				assert.Equal(t, uint64(1), s.Evicted)
				assert.Equal(t, 2, s.Clients)
			})
		})
	}
}

// TestSlowReaderDoesNotDelayOthers runs a conversation over TCP in which
// one client never reads: everyone else gets every line, in order, and the
// silent one is evicted once its socket and outbox are full.
func TestSlowReaderDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	// Small kernel buffers on the server side, so the silent client's
	// socket fills after a few lines instead of a few megabytes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln}, noFloodControl, chatroom.WithOutboxSize(16), chatroom.WithWriteTimeout(time.Minute))
	addr := ln.Addr().String()

	sender := dial(t, addr, 1)
	silent := dial(t, addr, 2)
	silent.Conn.(*net.TCPConn).SetReadBuffer(4096)
	sender.Expect(ts+" * %s joined", silent)
	const receivers = 4
	var rs []*client
	for i := range receivers {
		r := dial(t, addr, 3+i)
		rs = append(rs, r)
		sender.Expect(ts+" * %s joined", r)
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
				line := r.Line()
				if !strings.Contains(line, " say: ") {
					continue // joins and the silent client's eviction
				}
				if !assert.Equal(t, fmt.Sprintf("%s %s say: %d %s", ts, sender.Name, next, payload), line, "receiver %d", i) {
					return
				}
				got <- next
				next++
			}
		}()
	}
	for i := range lines {
		sender.Send(fmt.Sprintf("%d %s\n", i, payload))
		for range receivers {
			select {
			case <-got:
			case <-time.After(waitLimit):
				t.Fatalf("line %d did not reach every receiver", i)
			}
		}
	}
	wg.Wait()
	sender.WaitFor(ts + " * " + silent.Name + " left (too slow)")
	s := room.Stats()
	assert.Equal(t, uint64(1), s.Evicted)
	assert.Equal(t, 1+receivers, s.Clients)
}

// TestStalledReaderGetsEveryLineWhole has a client stop reading until its
// socket is full, so that the room's non-blocking writes to it end part way
// through a line and a writer goroutine takes over from there; when it reads
// again, every line must arrive whole and in order, and nobody is evicted.
func TestStalledReaderGetsEveryLineWhole(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln}, noFloodControl, chatroom.WithWriteTimeout(time.Minute))
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
	sender.Send(all.String())
	eventually(t, func() bool { return room.Stats().Messages == lines }, "the room relayed every line")

	for i := range lines {
		require.Equal(t, fmt.Sprintf("%s %s say: %03d %s", ts, sender.Name, i, payload), stalled.Line(), "line %d", i)
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

// TestResetMidFlush resets a client while the room is blocked writing a
// backlog to it: the writer fails, the client leaves, and a receiver that
// reads gets every line regardless.
func TestResetMidFlush(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := serveOn(t, smallBufferListener{ln}, noFloodControl)
	addr := ln.Addr().String()
	sender := dial(t, addr, 1)
	reader := dial(t, addr, 2)
	stuck := dial(t, addr, 3)
	stuck.Conn.(*net.TCPConn).SetReadBuffer(4096)
	sender.Expect(ts+" * %s joined", reader)
	sender.Expect(ts+" * %s joined", stuck)
	reader.Expect(ts+" * %s joined", stuck)

	const lines = 300 // 300 KB: far more than the stuck client's buffers
	payload := strings.Repeat("f", 1000)
	go func() {
		var b strings.Builder
		for i := range lines {
			fmt.Fprintf(&b, "%d %s\n", i, payload)
		}
		sender.Conn.Write([]byte(b.String()))
	}()
	for i := range lines {
		require.Equal(t, fmt.Sprintf("%s %s say: %d %s", ts, sender, i, payload), reader.Line())
	}
	reset(t, stuck) // its writer is blocked on a full socket by now
	reader.Expect(ts+" * %s left", stuck)
	sender.WaitFor(ts + " * " + stuck.Name + " left")
	eventually(t, func() bool { return room.Stats().Clients == 2 }, "the stuck client is gone")
	// Its writer counts the backlog it could not write once its write fails.
	eventually(t, func() bool { return room.Stats().Dropped > 0 }, "its backlog was discarded")
}

// TestVanishedPeer: a peer that vanishes without closing (it never reads
// and never writes again) is cut off by the idle timeout when the room is
// quiet, and by the write timeout when it is not.
func TestVanishedPeer(t *testing.T) {
	t.Parallel()
	t.Run("quiet room, idle timeout", func(t *testing.T) {
		_, addr := startRoom(t, chatroom.WithIdleTimeout(300*time.Millisecond))
		gone := dial(t, addr, 1)
		gone.Expect("* idle timeout") // what it finds if it ever comes back
		gone.ExpectClosed()
	})
	t.Run("busy room, write timeout", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		// An outbox too deep to fill: only the write deadline can act.
		room := serveOn(t, smallBufferListener{ln}, noFloodControl,
			chatroom.WithOutboxSize(1_000_000), chatroom.WithWriteTimeout(200*time.Millisecond))
		addr := ln.Addr().String()
		sender := dial(t, addr, 1)
		gone := dial(t, addr, 2)
		gone.Conn.(*net.TCPConn).SetReadBuffer(4096)
		sender.Expect(ts+" * %s joined", gone)
		listener := dial(t, addr, 3)
		sender.Expect(ts+" * %s joined", listener)

		payload := strings.Repeat("w", 500)
		for i := 0; ; i++ {
			require.Less(t, i, 100_000, "the vanished peer was never evicted")
			sender.Send(fmt.Sprintf("%d %s\n", i, payload))
			line := listener.Line()
			if line == ts+" * "+gone.Name+" left (too slow)" {
				break
			}
			require.Equal(t, fmt.Sprintf("%s %s say: %d %s", ts, sender, i, payload), line)
		}
		assert.Equal(t, uint64(1), room.Stats().Evicted)
	})
}

// TestMemoryBoundedUnderFlood floods a room in which every receiver has
// stopped reading. Each of them holds at most outbox lines, and lines are
// shared, so the heap stays below outbox x line size x clients plus a
// constant; every silent client is evicted and the sender is not.
func TestMemoryBoundedUnderFlood(t *testing.T) {
	// Not parallel: it measures the process's heap.
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
	room := serveOn(t, smallBufferListener{ln}, noFloodControl, chatroom.WithOutboxSize(outbox), chatroom.WithWriteTimeout(0))
	addr := ln.Addr().String()
	sender := dial(t, addr, 1)
	for i := range silent {
		c := dial(t, addr, 2+i)
		c.Conn.(*net.TCPConn).SetReadBuffer(4096)
	}
	eventually(t, func() bool { return room.Stats().Clients == silent+1 }, "everyone joined")

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
			if _, err := sender.Conn.Write([]byte(line)); err != nil {
				return
			}
		}
	}()
	// Every silent one is evicted. The others are told of those whose
	// arrival they were told of (notices.go): here, a storm of arrivals.
	eventually(t, func() bool { return room.Stats().Evicted == silent }, "every silent client evicted")

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

// TestOutboxBoundedInBytes: a client that asks for answers and never
// reads them is evicted once what waits for it passes WithOutboxBytes,
// however few lines that is.
func TestOutboxBoundedInBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t, chatroom.WithOutboxBytes(1000), chatroom.WithWriteTimeout(time.Hour))
		watcher, _ := pipeClient(t, room, "watcher", 1)
		asker, done := pipeClient(t, room, "asker", 2)
		watcher.Expect(ts + " * asker joined")
		for range 10 { // /help's answer is over 300 bytes; asker reads none of it
			if _, err := asker.Conn.Write([]byte("/help\n")); err != nil {
				break // evicted: its connection is closed
			}
		}
		watcher.Expect(ts + " * asker left (too slow)")
		assert.ErrorIs(t, <-done, chatroom.ErrTooSlow)
		assert.Equal(t, uint64(1), room.Stats().Evicted)
	})
}
