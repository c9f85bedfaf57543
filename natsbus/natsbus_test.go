package natsbus_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chatroom-go/chatroom/natsbus"
)

// Three processes serve one hub over one NATS server: each test starts
// the server inside the test process and three hubs on their own
// listeners, and talks to them as clients do, over TCP (or through a
// small face of the tests' own, recFace, where it needs line IDs).

func threeProcesses(t *testing.T, opts ...chatroom.Option) (*natsServer, []*process) {
	return threeProcessesWith(t, nil, opts...)
}

func threeProcessesWith(t *testing.T, busOpts []natsbus.Option, opts ...chatroom.Option) (*natsServer, []*process) {
	ns := startNATS(t)
	ps := []*process{startProcessWith(t, ns.url(), busOpts, opts...), startProcessWith(t, ns.url(), busOpts, opts...),
		startProcessWith(t, ns.url(), busOpts, opts...)}
	return ns, ps
}

// trio joins alice, bob and carol, one on each process, and waits until
// every process knows all three.
func trio(t *testing.T, ps []*process) (alice, bob, carol *chattest.Client) {
	alice = join(t, ps[0], "alice")
	bob = join(t, ps[1], "bob")
	allSee(t, []string{"alice", "bob"}, ps...)
	carol = join(t, ps[2], "carol")
	allSee(t, []string{"alice", "bob", "carol"}, ps...)
	// The others saw each newcomer arrive under its address, then rename.
	alice.WaitUntil(endsWith(" is now carol"))
	bob.WaitUntil(endsWith(" is now carol"))
	return alice, bob, carol
}

// spy subscribes a bare client to every subject of the namespace, and
// returns what it received so far on each call.
func spy(t *testing.T, url string) func() []*nats.Msg {
	nc := connect(t, url)
	ch := make(chan *nats.Msg, 1<<16)
	_, err := nc.ChanSubscribe("chatroom.lobby.>", ch)
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	var got []*nats.Msg
	return func() []*nats.Msg {
		for {
			select {
			case m := <-ch:
				got = append(got, m)
				continue
			default:
			}
			return got
		}
	}
}

// carrying returns the subjects of the messages whose bytes hold text.
func carrying(msgs []*nats.Msg, text string) []string {
	var subjects []string
	for _, m := range msgs {
		if bytes.Contains(m.Data, []byte(text)) {
			subjects = append(subjects, m.Subject)
		}
	}
	return subjects
}

