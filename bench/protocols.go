package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/chatroom-go/chatroom"
)

// The protocols the load tool speaks: the room's own, over TCP and over
// the demo's WebSocket; the JSON protocol over that WebSocket; IRC; Redis
// pub/sub; NATS. Each is a few lines of framing and parsing, written here
// rather than taken from a client library (the WebSocket's framing is
// coder/websocket's, as the demo's): the tool must control every byte and
// allocate nothing per message, so that what it
// measures is the server, and a library's reconnects, pings and buffering
// would hide exactly the behaviour under test.

// defaultSubject is the Redis channel and NATS subject of the default
// room: every client's in the one-room workloads.
const defaultSubject = "room"

// roomName is the name of room i, where the workloads with many rooms put
// their clients: the room's name for /join, a Redis channel, a NATS
// subject.
func roomName(i int) string { return "room-" + strconv.Itoa(i) }

// A protocol connects clients to one kind of server.
type protocol interface {
	name() string
	// join connects a receiving client to room and returns once the
	// server will deliver that room's messages to it. Room "" is the
	// default room: the room's newcomers' (no /join), or the
	// defaultSubject.
	join(addr, room string) (client, error)
	// member connects a client as join does, which can also publish to
	// room on the same connection (Redis: RESP3, whose subscribers may
	// publish).
	member(addr, room string) (client, error)
	// publisher returns the connection that self sends on: self, where
	// the protocol lets one connection both send and receive, or a second
	// connection for Redis, whose subscribers cannot publish.
	publisher(addr string, self client) (client, error)
	// selfDelivery reports whether a sender receives its own messages:
	// Redis delivers to every subscriber; the room never echoes, and NATS
	// is told not to (echo off).
	selfDelivery() bool
}

// client is one connection. next returns the payload of the next message,
// valid until the following call, skipping anything else; publish buffers a
// message until flush. One goroutine may call next while another publishes.
type client interface {
	next() ([]byte, error)
	publish(payload []byte) error
	flush() error
	conn() net.Conn
}

// dial connects to addr with 32 KiB buffers each way, for the workloads
// that move bulk traffic through a few clients.
func dial(addr string) (net.Conn, *bufio.Reader, *bufio.Writer, error) {
	return dialSized(addr, 32<<10, 32<<10)
}

// memberBuffer is the size of each buffer of a member connection: the
// workload with many rooms has 10 000 clients that each hear a line or
// two a second, and the load tool's memory should not grow with a buffer
// size that only bulk traffic needs. A line longer than it still passes.
const memberBuffer = 4 << 10

// dialer opens the load tool's TCP connections. It sends no TCP
// keep-alive probes: the clients it stands in for (nc, a chat client)
// send none unless their user asks, and Go's default, a probe every 15 s
// from every connection, makes 10 000 idle clients that arrived together
// probe together: on loopback, whose queue of packets in flight holds
// net.core.netdev_max_backlog (1 000 here), most of such a burst is
// dropped, and a connection whose probes are all dropped (9, 150 s) is
// aborted by the kernel. Whether to probe is the server's to decide.
var dialer = net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}

func dialSized(addr string, rsize, wsize int) (net.Conn, *bufio.Reader, *bufio.Writer, error) {
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, bufio.NewReaderSize(c, rsize), bufio.NewWriterSize(c, wsize), nil
}

// ---- the room's own line protocol ----

// roomProto speaks the room's protocol; label names the build under test
// ("room", or "baseline" for an older build beside it).
type roomProto struct{ label string }

func (p roomProto) name() string     { return p.label }
func (roomProto) selfDelivery() bool { return false }

type roomConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func (rc *roomConn) conn() net.Conn { return rc.c }

func (roomProto) join(addr, room string) (client, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	return enterRoom(&roomConn{c, r, w}, room)
}

func (roomProto) member(addr, room string) (client, error) {
	c, r, w, err := dialSized(addr, memberBuffer, memberBuffer)
	if err != nil {
		return nil, err
	}
	return enterRoom(&roomConn{c, r, w}, room)
}

// handshakeLimit bounds how long a client waits for the server to let it
// in: its welcome, and its room's.
const handshakeLimit = 10 * time.Second

