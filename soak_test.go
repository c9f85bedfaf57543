package chatroom_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// soakDuration is how long TestSoak runs: a few seconds by default, longer
// with CHATROOM_SOAK=10m (any time.ParseDuration string).
func soakDuration(t *testing.T) time.Duration {
	d := 3 * time.Second
	if s := os.Getenv("CHATROOM_SOAK"); s != "" {
		var err error
		d, err = time.ParseDuration(s)
		require.NoError(t, err, "CHATROOM_SOAK")
	}
	return d
}

// TestSoak (a long test: CHATROOM_LONG_TESTS=1, or CHATROOM_SOAK) streams
// lines from steady senders to steady receivers while other clients join
// and leave at random: they exit, hang up, reset, or talk first. At the end every steady receiver has every line of every
// steady sender, exactly once and in order, and the goroutines, open
// descriptors and heap are back where they started.
func TestSoak(t *testing.T) {
	// Not parallel: it counts the process's goroutines and descriptors,
	// and measures its heap.
	if os.Getenv("CHATROOM_SOAK") == "" { // a soak's length asks for it too
		chattest.Long(t)
	}
	const senders, receivers, churners = 3, 3, 4
	duration := soakDuration(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("soak for %v, seed %d", duration, seed)

	runtime.GC()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := ms.HeapAlloc

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock), noFloodControl)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	addr := ln.Addr().String()

	steady := make([]*client, senders+receivers)
	for i := range steady {
		steady[i] = dial(t, addr, i+1)
	}
	senderIndex := map[string]int{}
	for i, s := range steady[:senders] {
		senderIndex[s.Name] = i
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup

	// Steady receivers check each steady sender's sequence as it arrives.
	got := make([][]atomic.Int64, receivers) // got[r][s]: lines from s that r has
	for r, c := range steady[senders:] {
		got[r] = make([]atomic.Int64, senders)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c.Conn.SetReadDeadline(time.Now().Add(waitLimit))
				line, err := c.In.ReadString('\n')
				if err != nil {
					return // closed at the end of the test
				}
				name, text, ok := strings.Cut(strings.TrimPrefix(line, ts+" "), " say: ")
				s, steadySender := senderIndex[name]
				if !ok || !steadySender {
					continue // joins, leaves, churners' chatter
				}
				want := got[r][s].Load()
				if !assert.Equal(t, fmt.Sprintf("%d\n", want), text, "receiver %d, sender %d", r, s) {
					return
				}
				got[r][s].Add(1)
			}
		}()
	}

	// Steady senders stream at a steady pace until stopped.
	sent := make([]atomic.Int64, senders)
	var sending sync.WaitGroup
	for s, c := range steady[:senders] {
		sending.Add(1)
		go func() {
			defer sending.Done()
			go func() { // hear the others, so this outbox stays short
				for {
					// A deadline for each line, as the receivers have: the
					// one left from the welcome ran out after 10 s, and the
					// sender then stopped reading and was rightly evicted.
					c.Conn.SetReadDeadline(time.Now().Add(waitLimit))
					if _, err := c.In.ReadString('\n'); err != nil {
						return // closed at the end of the test
					}
				}
			}()
			tick := time.NewTicker(500 * time.Microsecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				select {
				case <-stop: // stop wins over a tick that came at once
					return
				default:
				}
				c.Conn.SetWriteDeadline(time.Now().Add(waitLimit))
				if _, err := fmt.Fprintf(c.Conn, "%d\n", i); !assert.NoError(t, err) {
					return
				}
				sent[s].Add(1)
			}
		}()
	}

	// Churners come and go.
	var churn atomic.Int64
	for w := range churners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				churnOnce(t, addr, rng)
				churn.Add(1)
			}
		}()
	}

	time.Sleep(duration) // the soak itself: no condition to wait for
	close(stop)
	sending.Wait()
	// Wait for every steady line to land, then close everything.
	eventually(t, func() bool {
		for r := range receivers {
			for s := range senders {
				if got[r][s].Load() != sent[s].Load() {
					return false
				}
			}
		}
		return true
	}, "every receiver has every line")
	stats := room.Stats()
	for _, c := range steady {
		c.Conn.Close()
	}
	wg.Wait()
	require.NoError(t, room.Close())
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)

	var total int64
	for s := range senders {
		total += sent[s].Load()
	}
	t.Logf("%d lines from %d steady senders reached %d steady receivers: %d deliveries, none lost or repeated",
		total, senders, receivers, total*receivers)
	t.Logf("%d churning clients came and went; the room relayed %d messages, delivered %d lines, evicted %d",
		churn.Load(), stats.Messages, stats.Delivered, stats.Evicted)
	assert.Zero(t, stats.Evicted)

	eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines }, "goroutines back to the start")
	eventually(t, func() bool { return openFDs(t) <= fds }, "descriptors back to the start")
	eventually(t, func() bool {
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc <= heap+1<<20
	}, "heap back to the start")
	t.Logf("after: %d goroutines (start %d), %d descriptors (start %d), heap %d KiB (start %d KiB)",
		runtime.NumGoroutine(), goroutines, openFDs(t), fds, ms.HeapAlloc>>10, heap>>10)
}

// churnOnce is one short visit to the room, chosen at random.
func churnOnce(t *testing.T, addr string, rng *rand.Rand) {
	conn, err := net.DialTimeout("tcp", addr, waitLimit)
	if !assert.NoError(t, err) {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitLimit))
	in := bufio.NewReader(conn)
	if _, err := in.ReadString('\n'); !assert.NoError(t, err, "welcome") {
		return
	}
	// Read whatever arrives meanwhile, as a live client would.
	reading := make(chan string, 1)
	go func() {
		var last string
		for {
			line, err := in.ReadString('\n')
			if err != nil {
				reading <- last
				return
			}
			last = line
		}
	}()
	for range rng.IntN(5) {
		fmt.Fprintf(conn, "churn %d\n", rng.IntN(1000))
	}
	switch rng.IntN(4) {
	case 0: // say goodbye properly
		fmt.Fprintf(conn, "exit\n")
		assert.Equal(t, "* bye\n", <-reading)
		return
	case 1: // hang up
		conn.Close()
	case 2: // reset
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	case 3: // half a line, then hang up
		fmt.Fprintf(conn, "unfinished %s", strconv.Itoa(rng.IntN(100)))
		conn.Close()
	}
	<-reading
}
