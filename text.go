package chatroom

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
)

// This file is the text protocol (docs/protocol.md): the face nc, telnet
// and the demo's terminal client speak, and how every line it sends is
// spelled. Its commands are commands.go's.

// timeLayout stamps relayed lines and room notices.
const timeLayout = "2006-01-02 15:04:05"

// textFace is the text protocol: a client lands in a room at once, named
// by its address or the auth hook, and every line it sends is chat or a
// command.
type textFace struct{}

func (textFace) Name() string { return "text" }
func (textFace) Form() Form   { return textForm{} }

// Start lands the client in its room, or refuses it, saying why.
func (textFace) Start(c *Client) Session {
	c.single = true
	c.SetForm(textForm{}, textOwnForm{})
	s := &textSession{c: c}
	switch err := c.Register(Registration{Land: true}); {
	case errors.Is(err, ErrRoomClosed):
		c.shut(ReasonClosed, nil)
	case err != nil:
		c.Reply(refusalLine(c.hub, err))
		c.Quit("")
	}
	return s
}

// refusalLine is what a client refused by Register is told.
func refusalLine(h *Hub, err error) []byte {
	switch {
	case errors.Is(err, ErrRoomFull):
		return lineRoomFull(h.opts.maxClients)
	case errors.Is(err, ErrNameTaken):
		return lineNameTaken
	case errors.Is(err, errNamesDown):
		return lineNamesDown
	case errors.Is(err, context.DeadlineExceeded):
		return lineAuthTimeout
	case errors.Is(err, errHookPanicked), errors.Is(err, errNoName):
		return lineAuthFailed
	}
	// The auth hook's own error, under the hub's wrapping.
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return lineError(cleanString(err.Error()))
}

// textSession reads one text client's lines.
type textSession struct {
	c *Client
}

// TooLong answers a line too long without involving the hub.
func (s *textSession) TooLong() {
	s.c.Reply(lineTooLong(s.c.hub.opts.bufferSize))
}

// Line deals with one line: "exit" leaves, a command goes to the command
// table (commands.go), and any other line is said in the client's room.
// Only a line that is relayed, or a command, counts as activity: an empty
// line, or one that is empty once cleaned, does not, so that a client
// cannot hold its place by sending nothing anyone sees.
func (s *textSession) Line(line []byte) {
	c := s.c
	text := appendClean(nil, line, c.hub.opts.bufferSize)
	switch {
	case len(text) == 0:
	case isExit(text):
		c.Quit("")
	case text[0] == '/' && (len(text) == 1 || text[1] != '/'):
		s.command(string(text))
	case text[0] == '/':
		s.say(string(text[1:]), KindSay)
	default:
		s.say(string(text), KindSay)
	}
}

// say says text, clean, in the client's room.
func (s *textSession) say(text string, kind MessageKind) {
	c := s.c
	r := c.current()
	if r == nil {
		return // put out of its room: it leaves
	}
	if c.hub.opts.filter != nil {
		var err error
		text, err = c.filter(FilterEvent{Room: r.name, Name: c.name, Addr: c.addr, Text: text, Action: kind == KindAction})
		if err != nil {
			c.Reply(lineRejected)
			return
		}
		if text == "" {
			return
		}
	}
	m := &Message{Kind: kind, Time: c.hub.opts.now(), Room: r.name, From: c.name, User: c.user, Host: c.hostName, Text: text}
	m.forms.first = formatted{textForm{}, textForm{}.Format(m)} // here, not on the hub goroutine
	c.sayMessage(r, m)
}

// current is the room a text client is in, or nil once it is in none.
func (c *Client) current() *Room {
	if rooms := c.rooms.Load(); rooms != nil && len(*rooms) > 0 {
		return (*rooms)[0]
	}
	return nil
}

// isExit reports whether a clean line is the exit command: "exit" in any
// case, with surrounding spaces and tabs ignored.
func isExit(line []byte) bool {
	return strings.EqualFold(strings.Trim(string(line), " \t"), "exit")
}

// textForm writes messages as the text protocol's lines.
type textForm struct{}

// Format spells m as a line of the text protocol.
func (textForm) Format(m *Message) []byte {
	switch m.Kind {
	case KindSay:
		return stamped(m.Time, m.From, " say: ", m.Text)
	case KindAction:
		return stamped(m.Time, "* ", m.From, " ", m.Text)
	case KindWhisper:
		return stamped(m.Time, m.From, " whispers: ", m.Text)
	case KindJoin:
		return stamped(m.Time, "* ", m.From, " joined")
	case KindPart:
		return stamped(m.Time, "* ", m.From, " left")
	case KindKick:
		return stamped(m.Time, "* ", m.From, " left", kickedNotice(m.Text))
	case KindQuit:
		return stamped(m.Time, "* ", m.From, " left", m.Reason.effect().noticeText(m.Text))
	case KindNick:
		return stamped(m.Time, "* ", m.Old, " is now ", m.From)
	case KindTopic:
		if m.Text == "" {
			return stamped(m.Time, "* ", m.By, " cleared the topic")
		}
		return stamped(m.Time, "* ", m.By, " set the topic: ", m.Text)
	case KindMode:
		if m.From != "" {
			return stamped(m.Time, "* ", m.By, " sets mode ", m.Text, " ", m.From)
		}
		return stamped(m.Time, "* ", m.By, " sets mode ", m.Text)
	case KindAnnounce:
		return stamped(m.Time, "* ", m.Text)
	case KindSummary:
		return stamped(m.Time, "* ", strconv.Itoa(m.Joined), " joined, ", strconv.Itoa(m.Left), " left")
	case KindWelcome:
		return []byte("* welcome " + m.From + ", " + strconv.Itoa(m.Count) + " online\n")
	case KindError:
		return lineError(m.Text)
	case KindBye:
		if m.Reason == ReasonRefused {
			return []byte("* " + m.Text + "\n")
		}
		return m.Reason.effect().lastLine(m.Text)
	}
	return nil
}

