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
func trio(t *testing.T, ps []*process) (alice, bob, carol *client) {
	alice = join(t, ps[0], "alice")
	bob = join(t, ps[1], "bob")
	allSee(t, []string{"alice", "bob"}, ps...)
	carol = join(t, ps[2], "carol")
	allSee(t, []string{"alice", "bob", "carol"}, ps...)
	// The others saw each newcomer arrive under its address, then rename.
	alice.waitUntil(" is now carol")
	bob.waitUntil(" is now carol")
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

	alice.send("hello from A\n")
	bob.expect(ts + " alice say: hello from A")
	carol.expect(ts + " alice say: hello from A")

	bob.send("/me waves\n")
	alice.expect(ts + " * bob waves")
	carol.expect(ts + " * bob waves")

	// A whisper reaches its one recipient, on another process, and goes
	// over NATS to that process alone.
	carol.send("/msg ALICE psst\n")
	alice.expect(ts + " carol whispers: psst")
	carol.send("after the whisper\n")
	assert.Empty(t, bob.waitFor(ts+" carol say: after the whisper"), "bob heard the whisper")
	alice.expect(ts + " carol say: after the whisper")
	// The spy's connection may hear it after alice's process did.
	eventually(t, waitLimit, func() bool { return len(carrying(seen(), "psst")) > 0 }, "the spy hears the whisper")
	assert.Equal(t, []string{"chatroom.lobby.to." + ps[0].bus.ID()}, carrying(seen(), "psst"))

	for _, c := range []*client{alice, bob, carol} {
		c.send("/who\n")
		c.expect("* 3 online: alice, bob, carol")
	}

	// A rename is seen everywhere, stamped with its time, and the new name
	// is found everywhere.
	bob.send("/nick bobby\n")
	bob.expect("* you are now bobby")
	alice.expect(ts + " * bob is now bobby")
	carol.expect(ts + " * bob is now bobby")
	allSee(t, []string{"alice", "bobby", "carol"}, ps...)
	alice.send("/msg bobby hi bobby\n")
	bob.expect(ts + " alice whispers: hi bobby")
	alice.send("/msg bob hi bob\n")
	alice.expect("* error: no such client bob")

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
	bob.expect("* kicked: enough")
	alice.expect(ts + " * bobby left (kicked: enough)")
	carol.expect(ts + " * bobby left (kicked: enough)")
	allSee(t, []string{"alice", "carol"}, ps...)
	// The kick went to B alone; the notice of bob's leaving, from B, to
	// everyone.
	eventually(t, waitLimit, func() bool { return len(carrying(seen(), "enough")) >= 2 }, "the spy hears the kick and the notice")
	assert.ElementsMatch(t, []string{"chatroom.lobby.to." + ps[1].bus.ID(), "chatroom.lobby.ev"}, carrying(seen(), "enough"))

	// A name is unique across processes: bob's old name is free again,
	// alice's is not.
	carol.send("/nick alice\n")
	carol.expect("* error: nickname taken")
	carol.send("/nick Bob\n")
	carol.expect("* you are now Bob")
}

// TestRoomsAcrossProcesses: /join on two processes makes one room; /rooms
// on every process lists every room with its members counted once; /who
// and the lines are the room's.
func TestRoomsAcrossProcesses(t *testing.T) {
	_, ps := threeProcesses(t)
	alice, bob, carol := trio(t, ps)
	allList(t, "lobby (3)", ps...)

	alice.send("/join games\n")
	alice.expect("* you are in games, 1 online")
	bob.waitUntil(" * alice left")
	bob.send("/join GAMES\n")
	bob.expect("* you are in games, 2 online") // the room is one, named as it was first opened
	alice.expect(ts + " * bob joined")
	allList(t, "games (2), lobby (1)", ps...)
	carol.send("/rooms\n")
	carol.waitFor("* 2 rooms: games (2), lobby (1)")

	bob.send("/who\n")
	bob.expect("* 2 online: alice, bob")
	carol.send("/who\n")
	carol.expect("* 1 online: carol")

	alice.send("in games\n")
	bob.expect(ts + " alice say: in games")
	carol.send("in the lobby\n")
	alice.send("still in games\n")
	bob.expect(ts + " alice say: still in games")
	carol.send("/who\n")
	assert.Equal(t, []string{"* 1 online: carol"}, []string{carol.reply()}, "carol heard nothing of games")

	// The room's members on the peers count: games stays open on A while
	// bob, on B, is in it, and closes everywhere when both have left.
	alice.send("/join lobby\n")
	alice.expect("* you are in lobby, 2 online")
	allList(t, "games (1), lobby (2)", ps...)
	bob.send("/join lobby\n")
	assert.Equal(t, "* you are in lobby, 3 online", bob.reply())
	allList(t, "lobby (3)", ps...)
}