func TestChatAcrossProcesses(t *testing.T) {
	ns, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)
	seen := spy(t, ns.url())

	alice.Send("hello from A\n")
	bob.Expect(ts + " alice say: hello from A")
	carol.Expect(ts + " alice say: hello from A")

	bob.Send("/me waves\n")
	alice.Expect(ts + " * bob waves")
	carol.Expect(ts + " * bob waves")

	// A whisper reaches its one recipient, on another process, and goes
	// over NATS to that process alone.
	carol.Send("/msg ALICE psst\n")
	alice.Expect(ts + " carol whispers: psst")
	carol.Send("after the whisper\n")
	assert.Empty(t, bob.WaitFor(ts+" carol say: after the whisper"), "bob heard the whisper")
	alice.Expect(ts + " carol say: after the whisper")
	// The spy's connection may hear it after alice's process did.
	chattest.Eventually(t, func() bool { return len(carrying(seen(), "psst")) > 0 }, "the spy hears the whisper")
	assert.Equal(t, []string{"chatroom.lobby.to." + ps[0].bus.ID()}, carrying(seen(), "psst"))

	for _, c := range []*chattest.Client{alice, bob, carol} {
		c.Send("/who\n")
		c.Expect("* 3 online: alice, bob, carol")
	}

	// A rename is seen everywhere, stamped with its time, and the new name
	// is found everywhere.
	bob.Send("/nick bobby\n")
	bob.Expect("* you are now bobby")
	alice.Expect(ts + " * bob is now bobby")
	carol.Expect(ts + " * bob is now bobby")
	allSee(t, []string{"alice", "bobby", "carol"}, ps...)
	alice.Send("/msg bobby hi bobby\n")
	bob.Expect(ts + " alice whispers: hi bobby")
	alice.Send("/msg bob hi bob\n")
	alice.Expect("* error: no such client bob")

	// Clients says where each client is, and the rooms it is in.
	infos := ps[0].hub.Clients()
	require.Len(t, infos, 3)
	assert.Empty(t, infos[0].Peer, "alice is process A's own")
	assert.Equal(t, ps[1].bus.ID(), infos[1].Peer)
	assert.Equal(t, ps[2].bus.ID(), infos[2].Peer)
	assert.Equal(t, []string{"lobby"}, infos[2].Rooms)

	// Kick reaches a client on another process, through that process
	// alone.
	require.NoError(t, ps[0].hub.Kick("BOBBY", "enough"))
	bob.Expect("* kicked: enough")
	alice.Expect(ts + " * bobby left (kicked: enough)")
	carol.Expect(ts + " * bobby left (kicked: enough)")
	allSee(t, []string{"alice", "carol"}, ps...)
	// The kick went to B alone; the notice of bob's leaving, from B, to
	// everyone.
	chattest.Eventually(t, func() bool { return len(carrying(seen(), "enough")) >= 2 }, "the spy hears the kick and the notice")
	assert.ElementsMatch(t, []string{"chatroom.lobby.to." + ps[1].bus.ID(), "chatroom.lobby.ev"}, carrying(seen(), "enough"))

	// A name is unique across processes: bob's old name is free again,
	// alice's is not.
	carol.Send("/nick alice\n")
	carol.Expect("* error: nickname taken")
	// Bob's process releases his old name after the kick without waiting
	// (Bus.Release): the bucket can still hold it when carol asks. Ask
	// again until it does not.
	chattest.Eventually(t, func() bool {
		carol.Send("/nick Bob\n")
		if r := carol.Line(); r != "* error: nickname taken" {
			assert.Equal(t, "* you are now Bob", r)
			return true
		}
		return false
	}, "bob's old name stayed taken")
}

// TestRoomsAcrossProcesses: /join on two processes makes one room; /rooms
// on every process lists every room with its members counted once; /who
// and the lines are the room's.
func TestRoomsAcrossProcesses(t *testing.T) {
	_, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)
	allList(t, "lobby (3)", ps...)

	alice.Send("/join games\n")
	alice.Expect("* you are in games, 1 online")
	bob.WaitUntil(endsWith(" * alice left"))
	// Bob's process hears alice leave the lobby and enter games as two
	// messages: it must know games before bob asks for it.
	allList(t, "games (1), lobby (2)", ps...)
	bob.Send("/join GAMES\n")
	bob.Expect("* you are in games, 2 online") // the room is one, named as it was first opened
	alice.Expect(ts + " * bob joined")
	allList(t, "games (2), lobby (1)", ps...)
	carol.Send("/rooms\n")
	carol.WaitFor("* 2 rooms: games (2), lobby (1)")

	bob.Send("/who\n")
	bob.Expect("* 2 online: alice, bob")
	carol.Send("/who\n")
	carol.Expect("* 1 online: carol")

	alice.Send("in games\n")
	bob.Expect(ts + " alice say: in games")
	carol.Send("in the lobby\n")
	alice.Send("still in games\n")
	bob.Expect(ts + " alice say: still in games")
	carol.Send("/who\n")
	assert.Equal(t, []string{"* 1 online: carol"}, []string{reply(carol)}, "carol heard nothing of games")

	// The room's members on the peers count: games stays open on A while
	// bob, on B, is in it, and closes everywhere when both have left.
	alice.Send("/join lobby\n")
	alice.Expect("* you are in lobby, 2 online")
	allList(t, "games (1), lobby (2)", ps...)
	bob.Send("/join lobby\n")
	assert.Equal(t, "* you are in lobby, 3 online", reply(bob))
	allList(t, "lobby (3)", ps...)
}

