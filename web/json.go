package web

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatroom-go/chatroom"
)

// This file is the structured protocol for browsers and programs, the
// WebSocket subprotocol chatroom.v1.json (docs/protocol.md, "The JSON
// protocol"): one JSON object per message each way. Its forms write each
// message once per form, shared by every client of the form, however many
// rooms or receivers there are.

// Subprotocol is the WebSocket subprotocol of the JSON protocol. A client
// that asks for it (Sec-WebSocket-Protocol) gets the JSON protocol from
// [Handler]; one that does not gets the text protocol.
const Subprotocol = "chatroom.v1.json"

// JSONFace is the JSON protocol as a [chatroom.Face]. [Handler] serves it to
// clients that ask for [Subprotocol]; a program may also serve it over any
// connection whose lines are JSON objects (one per line), with
// [chatroom.Hub.ServeFace] or [chatroom.Hub.ServeConnFace].
//
// A client registers as it connects. Over a WebSocket, the URL's query
// says how (see docs/protocol.md): name=NAME asks for a name, and each
// room=ROOM or room=ROOM:ID enters a room, recovering what was said there
// after the line numbered ID; without a room it lands in the default room,
// as every newcomer does. A name that is taken, once a second has passed
// (the browser's last connection may still be leaving), or invalid, gives
// the client its address instead, and an error saying why.
type JSONFace struct{}

// Name is "json".
func (JSONFace) Name() string { return "json" }

// Form is how a client is written to before it registers: its refusal.
func (JSONFace) Form() chatroom.Form { return jsonForm{} }

// LineLimit is the longest command a client may send for texts of up to
// limit bytes: JSON may spell a character in up to six bytes (\u0022),
// plus the rest of the object.
func (JSONFace) LineLimit(limit int) int { return 6*limit + 512 }

// Registering under a name that is taken is tried again for up to a
// second: a browser that reloads the page connects again before the hub
// has seen its last connection go.
const (
	nameTries = 10
	namePause = 100 * time.Millisecond
)

// maxHelloRooms bounds the rooms a client may ask to enter as it
// connects.
const maxHelloRooms = 100

// Start registers the client as its connection's URL asks (see JSONFace),
// or refuses it, saying why.
func (f JSONFace) Start(c *chatroom.Client) chatroom.Session {
	c.SetForm(jsonForm{}, jsonForm{own: true})
	s := &jsonSession{c: c}
	if mc := messageConnOf(c.Conn()); mc != nil {
		mc.setReadLimit(f.LineLimit(c.Limit()))
	}
	h := helloOf(c.Conn())
	land := len(h.rooms) == 0
	reg := chatroom.Registration{Name: h.name, Land: land, Roster: true}
	err := c.Register(reg)
	for try := 1; errors.Is(err, chatroom.ErrNameTaken) && h.name != "" && try < nameTries; try++ {
		time.Sleep(namePause)
		err = c.Register(reg)
	}
	var nameErr string // why the name asked for was not given
	if h.name != "" && (errors.Is(err, chatroom.ErrNameTaken) || errors.Is(err, chatroom.ErrInvalidName)) {
		nameErr = nickError(c.Hub(), err)
		reg.Name = ""
		err = c.Register(reg)
	}
	switch {
	case errors.Is(err, chatroom.ErrRoomClosed):
		c.Quit("")
		return s
	case err != nil:
		c.Reply(errorLine("", c.Hub().ErrorText(err)))
		c.Quit("")
		return s
	}
	if !land {
		c.Reply(welcomeLine(c.Name()))
	}
	if nameErr != "" {
		c.Reply(errorLine("nick", nameErr))
	}
	for _, r := range h.rooms {
		s.join(r.name, r.since)
	}
	c.Reply(syncedLine)
	return s
}

// messageConnOf returns the messageConn under conn, if it is one of the
// Handler's.
func messageConnOf(conn net.Conn) *messageConn {
	if wc, ok := conn.(*Conn); ok {
		mc, _ := wc.Conn.(*messageConn)
		return mc
	}
	return nil
}

// hello is what a client's URL asks for as it connects.
type hello struct {
	name  string
	rooms []roomSince
}

type roomSince struct {
	name  string
	since uint64
}

// helloOf reads the query of the request conn came with, if any.
func helloOf(conn net.Conn) hello {
	var h hello
	r, ok := conn.(interface{ Request() *http.Request })
	if !ok || r.Request() == nil {
		return h
	}
	q := r.Request().URL.Query()
	h.name = q.Get("name")
	for _, v := range q["room"] {
		if len(h.rooms) == maxHelloRooms {
			break
		}
		name, id, _ := strings.Cut(v, ":")
		since, _ := strconv.ParseUint(id, 10, 64)
		h.rooms = append(h.rooms, roomSince{name, since})
	}
	return h
}

// command is a command a client sends: every field of every command.
type command struct {
	Type  string `json:"type"`
	Room  string `json:"room"`
	Text  string `json:"text"`
	To    string `json:"to"`
	Name  string `json:"name"`
	Since uint64 `json:"since"`
}

// jsonSession reads one JSON client's commands.
type jsonSession struct {
	c *chatroom.Client
}

// TooLong answers a command longer than the line limit. Over a WebSocket
// it does not come to that: a longer message closes the connection.
func (s *jsonSession) TooLong() {
	s.c.Reply(errorLine("", "message too long (max "+strconv.Itoa(s.c.Limit())+" bytes)"))
}

