package chatroom_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// The idle timeout. Timing tests run under testing/synctest over net.Pipe,
// where time moves only when every goroutine waits: exact and fast.

// TestIdleTimeout: a client that sends nothing is cut off exactly when
// the idle timeout has passed since it joined, and one that talks exactly
// that long after its last line; the others see each leave.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Hour
		room := pipeRoom(t, chatroom.WithIdleTimeout(idle))
		start := time.Now()
		a, aDone := pipeClient(t, room, "a", 1)
		b, bDone := pipeClient(t, room, "b", 2)
		a.Patience, b.Patience = 2*idle, 2*idle
		a.Expect(ts + " * b joined")

		time.Sleep(idle - time.Minute)
		a.Send("still here\n")
		b.Expect(ts + " a say: still here")

		b.Expect("* idle timeout")
		assert.Equal(t, idle, time.Since(start), "b is cut off at the idle timeout, to the instant")
		b.ExpectClosed()
		assert.ErrorIs(t, <-bDone, chatroom.ErrIdleTimeout)
		a.Expect(ts + " * b left")

		a.Expect("* idle timeout")
		assert.Equal(t, 2*idle-time.Minute, time.Since(start), "a's clock restarted at its line")
		a.ExpectClosed()
		assert.ErrorIs(t, <-aDone, chatroom.ErrIdleTimeout)
	})
}

// TestIdleTimeoutCutsOffATrickle: a client that sends a byte every 7 s and
// never a newline is cut off at the idle timeout all the same: the clock
// restarts only at a whole line.
func TestIdleTimeoutCutsOffATrickle(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Minute
		room := pipeRoom(t, chatroom.WithIdleTimeout(idle))
		start := time.Now()
		a, done := pipeClient(t, room, "trickle", 1)
		a.Patience = 2 * idle
		trickled := make(chan int, 1)
		go func() {
			n := 0
			for {
				if _, err := a.Conn.Write([]byte("x")); err != nil {
					trickled <- n
					return
				}
				n++
				time.Sleep(7 * time.Second)
			}
		}()
		a.Expect("* idle timeout")
		assert.Equal(t, idle, time.Since(start))
		a.ExpectClosed()
		assert.ErrorIs(t, <-done, chatroom.ErrIdleTimeout)
		assert.Equal(t, 9, <-trickled, "a byte at 0, 7, ... 56 s; the cut at 60 s")
	})
}

// TestIdleTimeoutIgnoresLinesThatSayNothing is the slot squatter: a client
// that sends an empty line, or one that is empty once cleaned, every second
// is cut off at the idle timeout all the same, and so is one that sends
// only lines too long.
func TestIdleTimeoutIgnoresLinesThatSayNothing(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, line string }{
		{"empty line", "\n"},
		{"empty once cleaned", "\x00\x1b\r\n"},
		{"invisible only", "\u200b\u2060\n"},
		{"too long", strings.Repeat("x", 65) + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const idle = 2 * time.Second
				room := pipeRoom(t, chatroom.WithIdleTimeout(idle), chatroom.WithBufferSize(64))
				start := time.Now()
				squatter, done := pipeClient(t, room, "squatter", 1)
				stop := make(chan struct{})
				defer close(stop)
				go func() {
					tick := time.NewTicker(time.Second / 2)
					defer tick.Stop()
					for {
						squatter.Conn.SetWriteDeadline(time.Now().Add(time.Hour))
						if _, err := squatter.Conn.Write([]byte(tt.line)); err != nil {
							return
						}
						select {
						case <-tick.C:
						case <-stop:
							return
						}
					}
				}()
				for {
					line := squatter.Line()
					if line == "* idle timeout" {
						break
					}
					require.Equal(t, "* error: message too long (max 64 bytes)", line)
				}
				assert.Equal(t, idle, time.Since(start))
				assert.ErrorIs(t, <-done, chatroom.ErrIdleTimeout)
				assert.Zero(t, room.Stats().Messages, "nothing was relayed")
			})
		})
	}
}
