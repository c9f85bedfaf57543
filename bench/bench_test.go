package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
)

// TestMain builds the demo program once, as chatbench does, for the tests
// that run the room as a server process.
func TestMain(m *testing.M) {
	bin, cleanup, err := buildRoom()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	paths.room = bin
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		cleanup()
		os.Exit(code)
	}))
}

var paths = serverPaths{redis: findBinary("redis-server", ""), nats: findBinary("nats-server", "")}

// startPeer starts a server of kind as a process, or skips the test with
// the reason if it is not installed.
func startPeer(t *testing.T, kind string) *server {
	t.Helper()
	srv, err := startServer(kind, paths, serverOpts{outbox: 1024})
	if errors.Is(err, errMissing) {
		t.Skipf("skipping: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(srv.stop)
	return srv
}

// inProcessRoom serves a room in the test process and returns its address.
func inProcessRoom(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	t.Cleanup(func() {
		room.Close()
		<-served
	})
	return ln.Addr().String()
}

// TestParsersAgainstRealServers publishes known payloads through each real
// server and checks that every receiver's parser returns exactly them, in
// order, with nothing else, and that a sender hears itself only where the
// protocol says it does.
func TestParsersAgainstRealServers(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"room", "room-ws", "room-json", "room-irc", "redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			var addr string
			if kind == "room" {
				addr = inProcessRoom(t)
			} else {
				addr = startPeer(t, kind).addr
			}
			p := protocolFor(kind)
			var clients []client
			for range 3 {
				c, err := p.join(addr, "")
				require.NoError(t, err)
				t.Cleanup(func() { c.conn().Close() })
				clients = append(clients, c)
			}
			pub, err := p.publisher(addr, clients[0])
			require.NoError(t, err)
			if pub != clients[0] {
				t.Cleanup(func() { pub.conn().Close() })
			}

			payloads := [][]byte{
				[]byte("first"),
				bytes.Repeat([]byte("x"), 200),
				[]byte("with spaces and $ * : - signs"),
				[]byte(`"quoted", \back\slashed, \u00e9, a tab\t`),
				encode(nil, 7, 42, 64),
			}
			for _, pl := range payloads {
				require.NoError(t, pub.publish(pl))
			}
			require.NoError(t, pub.flush())

			receivers := clients[1:]
			if p.selfDelivery() {
				receivers = clients
			}
			for i, c := range receivers {
				c.conn().SetReadDeadline(time.Now().Add(10 * time.Second))
				for _, want := range payloads {
					got, err := c.next()
					require.NoError(t, err, "receiver %d", i)
					assert.Equal(t, string(want), string(got), "receiver %d", i)
				}
			}
			if !p.selfDelivery() {
				// The sender hears nothing of its own: a short read times out.
				clients[0].conn().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, err := clients[0].next()
				assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			}
			s, seq, _, ok := decode(payloads[4])
			assert.True(t, ok)
			assert.Equal(t, [2]int{7, 42}, [2]int{s, seq})
		})
	}
}

// TestFanoutCountsEveryDelivery runs a small fan-out against each server
// process: nothing lost or repeated, and the server's CPU time read.
func TestFanoutCountsEveryDelivery(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"room", "room-ws", "room-json", "room-irc", "redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			srv := startPeer(t, kind)
			spec := fanoutSpec{clients: 6, senders: 2, messages: 300, size: 64, window: 16}
			p := protocolFor(kind)
			res, err := runFanout(p, srv, spec, &progress{w: io.Discard, quiet: true})
			require.NoError(t, err)
			per := int64(spec.clients - 1)
			if p.selfDelivery() {
				per = int64(spec.clients) // Redis's subscribers, the JSON protocol's echo: the sender's own too
			}
			assert.Equal(t, int64(spec.senders*spec.messages)*per, res.deliveries)
			assert.Zero(t, res.lost)
			assert.Zero(t, res.dups)
			assert.Positive(t, res.latency.n)
			assert.Positive(t, res.writeCalls, "the server's write system calls, from /proc")
		})
	}
}

func TestIdleMeasuresMemory(t *testing.T) {
	t.Parallel()
	srv := startPeer(t, "room")
	res, err := runIdle(roomProto{label: "room"}, srv, idleSpec{clients: 200, rooms: 1}, 0, 100*time.Millisecond, &progress{w: io.Discard, quiet: true})
	require.NoError(t, err)
	assert.Positive(t, res.rssPerConn)
	assert.Positive(t, res.rssLatePerConn)
}

