package natsbus

import (
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/chatroom-go/chatroom"
)

// This file is what goes over NATS: one binary envelope per message, the
// same shape for every kind. What a process's clients do, and what the
// processes say to each other, go on the hub's presence subject, numbered
// by their sender, so that a receiver knows when it missed some; what is
// for one process goes on that process's own subject; lines go into the
// stream. Whatever arrives is decoded within limits: a field longer than
// its limit, a count larger than the bytes that follow, a kind or a
// reason that does not exist, and the message is malformed.

// wireVersion is the first byte of every envelope; a receiver drops what it
// cannot read.
const wireVersion = 2

// kind is what an envelope carries.
type kind uint8

const (
	kindJoin      kind = iota + 1 // presence: Name entered Room
	kindPart                      // presence: Name left Room
	kindQuit                      // presence: Name left the hub
	kindNick                      // presence: Old is now Name
	kindTopic                     // presence: Name set Room's topic
	kindAnnounce                  // presence: the program announced Text
	kindHeartbeat                 // presence: the sender is alive; seq is its last
	kindHello                     // presence: the sender is new, or reconnected: send it your state, and ask for its
	kindBye                       // presence: the sender's hub closed: its clients are gone
	kindSync                      // to one process: send me your state (I missed some of yours)
	kindState                     // to one process: part of everyone on the sender, as of its presence message seq
	kindWhisper                   // to one process: Line, a whisper to one of its clients
	kindKick                      // to one process: put its client Name out
	kindLine                      // in the stream: Line, said in Room
	kindLines                     // in the stream: lines, said in Room one after the other (2 to maxBatchLines)
	kindLimit                     // not a kind: every kind is below it
)

var kindNames = [...]string{"", "join", "part", "quit", "nick", "topic", "announce", "heartbeat", "hello", "bye",
	"sync", "state", "whisper", "kick", "line", "lines"}

func (k kind) String() string {
	if k > 0 && k < kindLimit {
		return kindNames[k]
	}
	return "unknown"
}

// presence reports whether envelopes of kind k go on the presence subject,
// numbered.
func (k kind) presence() bool { return k >= kindJoin && k <= kindBye }

// Limits of what decode accepts.
const (
	// maxIdent is the longest name of a client or room, address, or peer
	// id: names are at most 32 bytes, addresses at most 47 with a suffix.
	maxIdent = 128
	// maxStateParts is the most parts one state comes in.
	maxStateParts = 4096
	// idLen is the length of a bus's id: 16 lowercase hex digits.
	idLen = 16
	// maxBatchLines is the most lines one message of the stream carries;
	// a line's ID is its message's sequence times maxBatchLines, plus its
	// place in the message (lineID).
	maxBatchLines = 256
)

// lineID is the ID of the line at index i of the stream's message seq:
// IDs grow with the stream's order, and are the same on every process.
func lineID(seq uint64, i int) uint64 { return seq*maxBatchLines + uint64(i) }

// envelope is one message on the bus.
type envelope struct {
	kind kind
	from string // the sending bus's id
	seq  uint64 // presence: the sender's count of them, from 1; kindState: the last presence message sent before it
	msg  chatroom.BusMessage

	// kindState: this is part part (from 0) of parts, with members.
	part, parts int
	members     []chatroom.ClientInfo

	lines []*chatroom.Message // kindLines: said in msg.Room, in order
}

// encode appends e to buf. Line and whisper envelopes carry msg.Line's
// kind, sender, recipient, text, notice flag and time; the time of every
// other kind is msg.Time.
func (e *envelope) encode(buf []byte) []byte {
	m := &e.msg
	t := m.Time
	if m.Line != nil {
		t = m.Line.Time
	}
	buf = append(buf, wireVersion, byte(e.kind))
	buf = appendString(buf, e.from)
	buf = binary.AppendUvarint(buf, e.seq)
	buf = appendTime(buf, t)
	switch e.kind {
	case kindJoin:
		buf = appendStrings(buf, m.Room, m.Name, m.Addr)
	case kindPart, kindTopic:
		buf = appendStrings(buf, m.Room, m.Name, m.Text)
	case kindQuit:
		buf = appendString(buf, m.Name)
		buf = append(buf, byte(m.Reason))
		buf = appendString(buf, m.Text)
	case kindNick:
		buf = appendStrings(buf, m.Old, m.Name)
	case kindAnnounce:
		buf = appendStrings(buf, m.Room, m.Text)
	case kindKick:
		buf = appendStrings(buf, m.Room, m.Name, m.By, m.Text)
	case kindWhisper:
		l := m.Line
		buf = appendStrings(buf, l.From, l.To, l.Text)
		buf = append(buf, boolByte(l.Notice))
	case kindLine:
		l := m.Line
		buf = appendString(buf, m.Room)
		buf = append(buf, byte(l.Kind))
		buf = appendStrings(buf, l.From, l.Text)
		buf = append(buf, boolByte(l.Notice))
	case kindLines: // each with its own time
		buf = appendString(buf, m.Room)
		buf = binary.AppendUvarint(buf, uint64(len(e.lines)))
		for _, l := range e.lines {
			buf = appendTime(buf, l.Time)
			buf = append(buf, byte(l.Kind))
			buf = appendStrings(buf, l.From, l.Text)
			buf = append(buf, boolByte(l.Notice))
		}
	case kindState:
		buf = encodeState(buf, e.part, e.parts, e.members)
	}
	return buf
}