// textOwnForm writes to a text client what it did itself: nothing but its
// moves and renames, which are answered.
type textOwnForm struct{}

// Format spells m, which the client did, as the text protocol answers it.
func (textOwnForm) Format(m *Message) []byte {
	switch m.Kind {
	case KindJoin:
		return []byte("* you are in " + m.Room + ", " + strconv.Itoa(m.Count) + " online\n")
	case KindNick:
		return []byte("* you are now " + m.From + "\n")
	}
	return nil
}

// stamped formats "<ts> " and parts, then "\n", in one allocation.
func stamped(t time.Time, parts ...string) []byte {
	n := len(timeLayout) + 2
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = t.AppendFormat(b, timeLayout)
	b = append(b, ' ')
	for _, p := range parts {
		b = append(b, p...)
	}
	return append(b, '\n')
}

// kickedNotice follows "<name> left" when the client was kicked for reason
// (clean, or "").
func kickedNotice(reason string) string {
	if reason == "" {
		return " (kicked)"
	}
	return " (kicked: " + reason + ")"
}

// Lines sent to one client only. They are constant, so they are built once.
var (
	lineInvalidNick   = []byte("* error: invalid nickname\n")
	lineNickTaken     = []byte("* error: nickname taken\n")
	lineNamesByServer = []byte("* error: names are set by the server\n")
	lineNameTaken     = []byte("* error: name taken\n")
	lineNamesDown     = []byte("* error: names cannot be checked now, try again later\n") // the bus cannot reach its peers
	lineRejected      = []byte("* error: message rejected\n")
	lineAuthTimeout   = []byte("* error: authentication timed out\n")
	lineAuthFailed    = []byte("* error: authentication failed\n")
	lineUsageMe       = []byte("* error: usage: /me TEXT\n")
	lineUsageMsg      = []byte("* error: usage: /msg NAME TEXT\n")
	lineUsageJoin     = []byte("* error: usage: /join ROOM\n")
	lineInvalidRoom   = []byte("* error: invalid room name\n")
	lineBye           = []byte("* bye\n")
	lineIdle          = []byte("* idle timeout\n")
	lineShutdown      = []byte("* server shutting down\n")
)

func lineTooLong(max int) []byte {
	return []byte("* error: message too long (max " + strconv.Itoa(max) + " bytes)\n")
}

func lineRoomFull(max int) []byte {
	return []byte("* room is full (" + strconv.Itoa(max) + " clients)\n")
}

func lineTooManyRooms(max int) []byte {
	return []byte("* error: too many rooms (max " + strconv.Itoa(max) + ")\n")
}

func lineAlreadyIn(room string) []byte {
	return []byte("* you are already in " + room + "\n")
}

// lineWho lists who is in a room: the first of its sorted members, and
// how many more there are.
func lineWho(members []Member, count int) []byte {
	b := []byte("* " + strconv.Itoa(count) + " online: ")
	for i, m := range members {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, m.Name...)
	}
	if more := count - len(members); more > 0 {
		b = append(b, ", and "+strconv.Itoa(more)+" more"...)
	}
	return append(b, '\n')
}

// lineRooms lists the open rooms, sorted.
func lineRooms(rooms []RoomInfo) []byte {
	b := []byte("* " + strconv.Itoa(len(rooms)) + " rooms: ")
	for i, r := range rooms {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, r.Name+" ("+strconv.Itoa(r.Clients)+")"...)
	}
	return append(b, '\n')
}

// lineKicked is the last line of a client kicked for reason (clean, or "").
func lineKicked(reason string) []byte {
	if reason == "" {
		return []byte("* kicked\n")
	}
	return []byte("* kicked: " + reason + "\n")
}

// lineNoSuchClient answers a whisper to a name nobody has.
func lineNoSuchClient(name string) []byte {
	return []byte("* error: no such client " + name + "\n")
}

// lineUnknownCommand answers a command the hub does not know.
func lineUnknownCommand(word string) []byte {
	return []byte("* error: unknown command " + word + " (try /help)\n")
}

// lineError is an error reply with text, clean.
func lineError(text string) []byte {
	return []byte("* error: " + text + "\n")
}