// enterRoom reads rc's welcome, then, unless room is "", says "/join
// ROOM" and waits for the hub's answer, "* you are in ROOM, <N> online"
// (SPEC, Rooms). Lines of the room it leaves (notices and chat, which start
// with a timestamp) are skipped; any other line from the server ("* error:
// too many rooms (max <n>)", "* you are already in ROOM", an old build's
// "* error: unknown command /join") is a refusal. It closes the connection
// on any error.
func enterRoom(rc *roomConn, room string) (*roomConn, error) {
	fail := func(err error) (*roomConn, error) {
		rc.c.Close()
		return nil, err
	}
	rc.c.SetDeadline(time.Now().Add(handshakeLimit))
	defer rc.c.SetDeadline(time.Time{})
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return fail(fmt.Errorf("room: no welcome: %w", err))
	}
	if !bytes.HasPrefix(line, []byte("* welcome ")) {
		return fail(fmt.Errorf("room: refused: %q", line))
	}
	if room == "" {
		return rc, nil
	}
	rc.w.WriteString("/join " + room + "\n")
	if err := rc.w.Flush(); err != nil {
		return fail(fmt.Errorf("room: /join %s: %w", room, err))
	}
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return fail(fmt.Errorf("room: /join %s: no answer: %w", room, err))
		}
		if !bytes.HasPrefix(line, []byte("* ")) {
			continue
		}
		if !joinedRoom(line, room) {
			return fail(fmt.Errorf("room: /join %s: %q", room, trimCRLF(line)))
		}
		return rc, nil
	}
}

// joinedRoom reports whether line is exactly the hub's answer to "/join
// room": "* you are in ROOM, <N> online", N a count of at least 1.
func joinedRoom(line []byte, room string) bool {
	rest, ok := bytes.CutPrefix(line, []byte("* you are in "+room+", "))
	if !ok {
		return false
	}
	count, ok := bytes.CutSuffix(rest, []byte(" online\n"))
	if !ok {
		return false
	}
	n, err := strconv.Atoi(string(count))
	return err == nil && n >= 1 && count[0] != '+'
}

func (roomProto) publisher(_ string, self client) (client, error) { return self, nil }

var say = []byte(" say: ")

// next returns the text of the next chat line, skipping notices.
func (rc *roomConn) next() ([]byte, error) {
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if i := bytes.Index(line, say); i >= 0 {
			return line[i+len(say) : len(line)-1], nil
		}
	}
}

func (rc *roomConn) publish(payload []byte) error {
	rc.w.Write(payload)
	return rc.w.WriteByte('\n')
}

func (rc *roomConn) flush() error { return rc.w.Flush() }

// ---- the demo's WebSocket, as a browser connects ----

// wsConn is a WebSocket to the demo's /ws as the load tool's clients use
// it: a net.Conn whose reads give each message's bytes as lines (a "\n"
// after a message that does not end in one: the JSON protocol sends an
// object per message, the text protocol whole lines), and each of whose
// writes is one text message (websocket.NetConn's).
type wsConn struct {
	net.Conn // websocket.NetConn: writes, Close, the write deadline
	ws       *websocket.Conn
	timer    *time.Timer // the read deadline: it closes the connection
	expired  atomic.Bool // the read deadline has passed
	msg      io.Reader   // the message being read, or nil
	last     byte        // the last byte read of msg
	eol      bool        // msg is read and ended without "\n": one is owed
}

// dialWS opens a WebSocket to the demo's /ws at addr, with the query
// (room=..., or ""), asking for subprotocol (none: the text protocol).
func dialWS(addr, query, subprotocol string) (*wsConn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var opts websocket.DialOptions
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	url := "ws://" + addr + "/ws"
	if query != "" {
		url += "?" + query
	}
	ws, _, err := websocket.Dial(ctx, url, &opts)
	if err != nil {
		return nil, err
	}
	if ws.Subprotocol() != subprotocol {
		ws.CloseNow()
		return nil, fmt.Errorf("websocket: the server speaks %q, not %q", ws.Subprotocol(), subprotocol)
	}
	w := &wsConn{Conn: websocket.NetConn(context.Background(), ws, websocket.MessageText), ws: ws}
	// Reads wait with a context that never ends, which costs the
	// WebSocket no timer per message; the deadline closes the connection.
	w.timer = time.AfterFunc(time.Hour, func() {
		w.expired.Store(true)
		ws.CloseNow()
	})
	w.timer.Stop()
	return w, nil
}

