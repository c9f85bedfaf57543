// Package client is a Go client of chatroom's JSON protocol (the WebSocket
// subprotocol chatroom.v1.json, docs/protocol.md), for programs and bots:
// connect, send commands, receive typed messages, and reconnect without
// losing or repeating a line.
//
// A Client remembers its name, the rooms it is in and, per room, the ID of
// the last line it saw; [Client.Reconnect] connects again under that name,
// into those rooms, asking for what was said since. The server then sends
// every line missed, in order and once, or, if more were said than its
// history keeps, a "gap" message and its last lines.
//
//	c, err := client.Dial(ctx, "ws://127.0.0.1:8080/ws", client.Options{Name: "bot"})
//	...
//	for {
//		m, err := c.Receive(ctx)
//		if err != nil {
//			err = c.Reconnect(ctx) // with a pause between tries
//			...
//		}
//		if m.Type == "say" && !m.Own {
//			c.Say(ctx, m.Room, "you said: "+m.Text)
//		}
//	}
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Subprotocol is the WebSocket subprotocol of the JSON protocol.
const Subprotocol = "chatroom.v1.json"

// Message is one message from the server. Which fields are set depends on
// Type; docs/protocol.md describes each type field by field.
type Message struct {
	Type    string     `json:"type"`              // "say", "me", "whisper", "join", "leave", "members", "nick", ...
	ID      uint64     `json:"id,omitempty"`      // say, me: the line's number, increasing per room
	Time    time.Time  `json:"time"`              // when it happened; zero on answers (members, list of rooms, errors)
	Room    string     `json:"room,omitempty"`    // the room it happened in
	Rooms   []string   `json:"rooms,omitempty"`   // leave (quit), nick: the rooms of the one who left or renamed
	From    string     `json:"from,omitempty"`    // who did it (nick: the new name)
	To      string     `json:"to,omitempty"`      // whisper: to whom
	Text    string     `json:"text,omitempty"`    // what was said, a reason's words, a topic, an error
	Own     bool       `json:"own,omitempty"`     // this client did it: its own line echoed, its own join, part or rename
	Notice  bool       `json:"notice,omitempty"`  // say, whisper: an IRC NOTICE, which asks for no automatic reply
	Old     string     `json:"old,omitempty"`     // nick: the previous name
	By      string     `json:"by,omitempty"`      // leave (kicked), topic, mode: who did it
	Reason  string     `json:"reason,omitempty"`  // leave, bye: why ("part", "kicked", "exit", "disconnect", ...)
	Quit    bool       `json:"quit,omitempty"`    // leave: it left the server, not just a room
	Last    uint64     `json:"last,omitempty"`    // own join: the ID of the room's last line as the client entered
	Count   int        `json:"count,omitempty"`   // own join, members: how many are in the room
	Topic   string     `json:"topic,omitempty"`   // own join: the room's topic
	Members []Member   `json:"members,omitempty"` // members: who is in the room, sorted by name ignoring case
	List    []RoomInfo `json:"list,omitempty"`    // rooms: the open rooms, sorted by name ignoring case
	Since   uint64     `json:"since,omitempty"`   // gap: the last ID the client saw
	Joined  int        `json:"joined,omitempty"`  // summary: arrivals counted
	Left    int        `json:"left,omitempty"`    // summary: departures counted
	Name    string     `json:"name,omitempty"`    // welcome: the client's name; mode: the member concerned
	Mode    string     `json:"mode,omitempty"`    // mode: "+o", "-t", ...
	Command string     `json:"command,omitempty"` // error: the type of the command that failed, if any
}

// A Member is one member of a room.
type Member struct {
	Name  string `json:"name"`
	Op    bool   `json:"op,omitempty"`    // an operator of the room
	Voice bool   `json:"voice,omitempty"` // IRC's voice (mode +v)
}

// RoomInfo describes an open room.
type RoomInfo struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Topic string `json:"topic,omitempty"`
}

// Command is one command to the server: Type and the fields that command
// takes (docs/protocol.md). The methods of Client send each.
type Command struct {
	Type  string `json:"type"`
	Room  string `json:"room,omitempty"`
	Text  string `json:"text,omitempty"`
	To    string `json:"to,omitempty"`
	Name  string `json:"name,omitempty"`
	Since uint64 `json:"since,omitempty"`
}