// TestDecode: what encode wrote reads back; anything else is refused.
func TestDecode(t *testing.T) {
	t.Parallel()
	p := encode(nil, 12, 3456, 64)
	s, seq, sent, ok := decode(p)
	require.True(t, ok)
	assert.Equal(t, [2]int{12, 3456}, [2]int{s, seq})
	assert.InDelta(t, time.Now().UnixNano(), sent, float64(time.Minute))
	for _, bad := range []string{"", "1 2", "1 2 3", "1  2 3 x", "a 2 3 x", "1 -2 3 x", "1 2 12345678901234567890 x", "1 2 9300000000000000000 x", "hello"} {
		_, _, _, ok := decode([]byte(bad))
		assert.False(t, ok, "%q", bad)
	}
	_, _, sent, ok = decode([]byte("0 0 9223372036854775807 "))
	assert.True(t, ok, "19 digits")
	assert.Equal(t, int64(math.MaxInt64), sent)
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tt.q)
		assert.InDelta(t, float64(tt.want), float64(got), float64(tt.want)/16, "q%v", tt.q)
	}
	assert.Equal(t, time.Millisecond, h.max)
}

func TestRampWritesCSVAndPlot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rs := []result{
		{server: "room", clients: 10, throughput: 1e6, deliveries: 1000, serverCPU: time.Millisecond},
		{server: "room", clients: 100, throughput: 2e6, deliveries: 1000, serverCPU: time.Millisecond, writeCalls: 100},
		{server: "redis", clients: 10, throughput: 5e5, deliveries: 1000, serverCPU: 2 * time.Millisecond},
		{server: "redis", clients: 100, throughput: 7e5, deliveries: 1000, serverCPU: 2 * time.Millisecond},
	}
	csvPath, pngPath := filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.png")
	require.NoError(t, writeCSV(csvPath, rs))
	require.NoError(t, plotRamp(pngPath, rs))
	b, err := os.ReadFile(csvPath)
	require.NoError(t, err)
	assert.Contains(t, string(b), "room,100,2000000,1000,10.0,")
	png, err := os.ReadFile(pngPath)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "a PNG")
}

func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-size", "10", "fanout"},
		{"-senders", "0", "fanout"},
		{"-servers", "mysql", "fanout"},
		{"-ramp", "10,x", "ramp"},
		{"-arrive", "later", "idle"},
		{"-arrive", "burst,", "idle"},
		{"-idle-rooms", "0", "idle"},
		{"-rooms", "0", "rooms"},
		{"-room-clients", "1", "rooms"},
		{"-duration", "500ms", "rooms"},
		{"-recover-lines", "0", "recover"},
		{"-recover-rounds", "0", "recover"},
		{"nonsense"},
		{},
	} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			assert.Error(t, run(args, io.Discard, io.Discard))
		})
	}
}

// fakeHub speaks the lines of a hub (SPEC, Rooms) that chatbench uses, and
// nothing more, over TCP on 127.0.0.1: a welcome and a join notice in the
// default room "lobby"; "/join ROOM" answered "* you are in ROOM, <N>
// online", after "<ts> * NAME left" to the room left and before "<ts> *
// NAME joined" to the room entered, or refused as the SPEC says; plain
// lines relayed to the sender's room as "<ts> NAME say: TEXT". It stands in
// for the engine's hub, which the rooms workload is written against, in
// tests of the load tool's side of the exchange.
type fakeHub struct {
	ln       net.Listener
	maxRooms int
	done     sync.WaitGroup

	mu         sync.Mutex
	rooms      map[string]map[*fakeClient]bool
	peak       map[string]int // the most members each room has had at once
	clients    map[*fakeClient]bool
	pending    int // connections accepted whose /join is not answered yet
	maxPending int
	names      int
}

type fakeClient struct {
	c    net.Conn
	name string
	room string
}

// startFakeHub serves a fakeHub on a free port until the test ends.
func startFakeHub(t *testing.T, maxRooms int) *fakeHub {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h := &fakeHub{ln: ln, maxRooms: maxRooms, rooms: map[string]map[*fakeClient]bool{"lobby": {}},
		peak: map[string]int{}, clients: map[*fakeClient]bool{}}
	h.done.Add(1)
	go h.accept()
	t.Cleanup(h.close)
	return h
}