func (w *wsConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if w.eol {
			w.eol = false
			p[0] = '\n'
			return 1, nil
		}
		if w.msg == nil {
			typ, r, err := w.ws.Reader(context.Background())
			switch {
			case w.expired.Load():
				return 0, os.ErrDeadlineExceeded
			case websocket.CloseStatus(err) == websocket.StatusNormalClosure || websocket.CloseStatus(err) == websocket.StatusGoingAway:
				return 0, io.EOF
			case err != nil:
				return 0, err
			case typ != websocket.MessageText:
				w.ws.Close(websocket.StatusUnsupportedData, "text messages only")
				return 0, errors.New("websocket: a binary message")
			}
			w.msg, w.last = r, '\n'
		}
		n, err := w.msg.Read(p)
		if n > 0 {
			w.last = p[n-1]
		}
		if err == io.EOF {
			w.msg, w.eol, err = nil, w.last != '\n', nil
		}
		if err != nil && w.expired.Load() {
			return n, os.ErrDeadlineExceeded
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// SetReadDeadline closes the connection when t passes; reads then fail
// with os.ErrDeadlineExceeded. A deadline cannot be moved once it has
// passed.
func (w *wsConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		w.timer.Stop()
		return nil
	}
	w.timer.Reset(max(time.Until(t), 1))
	return nil
}

func (w *wsConn) SetDeadline(t time.Time) error {
	w.SetReadDeadline(t)
	return w.Conn.SetWriteDeadline(t)
}

func (w *wsConn) Close() error {
	w.timer.Stop()
	return w.Conn.Close()
}

// roomWSProto speaks the room's protocol over the demo's WebSocket at /ws:
// the same lines, in text messages, one message per flush.
type roomWSProto struct{}

func (roomWSProto) name() string       { return "room-ws" }
func (roomWSProto) selfDelivery() bool { return false }

func (roomWSProto) join(addr, room string) (client, error) {
	return roomWSProto{}.dial(addr, room, 32<<10)
}

func (roomWSProto) member(addr, room string) (client, error) {
	return roomWSProto{}.dial(addr, room, memberBuffer)
}

func (roomWSProto) dial(addr, room string, size int) (client, error) {
	c, err := dialWS(addr, "", "")
	if err != nil {
		return nil, err
	}
	rc, err := enterRoom(&roomConn{c, bufio.NewReaderSize(c, size), bufio.NewWriterSize(c, size)}, room)
	if err != nil {
		return nil, fmt.Errorf("room-ws: %w", err)
	}
	return rc, nil
}

func (roomWSProto) publisher(_ string, self client) (client, error) { return self, nil }

// ---- the JSON protocol over the demo's WebSocket ----

// jsonProto speaks the JSON protocol (docs/protocol.md), subprotocol
// chatroom.v1.json, over the demo's WebSocket at /ws: a command per
// message, a say per publish (flush has nothing left to send). The hub
// echoes a client's own lines ("own":true): they count as its deliveries,
// as Redis's to a subscriber that publishes.
type jsonProto struct{}

// jsonSubprotocol is the JSON protocol's WebSocket subprotocol
// (web.Subprotocol, a module the load tool does not depend on).
const jsonSubprotocol = "chatroom.v1.json"

func (jsonProto) name() string       { return "room-json" }
func (jsonProto) selfDelivery() bool { return true }

type jsonConn struct {
	c    net.Conn
	r    *bufio.Reader
	head []byte // the say command up to its text
	cmd  []byte // the command being written; the publisher's alone
	text []byte // an unescaped text; the reader's alone
}

func (jc *jsonConn) conn() net.Conn { return jc.c }

func (jsonProto) join(addr, room string) (client, error) {
	return jsonProto{}.dial(addr, room, 32<<10)
}

func (jsonProto) member(addr, room string) (client, error) {
	return jsonProto{}.dial(addr, room, memberBuffer)
}

func (jsonProto) publisher(_ string, self client) (client, error) { return self, nil }

// dial connects a client to room as dialJSON does, with nothing to
// recover.
func (jsonProto) dial(addr, room string, size int) (client, error) {
	return dialJSON(addr, room, 0, size, nil)
}

// dialJSON connects a client that enters room as it connects (room=ROOM in
// the URL; with since, room=ROOM:SINCE, recovering what was said there
// after the line numbered since), or lands in the default room for room
// "", and returns once its histories are sent ("synced"): what follows is
// live. Each say before that (the history) goes to onSay, if not nil. A
// refusal, a gap (more was said since than the history keeps), or an
// error from onSay before synced fails it.
func dialJSON(addr, room string, since uint64, size int, onSay func(id uint64, text []byte) error) (*jsonConn, error) {
	query := ""
	if room != "" {
		query = "room=" + room
		if since > 0 {
			query += ":" + strconv.FormatUint(since, 10)
		}
	}
	c, err := dialWS(addr, query, jsonSubprotocol)
	if err != nil {
		return nil, fmt.Errorf("room-json: %w", err)
	}
	fail := func(err error) (*jsonConn, error) {
		c.Close()
		return nil, fmt.Errorf("room-json: %w", err)
	}
	jc := &jsonConn{c: c, r: bufio.NewReaderSize(c, size)}
	c.SetDeadline(time.Now().Add(handshakeLimit))
	defer c.SetDeadline(time.Time{})
	// A room's name is letters, digits and _.- (the hub's rule): nothing
	// to escape.
	jc.head = []byte(`{"type":"say","room":"` + cmp.Or(room, chatroom.DefaultRoomName) + `","text":"`)
	for {
		line, err := jc.r.ReadSlice('\n')
		if err != nil {
			return fail(fmt.Errorf("no synced: %w", err))
		}
		switch {
		case bytes.HasPrefix(line, []byte(`{"type":"synced"`)):
			return jc, nil
		case bytes.HasPrefix(line, []byte(`{"type":"error"`)), bytes.HasPrefix(line, []byte(`{"type":"bye"`)),
			bytes.HasPrefix(line, []byte(`{"type":"gap"`)):
			return fail(fmt.Errorf("refused: %s", trimCRLF(line)))
		case onSay != nil:
			id, text, ok, err := jc.say(line)
			if err == nil && ok {
				err = onSay(id, text)
			}
			if err != nil {
				return fail(err)
			}
		}
	}
}

var (
	jsonSay  = []byte(`{"type":"say","id":`)
	jsonText = []byte(`,"text":"`)
)

// next returns the text of the next say, skipping every other message.
func (jc *jsonConn) next() ([]byte, error) {
	for {
		line, err := jc.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if _, text, ok, err := jc.say(line); ok || err != nil {
			return text, err
		}
	}
}

// say returns the ID and the text of line if it is a say (ok), valid until
// the next read. The fields come in the documented order, and every value
// before text is a number or a string whose quotes are escaped, so the
// first ,"text":" is the text's.
func (jc *jsonConn) say(line []byte) (id uint64, text []byte, ok bool, err error) {
	rest, ok := bytes.CutPrefix(line, jsonSay)
	if !ok {
		return 0, nil, false, nil
	}
	digits, _, _ := bytes.Cut(rest, []byte(","))
	if id, ok = parseID(digits); !ok {
		return 0, nil, true, fmt.Errorf("room-json: a say's id: %q", digits)
	}
	i := bytes.Index(rest, jsonText)
	if i < 0 {
		return 0, nil, true, fmt.Errorf("room-json: a say without text: %s", trimCRLF(line))
	}
	text, err = jc.unquote(rest[i+len(jsonText)-1:])
	return id, text, true, err
}

// parseID reads a line's ID, decimal digits, without allocating.
func parseID(digits []byte) (uint64, bool) {
	if len(digits) == 0 || len(digits) > 19 {
		return 0, false
	}
	var id uint64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
		id = id*10 + uint64(d-'0')
	}
	return id, true
}

