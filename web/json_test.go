package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chatroom-go/chatroom/web"
	"github.com/chatroom-go/chatroom/web/client"
)

// The JSON protocol (chatroom.v1.json) over real WebSockets on 127.0.0.1,
// through web/client, the Go client package.

const stamp = "2026-11-28T09:30:00Z" // testTime, as the JSON protocol writes it

// hubSite serves a hub's WebSocket at /ws on a test server, and the hub
// on a TCP listener too; all close when the test ends.
type hubSite struct {
	hub *chatroom.Hub
	ws  string // the WebSocket's URL
	tcp string
}

func newHubSite(t *testing.T, opts ...chatroom.Option) *hubSite {
	t.Helper()
	hub := chatroom.NewHub(append([]chatroom.Option{chatroom.WithClock(func() time.Time { return testTime }),
		chatroom.WithRateLimit(0, 0)}, opts...)...)
	mux := http.NewServeMux()
	mux.Handle("/ws", web.NewHandler(hub, web.WithMessageRate(0, 0))) // as the hub's flood control: off
	srv := httptest.NewServer(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- hub.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, hub.Close())
		<-served
		srv.Close()
	})
	return &hubSite{hub: hub, ws: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", tcp: ln.Addr().String()}
}

// jsonClient is a test's client of the JSON protocol.
type jsonClient struct {
	t *testing.T
	*client.Client
}

// dial connects a client and reads its welcome, which must name it name
// (if not "").
func (s *hubSite) dial(t *testing.T, name string, rooms ...string) *jsonClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := client.Dial(ctx, s.ws, client.Options{Name: name, Rooms: rooms})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	jc := &jsonClient{t, c}
	w := jc.expect("welcome")
	if name != "" {
		require.Equal(t, name, w.Name)
	}
	return jc
}

// next returns the next message but "synced", which the tests that care
// read raw.
func (c *jsonClient) next() *client.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for {
		m, err := c.Receive(ctx)
		require.NoError(c.t, err)
		if m.Type != "synced" {
			return m
		}
	}
}

// expect returns the next message, which must be of type typ.
func (c *jsonClient) expect(typ string) *client.Message {
	c.t.Helper()
	m := c.next()
	require.Equal(c.t, typ, m.Type, "%+v", m)
	return m
}

// waitFor skips messages until one of type typ for which match (if not
// nil) is true.
func (c *jsonClient) waitFor(typ string, match func(*client.Message) bool) *client.Message {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	m, err := c.WaitFor(ctx, func(m *client.Message) bool { return m.Type == typ && (match == nil || match(m)) })
	require.NoError(c.t, err, "waiting for a %s", typ)
	return m
}

// send sends cmd.
func (c *jsonClient) send(cmd client.Command) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(c.t, c.Send(ctx, cmd))
}

// entered reads the own join of room and its members, and returns them.
func (c *jsonClient) entered(room string) (join, members *client.Message) {
	c.t.Helper()
	join = c.expect("join")
	require.True(c.t, join.Own, "%+v", join)
	require.Equal(c.t, room, join.Room)
	members = c.expect("members")
	require.Equal(c.t, room, members.Room)
	return join, members
}

// names lists the members' names.
func names(members []client.Member) []string {
	var s []string
	for _, m := range members {
		s = append(s, m.Name)
	}
	return s
}

// rawDial opens a WebSocket with the JSON subprotocol, the URL's query
// query, for the bytes themselves.
func (s *hubSite) rawDial(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, s.ws+query, &websocket.DialOptions{Subprotocols: []string{web.Subprotocol}})
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() })
	require.Equal(t, web.Subprotocol, ws.Subprotocol())
	return ws
}

func rawRead(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	typ, b, err := ws.Read(ctx)
	require.NoError(t, err)
	require.Equal(t, websocket.MessageText, typ)
	return string(b)
}

func rawWrite(t *testing.T, ws *websocket.Conn, typ websocket.MessageType, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, ws.Write(ctx, typ, []byte(msg)))
}

