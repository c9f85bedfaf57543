package chatroom_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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

	// How each client's connection ended: its last line that was not
	// someone else's arrival or departure, and, to tell why when that is
	// wrong, the error that ended it and when.
	type ending struct {
		last         string
		err          error
		lines        int
		welcomeAfter time.Duration // from the dial to the first line
		endAfter     time.Duration // from the dial to the end
	}
	told := make(chan ending, clients)
	var heard atomic.Int64 // lines the clients read, all together
	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, clients)
	start := time.Now()
	for range clients {
		conn, err := net.DialTimeout("tcp", addr, waitLimit)
		require.NoError(t, err)
		dialed := time.Now()
		t.Cleanup(func() { conn.Close() })
		conns = append(conns, conn)
		wg.Go(func() {
			in := bufio.NewReader(conn)
			var e ending
			for {
				l, err := in.ReadString('\n') // no deadline: see below
				if err != nil {
					e.err, e.endAfter = err, time.Since(dialed)
					told <- e
					return
				}
				heard.Add(1)
				if e.lines++; e.lines == 1 {
					e.welcomeAfter = time.Since(dialed)
				}
				if !strings.HasPrefix(l, ts) { // not someone else's line, arrival or departure
					e.last = l
				}
			}
		})
	}
	dialed := time.Since(start)

	// The room admits the 2 000 and cuts them off at its own pace, a pass
	// over every member for each arrival and departure: on a busy machine,
	// under the race detector, a few hundred a second, so that the last to
	// dial waits many seconds for its welcome. The clients wait for as
	// long as the room makes progress, that is while one of them hears
	// something, and the test fails only if none hears anything for
	// waitLimit: then every connection is closed, and the clients that were
	// not told are listed below.
	ended := make(chan struct{})
	go func() {
		wg.Wait()
		close(ended)
	}()
	last, since := heard.Load(), time.Now()
	for waiting := true; waiting; {
		select {
		case <-ended:
			waiting = false
		case <-time.After(10 * time.Millisecond):
			if now := heard.Load(); now != last {
				last, since = now, time.Now()
			} else if time.Since(since) > waitLimit {
				t.Errorf("no client heard anything for %v", waitLimit)
				for _, c := range conns {
					c.Close()
				}
				<-ended
				waiting = false
			}
		}
	}
	t.Logf("%d clients dialed in %v; all ended %v after the first dial; %+v", clients, dialed.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), room.Stats())
	close(told)
	n := 0
	var wrong []string
	for e := range told {
		if e.last != "* idle timeout\n" {
			wrong = append(wrong, fmt.Sprintf("last %q after %d lines, welcome after %v, ended after %v by %v",
				e.last, e.lines, e.welcomeAfter.Round(time.Millisecond), e.endAfter.Round(time.Millisecond), e.err))
		}
		n++
	}
	assert.Empty(t, wrong[:min(len(wrong), 5)], "clients whose last line was not \"* idle timeout\": %d (the first 5 here)", len(wrong))
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
	filter := func(e chatroom.FilterEvent) (chatroom.FilterReply, error) {
		if strings.HasPrefix(e.Text, "stuck") {
			stuck.Done()
			<-release
		}
		return chatroom.FilterReply{Text: e.Text}, nil
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