func (h *fakeHub) accept() {
	defer h.done.Done()
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.names++
		fc := &fakeClient{c: c, name: fmt.Sprintf("guest%d", h.names), room: "lobby"}
		h.clients[fc] = true
		h.pending++
		h.maxPending = max(h.maxPending, h.pending)
		h.send(fc, fmt.Sprintf("* welcome %s, %d online", fc.name, len(h.clients)))
		h.notice("lobby", fc, fc.name+" joined")
		h.rooms["lobby"][fc] = true
		h.mu.Unlock()
		h.done.Add(1)
		go h.serve(fc)
	}
}

// serve reads fc's lines until it leaves or the hub closes.
func (h *fakeHub) serve(fc *fakeClient) {
	defer h.done.Done()
	sc := bufio.NewScanner(fc.c)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		h.mu.Lock()
		if room, ok := strings.CutPrefix(line, "/join "); ok {
			h.join(fc, strings.TrimPrefix(strings.TrimSpace(room), "#"))
		} else if line != "" {
			for m := range h.rooms[fc.room] {
				if m != fc {
					h.send(m, fmt.Sprintf("%s %s say: %s", time.Now().Format(time.DateTime), fc.name, line))
				}
			}
		}
		h.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.clients, fc)
	h.leave(fc)
	fc.c.Close()
}

var roomNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// join moves fc to room as the SPEC's /join does; h.mu is held.
func (h *fakeHub) join(fc *fakeClient, room string) {
	switch {
	case !roomNameRE.MatchString(room):
		h.send(fc, "* error: invalid room name")
		return
	case strings.EqualFold(room, fc.room):
		h.send(fc, "* you are already in "+room)
		return
	case h.rooms[room] == nil && len(h.rooms) >= h.maxRooms:
		h.send(fc, fmt.Sprintf("* error: too many rooms (max %d)", h.maxRooms))
		return
	}
	h.leave(fc)
	if h.rooms[room] == nil {
		h.rooms[room] = map[*fakeClient]bool{}
	}
	h.rooms[room][fc] = true
	fc.room = room
	h.peak[room] = max(h.peak[room], len(h.rooms[room]))
	h.send(fc, fmt.Sprintf("* you are in %s, %d online", room, len(h.rooms[room])))
	h.pending--
	h.notice(room, fc, fc.name+" joined")
}

// leave takes fc out of its room, telling the others; a room other than
// the lobby closes when empty. h.mu is held.
func (h *fakeHub) leave(fc *fakeClient) {
	delete(h.rooms[fc.room], fc)
	h.notice(fc.room, fc, fc.name+" left")
	if fc.room != "lobby" && len(h.rooms[fc.room]) == 0 {
		delete(h.rooms, fc.room)
	}
}

// notice sends "<ts> * text" to room's members but fc; h.mu is held.
func (h *fakeHub) notice(room string, fc *fakeClient, text string) {
	for m := range h.rooms[room] {
		if m != fc {
			h.send(m, time.Now().Format(time.DateTime)+" * "+text)
		}
	}
}

// send writes line to fc; a client that does not take it in a few seconds
// is cut off (a test's client always reads).
func (h *fakeHub) send(fc *fakeClient, line string) {
	fc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(fc.c, line+"\n"); err != nil {
		fc.c.Close()
	}
}

func (h *fakeHub) close() {
	h.ln.Close()
	h.mu.Lock()
	for fc := range h.clients {
		fc.c.Close()
	}
	h.mu.Unlock()
	h.done.Wait()
}

// stats returns each room's peak membership and the most connections
// that were ever waiting for their /join's answer at once.
func (h *fakeHub) stats() (map[string]int, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.peak), h.maxPending
}

// fakeServer is a server for the workloads whose process is the test's
// own: its CPU time, write calls and memory read as 0.
func fakeServer(addr string) *server { return &server{kind: "room", addr: addr} }