// Options configures a Client.
type Options struct {
	// Name is the name to ask for; "" leaves the client named by its
	// address. If it is taken or invalid the server gives the address
	// and says why in an "error" message.
	Name string
	// Rooms are the rooms to enter on connecting; none lands the client
	// in the server's default room.
	Rooms []string
	// HTTPHeader is sent with the WebSocket handshake (a cookie, an
	// Origin).
	HTTPHeader http.Header
	// HTTPClient makes the handshake; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Client is a connection to a chatroom server over the JSON protocol. Its
// methods may be called from several goroutines, but Receive and
// Reconnect from one at a time.
type Client struct {
	url  string
	opts Options

	mu      sync.Mutex
	ws      *websocket.Conn
	name    string
	rooms   []string          // the rooms it is in, in the order it entered them
	last    map[string]uint64 // per room key: where a recovery starts
	pending map[string]uint64 // per room key: the last line when it entered, until "synced" says its history is all here
}

// Dial connects to the server's WebSocket at url (ws:// or wss://, such as
// "ws://127.0.0.1:8080/ws") as opts says. The server's first messages
// follow on Receive: the welcome, then a join and the members of each room
// the client is in.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	c := &Client{url: url, opts: opts, name: opts.Name, rooms: slices.Clone(opts.Rooms),
		last: make(map[string]uint64), pending: make(map[string]uint64)}
	ws, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.ws = ws
	return c, nil
}

// dial opens a WebSocket, asking for the client's name and rooms, each
// with the last ID seen there.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	u, err := url.Parse(c.url)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	q := u.Query()
	c.mu.Lock()
	if c.name != "" {
		q.Set("name", c.name)
	}
	q.Del("room")
	for _, r := range c.rooms {
		if id := c.last[roomKey(r)]; id != 0 {
			r += ":" + strconv.FormatUint(id, 10)
		}
		q.Add("room", r)
	}
	c.mu.Unlock()
	u.RawQuery = q.Encode()
	ws, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		Subprotocols: []string{Subprotocol},
		HTTPHeader:   c.opts.HTTPHeader,
		HTTPClient:   c.opts.HTTPClient,
	})
	if err != nil {
		return nil, fmt.Errorf("client: dialing %s: %w", c.url, err)
	}
	if ws.Subprotocol() != Subprotocol {
		ws.CloseNow()
		return nil, fmt.Errorf("client: %s does not speak %s", c.url, Subprotocol)
	}
	ws.SetReadLimit(-1) // the server bounds what it sends
	return ws, nil
}

// conn returns the current WebSocket.
func (c *Client) conn() *websocket.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ws
}

// Receive returns the next message from the server, and keeps track of
// the client's name, rooms and the last line seen in each. It returns an
// error once the connection has ended: then Reconnect, or Close.
func (c *Client) Receive(ctx context.Context) (*Message, error) {
	ws := c.conn()
	typ, b, err := ws.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if typ != websocket.MessageText {
		return nil, errors.New("client: the server sent a binary message")
	}
	m := new(Message)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("client: a message that is not JSON: %w", err)
	}
	c.track(m)
	return m, nil
}

// track notes what m changes of the client's name, rooms and last lines.
func (c *Client) track(m *Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Type {
	case "welcome":
		c.name = m.Name
	case "say", "me":
		if k := roomKey(m.Room); m.ID > c.last[k] {
			c.last[k] = m.ID
		}
	case "gap":
		// The last lines follow, which may be numbered anew (a room
		// opened again).
		c.last[roomKey(m.Room)] = 0
	case "synced":
		// The histories are all here: a room where no line came since
		// its join recovers from its last line then.
		for k, id := range c.pending {
			c.last[k] = max(c.last[k], id)
		}
		clear(c.pending)
	case "join":
		if m.Own {
			// The history that follows is no newer than Last; until it
			// is all here, a recovery starts from the last line seen.
			c.pending[roomKey(m.Room)] = m.Last
			if !slices.ContainsFunc(c.rooms, func(r string) bool { return roomKey(r) == roomKey(m.Room) }) {
				c.rooms = append(c.rooms, m.Room)
			}
		}
	case "leave":
		if m.Room != "" && (m.Own || strings.EqualFold(m.From, c.name)) {
			c.rooms = slices.DeleteFunc(c.rooms, func(r string) bool { return roomKey(r) == roomKey(m.Room) })
		}
	case "nick":
		if m.Own {
			c.name = m.From
		}
	}
}