// TestJSONExactMessages: the bytes of the fixed messages (SPEC, "Browsers:
// the structured protocol"), and a command spread over lines of JSON
// whitespace.
func TestJSONExactMessages(t *testing.T) {
	t.Parallel()
	s := newHubSite(t)
	ann := s.rawDial(t, "?name=ann")
	assert.Equal(t, `{"type":"welcome","time":"`+stamp+`","name":"ann"}`, rawRead(t, ann))
	join := rawRead(t, ann)
	assert.Regexp(t, `^\{"type":"join","time":"`+stamp+`","room":"lobby","from":"ann","last":\d+,"count":1,"own":true\}$`, join)
	assert.Equal(t, `{"type":"members","room":"lobby","count":1,"members":[{"name":"ann"}]}`, rawRead(t, ann))
	assert.Equal(t, `{"type":"synced"}`, rawRead(t, ann), "the history, none here, is all sent")

	bob := s.dial(t, "bob")
	bob.entered("lobby")
	assert.Equal(t, `{"type":"join","time":"`+stamp+`","room":"lobby","from":"bob"}`, rawRead(t, ann))

	rawWrite(t, ann, websocket.MessageText, "{\"type\":\"say\",\n\"room\":\"lobby\",\r\n\"text\":\"hi \\\"there\\\"\"}")
	said := bob.expect("say")
	id := strconv.FormatUint(said.ID, 10)
	assert.Equal(t, `{"type":"say","id":`+id+`,"time":"`+stamp+`","room":"lobby","from":"ann","text":"hi \"there\""}`,
		mustJSON(t, said), "as the others get it")
	assert.Equal(t, `{"type":"say","id":`+id+`,"time":"`+stamp+`","room":"lobby","from":"ann","text":"hi \"there\"","own":true}`,
		rawRead(t, ann), "as the sender gets it back")

	rawWrite(t, ann, websocket.MessageText, `{"type":"nick","name":"bob"}`)
	assert.Equal(t, `{"type":"error","command":"nick","text":"nickname taken"}`, rawRead(t, ann))
}

// mustJSON writes m back as the server would have: the fields of a say
// line, in their order.
func mustJSON(t *testing.T, m *client.Message) string {
	t.Helper()
	return fmt.Sprintf(`{"type":%q,"id":%d,"time":%q,"room":%q,"from":%q,"text":%s}`,
		m.Type, m.ID, m.Time.Format(time.RFC3339), m.Room, m.From, strconv.Quote(m.Text))
}