// TestJoinHandshake plays each answer the SPEC gives to /join (and a few
// it does not) to the room's client and checks that it sends exactly
// "/join room-7", accepts only "* you are in room-7, <N> online" after any
// notices, and leaves what follows the answer (the room's history) to be
// read.
func TestJoinHandshake(t *testing.T) {
	for _, tt := range []struct {
		name    string
		answer  []string // after the welcome and the /join; closed after it
		wantErr string   // "" if the join must succeed
	}{
		{"answered", []string{"* you are in room-7, 3 online"}, ""},
		{"after notices and chat", []string{"2026-11-30 10:00:00 * guest1 left", "2026-11-30 10:00:00 guest2 say: 1 2 3 x",
			"* you are in room-7, 1 online"}, ""},
		{"too many rooms", []string{"* error: too many rooms (max 100)"}, "too many rooms (max 100)"},
		{"invalid name", []string{"* error: invalid room name"}, "invalid room name"},
		{"already there", []string{"* you are already in room-7"}, "already in room-7"},
		{"no hub", []string{"* error: unknown command /join (try /help)"}, "unknown command"},
		{"another room", []string{"* you are in room-70, 3 online"}, "room-70"},
		{"no count", []string{"* you are in room-7, many online"}, "many online"},
		{"nobody", []string{"* you are in room-7, 0 online"}, "0 online"},
		{"no answer", nil, "no answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			history := "2026-11-30 10:00:01 guest3 say: the room's history"
			got := make(chan string, 1)
			go func() {
				defer close(got)
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "* welcome guest9, 12 online\n")
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				got <- line
				for _, l := range append(tt.answer, history) {
					io.WriteString(c, l+"\n")
				}
			}()
			c, err := roomProto{label: "room"}.member(ln.Addr().String(), "room-7")
			ln.Close() // the fake has its connection by now, if it ever will
			assert.Equal(t, "/join room-7\n", <-got)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			defer c.conn().Close()
			c.conn().SetReadDeadline(time.Now().Add(10 * time.Second))
			text, err := c.next()
			require.NoError(t, err)
			assert.Equal(t, "the room's history", string(text))
		})
	}
}

// TestNoJoinForTheDefaultRoom: a client of the default room says nothing
// after its welcome.
func TestNoJoinForTheDefaultRoom(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	heard := make(chan string, 1)
	go func() {
		defer close(heard)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "* welcome guest9, 1 online\n")
		b, _ := io.ReadAll(c) // until the client closes
		heard <- string(b)
	}()
	c, err := roomProto{label: "room"}.join(ln.Addr().String(), "")
	ln.Close()
	require.NoError(t, err)
	c.conn().Close()
	assert.Empty(t, <-heard)
}

// TestMembersAgainstRealServers puts members in two rooms of each server
// (the room: the fake hub; its JSON and IRC faces: the demo) and checks
// that a line said in one room
// reaches exactly that room's other members (and, on Redis, the sender's
// own subscription), that the other room hears nothing of it, and that a
// receiving-only client joined to a room (the idle workload's) hears it.
func TestMembersAgainstRealServers(t *testing.T) {
	for _, kind := range []string{"room", "room-json", "room-irc", "redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			var addr string
			if kind == "room" {
				addr = startFakeHub(t, 10).ln.Addr().String()
			} else {
				addr = startPeer(t, kind).addr
			}
			p := protocolFor(kind)
			enter := func(room string, join func(string, string) (client, error)) client {
				c, err := join(addr, room)
				require.NoError(t, err, room)
				t.Cleanup(func() { c.conn().Close() })
				c.conn().SetReadDeadline(time.Now().Add(10 * time.Second))
				return c
			}
			a := []client{enter("room-0", p.member), enter("room-0", p.member), enter("room-0", p.member), enter("room-0", p.join)}
			b := []client{enter("room-1", p.member), enter("room-1", p.member)}

			payloads := [][]byte{[]byte("first"), encode(nil, 3, 9, 64), []byte("with spaces and $ * : - signs")}
			for _, pl := range payloads {
				require.NoError(t, a[0].publish(pl))
			}
			require.NoError(t, a[0].flush())
			require.NoError(t, b[1].publish([]byte("in room-1")))
			require.NoError(t, b[1].flush())

			receivers := a[1:]
			if p.selfDelivery() {
				receivers = a
			}
			for i, c := range receivers {
				for _, want := range payloads {
					got, err := c.next()
					require.NoError(t, err, "receiver %d", i)
					assert.Equal(t, string(want), string(got), "receiver %d", i)
				}
			}
			got, err := b[0].next()
			require.NoError(t, err)
			assert.Equal(t, "in room-1", string(got), "room-1 hears its own line, and nothing of room-0's before it")
			if p.selfDelivery() {
				got, err := b[1].next()
				require.NoError(t, err)
				assert.Equal(t, "in room-1", string(got))
			}
			// Nothing else arrives anywhere: a short read times out.
			for i, c := range slices.Concat(a, b) {
				if c == a[0] && p.selfDelivery() {
					continue // its echo was read above
				}
				c.conn().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, err := c.next()
				assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "client %d", i)
			}
		})
	}
}