// unquote returns the JSON string at the start of b, its opening quote
// included: a slice of b if nothing in it is escaped.
func (jc *jsonConn) unquote(b []byte) ([]byte, error) {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '"':
			return b[1:i], nil
		case '\\':
			var s string
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
				return nil, fmt.Errorf("room-json: a text: %w", err)
			}
			jc.text = append(jc.text[:0], s...)
			return jc.text, nil
		}
	}
	return nil, fmt.Errorf("room-json: an unterminated string: %s", trimCRLF(b))
}

// publish sends a say of payload at once, a message of its own.
func (jc *jsonConn) publish(payload []byte) error {
	cmd := append(jc.cmd[:0], jc.head...)
	if i := slices.IndexFunc(payload, func(c byte) bool { return c < ' ' || c == '"' || c == '\\' }); i < 0 {
		cmd = append(cmd, payload...)
		cmd = append(cmd, `"}`...)
	} else {
		quoted, err := json.Marshal(string(payload))
		if err != nil {
			return err
		}
		cmd = append(cmd[:len(cmd)-1], quoted...)
		cmd = append(cmd, '}')
	}
	jc.cmd = cmd
	_, err := jc.c.Write(cmd)
	return err
}

func (jc *jsonConn) flush() error { return nil }

// ---- IRC ----

// ircProto speaks IRC to the demo's -irc listener: NICK and USER, JOIN of
// the room's channel, PRIVMSG to it. The server sends no PING of its own,
// and no echo of a client's own PRIVMSG (no echo-message asked for).
type ircProto struct{}

func (ircProto) name() string       { return "room-irc" }
func (ircProto) selfDelivery() bool { return false }

type ircConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	head []byte // "PRIVMSG #ROOM :"
}

func (ic *ircConn) conn() net.Conn { return ic.c }

// ircNicks numbers the nicks of the load tool's IRC clients: a nick is
// unique in the hub.
var ircNicks atomic.Int64

func (ircProto) join(addr, room string) (client, error) {
	return ircProto{}.dial(addr, room, 32<<10)
}

func (ircProto) member(addr, room string) (client, error) {
	return ircProto{}.dial(addr, room, memberBuffer)
}

func (ircProto) publisher(_ string, self client) (client, error) { return self, nil }