// Line carries out one command.
func (s *jsonSession) Line(line []byte) {
	var cmd command
	if err := json.Unmarshal(line, &cmd); err != nil {
		s.c.Reply(errorLine("", "invalid JSON"))
		return
	}
	c := s.c
	if cmd.Type != "say" || strings.TrimSpace(cmd.Text) != "" {
		c.Touch() // every command counts as activity, as the text protocol's do; an empty line does not
	}
	if len(cmd.Text) > c.Limit() {
		c.Reply(errorLine(cmd.Type, "message too long (max "+strconv.Itoa(c.Limit())+" bytes)"))
		return
	}
	switch cmd.Type {
	case "say":
		s.say(cmd, chatroom.KindSay)
	case "me":
		s.say(cmd, chatroom.KindAction)
	case "msg":
		s.msg(cmd)
	case "nick":
		if err := c.Nick(cmd.Name); err != nil {
			c.Reply(errorLine(cmd.Type, nickError(c.Hub(), err)))
		}
	case "join":
		if cmd.Room == "" {
			c.Reply(errorLine(cmd.Type, "usage: /join ROOM"))
			return
		}
		if s.join(cmd.Room, cmd.Since) {
			c.Reply(syncedLine)
		}
	case "part":
		s.roomError(cmd, c.Part(cmd.Room, cmd.Text))
	case "who":
		members, count, err := c.Members(cmd.Room, 0)
		if err != nil {
			s.roomError(cmd, err)
			return
		}
		c.Reply(membersLine(cmd.Room, count, members))
	case "rooms":
		c.Reply(roomsLine(c.Rooms()))
	case "topic":
		s.roomError(cmd, c.SetTopic(cmd.Room, cmd.Text))
	case "quit":
		c.Quit(cmd.Text)
	default:
		c.Reply(errorLine(cmd.Type, "unknown command "+strconv.Quote(cmd.Type)))
	}
}

// say says (or, for KindAction, does) cmd.Text in cmd.Room. An empty text
// says nothing, as an empty line of the text protocol; an empty /me is a
// mistake.
func (s *jsonSession) say(cmd command, kind chatroom.MessageKind) {
	c := s.c
	if strings.TrimSpace(cmd.Text) == "" {
		if kind == chatroom.KindAction {
			c.Reply(errorLine(cmd.Type, "usage: /me TEXT"))
		}
		return
	}
	var err error
	if kind == chatroom.KindAction {
		err = c.Act(cmd.Room, cmd.Text)
	} else {
		err = c.Say(cmd.Room, cmd.Text)
	}
	s.roomError(cmd, err)
}

func (s *jsonSession) msg(cmd command) {
	c := s.c
	if cmd.To == "" || strings.TrimSpace(cmd.Text) == "" {
		c.Reply(errorLine(cmd.Type, "usage: /msg NAME TEXT"))
		return
	}
	switch err := c.Whisper(cmd.To, cmd.Text, false); {
	case errors.Is(err, chatroom.ErrNoSuchClient):
		c.Reply(errorLine(cmd.Type, "no such client "+cmd.To))
	case err != nil:
		s.roomError(cmd, err)
	}
}

// join enters room, recovering what was said there after the line
// numbered since (0: the newcomer's history), and reports whether it did.
func (s *jsonSession) join(room string, since uint64) bool {
	c := s.c
	switch err := c.Join(room, since); {
	case err == nil:
		return true
	case errors.Is(err, chatroom.ErrInvalidName):
		c.Reply(errorLine("join", "invalid room name"))
	case errors.Is(err, chatroom.ErrAlreadyInRoom):
		c.Reply(errorLine("join", "you are already in "+room))
	default:
		c.Reply(errorLine("join", c.Hub().ErrorText(err)))
	}
	return false
}

// roomError answers err, an error of a command about cmd.Room, if any.
func (s *jsonSession) roomError(cmd command, err error) {
	var text string
	switch {
	case err == nil:
		return
	case cmd.Room == "" && (errors.Is(err, chatroom.ErrNotInRoom) || errors.Is(err, chatroom.ErrNoSuchRoom)):
		text = "no room given"
	case errors.Is(err, chatroom.ErrNotInRoom):
		text = "you are not in " + cmd.Room
	case errors.Is(err, chatroom.ErrNoSuchRoom):
		text = "no such room " + cmd.Room
	case errors.Is(err, chatroom.ErrRejected):
		text = "message rejected"
	case errors.Is(err, chatroom.ErrNotAllowed):
		text = "not allowed"
	case errors.Is(err, chatroom.ErrRoomClosed):
		return // the hub is closing: the client is told so
	default:
		text = s.c.Hub().ErrorText(err)
	}
	s.c.Reply(errorLine(cmd.Type, text))
}

// nickError is the text protocol's words for an error of a name.
func nickError(h *chatroom.Hub, err error) string {
	switch {
	case errors.Is(err, chatroom.ErrInvalidName):
		return "invalid nickname"
	case errors.Is(err, chatroom.ErrNameTaken):
		return "nickname taken"
	case errors.Is(err, chatroom.ErrNotAllowed):
		return "names are set by the server"
	}
	return h.ErrorText(err)
}