// TestJSONEveryCommand: every command, and the messages each brings, to
// the one who sent it and to the others; a terminal in the same rooms.
func TestJSONEveryCommand(t *testing.T) {
	t.Parallel()
	s := newHubSite(t)
	ann := s.dial(t, "ann")
	ann.entered("lobby")
	bob := s.dial(t, "bob")
	_, members := bob.entered("lobby")
	assert.Equal(t, []string{"ann", "bob"}, names(members.Members))
	assert.Equal(t, 2, members.Count)
	assert.Equal(t, "bob", ann.expect("join").From)

	term := s.terminal(t)
	ann.expect("join")
	bob.expect("join")

	// say: others get it, the sender gets it back as its own.
	ann.send(client.Command{Type: "say", Room: "lobby", Text: "hello"})
	got := bob.expect("say")
	own := ann.expect("say")
	assert.Equal(t, "hello", got.Text)
	assert.Equal(t, "ann", got.From)
	assert.False(t, got.Own)
	assert.True(t, own.Own)
	assert.Equal(t, got.ID, own.ID)
	assert.Equal(t, testTime, got.Time.UTC())
	assert.Equal(t, ts+" ann say: hello", term.Line())

	// me
	bob.send(client.Command{Type: "me", Room: "lobby", Text: "waves"})
	act := ann.expect("me")
	assert.Equal(t, "bob", act.From)
	assert.Equal(t, "waves", act.Text)
	assert.Greater(t, act.ID, got.ID)
	assert.True(t, bob.expect("me").Own)
	assert.Equal(t, ts+" * bob waves", term.Line())

	// msg: the recipient and the sender alone.
	ann.send(client.Command{Type: "msg", To: "BOB", Text: "psst"})
	w := bob.expect("whisper")
	assert.Equal(t, client.Message{Type: "whisper", Time: w.Time, From: "ann", To: "bob", Text: "psst"}, *w)
	w = ann.expect("whisper")
	assert.True(t, w.Own)
	assert.Equal(t, "bob", w.To)
	ann.send(client.Command{Type: "msg", To: term.Name, Text: "to the terminal"})
	assert.Equal(t, ts+" ann whispers: to the terminal", term.Line())
	ann.expect("whisper")

	// nick: everyone who shares a room, the renamed as its own.
	bob.send(client.Command{Type: "nick", Name: "bobby"})
	n := bob.expect("nick")
	assert.True(t, n.Own)
	assert.Equal(t, "bobby", n.From)
	assert.Equal(t, "bobby", bob.Name(), "the client keeps its name")
	n = ann.expect("nick")
	assert.Equal(t, "bob", n.Old)
	assert.Equal(t, "bobby", n.From)
	assert.Equal(t, []string{"lobby"}, n.Rooms)
	assert.Equal(t, ts+" * bob is now bobby", term.Line())

	// join: a room of one's own, with its roster; the others are told.
	ann.send(client.Command{Type: "join", Room: "#Games"})
	join, members := ann.entered("Games")
	assert.Equal(t, 1, join.Count)
	assert.Equal(t, []client.Member{{Name: "ann", Op: true}}, members.Members, "who opens a room runs it")
	bob.send(client.Command{Type: "join", Room: "games"})
	join, members = bob.entered("Games")
	assert.Equal(t, 2, join.Count)
	assert.Equal(t, []string{"ann", "bobby"}, names(members.Members))
	assert.Equal(t, "bobby", ann.expect("join").From)

	// topic
	ann.send(client.Command{Type: "topic", Room: "games", Text: "chess"})
	tp := bob.expect("topic")
	assert.Equal(t, client.Message{Type: "topic", Time: tp.Time, Room: "Games", By: "ann", Text: "chess"}, *tp)
	assert.True(t, ann.expect("topic").Own)
	cid := s.dial(t, "cid", "games")
	join, _ = cid.entered("Games")
	assert.Equal(t, "chess", join.Topic, "a newcomer learns the topic")
	ann.expect("join")
	bob.expect("join")

	// who, rooms
	bob.send(client.Command{Type: "who", Room: "lobby"})
	m := bob.expect("members")
	assert.Equal(t, []string{term.Name, "ann", "bobby"}, names(m.Members), "sorted, ignoring case")
	assert.Equal(t, 3, m.Count)
	bob.send(client.Command{Type: "rooms"})
	rooms := bob.expect("rooms")
	assert.Equal(t, []client.RoomInfo{{Name: "Games", Count: 3, Topic: "chess"}, {Name: "lobby", Count: 3}}, rooms.List)

	// part: a room left, the connection kept.
	bob.send(client.Command{Type: "part", Room: "games", Text: "later"})
	left := bob.expect("leave")
	assert.True(t, left.Own)
	assert.Equal(t, []string{"lobby"}, bob.Rooms())
	left = ann.expect("leave")
	assert.Equal(t, client.Message{Type: "leave", Time: left.Time, Room: "Games", From: "bobby", Reason: "part", Text: "later"}, *left)
	cid.expect("leave")

	// quit: a bye to it, one leave for every room to the others.
	cid.send(client.Command{Type: "quit", Text: "gone"})
	bye := cid.expect("bye")
	assert.Equal(t, "exit", bye.Reason)
	left = ann.expect("leave")
	assert.Equal(t, client.Message{Type: "leave", Time: left.Time, Rooms: []string{"Games"}, From: "cid", Reason: "exit", Text: "gone", Quit: true}, *left)

	// A kick by the hub is a quit too, with its reason.
	require.NoError(t, s.hub.Kick("bobby", "enough"))
	bye = bob.expect("bye")
	assert.Equal(t, "kicked", bye.Reason)
	assert.Equal(t, "enough", bye.Text)
	left = ann.expect("leave")
	assert.Equal(t, []string{"lobby"}, left.Rooms)
	assert.Equal(t, "kicked", left.Reason)
	assert.Equal(t, "enough", left.Text)

	// A notice from the program.
	require.NoError(t, s.hub.Broadcast("maintenance at noon"))
	notice := ann.expect("notice")
	assert.Equal(t, "maintenance at noon", notice.Text)
}

// terminal is a text-protocol client of the site's hub over TCP.
func (s *hubSite) terminal(t *testing.T) *chattest.Client {
	t.Helper()
	c := chattest.Dial(t, s.tcp)
	require.True(t, strings.HasPrefix(c.Line(), "* welcome "+c.Name))
	return c
}