// roomKey is a room's name as rooms are told apart: ignoring ASCII case
// and a leading "#".
func roomKey(name string) string { return strings.ToLower(strings.TrimPrefix(name, "#")) }

// WaitFor receives messages until one for which match is true, and
// returns it; the others are dropped (and tracked, as Receive does).
func (c *Client) WaitFor(ctx context.Context, match func(*Message) bool) (*Message, error) {
	for {
		m, err := c.Receive(ctx)
		if err != nil {
			return nil, err
		}
		if match(m) {
			return m, nil
		}
	}
}

// Send sends cmd.
func (c *Client) Send(ctx context.Context, cmd Command) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := c.conn().Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// Say says text in room.
func (c *Client) Say(ctx context.Context, room, text string) error {
	return c.Send(ctx, Command{Type: "say", Room: room, Text: text})
}

// Me says that the client does text in room (/me).
func (c *Client) Me(ctx context.Context, room, text string) error {
	return c.Send(ctx, Command{Type: "me", Room: room, Text: text})
}

// Msg whispers text to the client called to.
func (c *Client) Msg(ctx context.Context, to, text string) error {
	return c.Send(ctx, Command{Type: "msg", To: to, Text: text})
}

// Nick asks for the name name.
func (c *Client) Nick(ctx context.Context, name string) error {
	return c.Send(ctx, Command{Type: "nick", Name: name})
}

// Join enters room; if the client was in it before (it left, or was put
// out), it asks for what was said there since.
func (c *Client) Join(ctx context.Context, room string) error {
	c.mu.Lock()
	since := c.last[roomKey(room)]
	c.mu.Unlock()
	return c.Send(ctx, Command{Type: "join", Room: room, Since: since})
}

// Part leaves room, with text as parting words ("" for none).
func (c *Client) Part(ctx context.Context, room, text string) error {
	return c.Send(ctx, Command{Type: "part", Room: room, Text: text})
}

// Who asks who is in room: a "members" message answers.
func (c *Client) Who(ctx context.Context, room string) error {
	return c.Send(ctx, Command{Type: "who", Room: room})
}

// ListRooms asks for the open rooms: a "rooms" message answers.
func (c *Client) ListRooms(ctx context.Context) error {
	return c.Send(ctx, Command{Type: "rooms"})
}

// Topic sets room's topic.
func (c *Client) Topic(ctx context.Context, room, text string) error {
	return c.Send(ctx, Command{Type: "topic", Room: room, Text: text})
}

// Quit leaves the server, with text as parting words: a "bye" message
// answers, and the server closes the connection.
func (c *Client) Quit(ctx context.Context, text string) error {
	return c.Send(ctx, Command{Type: "quit", Text: text})
}

// Name returns the client's name, as the server last told it.
func (c *Client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

// Rooms returns the rooms the client is in, as the server last told it,
// in the order it entered them.
func (c *Client) Rooms() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rooms)
}

// Last returns where a recovery of room starts: the ID of the last line
// the client saw there, or of the room's last line when it entered, once
// its history has come ("synced"), if that is newer; 0 for a room it was
// never in.
func (c *Client) Last(room string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last[roomKey(room)]
}

// Reconnect closes the connection, if it is still open, and connects
// again: under the client's name, into its rooms, each asking for the
// lines after the last one seen. The server sends, after its welcome, a
// join and the members of each room, then what was missed there: every
// line, in order, or a "gap" message and its last lines if more were said
// than its history keeps. A client in no room lands in the default room.
func (c *Client) Reconnect(ctx context.Context) error {
	c.conn().CloseNow()
	ws, err := c.dial(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.ws = ws
	clear(c.pending) // the histories the last connection did not finish are asked for again
	c.mu.Unlock()
	return nil
}

// Close closes the connection, with the WebSocket's closing handshake.
func (c *Client) Close() error {
	err := c.conn().Close(websocket.StatusNormalClosure, "")
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}
