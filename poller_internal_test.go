//go:build linux

package chatroom

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPollerForgetsDepartedClients: with a long idle timeout, clients that
// come and go do not stay in the poller's heap of deadlines (nor hold
// their memory there) until their timeout would have come: the heap holds
// the clients in the room, and no one else.
func TestPollerForgetsDepartedClients(t *testing.T) {
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
		room.mu.Lock()
		p := room.poll
		room.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.timers)
	}
	for end := time.Now().Add(15 * time.Second); room.Stats().Clients != 1 || heapLen() != 1; {
		require.True(t, time.Now().Before(end), "%d clients, %d deadlines", room.Stats().Clients, heapLen())
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, 1, heapLen())
}
