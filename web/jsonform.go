package web

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/chatroom-go/chatroom"
)

// This file writes the JSON protocol's messages (docs/protocol.md): by
// hand, field by field, so that writing one costs a single allocation and
// the fields come in the documented order.

// jsonForm writes messages as JSON objects, one per line; own marks the
// form of what a client did itself (its own lines come back with
// "own":true).
type jsonForm struct{ own bool }

// timeLayout is RFC 3339 with the zone, to the second.
const timeLayout = time.RFC3339

// Format writes m as one JSON object and "\n", or, for a welcome and a
// client's own join, the objects that tell it where it is: the welcome,
// its join and the room's members.
func (f jsonForm) Format(m *chatroom.Message) []byte {
	b := make([]byte, 0, 128+len(m.Text)+len(m.From)+len(m.Room))
	switch m.Kind {
	case chatroom.KindSay, chatroom.KindAction:
		typ := "say"
		if m.Kind == chatroom.KindAction {
			typ = "me"
		}
		b = begin(b, typ)
		b = number(b, "id", m.ID)
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = str(b, "from", m.From)
		b = str(b, "text", m.Text)
		b = flag(b, "notice", m.Notice)
		b = flag(b, "own", f.own)
	case chatroom.KindWhisper:
		b = begin(b, "whisper")
		b = stamp(b, m.Time)
		b = str(b, "from", m.From)
		b = str(b, "to", m.To)
		b = str(b, "text", m.Text)
		b = flag(b, "notice", m.Notice)
		b = flag(b, "own", f.own)
	case chatroom.KindWelcome:
		b = appendWelcome(b, m.From, m.Time)
		b = end(b)
		b = f.ownJoin(b, m)
		return b
	case chatroom.KindJoin:
		if f.own {
			return f.ownJoin(b, m)
		}
		b = begin(b, "join")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = str(b, "from", m.From)
	case chatroom.KindPart:
		b = begin(b, "leave")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = str(b, "from", m.From)
		b = str(b, "reason", chatroom.ReasonPart.String())
		b = optional(b, "text", m.Text)
		b = flag(b, "own", f.own)
	case chatroom.KindKick:
		b = begin(b, "leave")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = str(b, "from", m.From)
		b = str(b, "reason", chatroom.ReasonKicked.String())
		b = str(b, "by", m.By)
		b = optional(b, "text", m.Text)
	case chatroom.KindQuit:
		b = begin(b, "leave")
		b = stamp(b, m.Time)
		b = strs(b, "rooms", m.Rooms)
		b = str(b, "from", m.From)
		b = str(b, "reason", m.Reason.String())
		b = optional(b, "text", m.Text)
		b = flag(b, "quit", true)
	case chatroom.KindNick:
		b = begin(b, "nick")
		b = stamp(b, m.Time)
		b = str(b, "from", m.From)
		b = str(b, "old", m.Old)
		b = strs(b, "rooms", m.Rooms)
		b = flag(b, "own", f.own)
	case chatroom.KindTopic:
		b = begin(b, "topic")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = str(b, "by", m.By)
		b = str(b, "text", m.Text)
		b = flag(b, "own", f.own)
	case chatroom.KindMode:
		b = begin(b, "mode")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = str(b, "by", m.By)
		b = str(b, "mode", m.Text)
		b = optional(b, "name", m.From)
		b = flag(b, "own", f.own)
	case chatroom.KindAnnounce:
		b = begin(b, "notice")
		b = stamp(b, m.Time)
		b = optional(b, "room", m.Room)
		b = str(b, "text", m.Text)
	case chatroom.KindSummary:
		b = begin(b, "summary")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = number(b, "joined", uint64(m.Joined))
		b = number(b, "left", uint64(m.Left))
	case chatroom.KindGap:
		b = begin(b, "gap")
		b = stamp(b, m.Time)
		b = str(b, "room", m.Room)
		b = number(b, "since", m.Since)
	case chatroom.KindError:
		b = begin(b, "error")
		b = stamp(b, m.Time)
		b = optional(b, "room", m.Room)
		b = str(b, "text", m.Text)
	case chatroom.KindBye:
		b = begin(b, "bye")
		b = stamp(b, m.Time)
		b = str(b, "reason", m.Reason.String())
		b = optional(b, "text", m.Text)
	default:
		return nil
	}
	return end(b)
}