// TestJSONThreeRooms: a client in three rooms at once hears each, with
// the room on every line; members of several rooms are told of a rename
// or a departure once.
func TestJSONThreeRooms(t *testing.T) {
	t.Parallel()
	s := newHubSite(t, chatroom.WithHistory(10))
	ann := s.dial(t, "ann", "lobby", "games", "music")
	for _, r := range []string{"lobby", "games", "music"} {
		ann.entered(r)
	}
	assert.Equal(t, []string{"lobby", "games", "music"}, ann.Rooms())

	bob := s.dial(t, "bob", "games", "music")
	bob.entered("games")
	bob.entered("music")
	term := s.terminal(t) // in lobby
	for _, want := range []string{"games", "music"} {
		assert.Equal(t, want, ann.expect("join").Room)
	}
	assert.Equal(t, "lobby", ann.expect("join").Room)

	bob.send(client.Command{Type: "say", Room: "music", Text: "jazz"})
	bob.send(client.Command{Type: "say", Room: "games", Text: "chess"})
	_, err := term.Conn.Write([]byte("hello lobby\n"))
	require.NoError(t, err)
	got := map[string]string{}
	for len(got) < 3 {
		m := ann.expect("say")
		got[m.Room] = m.Text
	}
	assert.Equal(t, map[string]string{"music": "jazz", "games": "chess", "lobby": "hello lobby"}, got)
	assert.NotZero(t, ann.Last("games"))
	assert.NotZero(t, ann.Last("lobby"))

	// Said in a room the client is not in.
	bob.expect("say")
	bob.expect("say")
	bob.send(client.Command{Type: "say", Room: "lobby", Text: "x"})
	e := bob.expect("error")
	assert.Equal(t, client.Message{Type: "error", Command: "say", Text: "you are not in lobby"}, *e)

	// One rename, one departure, for two shared rooms.
	bob.send(client.Command{Type: "nick", Name: "rob"})
	n := ann.expect("nick")
	assert.ElementsMatch(t, []string{"games", "music"}, n.Rooms)
	bob.expect("nick")
	require.NoError(t, bob.Close())
	left := ann.expect("leave")
	assert.ElementsMatch(t, []string{"games", "music"}, left.Rooms)
	assert.Equal(t, "disconnect", left.Reason)
	term.Conn.Write([]byte("after\n"))
	assert.Equal(t, "after", ann.expect("say").Text, "nothing else came between")
}

// TestJSONErrors: a failed command answers an error, with the text
// protocol's words where it has them, and the connection stays.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	s := newHubSite(t, chatroom.WithMaxRooms(2), chatroom.WithBufferSize(32))
	ann := s.rawDial(t, "?name=ann")
	for range 4 { // welcome, join, members, synced
		rawRead(t, ann)
	}
	bob := s.dial(t, "bob")
	bob.entered("lobby")
	assert.Equal(t, "join", decode(t, rawRead(t, ann)).Type)

	tests := []struct {
		send    string
		command string
		want    string
	}{
		{`not json`, "", "invalid JSON"},
		{`["say"]`, "", "invalid JSON"},
		{`{"type":"dance"}`, "dance", `unknown command "dance"`},
		{`{"room":"lobby"}`, "", `unknown command ""`},
		{`{"type":"say","text":"hi"}`, "say", "no room given"},
		{`{"type":"say","room":"games","text":"hi"}`, "say", "you are not in games"},
		{`{"type":"say","room":"lobby","text":"` + strings.Repeat("x", 33) + `"}`, "say", "message too long (max 32 bytes)"},
		{`{"type":"me","room":"lobby","text":" "}`, "me", "usage: /me TEXT"},
		{`{"type":"msg","to":"bob"}`, "msg", "usage: /msg NAME TEXT"},
		{`{"type":"msg","to":"nobody","text":"hi"}`, "msg", "no such client nobody"},
		{`{"type":"nick","name":"no spaces"}`, "nick", "invalid nickname"},
		{`{"type":"nick","name":"BOB"}`, "nick", "nickname taken"},
		{`{"type":"join"}`, "join", "usage: /join ROOM"},
		{`{"type":"join","room":"bad room"}`, "join", "invalid room name"},
		{`{"type":"join","room":"LOBBY"}`, "join", "you are already in LOBBY"},
		{`{"type":"join","room":"two"}`, "", ""}, // the second room of two
		{`{"type":"join","room":"three"}`, "join", "too many rooms (max 2)"},
		{`{"type":"part","room":"three"}`, "part", "you are not in three"},
		{`{"type":"who","room":"three"}`, "who", "no such room three"},
		{`{"type":"topic","room":"three","text":"x"}`, "topic", "you are not in three"},
	}
	for _, tt := range tests {
		rawWrite(t, ann, websocket.MessageText, tt.send)
		if tt.want == "" {
			assert.Equal(t, "join", decode(t, rawRead(t, ann)).Type, tt.send)
			assert.Equal(t, "members", decode(t, rawRead(t, ann)).Type, tt.send)
			assert.Equal(t, "synced", decode(t, rawRead(t, ann)).Type, tt.send)
			continue
		}
		got := rawRead(t, ann)
		assert.Equal(t, client.Message{Type: "error", Command: tt.command, Text: tt.want}, *decode(t, got), "%s: %s", tt.send, got)
	}
	// Still connected: a line goes through.
	rawWrite(t, ann, websocket.MessageText, `{"type":"say","room":"lobby","text":"still here"}`)
	assert.Equal(t, "still here", bob.expect("say").Text)
}