// TestRoomsCountsEveryDelivery runs a few quiet rooms, quickly, against
// the fake hub, the demo's JSON and IRC faces, Redis and NATS, read by the
// load tool's poller (where it knows the protocol's framing) and by a
// goroutine per client: each line reaches the other members of its room
// once, and nobody else.
func TestRoomsCountsEveryDelivery(t *testing.T) {
	for _, kind := range []string{"room", "room-json", "room-irc", "redis", "nats"} {
		for _, goroutines := range []bool{false, true} {
			if _, raw := protocolFor(kind).(rawProtocol); !raw && !goroutines {
				continue // it has goroutines either way
			}
			t.Run(fmt.Sprintf("%s/goroutines=%v", kind, goroutines), func(t *testing.T) {
				spec := roomsSpec{rooms: 4, members: 3, lines: 5, size: 64, interval: 20 * time.Millisecond, goroutines: goroutines}
				var srv *server
				var hub *fakeHub
				if kind == "room" {
					hub = startFakeHub(t, spec.rooms+1)
					srv = fakeServer(hub.ln.Addr().String())
				} else {
					srv = startPeer(t, kind)
				}
				res, err := runRooms(protocolFor(kind), srv, spec, &progress{w: io.Discard, quiet: true})
				require.NoError(t, err)
				assert.Equal(t, int64(4*5*2), res.expected)
				assert.Equal(t, res.expected, res.deliveries)
				assert.Zero(t, res.lost)
				assert.Zero(t, res.dups)
				assert.Equal(t, res.deliveries, res.latency.n)
				assert.Positive(t, res.window)
				if hub != nil {
					peak, _ := hub.stats()
					assert.Equal(t, map[string]int{"room-0": 3, "room-1": 3, "room-2": 3, "room-3": 3}, peak)
				} else {
					assert.Positive(t, res.writeCalls, "the server's write system calls, from /proc")
				}
			})
		}
	}
}

// TestFramersSplitAnywhere feeds each protocol's framer a stream cut at
// every byte, and whole, as the poller's reads may cut it: the same
// payloads and replies come out, in order, and every byte is taken.
func TestFramersSplitAnywhere(t *testing.T) {
	for _, tt := range []struct {
		name     string
		raw      rawClient
		stream   string
		payloads []string
		replies  []string
	}{
		{"room", &roomConn{},
			"* you are in room-1, 2 online\n2026-11-30 10:00:00 * guest2 joined\n2026-11-30 10:00:00 guest2 say: hello\n" +
				"2026-11-30 10:00:01 guest3 say: 1 2 3 say: x\n",
			[]string{"hello", "1 2 3 say: x"}, nil},
		{"redis", &redisConn{},
			":1\r\n>3\r\n$7\r\nmessage\r\n$6\r\nroom-1\r\n$5\r\nhello\r\n>3\r\n$9\r\nsubscribe\r\n$6\r\nroom-1\r\n:1\r\n" +
				"+OK\r\n*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$7\r\na\r\nb c \r\n:10\r\n",
			[]string{"hello", "a\r\nb c "}, nil},
		{"irc", &ircConn{},
			":bench2!bench2@127.0.0.1 JOIN #room-1\r\n:chatroom 353 bench1 = #room-1 :bench1 bench2\r\n" +
				":bench2!bench2@127.0.0.1 PRIVMSG #room-1 :hello\r\n@time=2026-11-30T10:00:00.000Z :x!x@h PRIVMSG #room-1 :a :b\r\n" +
				":bench3!bench3@127.0.0.1 PRIVMSG #room-1 one\r\n:bench3!bench3@h NOTICE #room-1 :not a line\r\n",
			[]string{"hello", "a :b", "one"}, nil},
		{"nats", &natsConn{},
			"INFO {\"max_payload\":1048576}\r\n+OK\r\nPING\r\nMSG room-1 1 5\r\nhello\r\nPONG\r\nMSG room-1 1 reply.x 3\r\na\r\n\r\n",
			[]string{"hello", "a\r\n"}, []string{"PONG\r\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for cut := 0; cut <= len(tt.stream); cut++ {
				var payloads, replies []string
				var buf []byte
				start := 0
				for _, chunk := range []string{tt.stream[:cut], tt.stream[cut:]} {
					buf = append(buf, chunk...)
					for start < len(buf) {
						payload, n, reply, err := tt.raw.frame(buf[start:])
						require.NoError(t, err, "cut at %d", cut)
						if n == 0 {
							break
						}
						if payload != nil {
							payloads = append(payloads, string(payload))
						}
						if reply != nil {
							replies = append(replies, string(reply))
						}
						start += n
					}
				}
				assert.Equal(t, tt.payloads, payloads, "cut at %d", cut)
				assert.Equal(t, tt.replies, replies, "cut at %d", cut)
				assert.Equal(t, len(buf), start, "cut at %d: every byte taken", cut)
			}
		})
	}
}