// ownJoin writes the join of a room the client entered, with what it
// needs there (the last line's ID, how many are in, the topic), then the
// room's members.
func (f jsonForm) ownJoin(b []byte, m *chatroom.Message) []byte {
	b = begin(b, "join")
	b = stamp(b, m.Time)
	b = str(b, "room", m.Room)
	b = str(b, "from", m.From)
	b = number(b, "last", m.ID)
	b = number(b, "count", uint64(m.Count))
	b = optional(b, "topic", m.Topic)
	b = flag(b, "own", true)
	b = end(b)
	if m.Members != nil {
		b = appendMembers(b, m.Room, m.Count, m.Members)
	}
	return b
}

// welcomeLine is the welcome of a client that entered no room as it
// registered (its joins follow).
func welcomeLine(name string) []byte {
	return end(appendWelcome(nil, name, time.Time{}))
}

func appendWelcome(b []byte, name string, t time.Time) []byte {
	b = begin(b, "welcome")
	if !t.IsZero() {
		b = stamp(b, t)
	}
	return str(b, "name", name)
}

// syncedLine says that everything owed for the rooms the client entered
// so far (their histories) is sent: what follows is live. It comes after
// the joins a client makes as it connects, and after each join command.
var syncedLine = []byte(`{"type":"synced"}` + "\n")

// membersLine lists a room's members: the answer to who.
func membersLine(room string, count int, members []chatroom.Member) []byte {
	return appendMembers(make([]byte, 0, 64+24*len(members)), room, count, members)
}

func appendMembers(b []byte, room string, count int, members []chatroom.Member) []byte {
	b = begin(b, "members")
	b = str(b, "room", room)
	b = number(b, "count", uint64(count))
	b = append(b, `,"members":[`...)
	for i, m := range members {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = quote(b, m.Name)
		b = flag(b, "op", m.Operator)
		b = flag(b, "voice", m.Voiced)
		b = append(b, '}')
	}
	b = append(b, ']')
	return end(b)
}

// roomsLine lists the open rooms: the answer to rooms.
func roomsLine(rooms []chatroom.RoomInfo) []byte {
	b := begin(make([]byte, 0, 32+32*len(rooms)), "rooms")
	b = append(b, `,"list":[`...)
	for i, r := range rooms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		b = quote(b, r.Name)
		b = number(b, "count", uint64(r.Clients))
		b = optional(b, "topic", r.Topic)
		b = append(b, '}')
	}
	b = append(b, ']')
	return end(b)
}

// errorLine says that the command of type cmd ("" for none) failed, for
// text.
func errorLine(cmd, text string) []byte {
	b := begin(nil, "error")
	b = optional(b, "command", cmd)
	b = str(b, "text", text)
	return end(b)
}

func begin(b []byte, typ string) []byte {
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	return append(b, '"')
}

func end(b []byte) []byte { return append(b, "}\n"...) }

func key(b []byte, k string) []byte {
	b = append(b, ',', '"')
	b = append(b, k...)
	return append(b, '"', ':')
}

func str(b []byte, k, v string) []byte { return quote(key(b, k), v) }

// optional writes the field only if v is not empty.
func optional(b []byte, k, v string) []byte {
	if v == "" {
		return b
	}
	return str(b, k, v)
}

// flag writes the field only if v is true.
func flag(b []byte, k string, v bool) []byte {
	if !v {
		return b
	}
	return append(key(b, k), "true"...)
}

func number(b []byte, k string, n uint64) []byte {
	return strconv.AppendUint(key(b, k), n, 10)
}

func stamp(b []byte, t time.Time) []byte {
	b = append(key(b, "time"), '"')
	b = t.AppendFormat(b, timeLayout)
	return append(b, '"')
}

func strs(b []byte, k string, v []string) []byte {
	b = append(key(b, k), '[')
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = quote(b, s)
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// quote appends s as a JSON string. Texts and names reach it clean (no
// control characters, valid UTF-8), but it escapes whatever JSON requires
// all the same, and writes invalid UTF-8 as U+FFFD.
func quote(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\t':
				b = append(b, `\t`...)
			default:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
