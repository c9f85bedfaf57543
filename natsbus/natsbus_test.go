package natsbus_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// Three processes serve one room over one NATS server: each test starts
// the server inside the test process and three rooms on their own
// listeners, and talks to them as clients do, over TCP.

func threeProcesses(t *testing.T, opts ...chatroom.Option) (*natsServer, []*process) {
	ns := startNATS(t)
	ps := []*process{startProcess(t, ns, opts...), startProcess(t, ns, opts...), startProcess(t, ns, opts...)}
	return ns, ps
}

// trio joins alice, bob and carol, one on each process, and waits until
// every process knows all three.
func trio(t *testing.T, ps []*process) (alice, bob, carol *client) {
	alice = join(t, ps[0], "alice")
	bob = join(t, ps[1], "bob")
	allSee(t, []string{"alice", "bob"}, ps...)
	carol = join(t, ps[2], "carol")
	allSee(t, []string{"alice", "bob", "carol"}, ps...)
	// The others saw each newcomer arrive under its address, then rename.
	alice.WaitForPart(" is now carol")
	bob.WaitForPart(" is now carol")
	return alice, bob, carol
}

func TestChatAcrossProcesses(t *testing.T) {
	t.Parallel()
	_, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)

	alice.Send("hello from A\n")
	bob.Expect(ts + " alice say: hello from A")
	carol.Expect(ts + " alice say: hello from A")

	bob.Send("/me waves\n")
	alice.Expect(ts + " * bob waves")
	carol.Expect(ts + " * bob waves")

	// A whisper reaches its one recipient, on another process.
	carol.Send("/msg ALICE psst\n")
	alice.Expect(ts + " carol whispers: psst")
	carol.Send("after the whisper\n")
	assert.Empty(t, bob.WaitFor(ts+" carol say: after the whisper"), "bob heard the whisper")
	alice.Expect(ts + " carol say: after the whisper")

	for _, c := range []*client{alice, bob, carol} {
		c.Send("/who\n")
		c.Expect("* 3 online: alice, bob, carol")
	}

	// A rename is seen everywhere, and the new name is found everywhere.
	bob.Send("/nick bobby\n")
	bob.Expect("* you are now bobby")
	alice.Expect(ts + " * bob is now bobby")
	carol.Expect(ts + " * bob is now bobby")
	allSee(t, []string{"alice", "bobby", "carol"}, ps...)
	alice.Send("/msg bobby hi bobby\n")
	bob.Expect(ts + " alice whispers: hi bobby")
	alice.Send("/msg bob hi bob\n")
	alice.Expect("* error: no such client bob")

	// Clients says where each client is.
	infos := ps[0].room.Clients()
	require.Len(t, infos, 3)
	assert.Empty(t, infos[0].Peer, "alice is process A's own")
	assert.Equal(t, ps[1].bus.ID(), infos[1].Peer)
	assert.Equal(t, ps[2].bus.ID(), infos[2].Peer)

	// Kick reaches a client on another process.
	require.NoError(t, ps[0].room.Kick("BOBBY", "enough"))
	bob.Expect("* kicked: enough")
	alice.Expect(ts + " * bobby left (kicked: enough)")
	carol.Expect(ts + " * bobby left (kicked: enough)")
	allSee(t, []string{"alice", "carol"}, ps...)

	// A name is unique across processes: bob's old name is free again,
	// alice's is not.
	carol.Send("/nick alice\n")
	carol.Expect("* error: nickname taken")
	// Bob's process releases his old name after the rename, without making
	// it wait (Bus.Release): the bucket can still hold it when carol asks.
	// Ask again until it does not.
	chattest.Eventually(t, func() bool {
		carol.Send("/nick Bob\n")
		switch r := carol.Line(); r {
		case "* error: nickname taken":
			time.Sleep(10 * time.Millisecond)
			return false
		default:
			assert.Equal(t, "* you are now Bob", r)
			return true
		}
	}, "bob's old name stayed taken")
}

