package chatroom

import (
	"strconv"
	"time"
)

// This file is the contract between the hub and the protocols its clients
// speak, its faces: the text protocol (text.go, commands.go) is one; the
// structured protocol for browsers (package web) and IRC (package irc) are
// others. A face reads what its clients send, through a [Session], and
// tells them what happens, through a [Form]; the hub does the rest (who is
// where, names, order, limits, writing).

// A Face is a protocol that clients speak to a [Hub]. Hand a listener and
// a face to [Hub.ServeFace], or a connection to [Hub.ServeConnFace].
type Face interface {
	// Name names the face in logs, events and hooks ("text", "json",
	// "irc").
	Name() string

	// Form is the form a new client of this face is written in until its
	// session sets another ([Client.SetForm]): a client refused before
	// its session starts (too many connections from its address, the hub
	// closing) gets its last line in it.
	Form() Form

	// Start begins serving c, a client the hub has let in (its address
	// passed the limits, its TLS handshake is done) but that has no name
	// and is in no room yet, and returns the session that reads its
	// lines. It runs on c's reader, before any line is read: it may
	// register c at once ([Client.Register]), as the text protocol does,
	// or reply and wait for lines that name it, as IRC does. A client that
	// is not registered within the hub's write timeout (10s without one)
	// is disconnected.
	Start(c *Client) Session
}

// A Session reads one client's lines. The hub calls its methods on the
// client's reader, one at a time and in the order the lines came: from a
// goroutine of the client's own, or from the turns of the hub's poller.
// They may call the [Client]'s methods, which wait for the hub where they
// must; the session's own state needs no lock.
type Session interface {
	// Line handles one line the client sent, without its "\n" or "\r\n",
	// at most the hub's line limit ([WithBufferSize]) long. The slice is
	// valid only until Line returns.
	Line(line []byte)

	// TooLong is called, instead of Line, for a line longer than the
	// limit, as soon as it passes the limit; its rest is discarded up to
	// its newline.
	TooLong()
}

// A Form is one way of writing what happens to clients: a face has one or
// more (the text protocol one; IRC one per set of capabilities a client
// negotiated), and each client has one, set with [Client.SetForm].
//
// The hub formats each [Message] once per form that someone receiving it
// has, and every client of that form is written the same bytes. Forms are
// compared with ==, so a form is a comparable value: a struct of flags, or
// a pointer.
type Form interface {
	// Format returns the bytes that tell a client about m, ending as the
	// face's framing requires, or nil to tell it nothing. The hub calls
	// it on its own goroutine: it must be fast, must not wait for
	// anything, and must not keep m or change it. A panic is recovered
	// and logged, and the message is not sent in that form.
	Format(m *Message) []byte
}

// MessageKind says what a [Message] reports.
type MessageKind uint8

// The kinds of [Message]. Room traffic goes to the members of Room; a
// message marked "hub-wide" goes once to everyone who shares a room with
// its sender; the rest go to one client.
const (
	// Room traffic.
	KindSay      MessageKind = iota + 1 // From said Text in Room; ID is set
	KindAction                          // From did Text (/me, CTCP ACTION) in Room; ID is set
	KindJoin                            // From entered Room
	KindPart                            // From left Room and stays connected (a move, IRC PART); Text: its parting words
	KindKick                            // From was put out of Room by By, for Text
	KindTopic                           // By set Room's topic to Text
	KindMode                            // By changed Room's mode Text ("+t", "-o"...), of the member From if the mode is a member's
	KindAnnounce                        // the program announced Text to Room ([Room.Broadcast]), or to everyone (Room "", [Hub.Broadcast])
	KindSummary                         // a storm of arrivals and departures in Room, told as counts: Joined, Left

	// Hub-wide.
	KindNick // Old is now called From
	KindQuit // From left the hub for Reason (Text: a kick's reason or IRC QUIT's words); Rooms: the rooms it was in

	// To one client.
	KindWhisper // From whispered Text to To
	KindWelcome // to a newcomer that landed in Room, named From: Count, Members and Topic as for its own KindJoin
	KindGap     // to a recovering client: the lines of Room it missed since Since are more than the history keeps; the last ones follow
	KindError   // to a client: what it did could not be done, for Text (a line the bus could not order)
	KindBye     // the last line a client gets: it leaves for Reason (Text: a kick's reason, or why it was refused)
)