// TestRoomTrafficOnlyWhereWanted: a room's lines reach only the processes
// with members in it: a process subscribes to a room's live subject when
// its first member enters, and unsubscribes after the last leaves.
func TestRoomTrafficOnlyWhereWanted(t *testing.T) {
	ns, ps := threeProcesses(t, chatroom.WithHistory(5))
	alice, bob, carol := trio(t, ps)
	for _, c := range []*chattest.Client{alice, bob} {
		c.Send("/join games\n")
		c.WaitUntil(endsWith(" online"))
	}
	allList(t, "games (2), lobby (1)", ps...)

	before := ps[2].bus.Stats().Lines
	const lines = 100
	for i := range lines {
		alice.Sendf("line %d\n", i)
	}
	bob.WaitFor(fmt.Sprintf("%s alice say: line %d", ts, lines-1))
	assert.Equal(t, before, ps[2].bus.Stats().Lines, "process C received lines of games, where it has nobody")
	chattest.Eventually(t, func() bool { return ps[0].bus.Stats().Lines >= lines }, "process A's own lines come back to it")
	assert.GreaterOrEqual(t, ps[1].bus.Stats().Lines, uint64(lines))
	assert.False(t, subscribed(t, ns, ps[2], "chatroom.lobby.live.games"))

	// Carol enters: her process subscribes, and she gets the history.
	carol.Send("/join games\n")
	require.Equal(t, "* you are in games, 3 online", reply(carol))
	for i := lines - 5; i < lines; i++ {
		carol.Expect("%s alice say: line %d", ts, i)
	}
	alice.Send("for carol too\n")
	carol.Expect(ts + " alice say: for carol too")
	assert.Greater(t, ps[2].bus.Stats().Lines, before)

	// Carol leaves: her process unsubscribes, and gets nothing more.
	carol.Send("/join lobby\n")
	carol.WaitFor("* you are in lobby, 1 online")
	chattest.Eventually(t, func() bool { return !subscribed(t, ns, ps[2], "chatroom.lobby.live.games") },
		"process C still subscribed to games")
	before = ps[2].bus.Stats().Lines
	for i := range lines {
		alice.Sendf("again %d\n", i)
	}
	bob.WaitFor(fmt.Sprintf("%s alice say: again %d", ts, lines-1))
	assert.Equal(t, before, ps[2].bus.Stats().Lines, "process C received lines of games after its last member left")
}

// subscribed reports whether the NATS server has p's connection
// subscribed to subject.
func subscribed(t *testing.T, ns *natsServer, p *process, subject string) bool {
	cid, err := p.nc.GetClientID()
	require.NoError(t, err)
	connz, err := ns.srv.Connz(&server.ConnzOptions{CID: cid, Subscriptions: true})
	require.NoError(t, err)
	require.Len(t, connz.Conns, 1)
	return slices.Contains(connz.Conns[0].Subs, subject)
}

// TestNameRaceAcrossRooms: two clients on two processes, in two rooms,
// take one name at the same moment, 50 times over: each time exactly one
// gets it.
func TestNameRaceAcrossRooms(t *testing.T) {
	_, ps := threeProcesses(t)
	var all []*chattest.Client // every client of every round, staying
	for round := range 50 {
		// Fresh clients each round: renames cool down (5 in a row, then one
		// per 10 s), and this races a name, not one client's renames.
		a, b := dial(t, ps[0]), dial(t, ps[1])
		all = append(all, a, b)
		b.Send("/join games\n")
		require.Equal(t, fmt.Sprintf("* you are in games, %d online", round+1), reply(b))
		name := fmt.Sprintf("racer%d", round)
		var start, sent sync.WaitGroup
		start.Add(1)
		for _, c := range []*chattest.Client{a, b} {
			sent.Go(func() {
				start.Wait()
				fmt.Fprintf(c.Conn, "/nick %s\n", name)
			})
		}
		start.Done()
		sent.Wait()
		var winners []*chattest.Client
		for _, c := range []*chattest.Client{a, b} {
			switch got := reply(c); got {
			case "* you are now " + name:
				winners = append(winners, c)
			default:
				require.Equal(t, "* error: nickname taken", got, "round %d", round)
			}
		}
		require.Len(t, winners, 1, "round %d: more or less than one client got %s", round, name)
		winners[0].Name = name
	}
	want := make([]string, 0, len(all))
	for _, c := range all {
		want = append(want, c.Name)
	}
	slices.SortFunc(want, func(x, y string) int { return strings.Compare(strings.ToLower(x), strings.ToLower(y)) })
	allSee(t, want, ps...)
}