// TestEachSendersOrderAcrossProcesses: two senders on two processes, many
// lines each: every receiver on every process gets each sender's lines
// once, all of them, in order.
func TestEachSendersOrderAcrossProcesses(t *testing.T) {
	t.Parallel()
	_, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)
	const lines = 2000
	var wg sync.WaitGroup
	for _, c := range []*client{alice, bob} {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(c.Conn, "%s %d\n", c.Name, i)
			}
		})
	}
	next := map[string]int{}
	for range 2 * lines {
		l := carol.Line()
		if !strings.HasPrefix(l, ts+" ") {
			continue
		}
		var who, again string
		var n int
		_, err := fmt.Sscanf(strings.TrimPrefix(l, ts+" "), "%s say: %s %d", &who, &again, &n)
		require.NoError(t, err, l)
		require.Equal(t, next[who], n, "%s's lines out of order or lost", who)
		next[who]++
	}
	wg.Wait()
	assert.Equal(t, map[string]int{"alice": lines, "bob": lines}, next)
}

// TestNameRace: two clients on two processes take one name at the same
// moment, 100 times over: each time exactly one gets it.
func TestNameRace(t *testing.T) {
	t.Parallel()
	_, ps := threeProcesses(t)
	a, b := dial(t, ps[0]), dial(t, ps[1])
	for round := range 100 {
		name := fmt.Sprintf("racer%d", round)
		var start, sent sync.WaitGroup
		start.Add(1)
		for _, c := range []*client{a, b} {
			sent.Go(func() {
				start.Wait()
				fmt.Fprintf(c.Conn, "/nick %s\n", name)
			})
		}
		start.Done()
		sent.Wait()
		var winners []*client
		for _, c := range []*client{a, b} {
			switch reply := reply(c); reply {
			case "* you are now " + name:
				winners = append(winners, c)
			default:
				require.Equal(t, "* error: nickname taken", reply, "round %d", round)
			}
		}
		require.Len(t, winners, 1, "round %d: more or less than one client got %s", round, name)
		winners[0].Name = name
	}
	want := []string{a.Name, b.Name}
	slices.SortFunc(want, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) })
	allSee(t, want, ps...)
}

func TestHistoryAcrossProcessesAndRestarts(t *testing.T) {
	t.Parallel()
	ns := startNATS(t)
	history := chatroom.WithHistory(4)
	ps := []*process{startProcess(t, ns, history), startProcess(t, ns, history), startProcess(t, ns, history)}
	alice, bob, carol := trio(t, ps)
	for i := range 3 {
		alice.Sendf("a%d\n", i)
		bob.WaitFor(fmt.Sprintf("%s alice say: a%d", ts, i))
		bob.Sendf("/me b%d\n", i)
		alice.WaitFor(fmt.Sprintf("%s * bob b%d", ts, i))
	}
	// The third process hears the lines on its own time: once carol has
	// the last, its history has them all.
	carol.WaitFor(ts + " * bob b2")
	// Each sender's order is kept everywhere; two senders' lines may
	// interleave differently where neither said them (carol's process, the
	// stream), even one after the other: that is all NATS orders. The
	// senders' own processes saw them as said.
	want := []string{ts + " alice say: a1", ts + " * bob b1", ts + " alice say: a2", ts + " * bob b2"}
	newcomers := func(ps []*process, exact int) [][]string {
		t.Helper()
		var all [][]string
		for i, p := range ps {
			c := dial(t, p)
			var got []string
			for range want {
				got = append(got, c.Line())
			}
			c.Conn.Close()
			if i < exact {
				assert.Equal(t, want, got, "a newcomer on process %d", i)
			}
			assertLastLines(t, got, i)
			all = append(all, got)
		}
		return all
	}
	newcomers(ps, 2)

	// Every process restarts: the history is the stream's, the same on
	// every process.
	for _, p := range ps {
		p.close(t)
	}
	ps = []*process{startProcess(t, ns, history), startProcess(t, ns, history), startProcess(t, ns, history)}
	all := newcomers(ps, 0)
	assert.Equal(t, all[0], all[1], "the history on processes 0 and 1")
	assert.Equal(t, all[0], all[2], "the history on processes 0 and 2")
}

// assertLastLines checks a history of 4 of the lines a0, b0 ... a2, b2,
// alice's said, bob's /me: each sender's lines in order, and the last of
// each there (4 of 6 always hold them, however the two interleave).
func assertLastLines(t *testing.T, got []string, process int) {
	t.Helper()
	var a, b []string
	for _, l := range got {
		switch {
		case strings.HasPrefix(l, ts+" alice say: a"):
			a = append(a, strings.TrimPrefix(l, ts+" alice say: "))
		case strings.HasPrefix(l, ts+" * bob b"):
			b = append(b, strings.TrimPrefix(l, ts+" * bob "))
		default:
			assert.Fail(t, "not a line of the history", "process %d: %q", process, l)
		}
	}
	assert.True(t, slices.IsSorted(a) && slices.IsSorted(b), "process %d: a sender's lines out of order: %q", process, got)
	assert.Contains(t, a, "a2", "process %d: %q", process, got)
	assert.Contains(t, b, "b2", "process %d: %q", process, got)
}