// decode parses a message of the JSON protocol.
func decode(t *testing.T, s string) *client.Message {
	t.Helper()
	m := new(client.Message)
	require.NoError(t, json.Unmarshal([]byte(s), m), s)
	return m
}

// TestJSONRefusesBinaryAndOversizedMessages: each closes the connection
// with a close frame saying why; the others see the client leave.
func TestJSONRefusesBinaryAndOversizedMessages(t *testing.T) {
	t.Parallel()
	s := newHubSite(t, chatroom.WithBufferSize(64))
	ann := s.dial(t, "ann")
	ann.entered("lobby")
	limit := web.JSONFace{}.LineLimit(64)
	for _, tt := range []struct {
		name string
		typ  websocket.MessageType
		msg  string
		want websocket.StatusCode
	}{
		{"binary", websocket.MessageBinary, `{"type":"say","room":"lobby","text":"hi"}`, websocket.StatusUnsupportedData},
		{"oversized", websocket.MessageText, `{"type":"say","room":"lobby","text":"` + strings.Repeat("x", limit) + `"}`, websocket.StatusMessageTooBig},
	} {
		ws := s.rawDial(t, "?name="+tt.name)
		for range 4 { // welcome, join, members, synced
			rawRead(t, ws)
		}
		assert.Equal(t, tt.name, ann.expect("join").From)
		rawWrite(t, ws, tt.typ, tt.msg)
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		_, _, err := ws.Read(ctx)
		cancel()
		assert.Equal(t, tt.want, websocket.CloseStatus(err), "%s: closed with a close frame: %v", tt.name, err)
		left := ann.expect("leave")
		assert.Equal(t, tt.name, left.From)
	}
	// A message at the limit is taken.
	ws := s.rawDial(t, "?name=fits")
	for range 4 {
		rawRead(t, ws)
	}
	ann.expect("join")
	msg := `{"type":"say","room":"lobby","text":"` + strings.Repeat(`\u0041`, 64) + `"}`
	msg += strings.Repeat(" ", limit-len(msg))
	rawWrite(t, ws, websocket.MessageText, msg)
	assert.Equal(t, strings.Repeat("A", 64), ann.expect("say").Text)
}

// TestJSONNameKeptOrGiven: a name that is taken while its holder stays
// gives the address, and says so; a name whose holder is leaving (a page
// that reloads) is taken once it has gone.
func TestJSONNameKeptOrGiven(t *testing.T) {
	t.Parallel()
	s := newHubSite(t)
	ann := s.dial(t, "ann")
	ann.entered("lobby")

	other := s.dial(t, "")
	assert.True(t, strings.HasPrefix(other.Name(), "127.0.0.1:"), other.Name())
	other.entered("lobby")
	ann.expect("join")

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	dup, err := client.Dial(ctx, s.ws, client.Options{Name: "ANN"})
	require.NoError(t, err)
	t.Cleanup(func() { dup.Close() })
	d := &jsonClient{t, dup}
	w := d.expect("welcome")
	assert.True(t, strings.HasPrefix(w.Name, "127.0.0.1:"), w.Name)
	d.entered("lobby")
	e := d.expect("error")
	assert.Equal(t, client.Message{Type: "error", Command: "nick", Text: "nickname taken"}, *e)

	invalid, err := client.Dial(ctx, s.ws, client.Options{Name: "not valid"})
	require.NoError(t, err)
	t.Cleanup(func() { invalid.Close() })
	i := &jsonClient{t, invalid}
	i.expect("welcome")
	i.entered("lobby")
	assert.Equal(t, "invalid nickname", i.expect("error").Text)

	// ann reconnects at once: her last connection may not be gone yet,
	// and she gets her name all the same.
	require.NoError(t, ann.Reconnect(ctx))
	assert.Equal(t, "ann", ann.expect("welcome").Name)
	ann.entered("lobby")
}

// TestJSONRefused: a client the hub turns away as it connects is told why,
// in the text protocol's words, and its connection closes.
func TestJSONRefused(t *testing.T) {
	t.Parallel()
	s := newHubSite(t, chatroom.WithMaxClients(1))
	s.dial(t, "ann").entered("lobby")
	ws := s.rawDial(t, "?name=bob")
	assert.Equal(t, `{"type":"error","text":"room is full (1 clients)"}`, rawRead(t, ws))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, _, err := ws.Read(ctx)
	assert.Error(t, err, "closed")
	assert.NotErrorIs(t, err, context.DeadlineExceeded)
}