// TestHistoryPerRoomAcrossRestarts: each room's history is the stream's,
// in the stream's order, the same on every process, and after every
// process restarts.
func TestHistoryPerRoomAcrossRestarts(t *testing.T) {
	ns := startNATS(t)
	history := chatroom.WithHistory(3)
	start := func() []*process {
		return []*process{startProcess(t, ns.url(), history), startProcess(t, ns.url(), history), startProcess(t, ns.url(), history)}
	}
	ps := start()
	alice, bob, carol := trio(t, ps)
	bob.Send("/join games\n")
	bob.WaitFor("* you are in games, 1 online")
	for i := range 4 {
		alice.Sendf("lobby %d\n", i)
		carol.WaitFor(fmt.Sprintf("%s alice say: lobby %d", ts, i))
		bob.Sendf("/me games %d\n", i)
	}
	// Once carol's process has the last line of the lobby, and a newcomer
	// of games on A the last of games, the stream has them all.
	lobby := []string{ts + " alice say: lobby 1", ts + " alice say: lobby 2", ts + " alice say: lobby 3"}
	games := []string{ts + " * bob games 1", ts + " * bob games 2", ts + " * bob games 3"}
	newcomers := func(ps []*process) {
		t.Helper()
		for i, p := range ps {
			c := dial(t, p)
			for _, want := range lobby {
				assert.Equal(t, want, c.Line(), "the lobby's history on process %d", i)
			}
			c.Send("/join games\n")
			require.Contains(t, reply(c), "* you are in games, ")
			got := c.WaitFor(games[2])
			assert.Equal(t, games[:2], got, "the history of games on process %d", i)
			c.Conn.Close()
		}
	}
	chattest.Eventually(t, func() bool {
		c := dial(t, ps[0])
		defer c.Conn.Close()
		c.Send("/join games\n")
		reply(c)
		return c.Line() == games[0] && c.Line() == games[1] && c.Line() == games[2]
	}, "games' last lines never reached the stream")
	newcomers(ps)

	for _, p := range ps {
		p.close(t)
	}
	newcomers(start())

	// The stream keeps 4 lines a room, and is bounded as a whole.
	js, err := jetstream.New(connect(t, ns.url()))
	require.NoError(t, err)
	s, err := js.Stream(context.Background(), "chatroom_lobby_lines")
	require.NoError(t, err)
	assert.Equal(t, int64(4), s.CachedInfo().Config.MaxMsgsPerSubject)
	assert.Equal(t, int64(natsbus.DefaultStreamBytes), s.CachedInfo().Config.MaxBytes)
}

// TestSameOrderEverywhere: two senders on two processes, many lines each
// at once: every receiver, on every process, gets every line once, in the
// one order the stream gave them, each sender's order kept.
func TestSameOrderEverywhere(t *testing.T) {
	_, ps := threeProcesses(t)
	alice := join(t, ps[0], "alice")
	bob := join(t, ps[1], "bob")
	var receivers []*chattest.Client
	for i, p := range ps {
		receivers = append(receivers, join(t, p, fmt.Sprintf("reader%d", i)))
	}
	allSee(t, []string{"alice", "bob", "reader0", "reader1", "reader2"}, ps...)
	const lines = 500
	var wg sync.WaitGroup
	for _, c := range []*chattest.Client{alice, bob} {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(c.Conn, "%s %d\n", c.Name, i)
			}
		})
	}
	var orders [][]string
	for _, r := range receivers {
		var got []string
		next := map[string]int{}
		for len(got) < 2*lines {
			l := r.Line()
			if !strings.Contains(l, " say: ") {
				continue
			}
			var who, again string
			var n int
			_, err := fmt.Sscanf(strings.TrimPrefix(l, ts+" "), "%s say: %s %d", &who, &again, &n)
			require.NoError(t, err, l)
			require.Equal(t, next[who], n, "%s: %s's lines out of order or lost", r.Name, who)
			next[who]++
			got = append(got, l)
		}
		orders = append(orders, got)
	}
	wg.Wait()
	assert.Equal(t, orders[0], orders[1], "readers 0 and 1 got the lines in different orders")
	assert.Equal(t, orders[0], orders[2], "readers 0 and 2 got the lines in different orders")
}

