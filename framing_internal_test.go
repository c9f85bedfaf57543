package chatroom

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// heapInUse returns the heap in use once the collector has run twice (the
// second empties the pools of what the first left them).
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestHalfLinesCostWhatWasSent (a long test: CHATROOM_LONG_TESTS=1) is the
// half-line attack: 2 000 clients of a
// room with 64 KiB lines each send 100 bytes of a line and go quiet. Each
// reader parks its part in a slice of its size and gives its read buffer
// back, so the heap grows by about what they sent, not by 2 000 buffers
// (128 MiB). Then the lines are finished, and every one is relayed whole.
func TestHalfLinesCostWhatWasSent(t *testing.T) {
	// Not parallel: it measures the process's heap.
	chattest.Long(t)
	if raceEnabled {
		t.Skip("a memory measurement: it runs without -race (.ci/run runs it so)")
	}
	const clients, sent, bufferSize = 2000, 100, 64 << 10
	room := NewRoom(WithBufferSize(bufferSize))
	addr := serveTCP(t, room)
	// 2 000 clients join, and each hears every arrival: twice the usual
	// limit for each step.
	eventually := func(cond func() bool, msg string) {
		t.Helper()
		chattest.EventuallyWithin(t, 2*chattest.WaitLimit, cond, "%s", msg)
	}

	// They dial without waiting for one another's welcome, so that the
	// room takes many arrivals in one batch (one at a time, each arrival's
	// notice cost a write to every member: 17 to 60 s).
	conns := make([]net.Conn, clients)
	var welcomed atomic.Int64
	for i := range conns {
		c, err := net.DialTimeout("tcp", addr, chattest.WaitLimit)
		require.NoError(t, err)
		defer c.Close()
		conns[i] = c
		go func() {
			in := bufio.NewReader(c)
			if l, err := in.ReadString('\n'); err == nil && strings.HasPrefix(l, "* welcome ") {
				welcomed.Add(1)
			}
			io.Copy(io.Discard, in) // the others' arrivals, then their lines
		}()
	}
	eventually(func() bool {
		s := room.Stats()
		return welcomed.Load() == clients && s.Clients == clients && room.hub.buffers.pool(bufferSize).lent.Load() == 0
	}, "every client welcome and idle")
	idle := heapInUse()

	half := strings.Repeat("h", sent)
	for _, c := range conns {
		_, err := c.Write([]byte(half))
		require.NoError(t, err)
	}
	eventually(func() bool {
		return room.hub.buffers.pool(bufferSize).parked.Load() == clients && room.hub.buffers.pool(bufferSize).lent.Load() == 0
	}, "every reader parked its half line and gave its buffer back")
	halves := heapInUse()
	grew := int64(halves) - int64(idle)
	t.Logf("%d idle clients, then %d bytes of a line from each: heap %.1f MiB, then %.1f MiB (%+d bytes, %.0f per client; a read buffer is %d)",
		clients, sent, float64(idle)/(1<<20), float64(halves)/(1<<20), grew, float64(grew)/clients, bufferSize+2)
	// What they sent, in a slice of its size class (112 bytes), and 1 MiB
	// for the collector's and the test's own noise.
	assert.LessOrEqual(t, grew, int64(clients*112+1<<20), "half lines cost more than what was sent")

	for _, c := range conns {
		_, err := c.Write([]byte(" done\n"))
		require.NoError(t, err)
	}
	eventually(func() bool { return room.Stats().Messages == clients }, "every line finished and relayed")
	assert.Zero(t, room.Stats().Evicted)
}