// TestKilledProcess: a process whose bus connection is cut, with no
// goodbye, loses nothing for the others, and its clients leave the room
// for them within 6 heartbeats.
func TestKilledProcess(t *testing.T) {
	t.Parallel()
	_, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)
	const lines = 500
	go func() {
		for i := range lines {
			if _, err := fmt.Fprintf(bob.Conn, "line %d\n", i); err != nil {
				return
			}
			if i == lines/2 {
				ps[0].nc.Close() // process A is cut off mid-stream, without a word
			}
		}
	}()
	cut := time.Now()
	var notices []string
	for i := range lines {
		notices = append(notices, carol.WaitFor(fmt.Sprintf("%s bob say: line %d", ts, i))...)
	}
	chattest.EventuallyWithin(t, 6*heartbeat+2*time.Second, func() bool {
		return slices.Equal(ps[1].names(), []string{"bob", "carol"}) && slices.Equal(ps[2].names(), []string{"bob", "carol"})
	}, "alice still listed")
	t.Logf("alice gone for the others %v after process A was cut off (heartbeat %v)", time.Since(cut).Round(time.Millisecond), heartbeat)
	if !slices.Contains(notices, ts+" * alice left") {
		assert.Empty(t, notices, "carol heard only bob's lines")
		carol.Expect(ts + " * alice left")
	}
	bob.Send("/who\n")
	bob.WaitFor("* 2 online: bob, carol")
	alice.Send("still here\n") // process A goes on serving its own clients

	// The name of a client of a gone process is free for the others, once
	// they can tell it is gone: a process counts every holder alive until
	// it has listened for six heartbeats (Bus.alive), and a quick run asks
	// before that. Ask again, a heartbeat apart, until then.
	chattest.Eventually(t, func() bool {
		bob.Send("/nick Alice\n")
		switch r := reply(bob); r {
		case "* error: nickname taken":
			time.Sleep(heartbeat)
			return false
		default:
			assert.Equal(t, "* you are now Alice", r)
			return true
		}
	}, "the gone alice's name stayed taken")
}

// TestNATSRestart: the NATS server goes away and comes back. The processes
// reconnect by themselves and the room carries on: what is said during
// the gap reaches the speaker's own process only, never late, and nobody
// is counted gone for the gap.
func TestNATSRestart(t *testing.T) {
	t.Parallel()
	ns, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)
	alice.Send("before\n")
	bob.WaitFor(ts + " alice say: before")
	carol.WaitFor(ts + " alice say: before")

	ns.stop()
	chattest.Eventually(t, func() bool { return !ps[0].nc.IsConnected() && !ps[1].nc.IsConnected() }, "still connected")
	// Nobody can take a name during the gap: a newcomer is told to come
	// back.
	refused := chattest.Dial(t, ps[0].addr)
	assert.Equal(t, "* error: names cannot be checked now, try again later", refused.Line())
	alice.Send("during the gap\n")
	ns.start()

	// Probe until bob hears alice again: the probes said before her
	// process reconnected are lost, as documented, and nothing else.
	var heard []string
	for i := 0; ; i++ {
		require.Less(t, i, 200, "alice's process never reconnected")
		alice.Sendf("probe %d\n", i)
		bob.Conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		l, err := bob.In.ReadString('\n')
		if err == nil {
			heard = append(heard, strings.TrimSuffix(l, "\n"))
			break
		}
		require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "bob: %v", err)
	}
	require.Len(t, heard, 1)
	assert.Regexp(t, `^`+ts+` alice say: probe \d+$`, heard[0], "the first line bob hears after the gap")
	// Nobody was counted gone; names can be taken again.
	allSee(t, []string{"alice", "bob", "carol"}, ps...)
	dave := join(t, ps[0], "dave")
	alice.Send("after\n")
	dave.WaitForPart(ts + " alice say: after")
	for _, l := range bob.WaitFor(ts + " alice say: after") {
		assert.NotContains(t, l, "during the gap")
		assert.NotContains(t, l, " left")
	}
	t.Logf("messages known missed across the gap: %d on alice's process, %d on bob's",
		ps[0].bus.Stats().Lost, ps[1].bus.Stats().Lost)
}