// TestFaceHandshakesRefuse: a client of the demo's JSON or IRC face that
// the demo refuses a room fails to join, with the demo's words.
func TestFaceHandshakesRefuse(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"room-json", "room-irc"} {
		t.Run(kind, func(t *testing.T) {
			srv := startPeer(t, kind)
			_, err := protocolFor(kind).member(srv.addr, "no!such")
			require.Error(t, err)
			assert.Contains(t, err.Error(), "refused")
			c, err := protocolFor(kind).member(srv.addr, "such")
			require.NoError(t, err, "the demo still serves")
			c.conn().Close()
		})
	}
}

// TestFramersRefuse: bytes that are not the protocol's are an error, not
// skipped.
func TestFramersRefuse(t *testing.T) {
	for _, tt := range []struct {
		name   string
		raw    rawClient
		stream string
	}{
		{"redis error", &redisConn{}, "-ERR unknown command\r\n"},
		{"redis unknown type", &redisConn{}, "?3\r\n"},
		{"redis bad length", &redisConn{}, ">3\r\n$x\r\n"},
		{"nats error", &natsConn{}, "-ERR 'Authorization Violation'\r\n"},
		{"nats bad size", &natsConn{}, "MSG room 1 many\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := tt.raw.frame([]byte(tt.stream))
			assert.Error(t, err)
		})
	}
}

// TestIdleInRoomsOneByOne spreads idle clients over rooms, arriving one
// after the other: against the fake hub, each room gets its share and no
// client starts before the one before it is in; against Redis and NATS,
// the memory is read.
func TestIdleInRoomsOneByOne(t *testing.T) {
	for _, kind := range []string{"room", "redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			spec := idleSpec{clients: 200, rooms: 4, serial: true}
			if kind == "room" {
				hub := startFakeHub(t, spec.rooms+1)
				_, err := runIdle(roomProto{label: "room"}, fakeServer(hub.ln.Addr().String()), spec, 0, 0, &progress{w: io.Discard, quiet: true})
				require.NoError(t, err)
				peak, maxPending := hub.stats()
				assert.Equal(t, map[string]int{"room-0": 50, "room-1": 50, "room-2": 50, "room-3": 50}, peak)
				assert.Equal(t, 1, maxPending, "clients waiting for their /join's answer at once")
				return
			}
			res, err := runIdle(protocolFor(kind), startPeer(t, kind), spec, 0, 100*time.Millisecond, &progress{w: io.Discard, quiet: true})
			require.NoError(t, err)
			assert.Positive(t, res.rssPerConn)
			assert.Positive(t, res.rssLatePerConn)
		})
	}
}

// TestServerThatExitsAtStart: a server that exits before it listens (an
// old demo given -max-rooms, say) fails the run with what it said, and
// was given the room's flags.
func TestServerThatExitsAtStart(t *testing.T) {
	script := filepath.Join(t.TempDir(), "old-demo")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho \"args: $*\" >&2\nexit 2\n"), 0o755))
	_, err := startServer("baseline", serverPaths{baseline: script, baselineArgs: []string{"-rate", "0"}}, serverOpts{outbox: 7, maxRooms: 1001})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "baseline exited at start")
	assert.Regexp(t, `args: -addr 127\.0\.0\.1:\d+ -outbox 7 -max-rooms 1001 -rate 0`, err.Error())
}

// pythonServer writes a script that stands for a server, run by python3 with
// the script's arguments after -c's program: it listens on the port of its
// second argument (-addr's value), and runs program. It skips the test
// without python3.
func pythonServer(t *testing.T, program string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("skipping: needs python3 to stand for a server")
	}
	listen := "import socket,sys,os; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); " +
		"h,p=sys.argv[2].rsplit(':',1); s.bind((h,int(p))); s.listen(); "
	script := filepath.Join(t.TempDir(), "server")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\nexec python3 -c \""+listen+program+"\" \"$@\"\n"), 0o755))
	return script
}