// TestRoomTrafficOnlyWhereWanted: a room's lines reach only the processes
// with members in it: a process subscribes to a room's live subject when
// its first member enters, and unsubscribes after the last leaves.
func TestRoomTrafficOnlyWhereWanted(t *testing.T) {
	ns, ps := threeProcesses(t, chatroom.WithHistory(5))
	alice, bob, carol := trio(t, ps)
	for _, c := range []*client{alice, bob} {
		c.send("/join games\n")
		c.waitUntil(" online")
	}
	allList(t, "games (2), lobby (1)", ps...)

	before := ps[2].bus.Stats().Lines
	const lines = 100
	for i := range lines {
		alice.send("line %d\n", i)
	}
	bob.waitFor(fmt.Sprintf("%s alice say: line %d", ts, lines-1))
	assert.Equal(t, before, ps[2].bus.Stats().Lines, "process C received lines of games, where it has nobody")
	eventually(t, waitLimit, func() bool { return ps[0].bus.Stats().Lines >= lines }, "process A's own lines come back to it")
	assert.GreaterOrEqual(t, ps[1].bus.Stats().Lines, uint64(lines))
	assert.False(t, subscribed(t, ns, ps[2], "chatroom.lobby.live.games"))

	// Carol enters: her process subscribes, and she gets the history.
	carol.send("/join games\n")
	require.Equal(t, "* you are in games, 3 online", carol.reply())
	for i := lines - 5; i < lines; i++ {
		carol.expect("%s alice say: line %d", ts, i)
	}
	alice.send("for carol too\n")
	carol.expect(ts + " alice say: for carol too")
	assert.Greater(t, ps[2].bus.Stats().Lines, before)

	// Carol leaves: her process unsubscribes, and gets nothing more.
	carol.send("/join lobby\n")
	carol.waitFor("* you are in lobby, 1 online")
	eventually(t, waitLimit, func() bool { return !subscribed(t, ns, ps[2], "chatroom.lobby.live.games") },
		"process C still subscribed to games")
	before = ps[2].bus.Stats().Lines
	for i := range lines {
		alice.send("again %d\n", i)
	}
	bob.waitFor(fmt.Sprintf("%s alice say: again %d", ts, lines-1))
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
	var all []*client // every client of every round, staying
	for round := range 50 {
		// Fresh clients each round: renames cool down (5 in a row, then one
		// per 10 s), and this races a name, not one client's renames.
		a, b := dial(t, ps[0]), dial(t, ps[1])
		all = append(all, a, b)
		b.send("/join games\n")
		require.Equal(t, fmt.Sprintf("* you are in games, %d online", round+1), b.reply())
		name := fmt.Sprintf("racer%d", round)
		var start, sent sync.WaitGroup
		start.Add(1)
		for _, c := range []*client{a, b} {
			sent.Go(func() {
				start.Wait()
				fmt.Fprintf(c.conn, "/nick %s\n", name)
			})
		}
		start.Done()
		sent.Wait()
		var winners []*client
		for _, c := range []*client{a, b} {
			switch reply := c.reply(); reply {
			case "* you are now " + name:
				winners = append(winners, c)
			default:
				require.Equal(t, "* error: nickname taken", reply, "round %d", round)
			}
		}
		require.Len(t, winners, 1, "round %d: more or less than one client got %s", round, name)
		winners[0].name = name
	}
	want := make([]string, 0, len(all))
	for _, c := range all {
		want = append(want, c.name)
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
	bob.send("/join games\n")
	bob.waitFor("* you are in games, 1 online")
	for i := range 4 {
		alice.send("lobby %d\n", i)
		carol.waitFor(fmt.Sprintf("%s alice say: lobby %d", ts, i))
		bob.send("/me games %d\n", i)
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
				assert.Equal(t, want, c.line(), "the lobby's history on process %d", i)
			}
			c.send("/join games\n")
			require.Contains(t, c.reply(), "* you are in games, ")
			got := c.waitFor(games[2])
			assert.Equal(t, games[:2], got, "the history of games on process %d", i)
			c.conn.Close()
		}
	}
	eventually(t, waitLimit, func() bool {
		c := dial(t, ps[0])
		defer c.conn.Close()
		c.send("/join games\n")
		c.reply()
		return c.line() == games[0] && c.line() == games[1] && c.line() == games[2]
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
	var receivers []*client
	for i, p := range ps {
		receivers = append(receivers, join(t, p, fmt.Sprintf("reader%d", i)))
	}
	allSee(t, []string{"alice", "bob", "reader0", "reader1", "reader2"}, ps...)
	const lines = 500
	var wg sync.WaitGroup
	for _, c := range []*client{alice, bob} {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(c.conn, "%s %d\n", c.name, i)
			}
		})
	}
	var orders [][]string
	for _, r := range receivers {
		var got []string
		next := map[string]int{}
		for len(got) < 2*lines {
			l := r.line()
			if !strings.Contains(l, " say: ") {
				continue
			}
			var who, again string
			var n int
			_, err := fmt.Sscanf(strings.TrimPrefix(l, ts+" "), "%s say: %s %d", &who, &again, &n)
			require.NoError(t, err, l)
			require.Equal(t, next[who], n, "%s: %s's lines out of order or lost", r.name, who)
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
func recLines(t *testing.T, c *client, n int) []recLine {
	t.Helper()
	var got []recLine
	for len(got) < n {
		f := strings.Fields(c.line())
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
	require.Equal(t, "join games witness", witness.line())
	x := recClient(t, ps[0], recFace{name: "xavier", room: "games"})
	require.Equal(t, "join games xavier", x.line())
	talker := recClient(t, ps[1], recFace{name: "talker", room: "games"})
	require.Equal(t, "join games talker", talker.line())

	talker.send("games before0\ngames before1\ngames before2\n")
	seen := recLines(t, x, 3)
	require.Equal(t, []string{"before0", "before1", "before2"}, []string{seen[0].text, seen[1].text, seen[2].text})
	since := seen[2].id
	x.conn.Close()
	allSee(t, []string{"talker", "witness"}, ps...)

	// The room talks while xavier is away, and goes on while he comes
	// back on C: his history is read while lines are being stored.
	const lines = 200
	for i := range lines / 4 {
		talker.send("games during%d\n", i)
	}
	back := recClient(t, ps[2], recFace{name: "xavier", room: "games", since: since})
	for i := lines / 4; i < lines; i++ {
		talker.send("games during%d\n", i)
	}
	all := recLines(t, witness, 3+lines)
	require.Equal(t, "join games xavier", back.line())
	var want []recLine
	for _, l := range all {
		if l.id > since {
			want = append(want, l)
		}
	}
	require.Len(t, want, lines)
	got := recLines(t, back, lines)
	assert.Equal(t, want, got, "xavier on C: what he missed, once, in order, with the IDs the witness on B saw")
	talker.send("games after\n")
	assert.Equal(t, "after", recLines(t, back, 1)[0].text)
}

// TestRecoveryWithAGap: a client that missed more than the history keeps
// is told so, then gets the last lines, on another process.
func TestRecoveryWithAGap(t *testing.T) {
	_, ps := threeProcesses(t, chatroom.WithHistory(5))
	x := recClient(t, ps[0], recFace{name: "xavier", room: "games"})
	require.Equal(t, "join games xavier", x.line())
	talker := recClient(t, ps[1], recFace{name: "talker", room: "games"})
	require.Equal(t, "join games talker", talker.line())
	talker.send("games first\n")
	since := recLines(t, x, 1)[0].id
	x.conn.Close()
	allSee(t, []string{"talker"}, ps...)
	for i := range 10 {
		talker.send("games missed%d\n", i)
	}
	witness := recClient(t, ps[1], recFace{name: "witness", room: "games"})
	require.Equal(t, "join games witness", witness.line())
	recLines(t, witness, 5) // the history: once the witness has it, the stream has every line
	back := recClient(t, ps[2], recFace{name: "xavier", room: "games", since: since})
	require.Equal(t, "join games xavier", back.line())
	require.Equal(t, fmt.Sprintf("gap games %d", since), back.line())
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
			if _, err := fmt.Fprintf(bob.conn, "line %d\n", i); err != nil {
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
		notices = append(notices, carol.waitFor(fmt.Sprintf("%s bob say: line %d", ts, i))...)
	}
	eventually(t, 6*heartbeat+2*time.Second, func() bool {
		return slices.Equal(ps[1].names(), []string{"bob", "carol"}) && slices.Equal(ps[2].names(), []string{"bob", "carol"})
	}, "alice still listed")
	t.Logf("alice gone for the others %v after process A was cut off (heartbeat %v)", time.Since(cut).Round(time.Millisecond), heartbeat)
	if !slices.Contains(notices, ts+" * alice left") {
		assert.Empty(t, notices, "carol heard only bob's lines")
		carol.expect(ts + " * alice left")
	}
	bob.send("/who\n")
	bob.waitFor("* 2 online: bob, carol")
	alice.send("still here\n") // process A goes on serving its own clients, but nothing it says is ordered
	alice.waitFor(notDelivered)

	// The name of a client of a gone process is free for the others, once
	// they have listened long enough to know it is gone (6 heartbeats).
	eventually(t, waitLimit, func() bool {
		bob.send("/nick Alice\n")
		return bob.reply() == "* you are now Alice"
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
	alice.send("before\n")
	bob.waitFor(ts + " alice say: before")
	carol.waitFor(ts + " alice say: before")

	ns.stop()
	eventually(t, waitLimit, func() bool { return !ps[0].nc.IsConnected() && !ps[1].nc.IsConnected() }, "still connected")
	// Nobody can take a name during the gap: a newcomer is told to come
	// back.
	refused := rawDial(t, ps[0])
	assert.Equal(t, "* error: names cannot be checked now, try again later", refused.line())
	alice.send("during the gap\n")
	alice.waitFor(notDelivered)
	ns.start()

	// Probe until bob hears alice again: the probes said before her
	// process reconnected were not delivered, as alice is told.
	eventually(t, waitLimit, func() bool {
		return ps[0].nc.IsConnected() && ps[1].nc.IsConnected() && ps[2].nc.IsConnected()
	}, "the processes did not reconnect")
	var heard string
	deadline := time.Now().Add(waitLimit)
	for i := 0; heard == ""; i++ {
		require.True(t, time.Now().Before(deadline), "alice's lines were never delivered again")
		alice.send("probe %d\n", i)
		bob.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if l, err := bob.in.ReadString('\n'); err == nil {
			heard = strings.TrimSuffix(l, "\n")
		} else {
			require.ErrorIs(t, err, os.ErrDeadlineExceeded, "bob")
		}
	}
	assert.Regexp(t, `^`+ts+` alice say: probe \d+$`, heard, "the first line bob hears after the gap")
	// Nobody was counted gone; names can be taken again.
	allSee(t, []string{"alice", "bob", "carol"}, ps...)
	dave := join(t, ps[0], "dave")
	alice.send("after\n")
	dave.waitUntil(ts + " alice say: after")
	last := heard // the line before "after", as the stream has them
	for _, l := range bob.waitFor(ts + " alice say: after") {
		assert.NotContains(t, l, "during the gap")
		assert.NotContains(t, l, " left")
		if strings.Contains(l, " alice say: probe ") { // a probe delivered later than bob waited for it
			last = l
		}
	}
	// The history is the stream's, kept across the restart.
	newcomer := dial(t, ps[2])
	newcomer.expect("%s", last)
	newcomer.expect(ts + " alice say: after")
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
	bob.send("before\n")
	alice.waitFor(ts + " bob say: before")

	px.cut()
	eventually(t, waitLimit, func() bool { return !ps[0].nc.IsConnected() }, "process A still connected")
	alice.send("in the dark\n")
	alice.waitFor(notDelivered)
	for i := range 10 {
		bob.send("missed %d\n", i)
	}
	carol.waitFor(ts + " bob say: missed 9")
	px.mend()
	eventually(t, waitLimit, ps[0].nc.IsConnected, "process A did not reconnect")
	for i := range 10 {
		alice.expect("%s bob say: missed %d", ts, i)
	}
	bob.send("after\n")
	alice.expect(ts + " bob say: after")
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
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
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
	alice.send("hello\n")
	eventually(t, waitLimit, func() bool {
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
