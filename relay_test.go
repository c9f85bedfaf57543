package chatroom_test

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// Relaying lines: joining, saying, leaving, and how a line is framed and
// cleaned on its way.

func TestJoinWelcomesAndAnnounces(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a := dial(t, addr, 1)
	b := dial(t, addr, 2)
	a.Expect(ts+" * %s joined", b)
	c := dial(t, addr, 3)
	a.Expect(ts+" * %s joined", c)
	b.Expect(ts+" * %s joined", c)
}

func TestRelayGoesToEveryoneButTheSender(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	a.Send("hello\n")
	b.Expect(ts+" %s say: hello", a)
	// Had a been sent its own line, it would arrive before b's.
	b.Send("hi there\r\n")
	a.Expect(ts+" %s say: hi there", b)
}

func TestEmptyLinesAreIgnored(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	a.Send("\n\r\n\x00\x1b\r\n") // empty, or empty once cleaned
	a.Send("after\n")
	b.Expect(ts+" %s say: after", a)
}

func TestExitSaysByeAndCloses(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"exit\n", "EXIT\n", "  Exit \t\r\n", "eXiT\n"} {
		t.Run(strconv.Quote(line), func(t *testing.T) {
			room, addr := startRoom(t)
			a, b := dialPair(t, addr)

			a.Send(line)
			a.Expect("* bye")
			a.ExpectClosed()
			b.Expect(ts+" * %s left", a)
			eventually(t, func() bool { return room.Stats().Clients == 1 }, "a is gone")
		})
	}
}

func TestNotExitIsRelayed(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)
	for _, text := range []string{"exit now", "exits", "ex it"} {
		a.Send(text + "\n")
		b.Expect(ts+" %s say: %s", a, text)
	}
}

func TestDisconnectIsAnnounced(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)
	require.NoError(t, b.Conn.Close())
	a.Expect(ts+" * %s left", b)
}

func TestUnterminatedLastLineIsRelayed(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)
	b.Send("last words")
	require.NoError(t, b.Conn.(*net.TCPConn).CloseWrite())
	a.Expect(ts+" %s say: last words", b)
	a.Expect(ts+" * %s left", b)
}

func TestLineTooLong(t *testing.T) {
	t.Parallel()
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
			a.Send(tt.send)
			if tt.relayed {
				b.Expect(ts+" %s say: %s", a, exact)
			} else {
				a.Expect("* error: message too long (max %d bytes)", max)
			}
			// The connection stays, and framing is intact.
			a.Send("still here\n")
			b.Expect(ts+" %s say: still here", a)
		})
	}
}

// TestLineTooLongIsAnsweredAtTheLimit: a client streaming a line with no
// newline is told at once, not when (if ever) its newline comes; the rest
// of the line is discarded as it arrives, and the next line is relayed.
func TestLineTooLongIsAnsweredAtTheLimit(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	a.Send(strings.Repeat("m", 1<<20)) // 1 MiB, no newline yet
	a.Expect("* error: message too long (max %d bytes)", chatroom.DefaultBufferSize)
	a.Send(strings.Repeat("m", 1<<20) + "\nafter\n") // more of it, its end, and a line
	b.Expect(ts+" %s say: after", a)
	a.Send("again\n")
	b.Expect(ts+" %s say: again", a)
	// One error for the whole line: nothing else came back to a.
	require.NoError(t, a.Conn.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	_, err := a.In.ReadByte()
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "a second reply for one long line")
}

func TestMegabyteLine(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	go a.Conn.Write([]byte(strings.Repeat("m", 1<<20) + "\nafter\n"))
	a.Expect("* error: message too long (max %d bytes)", chatroom.DefaultBufferSize)
	b.Expect(ts+" %s say: after", a)
}

func TestOnlyCarriageReturns(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t, chatroom.WithBufferSize(64))
	a, b := dialPair(t, addr)

	a.Send("\r\n\r\r\r\n") // empty once the ending and the controls go
	a.Send(strings.Repeat("\r", 5000) + "\n")
	a.Expect("* error: message too long (max 64 bytes)")
	a.Send("ok\n")
	b.Expect(ts+" %s say: ok", a) // b heard nothing before it

	a.Send(strings.Repeat("\r", 5000)) // and then hangs up, mid-line
	require.NoError(t, a.Conn.(*net.TCPConn).CloseWrite())
	a.Expect("* error: message too long (max 64 bytes)")
	b.Expect(ts+" * %s left", a)
}

