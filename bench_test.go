package chatroom_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom"
	"github.com/stretchr/testify/require"
)

// BenchmarkFanout measures the room's delivery path over loopback: one
// sender, N-1 receivers, 64-byte lines. One op is one line sent, so ns/op
// is the time to get a line to every receiver. The sender keeps at most
// two windows of lines in flight, so no healthy receiver is ever evicted
// and every delivery is counted.
//
// Reported besides ns/op: deliveries/s, and allocs/delivery: every
// allocation in the process during the run, the test clients' included,
// divided by the lines delivered.
//
// Flood control is off: the sender is a load generator, not a person. The
// hooks rows set a filter that passes every line unchanged and an events
// observer that does nothing, to show what hooks cost.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{10, 100, 500} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) { benchmarkFanout(b, n) })
	}
	hooks := []chatroom.Option{
		chatroom.WithFilter(func(e chatroom.FilterEvent) (chatroom.FilterReply, error) {
			return chatroom.FilterReply{Text: e.Text}, nil
		}),
		chatroom.WithEvents(func(chatroom.Event) {}),
	}
	for _, n := range []int{100, 500} {
		b.Run(fmt.Sprintf("clients=%d/hooks", n), func(b *testing.B) { benchmarkFanout(b, n, hooks...) })
	}
}

func benchmarkFanout(b *testing.B, clients int, opts ...chatroom.Option) {
	const window = 128 // lines per batch; two batches may be in flight
	_, addr := startRoom(b, append([]chatroom.Option{noFloodControl}, opts...)...)

	conns := make([]net.Conn, clients)
	ins := make([]*bufio.Reader, clients)
	for i := range conns {
		conn, err := net.Dial("tcp", addr)
		require.NoError(b, err)
		b.Cleanup(func() { conn.Close() })
		conns[i], ins[i] = conn, bufio.NewReaderSize(conn, 64<<10)
		_, err = ins[i].ReadString('\n') // the welcome: joins are in order
		require.NoError(b, err)
	}
	// Skip the joins: the last arrival's notice is the last line anyone
	// gets before the run.
	last := " * " + conns[clients-1].LocalAddr().String() + " joined\n"
	for _, in := range ins[:clients-1] {
		for {
			line, err := in.ReadString('\n')
			require.NoError(b, err)
			if strings.HasSuffix(line, last) {
				break
			}
		}
	}

	sender, receivers := conns[0], ins[1:]
	batches := (b.N + window - 1) / window
	done := make([]sync.WaitGroup, batches) // done[k]: every receiver has batch k
	for k := range done {
		done[k].Add(len(receivers))
	}
	var wg sync.WaitGroup
	for _, in := range receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range b.N {
				if _, err := in.ReadSlice('\n'); err != nil {
					b.Error(err)
					return
				}
				if i%window == window-1 || i == b.N-1 {
					done[i/window].Done()
				}
			}
		}()
	}

	line := bytes.Repeat([]byte("x"), 63)
	line = append(line, '\n')
	batch := bytes.Repeat(line, window)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for k := range batches {
		if k >= 2 {
			done[k-2].Wait()
		}
		n := min(window, b.N-k*window)
		sender.SetWriteDeadline(time.Now().Add(waitLimit))
		if _, err := sender.Write(batch[:n*len(line)]); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)

	deliveries := float64(b.N) * float64(len(receivers))
	b.ReportMetric(deliveries/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/deliveries, "ns/delivery")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
}

// BenchmarkArrival measures a brief connection's way through the hub over
// loopback, as each of a storm of connections takes it: it connects, reads
// its welcome and hangs up. One op is one connection, from the dial until
// the hub has seen it leave (its leave event). The busy rows have 100
// quiet members in the room and 100 lines of history, which a newcomer is
// sent, as in the demo.
//
// allocs/op and B/op count every allocation in the process during the
// run: the test's dial, its read and the events observer's included.
func BenchmarkArrival(b *testing.B) {
	for _, busy := range []bool{false, true} {
		b.Run(fmt.Sprintf("busy=%v", busy), func(b *testing.B) { benchmarkArrival(b, busy) })
	}
}

func benchmarkArrival(b *testing.B, busy bool) {
	left := make(chan struct{}, 1)
	room, addr := startRoom(b, chatroom.WithHistory(100), chatroom.WithEvents(func(e chatroom.Event) {
		if e.Kind == chatroom.EventLeave {
			select {
			case left <- struct{}{}:
			default: // the members, as the room closes
			}
		}
	}))
	if busy {
		var members []net.Conn
		for range 100 {
			c, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			b.Cleanup(func() { c.Close() })
			go io.Copy(io.Discard, c)
			members = append(members, c)
		}
		for i := range 100 {
			_, err := fmt.Fprintf(members[i%len(members)], "line %d of the history\n", i)
			require.NoError(b, err)
		}
		require.Eventually(b, func() bool { return room.Stats().Messages == 100 }, waitLimit, time.Millisecond)
	}
	in := bufio.NewReader(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(waitLimit))
		in.Reset(c)
		if _, err := in.ReadSlice('\n'); err != nil {
			b.Fatal(err)
		}
		c.Close()
		select {
		case <-left:
		case <-time.After(waitLimit):
			b.Fatal("the hub did not see the connection leave")
		}
	}
}
