package chatroom_test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Flood control (WithRateLimit, on by default): a client that sends faster
// than the limit is read more slowly; nothing it sent is dropped, and
// nobody else is slowed.

// TestFloodIsReadSlowly: one client sends 10 000 lines at once. At the
// default 20 lines a second after a burst of 50, the room takes them over
// exactly 497.5 s (fake time, under synctest), every one of them reaches
// the listener in order, and another client's line, said in the middle of
// the flood, arrives at once.
func TestFloodIsReadSlowly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const lines = 10_000
		room := pipeRoom(t)
		flooder, _ := pipeClient(t, room, "flooder", 1)
		listener, _ := pipeClient(t, room, "listener", 2)
		talker, _ := pipeClient(t, room, "talker", 3)
		flooder.Expect(ts + " * listener joined")
		flooder.Expect(ts + " * talker joined")
		listener.Expect(ts + " * talker joined")
		listener.Patience = time.Hour
		discard(flooder, nil)
		discard(talker, nil)

		start := time.Now()
		go func() {
			var b strings.Builder
			for i := range lines {
				fmt.Fprintf(&b, "flood %d\n", i)
			}
			flooder.Conn.SetWriteDeadline(time.Now().Add(time.Hour))
			flooder.Conn.Write([]byte(b.String()))
		}()
		go func() {
			time.Sleep(100 * time.Second)
			talker.Send("a word in the middle\n")
		}()

		next, heardTalker := 0, time.Duration(0)
		for next < lines {
			line := listener.Line()
			if line == ts+" talker say: a word in the middle" {
				heardTalker = time.Since(start)
				continue
			}
			require.Equal(t, fmt.Sprintf("%s flooder say: flood %d", ts, next), line)
			next++
		}
		took := time.Since(start)
		t.Logf("%d lines read in %v at 20 a second after a burst of 50; the talker's line, said at 100 s, arrived at %v",
			lines, took, heardTalker)
		assert.Equal(t, time.Duration(lines-50)*time.Second/20, took)
		assert.Equal(t, 100*time.Second, heardTalker, "the talker waited for the flood")
		assert.Zero(t, room.Stats().Evicted)
	})
}

// TestFloodControlProtectsSlowReaders is the attack the rate limit is
// for: with the defaults, one client writes short lines as fast as it can
// for 5 s (it would send 100 MiB), while 50 others read at 1 MiB/s.
// Without flood control the room would relay the flood faster than they
// read, and evict them all; with it nobody is evicted, and every line the
// room took reaches all 50.
func TestFloodControlProtectsSlowReaders(t *testing.T) {
	t.Parallel()
	const readers, rate, length = 50, 1 << 20, 5 * time.Second
	room, addr := startRoom(t)
	var wg sync.WaitGroup
	counts := make([]int, readers)
	for i := range readers {
		c := dial(t, addr, i+1)
		wg.Go(func() { counts[i] = readSlowly(t, c.Conn, c.In, rate) })
	}
	flooder := dial(t, addr, readers+1)

	// The flood: 64 KiB of numbered lines a write, until 5 s have passed.
	var chunk strings.Builder
	n, sent := 0, 0
	end := time.Now().Add(length)
	for time.Now().Before(end) && sent < 100<<20 {
		chunk.Reset()
		for chunk.Len() < 64<<10 {
			fmt.Fprintf(&chunk, "flood %d\n", n)
			n++
		}
		flooder.Conn.SetWriteDeadline(end)
		w, err := flooder.Conn.Write([]byte(chunk.String()))
		sent += w
		if err != nil {
			break
		}
	}
	// The flooder is removed: what the room still had of it goes no further.
	require.NoError(t, room.Kick(flooder.Name, "flood"))
	wg.Wait() // each reader stops at the flooder's leaving, which follows all it relayed

	s := room.Stats()
	t.Logf("the flooder wrote %.1f KiB in %v, held by its own send buffer and the room's 16 KiB receive buffer; the room took %d lines; every reader got %v; evicted %d",
		float64(sent)/(1<<10), length, s.Messages, counts[0], s.Evicted)
	assert.Zero(t, s.Evicted, "nobody evicted")
	for i, got := range counts {
		assert.Equal(t, int(s.Messages), got, "reader %d got every line the room took", i)
	}
}

// readSlowly reads at most rate bytes a second, checks that the flood's
// lines come in order from 0, and returns how many it got, once the
// flooder has left.
func readSlowly(t *testing.T, conn net.Conn, in *bufio.Reader, rate int) int {
	next := 0
	budget, since := rate/10, time.Now()
	for {
		conn.SetReadDeadline(time.Now().Add(waitLimit))
		line, err := in.ReadString('\n')
		if err != nil {
			t.Errorf("reader: %v after %d lines", err, next)
			return next
		}
		if budget -= len(line); budget < 0 { // the next 100 ms's worth
			time.Sleep(time.Until(since.Add(100 * time.Millisecond)))
			budget, since = rate/10, time.Now()
		}
		switch {
		case strings.HasSuffix(line, " left (kicked: flood)\n"): // the flooder
			return next
		case strings.Contains(line, " say: flood "):
			i, err := strconv.Atoi(strings.TrimSpace(line[strings.LastIndexByte(line, ' ')+1:]))
			if err != nil || i != next {
				t.Errorf("reader: line %q, want flood %d", line, next)
				return next
			}
			next++
		}
	}
}

// TestRateLimitOptions: (0, 0) turns flood control off.
func TestRateLimitOptions(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t, chatroom.WithRateLimit(0, 0))
		a, _ := pipeClient(t, room, "a", 1)
		b, _ := pipeClient(t, room, "b", 2)
		a.Expect(ts + " * b joined")
		start := time.Now()
		var burst strings.Builder
		for i := range 500 {
			fmt.Fprintf(&burst, "%d\n", i)
		}
		go a.Conn.Write([]byte(burst.String()))
		for i := range 500 {
			b.Expect(ts+" a say: %d", i)
		}
		assert.Zero(t, time.Since(start), "no flood control")
	})
}