// appendLines appends the envelope, from the bus from, of lines said in
// room one after the other: kindLine for one, kindLines for more. It
// writes what encode writes for them, into one allocation at most.
func appendLines(buf []byte, from, room string, lines []*item) []byte {
	size := 2 + 1 + len(from) + 1 + binary.MaxVarintLen64 + 2 + len(room) + 2
	for _, it := range lines {
		size += binary.MaxVarintLen64 + 1 + 3 + len(it.name) + 3 + len(it.text) + 1
	}
	buf = slices.Grow(buf, size)
	k, t := kindLines, time.Time{}
	if len(lines) == 1 {
		k, t = kindLine, lines[0].time
	}
	buf = append(buf, wireVersion, byte(k))
	buf = appendString(buf, from)
	buf = binary.AppendUvarint(buf, 0)
	buf = appendTime(buf, t)
	buf = appendString(buf, room)
	if k == kindLines {
		buf = binary.AppendUvarint(buf, uint64(len(lines)))
	}
	for _, it := range lines {
		if k == kindLines {
			buf = appendTime(buf, it.time)
		}
		buf = append(buf, byte(it.said))
		buf = appendStrings(buf, it.name, it.text)
		buf = append(buf, boolByte(it.notice))
	}
	return buf
}

// encodeState appends a state part: its rooms once, then each member with
// the indexes of its rooms.
func encodeState(buf []byte, part, parts int, members []chatroom.ClientInfo) []byte {
	buf = binary.AppendUvarint(buf, uint64(part))
	buf = binary.AppendUvarint(buf, uint64(parts))
	index := make(map[string]int)
	var rooms []string
	for _, c := range members {
		for _, r := range c.Rooms {
			if _, ok := index[r]; !ok {
				index[r] = len(rooms)
				rooms = append(rooms, r)
			}
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(rooms)))
	buf = appendStrings(buf, rooms...)
	buf = binary.AppendUvarint(buf, uint64(len(members)))
	for _, c := range members {
		buf = appendStrings(buf, c.Name, c.Addr)
		buf = appendTime(buf, c.Joined)
		buf = binary.AppendUvarint(buf, uint64(len(c.Rooms)))
		for _, r := range c.Rooms {
			buf = binary.AppendUvarint(buf, uint64(index[r]))
		}
	}
	return buf
}

var errBadEnvelope = errors.New("natsbus: malformed message")