// recLine is a line as recFace writes it: "say ID ROOM FROM TEXT".
type recLine struct {
	id   uint64
	text string
}

// recLines reads n say lines from c.
func recLines(t *testing.T, c *chattest.Client, n int) []recLine {
	t.Helper()
	var got []recLine
	for len(got) < n {
		f := strings.Fields(c.Line())
		if f[0] != "say" {
			continue
		}
		id, err := strconv.ParseUint(f[1], 10, 64)
		require.NoError(t, err)
		got = append(got, recLine{id, f[4]})
	}
	return got
}

// TestRecoveryOnAnotherProcess: a client that saw the line numbered since
// and comes back on another process, while the room goes on talking,
// gets every line it missed once, in order, then the live ones: the line
// IDs are the stream's, the same on every process.
func TestRecoveryOnAnotherProcess(t *testing.T) {
	_, ps := threeProcesses(t, chatroom.WithHistory(500))
	witness := recClient(t, ps[1], recFace{name: "witness", room: "games"})
	require.Equal(t, "join games witness", witness.Line())
	x := recClient(t, ps[0], recFace{name: "xavier", room: "games"})
	require.Equal(t, "join games xavier", x.Line())
	talker := recClient(t, ps[1], recFace{name: "talker", room: "games"})
	require.Equal(t, "join games talker", talker.Line())

	talker.Send("games before0\ngames before1\ngames before2\n")
	seen := recLines(t, x, 3)
	require.Equal(t, []string{"before0", "before1", "before2"}, []string{seen[0].text, seen[1].text, seen[2].text})
	since := seen[2].id
	x.Conn.Close()
	allSee(t, []string{"talker", "witness"}, ps...)

	// The room talks while xavier is away, and goes on while he comes
	// back on C: his history is read while lines are being stored.
	const lines = 200
	for i := range lines / 4 {
		talker.Sendf("games during%d\n", i)
	}
	back := recClient(t, ps[2], recFace{name: "xavier", room: "games", since: since})
	for i := lines / 4; i < lines; i++ {
		talker.Sendf("games during%d\n", i)
	}
	all := recLines(t, witness, 3+lines)
	require.Equal(t, "join games xavier", back.Line())
	var want []recLine
	for _, l := range all {
		if l.id > since {
			want = append(want, l)
		}
	}
	require.Len(t, want, lines)
	got := recLines(t, back, lines)
	assert.Equal(t, want, got, "xavier on C: what he missed, once, in order, with the IDs the witness on B saw")
	talker.Send("games after\n")
	assert.Equal(t, "after", recLines(t, back, 1)[0].text)
}