// TestServerThatExitsDuringARun: reading a server that has gone says so,
// with how it ended and what it said, instead of a missing /proc file.
func TestServerThatExitsDuringARun(t *testing.T) {
	t.Parallel()
	// It listens until its first connection, says a word, and exits.
	script := pythonServer(t, "s.accept(); sys.stderr.write('gone for good\\\\n'); sys.exit(3)")
	srv, err := startServer("baseline", serverPaths{baseline: script}, serverOpts{outbox: 1})
	require.NoError(t, err)
	defer srv.stop()
	c, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err)
	defer c.Close()
	require.Eventually(t, func() bool {
		_, err := srv.rss()
		return err != nil && strings.Contains(err.Error(), "baseline exited during the run (exit status 3)")
	}, 10*time.Second, 10*time.Millisecond)
	_, err = srv.cpu()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gone for good")
}

// TestServerWhosePortWasTaken: a server that exits at start saying its
// port was taken is started again, on another port; one that says
// anything else is not.
func TestServerWhosePortWasTaken(t *testing.T) {
	t.Parallel()
	tries := filepath.Join(t.TempDir(), "tries")
	// The first two starts find their port taken, as the demo says it; the
	// third listens until its first connection.
	script := pythonServer(t, "s.accept()")
	wrapper := filepath.Join(t.TempDir(), "wrapper")
	require.NoError(t, os.WriteFile(wrapper, []byte(`#!/bin/sh
echo "$2" >> `+tries+`
if [ "$(wc -l < `+tries+`)" -le 2 ]; then
	echo "listen tcp $2: bind: address already in use" >&2
	exit 1
fi
exec `+script+` "$@"
`), 0o755))
	srv, err := startServer("baseline", serverPaths{baseline: wrapper}, serverOpts{outbox: 1})
	require.NoError(t, err)
	defer srv.stop()
	b, err := os.ReadFile(tries)
	require.NoError(t, err)
	addrs := strings.Fields(string(b))
	require.Len(t, addrs, 3, "started three times")
	assert.Equal(t, srv.addr, addrs[2])
	c, err := net.Dial("tcp", srv.addr)
	require.NoError(t, err, "the third listens")
	c.Close()

	// Exiting for any other reason is not retried.
	_, err = startServer("baseline", serverPaths{baseline: "/bin/false"}, serverOpts{outbox: 1})
	require.Error(t, err)
	assert.NotErrorIs(t, err, errPortTaken)
}

// TestListeningIsTheServersOwn: a server is up once its own process
// listens on its port, not when anything does.
func TestListeningIsTheServersOwn(t *testing.T) {
	t.Parallel()
	srv := startPeer(t, "room")
	pid := srv.cmds[0].Process.Pid
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	mine := ln.Addr().(*net.TCPAddr).Port
	_, p, err := net.SplitHostPort(srv.addr)
	require.NoError(t, err)
	theirs, err := strconv.Atoi(p)
	require.NoError(t, err)

	up, err := listening(pid, []int{theirs})
	assert.True(t, up)
	assert.NoError(t, err)
	up, _ = listening(pid, []int{theirs, mine})
	assert.False(t, up, "the room does not hold the test's listener")
	up, _ = listening(os.Getpid(), []int{theirs})
	assert.False(t, up, "the test does not hold the room's")
	up, _ = listening(os.Getpid(), []int{mine})
	assert.True(t, up)
}

// TestRecoverGetsEveryLine: against the demo (its history 100 lines by
// default), a JSON client that missed 60 lines gets each once, in order,
// three times over; one that missed more than the history keeps is told
// of the gap, which fails the run.
func TestRecoverGetsEveryLine(t *testing.T) {
	t.Parallel()
	srv := startPeer(t, "room-json")
	res, err := runRecover(srv, recoverSpec{lines: 60, rounds: 3}, &progress{w: io.Discard, quiet: true})
	require.NoError(t, err)
	assert.Len(t, res.took, 3)
	assert.Zero(t, res.lost)
	assert.Zero(t, res.dups)

	_, err = runRecover(startPeer(t, "room-json"), recoverSpec{lines: 150, rounds: 1}, &progress{w: io.Discard, quiet: true})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"type":"gap"`)
}
