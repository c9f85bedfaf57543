package main

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPollerTakesTheSocket hands a room client that has just joined to the
// poller: what its reader had already read after the answer to /join is
// delivered, what arrives later too, and a line sent through the poller
// reaches the server whole.
func TestPollerTakesTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	later := make(chan struct{})
	heard := make(chan string, 1)
	go func() {
		defer close(heard)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		io.WriteString(c, "* welcome guest1, 1 online\n")
		if _, err := r.ReadString('\n'); err != nil { // the /join
			return
		}
		// The answer and a history line in one write: the client's
		// reader most likely takes both in one read.
		io.WriteString(c, "* you are in room-7, 2 online\n2026-11-30 10:00:00 guest2 say: left over\n")
		select {
		case <-later:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(c, "2026-11-30 10:00:01 guest2 say: later\n")
		line, _ := r.ReadString('\n')
		heard <- line
	}()

	c, err := roomProto{label: "room"}.member(ln.Addr().String(), "room-7")
	require.NoError(t, err)
	leftOver := len(c.(rawClient).buffered()) > 0
	t.Logf("the reader had read the history line with the answer: %v", leftOver)
	got := make(chan string, 2)
	pio, err := newPollIO(1, func(_ int, payload []byte) { got <- string(payload) })
	require.NoError(t, err)
	defer pio.close()
	require.NoError(t, pio.add(0, c))
	if leftOver {
		select {
		case g := <-got:
			assert.Equal(t, "left over", g, "delivered from the reader's buffer, during add")
		default:
			t.Fatal("the reader's buffered line was not delivered during add")
		}
	}
	close(later)
	want := []string{"left over", "later"}
	if leftOver {
		want = want[1:]
	}
	for _, w := range want {
		select {
		case g := <-got:
			assert.Equal(t, w, g)
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q", w)
		}
	}
	require.NoError(t, pio.send(0, []byte("out")))
	select {
	case h := <-heard:
		assert.Equal(t, "out\n", h)
	case <-time.After(10 * time.Second):
		t.Fatal("the server heard nothing")
	}
}