// dial registers a client and joins it to room's channel (the default
// room's for ""), and returns once the server has sent the channel's
// names (366), which come after the JOIN and the history. A refusal
// (ircRefusal) before that fails it.
func (ircProto) dial(addr, room string, size int) (*ircConn, error) {
	c, r, w, err := dialSized(addr, size, size)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ircConn, error) {
		c.Close()
		return nil, fmt.Errorf("room-irc: %w", err)
	}
	c.SetDeadline(time.Now().Add(handshakeLimit))
	defer c.SetDeadline(time.Time{})
	nick := "bench" + strconv.FormatInt(ircNicks.Add(1), 10)
	channel := "#" + cmp.Or(room, chatroom.DefaultRoomName)
	fmt.Fprintf(w, "NICK %s\r\nUSER %s 0 * :chatbench\r\nJOIN %s\r\n", nick, nick, channel)
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	endOfNames := []byte(" 366 " + nick + " " + channel + " ")
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return fail(fmt.Errorf("JOIN %s: no names: %w", channel, err))
		}
		if bytes.Contains(line, endOfNames) {
			return &ircConn{c: c, r: r, w: w, head: []byte("PRIVMSG " + channel + " :")}, nil
		}
		if cmd, _, _ := ircCommand(line); ircRefusal(cmd) {
			return fail(fmt.Errorf("refused: %s", trimCRLF(line)))
		}
	}
}

// ircRefusal reports whether a line whose command is cmd refuses the
// client: ERROR, or an error numeric (4xx, 5xx) other than 422, which
// says only that there is no MOTD.
func ircRefusal(cmd []byte) bool {
	if string(cmd) == "ERROR" {
		return true
	}
	return len(cmd) == 3 && (cmd[0] == '4' || cmd[0] == '5') && string(cmd) != "422"
}

var privmsg = []byte("PRIVMSG")

// ircCommand splits a line from the server, "[@tags] [:source] COMMAND
// params", into its command and what follows it; ok is false for a line
// with no command.
func ircCommand(line []byte) (cmd, params []byte, ok bool) {
	line = trimCRLF(line)
	for len(line) > 0 && (line[0] == '@' || line[0] == ':') {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return nil, nil, false
		}
		line = line[i+1:]
	}
	cmd, params, _ = bytes.Cut(line, []byte(" "))
	return cmd, params, len(cmd) > 0
}

// privmsgText returns the text of line if it is a PRIVMSG, or nil.
func privmsgText(line []byte) []byte {
	cmd, params, ok := ircCommand(line)
	if !ok || !bytes.Equal(cmd, privmsg) {
		return nil
	}
	// "<target> :<text>": the text is the last parameter.
	_, text, found := bytes.Cut(params, []byte(" :"))
	if !found {
		_, text, _ = bytes.Cut(params, []byte(" "))
	}
	return text
}

// next returns the text of the next PRIVMSG, skipping everything else.
func (ic *ircConn) next() ([]byte, error) {
	for {
		line, err := ic.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if text := privmsgText(line); text != nil {
			return text, nil
		}
	}
}

func (ic *ircConn) publish(payload []byte) error {
	ic.w.Write(ic.head)
	ic.w.Write(payload)
	_, err := ic.w.WriteString("\r\n")
	return err
}

func (ic *ircConn) flush() error { return ic.w.Flush() }

// ---- Redis pub/sub (RESP) ----

type redisProto struct{}

func (redisProto) name() string       { return "redis" }
func (redisProto) selfDelivery() bool { return true }

type redisConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	head []byte   // the fixed start of a PUBLISH command
	buf  []byte   // the message being read; the reader's alone
	num  [20]byte // scratch for a length being written; the publisher's alone
}

func (rc *redisConn) conn() net.Conn { return rc.c }

// join subscribes over RESP2, whose subscribers cannot publish: the
// one-room workloads publish through a second connection.
func (redisProto) join(addr, room string) (client, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	return subscribe(&redisConn{c: c, r: r, w: w}, channel(room), false)
}

// member says HELLO 3 first: over RESP3 a subscribed connection may
// publish, its messages arriving as pushes beside the replies.
func (redisProto) member(addr, room string) (client, error) {
	c, r, w, err := dialSized(addr, memberBuffer, memberBuffer)
	if err != nil {
		return nil, err
	}
	rc := &redisConn{c: c, r: r, w: w, head: publishHead(channel(room))}
	return subscribe(rc, channel(room), true)
}

// channel is the Redis channel or NATS subject of room.
func channel(room string) string {
	if room == "" {
		return defaultSubject
	}
	return room
}

