package chatroom_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/chatroom-go/chatroom"
)

// The idle timeout. Timing tests run under testing/synctest over net.Pipe,
// where time moves only when every goroutine waits: exact and fast.

// TestIdleTimeout: a client that sends nothing is cut off exactly when
// the idle timeout has passed since it joined, and one that talks exactly
// that long after its last line; the others see each leave.
func TestIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Hour
		room := pipeRoom(t, chatroom.WithIdleTimeout(idle))
		start := time.Now()
		a, aDone := pipeClient(t, room, "a", 1)
		b, bDone := pipeClient(t, room, "b", 2)
		a.patience, b.patience = 2*idle, 2*idle
		a.expect(ts + " * b joined")

		time.Sleep(idle - time.Minute)
		a.send("still here\n")
		b.expect(ts + " a say: still here")

		b.expect("* idle timeout")
		assert.Equal(t, idle, time.Since(start), "b is cut off at the idle timeout, to the instant")
		b.expectClosed()
		assert.ErrorIs(t, <-bDone, chatroom.ErrIdleTimeout)
		a.expect(ts + " * b left")

		a.expect("* idle timeout")
		assert.Equal(t, 2*idle-time.Minute, time.Since(start), "a's clock restarted at its line")
		a.expectClosed()
		assert.ErrorIs(t, <-aDone, chatroom.ErrIdleTimeout)
	})
}

// TestIdleTimeoutCutsOffATrickle: a client that sends a byte every 7 s and
// never a newline is cut off at the idle timeout all the same: the clock
// restarts only at a whole line.
func TestIdleTimeoutCutsOffATrickle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Minute
		room := pipeRoom(t, chatroom.WithIdleTimeout(idle))
		start := time.Now()
		a, done := pipeClient(t, room, "trickle", 1)
		a.patience = 2 * idle
		trickled := make(chan int, 1)
		go func() {
			n := 0
			for {
				if _, err := a.conn.Write([]byte("x")); err != nil {
					trickled <- n
					return
				}
				n++
				time.Sleep(7 * time.Second)
			}
		}()
		a.expect("* idle timeout")
		assert.Equal(t, idle, time.Since(start))
		a.expectClosed()
		assert.ErrorIs(t, <-done, chatroom.ErrIdleTimeout)
		assert.Equal(t, 9, <-trickled, "a byte at 0, 7, ... 56 s; the cut at 60 s")
	})
}
