package irc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// The hub's limits apply to IRC clients as to everyone.

// TestLineTooLong: a line longer than the face takes is answered with 417
// and dropped, and the client goes on; so is one whose tags are too long.
// Text longer than the hub's limit is cut to it.
func TestLineTooLong(t *testing.T) {
	t.Parallel()
	const limit = 100
	s := startServer(t, nil, chatroom.WithBufferSize(limit))
	alice := ircClient(t, s, "alice")
	bob := ircClient(t, s, "bob")
	alice.send("JOIN #one")
	alice.sync()
	bob.send("JOIN #one")
	bob.sync()
	alice.sync()

	// The face takes limit + 512 + 4096 + 2 bytes of line.
	long := "PRIVMSG #one :" + strings.Repeat("x", limit+512+4096)
	tags := "@+x=" + strings.Repeat("y", 4095) + " PRIVMSG #one :tagged"
	alice.send(long, tags, "PRIVMSG #one :"+strings.Repeat("z", limit+50))
	assert.Equal(t, []string{
		numeric("417", "alice", ":Input line was too long"),
		numeric("417", "alice", ":Input line was too long"),
	}, alice.sync())
	bob.expect(":" + source("alice", true) + " PRIVMSG #one :" + strings.Repeat("z", limit))
	bob.expectNothing()
}

// TestFloodIsReadSlowly: the hub's flood control reads an IRC client's
// lines at its rate, after its burst; none is lost.
func TestFloodIsReadSlowly(t *testing.T) {
	t.Parallel()
	const rate, burst, lines = 100, 10, 60
	s := startServer(t, nil, chatroom.WithRateLimit(rate, burst))
	alice := ircClient(t, s, "alice")
	bob := ircClient(t, s, "bob")
	alice.send("JOIN #one")
	alice.sync()
	bob.send("JOIN #one")
	bob.sync()
	alice.sync()

	start := time.Now()
	flood := make([]string, lines)
	for i := range flood {
		flood[i] = fmt.Sprintf("PRIVMSG #one :line %d", i)
	}
	alice.send(flood...)
	for i := range lines {
		bob.Expect(":%s PRIVMSG #one :line %d", source("alice", true), i)
	}
	// A lower bound only: a slow machine takes longer, never less.
	min := time.Duration(lines-burst-2) * time.Second / rate
	assert.GreaterOrEqual(t, time.Since(start), min, "read at the rate after the burst")
}

// TestIdleTimeout: a registered IRC client that sends nothing for the
// idle timeout is cut off, told why, and leaves its rooms for that reason
// (what the others see of it: TestFormat's quit). Any command counts as
// activity, PING included. (The hub observer, not a second client,
// watches it leave: every client is under the same timeout.)
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	left := make(chan chatroom.Event, 16)
	s := startServer(t, nil, chatroom.WithIdleTimeout(300*time.Millisecond), chatroom.WithEvents(func(e chatroom.Event) {
		if e.Kind == chatroom.EventLeave {
			left <- e
		}
	}))
	idle := ircClient(t, s, "idle")
	idle.send("JOIN #one")
	idle.sync()
	idle.expect("ERROR :Closing link (Idle timeout)")
	idle.ExpectClosed()
	select {
	case e := <-left:
		assert.Equal(t, "idle", e.Name)
		assert.Equal(t, "one", e.Room)
		assert.Equal(t, chatroom.ReasonIdle, e.Reason)
	case <-time.After(chattest.WaitLimit):
		t.Fatal("no event of idle's leaving")
	}
}

// TestSlowClientIsEvicted: an IRC client that stops reading is evicted
// once its socket and its outbox are full; the others see it quit, and
// lose nothing.
func TestSlowClientIsEvicted(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, chatroom.WithOutboxSize(16), chatroom.WithRateLimit(2000, 100), chatroom.WithWriteTimeout(time.Second))
	flooder := ircClient(t, s, "flooder")
	watcher := ircClient(t, s, "watcher")

	raw, err := smallBufferDialer(t).Dial("tcp", s.irc)
	require.NoError(t, err)
	slow := &conn{chattest.NewClient(t, raw, "slow")} // it never reads
	slow.send("NICK slow", "USER slow 0 * :Slow", "JOIN #one")
	chattest.Eventually(t, func() bool {
		watcher.send("WHOIS slow")
		lines := watcher.sync()
		return len(lines) > 1 && lines[1] == numeric("319", "watcher", "slow :@#one")
	}, "slow joined #one")
	for _, c := range []*conn{flooder, watcher} {
		c.send("JOIN #one")
		c.sync()
	}
	flooder.sync()

	// The flooder says up to 20 000 lines of 1 000 bytes (20 MB), at the
	// hub's rate of 2 000 a second (the watcher, who reads everything,
	// keeps up), until the watcher sees the slow client go.
	done := make(chan struct{})
	flooded := make(chan int, 1)
	go func() {
		text := strings.Repeat("x", 1000)
		i := 0
		defer func() { flooded <- i }()
		for ; i < 20_000; i++ {
			select {
			case <-done:
				return
			default:
			}
			flooder.Conn.SetWriteDeadline(time.Now().Add(chattest.WaitLimit))
			if _, err := fmt.Fprintf(flooder.Conn, "PRIVMSG #one :%d %s\r\n", i, text); err != nil {
				return
			}
		}
	}()
	flooder.Discard() // the flooder reads what it is sent, so that it is never slow itself
	t0 := time.Now()
	quit := ":" + source("slow", true) + " QUIT :Too slow (outbox full)"
	next := 0
	for {
		line := watcher.Line()
		if line == quit {
			break
		}
		require.True(t, strings.HasPrefix(line, fmt.Sprintf(":%s PRIVMSG #one :%d ", source("flooder", true), next)), "line %d, got %.80q", next, line)
		next++
	}
	close(done)
	n := <-flooded
	t.Logf("the slow client was evicted after %d lines of the flood, in %v (%d sent)", next, time.Since(t0).Round(time.Millisecond), n)
	assert.Less(t, next, 20_000, "evicted before the flood's end")
	stats := s.hub.Stats()
	assert.Equal(t, uint64(1), stats.Evicted)
}