func publishHead(ch string) []byte {
	return fmt.Appendf(nil, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n", len(ch), ch)
}

// subscribe subscribes rc to ch, after switching it to RESP3 if resp3, and
// returns once Redis has confirmed; it closes the connection on any error.
func subscribe(rc *redisConn, ch string, resp3 bool) (*redisConn, error) {
	fail := func(err error) (*redisConn, error) {
		rc.c.Close()
		return nil, fmt.Errorf("redis: subscribe %s: %w", ch, err)
	}
	if resp3 {
		rc.w.WriteString("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
	}
	fmt.Fprintf(rc.w, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", len(ch), ch)
	if err := rc.w.Flush(); err != nil {
		return fail(err)
	}
	if resp3 {
		// HELLO's answer: a map of the server's properties.
		if err := rc.skipValue(); err != nil {
			return fail(fmt.Errorf("HELLO 3: %w", err))
		}
	}
	// The confirmation: *3 (>3 over RESP3), "subscribe", the channel, :1.
	kind, err := rc.readArray()
	if err != nil {
		return fail(err)
	}
	if kind != "subscribe" || string(rc.buf) != ch {
		return fail(fmt.Errorf("unexpected %q %q", kind, rc.buf))
	}
	return rc, nil
}

func (redisProto) publisher(addr string, _ client) (client, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	rc := &redisConn{c: c, r: r, w: w, head: publishHead(defaultSubject)}
	go rc.drainReplies()
	return rc, nil
}

// drainReplies reads the ":<receivers>" reply to each PUBLISH.
func (rc *redisConn) drainReplies() {
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) > 0 && line[0] == '-' {
			panic(fmt.Sprintf("redis: PUBLISH failed: %s", line))
		}
	}
}

func (rc *redisConn) publish(payload []byte) error {
	rc.w.Write(rc.head)
	rc.w.WriteByte('$')
	rc.w.Write(strconv.AppendInt(rc.num[:0], int64(len(payload)), 10))
	rc.w.WriteString("\r\n")
	rc.w.Write(payload)
	_, err := rc.w.WriteString("\r\n")
	return err
}

func (rc *redisConn) flush() error { return rc.w.Flush() }

// next returns the payload of the next "message" push, skipping the
// replies to a member's own PUBLISHes.
func (rc *redisConn) next() ([]byte, error) {
	for {
		kind, err := rc.readArray()
		if err != nil {
			return nil, err
		}
		if kind == "message" {
			return rc.buf, nil
		}
	}
}

// readArray reads one pushed array (RESP2's *, RESP3's >) and returns its
// first element; for a message, rc.buf holds the payload after it, and
// for a subscription's confirmation, the channel. An integer (a member's
// PUBLISH reply) is read as an empty kind.
func (rc *redisConn) readArray() (string, error) {
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	if len(line) > 1 && line[0] == ':' {
		return "", nil
	}
	if len(line) < 3 || (line[0] != '*' && line[0] != '>') {
		return "", fmt.Errorf("redis: unexpected %q", line)
	}
	n, err := strconv.Atoi(string(trimCRLF(line[1:])))
	if err != nil {
		return "", err
	}
	var kind string
	for i := range n {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		switch line[0] {
		case ':':
			continue
		case '$':
			size, err := strconv.Atoi(string(trimCRLF(line[1:])))
			if err != nil {
				return "", err
			}
			if cap(rc.buf) < size+2 {
				rc.buf = make([]byte, size+2)
			}
			rc.buf = rc.buf[:size+2]
			if _, err := io.ReadFull(rc.r, rc.buf); err != nil {
				return "", err
			}
			rc.buf = rc.buf[:size]
			if i == 0 {
				if bytes.Equal(rc.buf, []byte("message")) {
					kind = "message" // a constant: no allocation per message
				} else {
					kind = string(rc.buf)
				}
			}
		default:
			return "", fmt.Errorf("redis: unexpected %q", line)
		}
	}
	return kind, nil
}

// skipValue reads one RESP2 or RESP3 value of any type and drops it; an
// error reply is returned as an error.
func (rc *redisConn) skipValue() error {
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return err
	}
	if len(line) < 3 {
		return fmt.Errorf("redis: unexpected %q", line)
	}
	kind := line[0]
	switch kind {
	case '+', ':', ',', '#', '(', '_':
		return nil
	case '-':
		return fmt.Errorf("redis: %s", trimCRLF(line[1:]))
	}
	n, err := strconv.Atoi(string(trimCRLF(line[1:])))
	if err != nil {
		return fmt.Errorf("redis: unexpected %q", line)
	}
	switch kind {
	case '$', '=', '!': // bulk string, verbatim string, bulk error
		if n < 0 {
			return nil
		}
		if _, err := rc.r.Discard(n + 2); err != nil {
			return err
		}
		if kind == '!' {
			return errors.New("redis: an error reply")
		}
		return nil
	case '*', '~', '>': // array, set, push
	case '%', '|': // map, attribute: a key and a value each
		n *= 2
	default:
		return fmt.Errorf("redis: unexpected %q", line)
	}
	for range max(n, 0) {
		if err := rc.skipValue(); err != nil {
			return err
		}
	}
	if kind == '|' { // attributes come before the value they describe
		return rc.skipValue()
	}
	return nil
}

// ---- NATS ----

type natsProto struct{}

func (natsProto) name() string       { return "nats" }
func (natsProto) selfDelivery() bool { return false }

type natsConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	buf  []byte   // the message being read; the reader's alone
	num  [20]byte // scratch for a length being written; the publisher's alone
	head []byte
}

func (nc *natsConn) conn() net.Conn { return nc.c }

// connect says CONNECT (echo off, so a publisher never hears itself),
// subscribes to subject if sub, and waits for the PONG that proves the
// server has processed both. The client publishes to subject.
func (natsProto) connect(addr, subject string, sub bool, size int) (*natsConn, error) {
	c, r, w, err := dialSized(addr, size, size)
	if err != nil {
		return nil, err
	}
	nc := &natsConn{c: c, r: r, w: w, head: []byte("PUB " + subject + " ")}
	if line, err := r.ReadSlice('\n'); err != nil || !bytes.HasPrefix(line, []byte("INFO ")) {
		c.Close()
		return nil, fmt.Errorf("nats: no INFO: %q %v", line, err)
	}
	w.WriteString(`CONNECT {"verbose":false,"pedantic":false,"echo":false,"protocol":1}` + "\r\n")
	if sub {
		w.WriteString("SUB " + subject + " 1\r\n")
	}
	w.WriteString("PING\r\n")
	if err := w.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if bytes.HasPrefix(line, []byte("PONG")) {
			return nc, nil
		}
		if bytes.HasPrefix(line, []byte("-ERR")) {
			c.Close()
			return nil, fmt.Errorf("nats: %s", trimCRLF(line))
		}
	}
}

func (p natsProto) join(addr, room string) (client, error) {
	return p.connect(addr, channel(room), true, 32<<10)
}

func (p natsProto) member(addr, room string) (client, error) {
	return p.connect(addr, channel(room), true, memberBuffer)
}

func (natsProto) publisher(_ string, self client) (client, error) { return self, nil }

func (nc *natsConn) publish(payload []byte) error {
	nc.w.Write(nc.head)
	nc.w.Write(strconv.AppendInt(nc.num[:0], int64(len(payload)), 10))
	nc.w.WriteString("\r\n")
	nc.w.Write(payload)
	_, err := nc.w.WriteString("\r\n")
	return err
}

func (nc *natsConn) flush() error { return nc.w.Flush() }

// next returns the payload of the next MSG, answering PINGs.
func (nc *natsConn) next() ([]byte, error) {
	for {
		line, err := nc.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("MSG ")):
			// MSG <subject> <sid> [reply-to] <size>
			line = trimCRLF(line)
			size, err := strconv.Atoi(string(line[bytes.LastIndexByte(line, ' ')+1:]))
			if err != nil {
				return nil, err
			}
			if cap(nc.buf) < size+2 {
				nc.buf = make([]byte, size+2)
			}
			nc.buf = nc.buf[:size+2]
			if _, err := io.ReadFull(nc.r, nc.buf); err != nil {
				return nil, err
			}
			return nc.buf[:size], nil
		case bytes.HasPrefix(line, []byte("PING")):
			// Written straight to the socket, beside the publisher's
			// buffered writes: a PONG could split a PUB in two. The server
			// pings every two minutes, longer than any run here.
			nc.c.Write([]byte("PONG\r\n"))
		case bytes.HasPrefix(line, []byte("-ERR")):
			return nil, errors.New("nats: " + string(trimCRLF(line)))
		}
	}
}

func trimCRLF(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n")
}

// ---- framing for the load tool's own poller (the rooms workload) ----

// A rawClient is a member connection over plain TCP whose framing the load
// tool also does itself, both ways, so that its poller can read and write
// the socket directly (poll_linux.go).
type rawClient interface {
	client
	// frame looks at the start of buf, bytes from the server, and
	// returns how many bytes its first whole frame takes (0: buf holds no
	// whole frame yet), the frame's payload if it is a message (nil for
	// anything else), and what the client must answer (a NATS PONG), or
	// an error for bytes that are not the protocol's.
	frame(buf []byte) (payload []byte, n int, reply []byte, err error)
	// appendPublish appends the bytes that publish payload to the
	// client's room.
	appendPublish(dst, payload []byte) []byte
	// buffered returns what the client's reader has read from the socket
	// and not yet handed out.
	buffered() []byte
}

// A rawProtocol's member clients are rawClients.
type rawProtocol interface{ rawMembers() }

func (roomProto) rawMembers()  {}
func (ircProto) rawMembers()   {}
func (redisProto) rawMembers() {}
func (natsProto) rawMembers()  {}

func peekAll(r *bufio.Reader) []byte {
	b, _ := r.Peek(r.Buffered())
	return bytes.Clone(b)
}

func (rc *roomConn) buffered() []byte { return peekAll(rc.r) }

func (rc *roomConn) appendPublish(dst, payload []byte) []byte {
	return append(append(dst, payload...), '\n')
}