func TestHostileTextIsCleaned(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	tests := []struct{ name, send, want string }{
		{"a tab is a space", "a\tb", "a b"},
		{"a run of blanks is one space", "see you" + strings.Repeat(" ", 400) + ts + " alice say: hunter2", "see you " + ts + " alice say: hunter2"},
		{"Unicode spaces too", "a\u00a0\u2003\u3000b", "a b"},
		{"no blank at either end", " \t padded \t ", "padded"},
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
			a.Send(tt.send + "\n")
			b.Expect(ts+" %s say: %s", a, tt.want)
			if tt.name == "forged line" {
				// The second half arrives as its own line from a, not
				// as someone else's.
				b.Expect(ts+" %s say: %s someone say: x", a, ts)
			}
		})
	}
}

// TestOrderPerSender has many senders talk at once to many receivers:
// every receiver gets every line of every sender exactly once, and each
// sender's lines in the order sent; with flood control off, and (a long
// test: CHATROOM_LONG_TESTS=1) with the default flood control, which reads
// each sender's 300 lines over 12.5 s.
func TestOrderPerSender(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []chatroom.Option
		long bool
	}{
		{"flood control off", []chatroom.Option{noFloodControl}, false},
		{"default flood control", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.long {
				chattest.Long(t)
			}
			t.Parallel()
			orderPerSender(t, tt.opts...)
		})
	}
}

func orderPerSender(t *testing.T, opts ...chatroom.Option) {
	const senders, receivers, lines = 6, 6, 300
	// Every sender sends all its lines in one write, with no flow control:
	// the outbox must hold the whole burst, since this test is about order,
	// not about slow clients.
	room, addr := startRoom(t, append([]chatroom.Option{chatroom.WithOutboxSize(senders * lines)}, opts...)...)
	var all []*client
	for i := range senders + receivers {
		c := dial(t, addr, i+1)
		for _, prev := range all {
			prev.Expect(ts+" * %s joined", c)
		}
		all = append(all, c)
	}
	byName := map[string]int{}
	for i, c := range all[:senders] {
		byName[c.Name] = i
	}

	var wg sync.WaitGroup
	for _, r := range all[senders:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := make([]int, senders)
			for got := 0; got < senders*lines; got++ {
				line := r.Line()
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
			s.Send(b.String()) // in one write: the room must frame it
		}()
	}
	// Senders hear each other too; drain them so their outboxes stay short.
	for i, s := range all[:senders] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range (senders - 1) * lines {
				s.Line()
			}
			_ = i
		}()
	}
	wg.Wait()
	s := room.Stats()
	assert.Equal(t, uint64(senders*lines), s.Messages)
	assert.Zero(t, s.Evicted)
}

// TestFiveHundredClients: 500 clients in one room over loopback all get a
// line sent by one of them.
func TestFiveHundredClients(t *testing.T) {
	t.Parallel()
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
	sender.Send("to all five hundred\n")
	want := ts + " " + sender.Name + " say: to all five hundred"
	var wg sync.WaitGroup
	for _, c := range clients[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.WaitFor(want) // after the joins that came after it
		}()
	}
	wg.Wait()
	s := room.Stats()
	assert.Equal(t, n, s.Clients)
	assert.Zero(t, s.Evicted)
}

// reset aborts a TCP connection with a RST instead of a FIN.
func reset(t *testing.T, c *client) {
	t.Helper()
	tc := c.Conn.(*net.TCPConn)
	require.NoError(t, tc.SetLinger(0))
	require.NoError(t, tc.Close())
}

func TestResetMidLine(t *testing.T) {
	t.Parallel()
	_, addr := startRoom(t)
	a, b := dialPair(t, addr)

	b.Send("half a line, never fini")
	reset(t, b)
	a.Expect(ts+" * %s left", b)

	// Nothing of the half line was relayed, and the room goes on.
	c := dial(t, addr, 2)
	a.Expect(ts+" * %s joined", c)
	c.Send("next\n")
	a.Expect(ts+" %s say: next", c)
}
