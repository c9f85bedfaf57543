package chatroom_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// The poller (Linux): clients from Serve on plain sockets are read in
// turns by an epoll loop, with no goroutine while they are quiet. These
// tests run its races on real TCP connections: connections that close
// while others open and reuse their descriptor numbers, and thousands of
// idle timeouts at once. They run on every system; elsewhere they test
// the goroutine per client the poller replaces.

// TestChurnWhileChatting: while two members chat steadily, 16 goroutines
// open connections, say a line each, and close them at once, hard or by
// "exit", 3 000 times: descriptor numbers are reused as fast as the kernel
// hands them out. Every line of each churner reaches the members whole,
// under the churner's own name, in order with its join and leave; every
// steady line arrives once and in order; and the room ends empty.
func TestChurnWhileChatting(t *testing.T) {
	t.Parallel()
	room, addr := startRoom(t, noFloodControl, chatroom.WithMaxPerHost(0), chatroom.WithJoinRate(0, 0))
	alice, bob := dialPair(t, addr)
	discard(alice, nil) // she only speaks

	const churners, rounds = 16, 3000 / 16
	var wg sync.WaitGroup
	for g := range churners {
		wg.Go(func() {
			for i := range rounds {
				conn, err := net.DialTimeout("tcp", addr, waitLimit)
				if !assert.NoError(t, err) {
					return
				}
				name := conn.LocalAddr().String()
				end := "\n"
				if i%2 == 0 {
					end = "\nexit\n"
				}
				fmt.Fprintf(conn, "churn %d %d from %s%s", g, i, name, end)
				conn.Close()
			}
		})
	}
	churnDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(churnDone)
	}()
	steady := 0 // alice's lines, sent until the churn ends; then "steady end"
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-churnDone:
				fmt.Fprintf(alice.Conn, "steady end\n")
				return
			default:
			}
			fmt.Fprintf(alice.Conn, "steady %d\n", steady)
			steady++
			time.Sleep(100 * time.Microsecond)
		}
	}()

	// bob hears every steady line in order; every churner's line carries
	// the name of the connection that said it.
	churned, next := 0, 0
	for {
		l := bob.Line()
		rest, ok := strings.CutPrefix(l, ts+" ")
		require.True(t, ok, "a line without a time: %q", l)
		name, text, ok := strings.Cut(rest, " say: ")
		switch {
		case !ok: // a join or a leave
			continue
		case strings.HasPrefix(text, "churn "):
			var g, i int
			var from string
			_, err := fmt.Sscanf(text, "churn %d %d from %s", &g, &i, &from)
			require.NoError(t, err, l)
			require.Equal(t, from, name, "a churner's line under another's name")
			churned++
		case text == "steady end":
		default:
			require.Equal(t, fmt.Sprintf("steady %d", next), text, "the steady line out of order")
			require.Equal(t, alice.Name, name)
			next++
			continue
		}
		if text == "steady end" {
			break
		}
	}
	discard(bob, nil)
	<-sent
	eventually(t, func() bool { return room.Stats().Clients == 2 }, "the churners left")
	s := room.Stats()
	assert.Equal(t, s.Joined, s.Left+2)
	t.Logf("%d connections churned; bob heard %d of their lines among %d of alice's", churners*rounds, churned, next)
	assert.Positive(t, churned)
}

// TestThousandsIdleOutAtOnce: 2 000 clients that say nothing are all cut
// off at their idle timeout, each told so, none as too slow, while a
// member who speaks stays.
func TestThousandsIdleOutAtOnce(t *testing.T) {
	t.Parallel()
	const clients, idle = 2000, 2 * time.Second
	// Every client hears the others arrive and leave, up to 4 000 notices
	// in bursts: an outbox that holds them all keeps a reader that the
	// machine's load holds back from being cut off as too slow, which
	// gives no last line.
	room, addr := startRoom(t, chatroom.WithIdleTimeout(idle), chatroom.WithMaxPerHost(0), chatroom.WithJoinRate(0, 0),
		chatroom.WithOutboxSize(2*clients+64))

	// A member who speaks more often than the timeout stays.
	talker := dial(t, addr, 1)
	discard(talker, nil)
	stop := make(chan struct{})
	talked := make(chan struct{})
	go func() {
		defer close(talked)
		for {
			select {
			case <-stop:
				return
			case <-time.After(idle / 4):
				fmt.Fprintf(talker.Conn, "still here\n")
			}
		}
	}()
	defer func() {
		close(stop)
		<-talked
	}()

	told := make(chan string, clients)
	var wg sync.WaitGroup
	for range clients {
		conn, err := net.DialTimeout("tcp", addr, waitLimit)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		wg.Go(func() {
			in := bufio.NewReader(conn)
			last := ""
			for {
				conn.SetReadDeadline(time.Now().Add(waitLimit))
				l, err := in.ReadString('\n')
				if err != nil {
					told <- last
					return
				}
				if !strings.HasPrefix(l, ts) { // not someone else's line, arrival or departure
					last = l
				}
			}
		})
	}
	wg.Wait()
	close(told)
	n := 0
	for last := range told {
		assert.Equal(t, "* idle timeout\n", last)
		n++
	}
	assert.Equal(t, clients, n)
	assert.Zero(t, room.Stats().Evicted, "a client was cut off as too slow instead")
	eventually(t, func() bool { return room.Stats().Clients == 1 }, "the idle clients left")
	assert.Equal(t, uint64(clients+1), room.Stats().Joined)
}

// TestStuckFilterHoldsUpNoOneElse: a filter that never returns for some
// clients' lines, more of them than the room has processors, holds up
// those clients alone: on Linux their turns give up their runners' places
// before they call it, and everyone else's lines still go round. Once the
// filter lets them go, their lines arrive too.
func TestStuckFilterHoldsUpNoOneElse(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var stuck sync.WaitGroup
	filter := func(_, text string) (string, bool) {
		if strings.HasPrefix(text, "stuck") {
			stuck.Done()
			<-release
		}
		return text, true
	}
	_, addr := startRoom(t, chatroom.WithFilter(filter))
	alice, bob := dialPair(t, addr)

	n := 2*runtime.GOMAXPROCS(0) + 2
	stuck.Add(n)
	for i := range n {
		c := dial(t, addr, 3+i)
		discard(c, nil)
		c.Send(fmt.Sprintf("stuck %d\n", i))
	}
	waited := make(chan struct{})
	go func() {
		stuck.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(waitLimit):
		close(release)
		t.Fatal("the filter did not get every stuck line")
	}

	alice.Send("still here\n")
	bob.WaitFor(fmt.Sprintf(ts+" %s say: still here", alice))
	close(release)
	for range n {
		l := bob.Line()
		assert.Contains(t, l, " say: stuck ", "the stuck lines after the filter let them go")
	}
}