// TestRecoveryWithAGap: a client that missed more than the history keeps
// is told so, then gets the last lines, on another process.
func TestRecoveryWithAGap(t *testing.T) {
	_, ps := threeProcesses(t, chatroom.WithHistory(5))
	x := recClient(t, ps[0], recFace{name: "xavier", room: "games"})
	require.Equal(t, "join games xavier", x.Line())
	talker := recClient(t, ps[1], recFace{name: "talker", room: "games"})
	require.Equal(t, "join games talker", talker.Line())
	talker.Send("games first\n")
	since := recLines(t, x, 1)[0].id
	x.Conn.Close()
	allSee(t, []string{"talker"}, ps...)
	for i := range 10 {
		talker.Sendf("games missed%d\n", i)
	}
	witness := recClient(t, ps[1], recFace{name: "witness", room: "games"})
	require.Equal(t, "join games witness", witness.Line())
	// Once the witness has the last line, the stream has every line: its
	// history alone may be older (the last lines may still be on their way
	// through the stream to B when it joins).
	for last := ""; last != "missed9"; {
		last = recLines(t, witness, 1)[0].text
	}
	// A releases xavier's name through its releaser goroutine, which his
	// leaving does not wait for: C may find it taken for a moment.
	var back *chattest.Client
	chattest.Eventually(t, func() bool {
		back = recClient(t, ps[2], recFace{name: "xavier", room: "games", since: since})
		if line := back.Line(); line != "join games xavier" {
			require.Equal(t, "error chatroom: name taken", line)
			back.Conn.Close()
			return false
		}
		return true
	}, "xavier's name free again, on C")
	require.Equal(t, fmt.Sprintf("gap games %d", since), back.Line())
	var texts []string
	for _, l := range recLines(t, back, 5) {
		texts = append(texts, l.text)
	}
	assert.Equal(t, []string{"missed5", "missed6", "missed7", "missed8", "missed9"}, texts)
}

const notDelivered = "* error: your line was not delivered: the servers cannot reach each other now, try again"

// TestKilledProcess: a process whose bus connection is cut, with no
// goodbye, loses nothing for the others, and its clients leave for them
// within 6 heartbeats; its own clients are told their lines go nowhere.
func TestKilledProcess(t *testing.T) {
	const heartbeat = 500 * time.Millisecond // a quicker death than the tests' default
	_, ps := threeProcessesWith(t, []natsbus.Option{natsbus.WithHeartbeat(heartbeat)})
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
	alice.Send("still here\n") // process A goes on serving its own clients, but nothing it says is ordered
	alice.WaitFor(notDelivered)

	// The name of a client of a gone process is free for the others, once
	// they have listened long enough to know it is gone (6 heartbeats).
	chattest.Eventually(t, func() bool {
		bob.Send("/nick Alice\n")
		return reply(bob) == "* you are now Alice"
	}, "alice's name was not freed")
}

// TestNATSRestart: the NATS server goes away and comes back. The processes
// reconnect by themselves and the hub carries on: what is said during the
// gap is delivered to nobody, its sender told so, and nobody is counted
// gone for the gap.
func TestNATSRestart(t *testing.T) {
	// A process whose reconnection takes more than five heartbeats is
	// counted gone; this test is about those that do not.
	ns, ps := threeProcesses(t, chatroom.WithHistory(2))
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
	alice.WaitFor(notDelivered)
	ns.start()

	// Probe until bob hears alice again: the probes said before her
	// process reconnected were not delivered, as alice is told.
	chattest.Eventually(t, func() bool {
		return ps[0].nc.IsConnected() && ps[1].nc.IsConnected() && ps[2].nc.IsConnected()
	}, "the processes did not reconnect")
	var heard string
	probes := 0
	chattest.Eventually(t, func() bool {
		alice.Sendf("probe %d\n", probes)
		probes++
		bob.Conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		l, err := bob.In.ReadString('\n')
		if err != nil {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded, "bob")
			return false
		}
		heard = strings.TrimSuffix(l, "\n")
		return true
	}, "alice's lines were never delivered again")
	assert.Regexp(t, `^`+ts+` alice say: probe \d+$`, heard, "the first line bob hears after the gap")
	// Nobody was counted gone; names can be taken again.
	allSee(t, []string{"alice", "bob", "carol"}, ps...)
	dave := join(t, ps[0], "dave")
	alice.Send("after\n")
	dave.WaitUntil(endsWith(ts + " alice say: after"))
	last := heard // the line before "after", as the stream has them
	for _, l := range bob.WaitFor(ts + " alice say: after") {
		assert.NotContains(t, l, "during the gap")
		assert.NotContains(t, l, " left")
		if strings.Contains(l, " alice say: probe ") { // a probe delivered later than bob waited for it
			last = l
		}
	}
	// The history is the stream's, kept across the restart. Process C
	// keeps it from the lines it is handed, which may reach it after bob's
	// process: once carol, on C, has "after", C's history has it too.
	carol.WaitFor(ts + " alice say: after")
	newcomer := dial(t, ps[2])
	newcomer.Expect("%s", last)
	newcomer.Expect(ts + " alice say: after")
}