// frame: a line; the text of a chat line is the payload.
func (rc *roomConn) frame(buf []byte) ([]byte, int, []byte, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return nil, 0, nil, nil
	}
	if j := bytes.Index(buf[:i], say); j >= 0 {
		return buf[j+len(say) : i], i + 1, nil, nil
	}
	return nil, i + 1, nil, nil
}

func (ic *ircConn) buffered() []byte { return peekAll(ic.r) }

func (ic *ircConn) appendPublish(dst, payload []byte) []byte {
	dst = append(dst, ic.head...)
	dst = append(dst, payload...)
	return append(dst, "\r\n"...)
}

// frame: a line; the text of a PRIVMSG is the payload.
func (ic *ircConn) frame(buf []byte) ([]byte, int, []byte, error) {
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return nil, 0, nil, nil
	}
	return privmsgText(buf[:i+1]), i + 1, nil, nil
}

func (rc *redisConn) buffered() []byte { return peekAll(rc.r) }

func (rc *redisConn) appendPublish(dst, payload []byte) []byte {
	dst = append(dst, rc.head...)
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, payload...)
	return append(dst, "\r\n"...)
}

// respLine returns the line of buf that starts at off, without its CRLF,
// and where the next one starts; ok is false if it is not all there.
func respLine(buf []byte, off int) (line []byte, next int, ok bool) {
	i := bytes.Index(buf[off:], []byte("\r\n"))
	if i < 0 {
		return nil, 0, false
	}
	return buf[off : off+i], off + i + 2, true
}

// frame: a push (or RESP2 array) of integers and bulk strings, whose
// third element is the payload of a "message"; an integer (a PUBLISH
// reply) or a simple string alone.
func (rc *redisConn) frame(buf []byte) ([]byte, int, []byte, error) {
	head, off, ok := respLine(buf, 0)
	if !ok {
		return nil, 0, nil, nil
	}
	if len(head) == 0 {
		return nil, 0, nil, fmt.Errorf("redis: empty line")
	}
	switch head[0] {
	case ':', '+':
		return nil, off, nil, nil
	case '-':
		return nil, 0, nil, fmt.Errorf("redis: %s", head[1:])
	case '*', '>':
	default:
		return nil, 0, nil, fmt.Errorf("redis: unexpected %q", head)
	}
	count, err := strconv.Atoi(string(head[1:]))
	if err != nil {
		return nil, 0, nil, fmt.Errorf("redis: unexpected %q", head)
	}
	var message bool
	var last []byte
	for i := range count {
		line, next, ok := respLine(buf, off)
		if !ok {
			return nil, 0, nil, nil
		}
		if len(line) == 0 {
			return nil, 0, nil, fmt.Errorf("redis: empty line")
		}
		off = next
		switch line[0] {
		case ':':
			continue
		case '$':
			size, err := strconv.Atoi(string(line[1:]))
			if err != nil || size < 0 {
				return nil, 0, nil, fmt.Errorf("redis: unexpected %q", line)
			}
			if len(buf) < off+size+2 {
				return nil, 0, nil, nil
			}
			last = buf[off : off+size]
			off += size + 2
			if i == 0 {
				message = string(last) == "message"
			}
		default:
			return nil, 0, nil, fmt.Errorf("redis: unexpected %q", line)
		}
	}
	if message && count == 3 {
		return last, off, nil, nil
	}
	return nil, off, nil, nil
}

func (nc *natsConn) buffered() []byte { return peekAll(nc.r) }

func (nc *natsConn) appendPublish(dst, payload []byte) []byte {
	dst = append(dst, nc.head...)
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, "\r\n"...)
	dst = append(dst, payload...)
	return append(dst, "\r\n"...)
}

var pong = []byte("PONG\r\n")

// frame: a MSG and its payload; a PING, answered; anything else (+OK,
// PONG, INFO) a line to skip; -ERR an error.
func (nc *natsConn) frame(buf []byte) ([]byte, int, []byte, error) {
	line, off, ok := respLine(buf, 0)
	if !ok {
		return nil, 0, nil, nil
	}
	switch {
	case bytes.HasPrefix(line, []byte("MSG ")):
		// MSG <subject> <sid> [reply-to] <size>
		size, err := strconv.Atoi(string(line[bytes.LastIndexByte(line, ' ')+1:]))
		if err != nil || size < 0 {
			return nil, 0, nil, fmt.Errorf("nats: unexpected %q", line)
		}
		if len(buf) < off+size+2 {
			return nil, 0, nil, nil
		}
		return buf[off : off+size], off + size + 2, nil, nil
	case bytes.HasPrefix(line, []byte("PING")):
		return nil, off, pong, nil
	case bytes.HasPrefix(line, []byte("-ERR")):
		return nil, 0, nil, errors.New("nats: " + string(line))
	}
	return nil, off, nil, nil
}