var kindNames = [...]string{"", "say", "action", "join", "part", "kick", "topic", "mode", "announce", "summary",
	"nick", "quit", "whisper", "welcome", "gap", "error", "bye"}

// String returns the kind's name: "say", "action", "join", and so on.
func (k MessageKind) String() string {
	if int(k) < len(kindNames) && k > 0 {
		return kindNames[k]
	}
	return "MessageKind(" + strconv.Itoa(int(k)) + ")"
}

// A Message is something that happened in a hub, as its faces' forms
// format it for clients. Which fields are set depends on Kind. Text and
// names are clean (see docs/protocol.md): a form may write them as they
// are. The hub hands the same Message to every form, which must not
// change it.
//
// The client that did something gets it in its own form (see
// [Client.SetForm]), and a KindJoin to the joiner carries what only it
// needs: the room's members and topic.
type Message struct {
	Kind MessageKind
	// ID numbers the lines of a room (KindSay, KindAction): it increases
	// with each line, across restarts of a room without a bus too; with a
	// bus, every process gives a line the same ID. On a KindWelcome, and
	// the joiner's own KindJoin, it is the ID of the room's last line as
	// the client entered (0 for none, with a bus): the history that
	// follows is no newer, and a client that saw no line there since can
	// pass it to [Client.Join] to recover what it missed.
	ID     uint64
	Time   time.Time   // when it happened, by the hub's clock ([WithClock])
	Room   string      // the room it happened in, as the room is named; "" for none
	From   string      // who did it (KindNick: the new name)
	User   string      // the user name of who did it (From; By for KindKick, KindTopic, KindMode): see Registration.User; "" if unknown (a peer's client)
	Host   string      // ... and its host (see ClientInfo.Host); "" if unknown
	Addr   string      // KindJoin, KindWelcome: From's remote address
	To     string      // KindWhisper: the recipient
	By     string      // KindKick, KindTopic, KindMode: who did it
	Text   string      // what was said, done or set, or a reason's words
	Old    string      // KindNick: the previous name
	Notice bool        // KindSay, KindWhisper: an IRC NOTICE, which asks for no automatic reply
	Reason LeaveReason // KindQuit, KindBye: why
	Count  int         // KindWelcome, and KindJoin in the joiner's own form: members of Room, the joiner included
	Since  uint64      // KindGap: the last ID the client saw
	Joined int         // KindSummary: arrivals counted
	Left   int         // KindSummary: departures counted

	Members []Member // as Count: everyone in Room, sorted by name ignoring case
	Rooms   []string // KindQuit, KindNick: the rooms From is in
	Topic   string   // as Count: Room's topic, "" for none

	forms formCache // the message as each form wrote it
}

// formCache holds a message as each form formatted it, so that it is
// formatted once per form however many clients get it. Only the hub
// goroutine uses it (and the reader that made the message, before handing
// it over).
type formCache struct {
	first formatted   // the first form's, inline: most rooms have one form
	more  []formatted // any others
}

type formatted struct {
	form  Form
	bytes []byte // nil: the form writes nothing for this message
}

// bytesFor returns m as form writes it, formatting it the first time;
// format does the formatting (it recovers a panicking form).
func (m *Message) bytesFor(form Form, format func(Form, *Message) []byte) []byte {
	c := &m.forms
	if c.first.form == form {
		return c.first.bytes
	}
	for _, f := range c.more {
		if f.form == form {
			return f.bytes
		}
	}
	b := format(form, m)
	if c.first.form == nil {
		c.first = formatted{form, b}
	} else {
		c.more = append(c.more, formatted{form, b})
	}
	return b
}