// TestMissedLinesReadFromTheStream: a process cut off from NATS for a
// while (its connection broken, its reconnections refused) gets, once it
// is back, the lines said meanwhile in its rooms, from the stream, in
// order, once each; what its own clients said meanwhile went nowhere.
func TestMissedLinesReadFromTheStream(t *testing.T) {
	ns := startNATS(t)
	px := startProxy(t, ns.srv.Addr().String())
	history := chatroom.WithHistory(50)
	ps := []*process{startProcess(t, px.url(), history), startProcess(t, ns.url(), history), startProcess(t, ns.url(), history)}
	alice, bob, carol := trio(t, ps)
	bob.Send("before\n")
	alice.WaitFor(ts + " bob say: before")

	px.cut()
	chattest.Eventually(t, func() bool { return !ps[0].nc.IsConnected() }, "process A still connected")
	alice.Send("in the dark\n")
	alice.WaitFor(notDelivered)
	for i := range 10 {
		bob.Sendf("missed %d\n", i)
	}
	carol.WaitFor(ts + " bob say: missed 9")
	px.mend()
	chattest.Eventually(t, ps[0].nc.IsConnected, "process A did not reconnect")
	for i := range 10 {
		alice.Expect("%s bob say: missed %d", ts, i)
	}
	bob.Send("after\n")
	alice.Expect(ts + " bob say: after")
	assert.GreaterOrEqual(t, ps[0].bus.Stats().Recovered, uint64(10))
}

// TestStreamMadeByTheOperator: a stream the operator made with what the
// bus needs (more lines per room than the hubs want, a description of
// its own) is used as it is, without an update; one that keeps every line
// of each room is refused, not cut down.
func TestStreamMadeByTheOperator(t *testing.T) {
	ns := startNATS(t)
	js, err := jetstream.New(connect(t, ns.url()))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), chattest.WaitLimit)
	defer cancel()
	cfg := jetstream.StreamConfig{
		Name:              "chatroom_lobby_lines",
		Description:       "the operator's",
		Subjects:          []string{"chatroom.lobby.line.*"},
		MaxMsgsPerSubject: 10,
		AllowDirect:       true,
		RePublish:         &jetstream.RePublish{Source: "chatroom.lobby.line.*", Destination: "chatroom.lobby.live.$1"},
	}
	_, err = js.CreateStream(ctx, cfg)
	require.NoError(t, err)
	p := startProcess(t, ns.url(), chatroom.WithHistory(5))
	alice := join(t, p, "alice")
	alice.Send("hello\n")
	chattest.Eventually(t, func() bool {
		s, err := js.Stream(ctx, "chatroom_lobby_lines")
		return err == nil && s.CachedInfo().State.Msgs == 1
	}, "the line is not in the operator's stream")
	s, err := js.Stream(ctx, "chatroom_lobby_lines")
	require.NoError(t, err)
	got := s.CachedInfo().Config
	assert.Equal(t, "the operator's", got.Description)
	assert.Equal(t, int64(10), got.MaxMsgsPerSubject)
	assert.Equal(t, "chatroom.lobby.live.$1", got.RePublish.Destination)

	cfg.Name, cfg.Subjects, cfg.MaxMsgsPerSubject = "chatroom_other_lines", []string{"chatroom.other.line.*"}, 0
	cfg.RePublish = &jetstream.RePublish{Source: "chatroom.other.line.*", Destination: "chatroom.other.live.$1"}
	_, err = js.CreateStream(ctx, cfg)
	require.NoError(t, err)
	bus, err := natsbus.New(connect(t, ns.url()), "other")
	require.NoError(t, err)
	err = bus.Open(ctx, func(chatroom.BusMessage) bool { return true })
	assert.ErrorContains(t, err, "keeps every line of a room")
	require.NoError(t, bus.Close())
}
