//go:build linux

package chatroom

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPollerForgetsDepartedClients: with a long idle timeout, clients that
// come and go do not stay in the poller's heap of deadlines (nor hold
// their memory there) until their timeout would have come: the heap holds
// the clients in the room, and no one else.
func TestPollerForgetsDepartedClients(t *testing.T) {
	t.Parallel()
	room := NewRoom(WithIdleTimeout(time.Hour), WithMaxPerHost(0), WithJoinRate(0, 0))
	addr := serveTCP(t, room)
	stay, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer stay.Close()
	in := bufio.NewReader(stay)
	_, err = in.ReadString('\n') // the welcome
	require.NoError(t, err)
	go func() {
		for {
			if _, err := in.ReadString('\n'); err != nil {
				return
			}
		}
	}()
	for range 500 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		c.Close()
	}
	heapLen := func() int {
		room.hub.mu.Lock()
		p := room.hub.poll
		room.hub.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.timers)
	}
	for end := time.Now().Add(chattest.WaitLimit); room.Stats().Clients != 1 || heapLen() != 1; {
		require.True(t, time.Now().Before(end), "%d clients, %d deadlines", room.Stats().Clients, heapLen())
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, 1, heapLen())
}

// TestTurnTakesItsShareOfReads: a turn reads at most turnReads times, then
// stops as if the socket had nothing more, keeping the part of a line it
// holds, so that a client that never pauses waits its turn behind the
// others; the next turns go on from where it stopped, and every line
// arrives once, whole and in order.
func TestTurnTakesItsShareOfReads(t *testing.T) {
	t.Parallel()
	const lines, max = 4 * turnReads, 8 // each read takes at most max+2 bytes: about one line
	server, remote := tcpPair(t)
	var sent strings.Builder
	for i := range lines {
		fmt.Fprintf(&sent, "line %03d\n", i)
	}
	_, err := remote.Write([]byte(sent.String()))
	require.NoError(t, err)

	// Everything is in the server's socket before the first turn.
	rc := rawSocket(server)
	require.NotNil(t, rc)
	peek := make([]byte, sent.Len())
	for end := time.Now().Add(chattest.WaitLimit); ; {
		n := 0
		require.NoError(t, rc.Control(func(fd uintptr) {
			n, _, _ = syscall.Recvfrom(int(fd), peek, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		}))
		if n == len(peek) {
			break
		}
		require.True(t, time.Now().Before(end), "the lines did not reach the socket")
		time.Sleep(time.Millisecond)
	}

	pool := newBufferPool(max)
	var got []string
	var part []byte
	turns := 0
	for len(got) < lines {
		require.Less(t, turns, 2*lines, "the turns stopped making progress")
		turns++
		lr := &lineReader{src: server, in: readiness(rc), pool: pool, max: max, nonblocking: true, part: part}
		for {
			line, tooLong, err := lr.next()
			if err == errWouldBlock {
				break
			}
			require.NoError(t, err)
			require.False(t, tooLong)
			got = append(got, string(line))
		}
		assert.LessOrEqual(t, lr.reads, turnReads, "turn %d read more than its share", turns)
		part = lr.part
		assert.Zero(t, pool.lent.Load(), "a turn ended holding a buffer")
	}
	for i, l := range got {
		require.Equal(t, fmt.Sprintf("line %03d", i), l)
	}
	assert.GreaterOrEqual(t, turns, lines/turnReads, "the lines were all read in fewer turns than their share allows")
}