// decode reads an envelope, whose texts are at most maxText bytes long.
// What it returns is a copy: data may be reused. It never panics, and its
// work and what it allocates are linear in len(data).
func decode(data []byte, maxText int) (*envelope, error) {
	d := decoder{buf: data}
	if d.byte() != wireVersion {
		return nil, errBadEnvelope
	}
	e := &envelope{kind: kind(d.byte())}
	if e.kind == 0 || e.kind >= kindLimit {
		return nil, errBadEnvelope
	}
	e.from = d.ident()
	if !validID(e.from) {
		return nil, errBadEnvelope
	}
	e.seq = d.uvarint()
	t := d.time()
	m := &e.msg
	m.Time = t
	switch e.kind {
	case kindJoin:
		m.Room, m.Name, m.Addr = d.ident(), d.ident(), d.ident()
	case kindPart, kindTopic:
		m.Room, m.Name, m.Text = d.ident(), d.ident(), d.text(maxText)
	case kindQuit:
		m.Name = d.ident()
		m.Reason = chatroom.LeaveReason(d.byte())
		if m.Reason > chatroom.ReasonRefused {
			return nil, errBadEnvelope
		}
		m.Text = d.text(maxText)
	case kindNick:
		m.Old, m.Name = d.ident(), d.ident()
	case kindAnnounce:
		m.Room, m.Text = d.ident(), d.text(maxText)
	case kindKick:
		m.Room, m.Name, m.By, m.Text = d.ident(), d.ident(), d.ident(), d.text(maxText)
	case kindWhisper:
		l := &chatroom.Message{Kind: chatroom.KindWhisper, Time: t}
		l.From, l.To, l.Text = d.ident(), d.ident(), d.text(maxText)
		l.Notice = d.bool()
		m.Line = l
	case kindLine:
		m.Room = d.ident()
		m.Line = d.line(m.Room, t, maxText)
	case kindLines:
		m.Room = d.ident()
		n := d.count(5) // a line is at least a time, a kind, two lengths and a flag
		if n < 2 || n > maxBatchLines {
			return nil, errBadEnvelope
		}
		e.lines = make([]*chatroom.Message, n)
		for i := range e.lines {
			e.lines[i] = d.line(m.Room, d.time(), maxText)
		}
	case kindState:
		e.part, e.parts, e.members = d.state()
	}
	if d.err || len(d.buf) > 0 {
		return nil, errBadEnvelope
	}
	return e, nil
}

// line reads a line said in room at t (after its time, in kindLines):
// its kind, sender, text and notice flag.
func (d *decoder) line(room string, t time.Time, maxText int) *chatroom.Message {
	l := &chatroom.Message{Kind: chatroom.MessageKind(d.byte()), Time: t, Room: room}
	if l.Kind != chatroom.KindSay && l.Kind != chatroom.KindAction {
		d.fail()
	}
	l.From, l.Text = d.ident(), d.text(maxText)
	l.Notice = d.bool()
	return l
}

// validID reports whether id is a bus's id.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendStrings(buf []byte, ss ...string) []byte {
	for _, s := range ss {
		buf = appendString(buf, s)
	}
	return buf
}

// appendTime appends t in nanoseconds since 1970, 0 for the zero time.
func appendTime(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(buf, 0)
	}
	return binary.AppendVarint(buf, t.UnixNano())
}

// decoder reads an envelope's fields; past the end of its bytes, or at a
// field that does not fit, it sets err and reads zeros.
type decoder struct {
	buf []byte
	err bool
}

func (d *decoder) fail() {
	d.err = true
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) == 0 {
		d.fail()
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	d.fail()
	return false
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf) // n <= 0: it does not fit
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) time() time.Time {
	if n := d.varint(); n != 0 {
		return time.Unix(0, n).UTC()
	}
	return time.Time{}
}

// string reads a string of at most max bytes.
func (d *decoder) string(max int) string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) || n > uint64(max) {
		d.fail()
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

func (d *decoder) ident() string       { return d.string(maxIdent) }
func (d *decoder) text(max int) string { return d.string(max) }
func (d *decoder) count(min uint64) int { // a count of items of at least min bytes each that follow
	n := d.uvarint()
	if min > 0 && n > uint64(len(d.buf))/min {
		d.fail()
		return 0
	}
	return int(n)
}

// state reads a state part.
func (d *decoder) state() (part, parts int, members []chatroom.ClientInfo) {
	part, parts = int(d.uvarint()), int(d.uvarint())
	if d.err || parts < 1 || parts > maxStateParts || part >= parts {
		d.fail()
		return 0, 0, nil
	}
	rooms := make([]string, d.count(1))
	for i := range rooms {
		rooms[i] = d.ident()
	}
	n := d.count(4) // a member is at least two lengths, a time and a count
	if d.err {
		return 0, 0, nil
	}
	members = make([]chatroom.ClientInfo, 0, n)
	for range n {
		c := chatroom.ClientInfo{Name: d.ident(), Addr: d.ident()}
		c.Joined = d.time()
		k := d.count(1)
		if k > len(rooms) {
			d.fail()
		}
		if d.err {
			return 0, 0, nil
		}
		if k > 0 {
			c.Rooms = make([]string, k)
			for j := range c.Rooms {
				i := d.uvarint()
				if i >= uint64(len(rooms)) {
					d.fail()
					return 0, 0, nil
				}
				c.Rooms[j] = rooms[i]
			}
		}
		members = append(members, c)
	}
	return part, parts, members
}
