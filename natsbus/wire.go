package natsbus

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/chatroom-go/chatroom"
)

// This file is what goes over NATS: one binary envelope per message, the
// same for every kind. Every room publishes on its own subjects in order,
// numbering its messages, so that a receiver can tell when it missed some.

// wireVersion is the first byte of every envelope; a receiver drops what it
// cannot read.
const wireVersion = 1

// kind is what an envelope carries: what a room's clients did (the
// chatroom.BusKind values, as they are), or what the buses say to each
// other.
type kind uint8

const (
	kindHeartbeat kind = 100 + iota // I am here; seq is my last
	kindState                       // everyone on the sender now; with ask, send me yours
	kindSync                        // target: send your state (I missed something of yours)
	kindBye                         // the sender's room closed: its clients are gone
)

// envelope is one message on the bus.
type envelope struct {
	kind    kind
	from    string // the sending bus's id
	seq     uint64 // the sender's count of envelopes, from 1
	msg     chatroom.BusMessage
	ask     bool                  // kindState: the receivers send their own state back
	target  string                // kindSync: whose state is asked for
	members []chatroom.ClientInfo // kindState
}

// encode appends e to buf.
func (e *envelope) encode(buf []byte) []byte {
	buf = append(buf, wireVersion, byte(e.kind))
	buf = appendString(buf, e.from)
	buf = binary.AppendUvarint(buf, e.seq)
	m := &e.msg
	switch e.kind {
	case kind(chatroom.BusJoin):
		buf = appendStrings(buf, m.Name, m.Addr)
		buf = binary.AppendVarint(buf, m.Time.UnixNano())
	case kind(chatroom.BusLeave), kind(chatroom.BusWhisper):
		buf = appendString(buf, m.Name)
	case kind(chatroom.BusNick):
		buf = appendStrings(buf, m.Old, m.Name)
	case kind(chatroom.BusKick):
		buf = appendStrings(buf, m.Name, m.Text)
	case kindState:
		buf = append(buf, boolByte(e.ask))
		buf = binary.AppendUvarint(buf, uint64(len(e.members)))
		for _, c := range e.members {
			buf = appendStrings(buf, c.Name, c.Addr)
			buf = binary.AppendVarint(buf, c.Joined.UnixNano())
		}
	case kindSync:
		buf = appendString(buf, e.target)
	}
	if hasLine(e.kind) {
		buf = appendString(buf, string(m.Line))
	}
	return buf
}

// hasLine reports whether an envelope of kind k carries a formatted line.
func hasLine(k kind) bool {
	switch k {
	case kind(chatroom.BusJoin), kind(chatroom.BusLeave), kind(chatroom.BusNick),
		kind(chatroom.BusSay), kind(chatroom.BusNotice), kind(chatroom.BusWhisper):
		return true
	}
	return false
}

var errBadEnvelope = errors.New("natsbus: malformed message")

// decode reads an envelope. The strings and the line it returns are copies:
// data may be reused.
func decode(data []byte) (*envelope, error) {
	d := decoder{buf: data}
	if d.byte() != wireVersion {
		return nil, errBadEnvelope
	}
	e := &envelope{kind: kind(d.byte())}
	e.from = d.string()
	e.seq = d.uvarint()
	m := &e.msg
	m.Kind = chatroom.BusKind(e.kind)
	switch e.kind {
	case kind(chatroom.BusJoin):
		m.Name, m.Addr = d.string(), d.string()
		m.Time = time.Unix(0, d.varint())
	case kind(chatroom.BusLeave), kind(chatroom.BusWhisper):
		m.Name = d.string()
	case kind(chatroom.BusSay): // one line per envelope: the history stream counts lines
	case kind(chatroom.BusNick):
		m.Old, m.Name = d.string(), d.string()
	case kind(chatroom.BusKick):
		m.Name, m.Text = d.string(), d.string()
	case kind(chatroom.BusNotice), kindHeartbeat, kindBye:
	case kindState:
		switch d.byte() {
		case 0:
		case 1:
			e.ask = true
		default:
			return nil, errBadEnvelope
		}
		n := d.uvarint()
		if n > uint64(len(data)) { // each member takes bytes: a lie
			return nil, errBadEnvelope
		}
		e.members = make([]chatroom.ClientInfo, 0, n)
		for range n {
			c := chatroom.ClientInfo{Name: d.string(), Addr: d.string()}
			c.Joined = time.Unix(0, d.varint())
			e.members = append(e.members, c)
		}
	case kindSync:
		e.target = d.string()
	default:
		return nil, errBadEnvelope
	}
	if hasLine(e.kind) {
		m.Line = []byte(d.string())
	}
	if d.err || len(d.buf) > 0 {
		return nil, errBadEnvelope
	}
	return e, nil
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

// decoder reads an envelope's fields; past the end of its bytes, or at a
// field that does not fit, it sets err and reads zeros.
type decoder struct {
	buf []byte
	err bool
}

func (d *decoder) byte() byte {
	if len(d.buf) == 0 {
		d.err = true
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf) // 0 when n <= 0
	d.skip(n)
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf) // 0 when n <= 0
	d.skip(n)
	return v
}

// skip moves past a varint of n bytes; n <= 0 is a varint that does not
// fit.
func (d *decoder) skip(n int) {
	if n <= 0 {
		d.err = true
		d.buf = nil
		return
	}
	d.buf = d.buf[n:]
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.err = true
		d.buf = nil
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}
