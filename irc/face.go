// Package irc serves IRC clients (irssi, WeeChat, HexChat, bots on any IRC
// library) into a [chatroom.Hub], in the same rooms as the clients of
// every other face: a room is a channel (#games is the room games), a
// line said is a PRIVMSG to the channel, a whisper a private PRIVMSG, /me
// a CTCP ACTION, and an nc user's lines reach IRC clients as PRIVMSG from
// its name. A nick is unique across the hub, whatever face holds it.
//
// The protocol is IRC as the Modern IRC documentation
// (modern.ircdocs.horse) describes it, with IRCv3 capability negotiation
// (CAP LS 302, REQ, END) and the capabilities server-time, message-tags,
// echo-message, multi-prefix and userhost-in-names. Commands are in one
// table (commands.go), which HELP lists.
//
// Serve a listener into a hub as net/http serves one into a handler:
//
//	hub := chatroom.NewHub()
//	face := &irc.Face{ServerName: "irc.example.net", MOTD: "Be kind."}
//	log.Fatal(face.ListenAndServe(hub, ":6667"))
//
// The hub's limits apply to IRC clients as to everyone: flood control,
// the line limit (a longer line is answered with 417 and dropped), the idle
// timeout, the cleaning of text (IRC's colour and formatting codes are
// control characters and are removed), and the eviction of a client too
// slow to read. An IRC client is in no room until it sends JOIN.
//
// A JOIN is answered with the JOIN, then the room's last lines if the hub
// keeps a history for newcomers ([chatroom.WithHistory]), then the topic
// and the names. Lines the face writes may be longer than IRC's 512 bytes
// when the hub's limit on text ([chatroom.WithBufferSize], 1 024 bytes by
// default) allows longer text than fits; a limit of 400 keeps every line
// within 512.
//
// What the hub cannot carry is left out, and said where it matters: tags
// a client sends are not relayed (TAGMSG is accepted and dropped), nor
// CTCP requests other than ACTION; a private ACTION reaches its recipient
// as a private line "* nick text". Channel modes are the hub's: +o, +v,
// +t and +s; user modes +i and +o (by OPER).
package irc

import (
	"crypto/subtle"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatroom-go/chatroom"
)

// A Face serves IRC to a hub's clients: it is a [chatroom.Face]. Set its
// fields before it serves its first client, and do not change or copy it
// afterwards; the zero Face is ready to use. One Face may serve any
// number of listeners and hubs at once.
type Face struct {
	// ServerName is the server's name: the source of its replies, and
	// what 004, PONG, WHO and WHOIS say; one word (a space becomes "_").
	// Default "chatroom".
	ServerName string

	// Network is the network's name, in 001 and ISUPPORT's NETWORK
	// (where a space, "=" or a byte that is not printable ASCII becomes
	// "-"). Default: ServerName.
	Network string

	// MOTD is the message of the day, sent on registration and for MOTD:
	// its lines separated by "\n". Empty: there is none (422).
	MOTD string

	// Operators maps the names that OPER takes to their passwords: a
	// client that gives a pair becomes an operator of the hub
	// ([chatroom.Client.SetOperator]), who may kick, set topics and
	// modes in every room. Empty: OPER always fails (491).
	Operators map[string]string

	once     sync.Once
	prepared // what init derives from the fields
}

// prepared is what a Face derives from its fields once, before it serves.
type prepared struct {
	serverName string
	network    string
	created    string   // for 003
	motd       []string // the MOTD's lines
}

// Version is the server's version, in 002, 004 and VERSION.
const Version = "chatroom-irc-1"

// init derives what the Face needs from its fields, once.
func (f *Face) init() {
	f.once.Do(func() {
		f.serverName = word(cmpOr(strings.TrimSpace(f.ServerName), "chatroom"))
		f.network = cmpOr(strings.TrimSpace(f.Network), f.serverName)
		f.created = time.Now().UTC().Format(time.RFC1123)
		if f.MOTD != "" {
			f.motd = strings.Split(strings.TrimRight(f.MOTD, "\n"), "\n")
		}
	})
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Name returns "irc": the face's name in the hub's logs, events and hooks
// (an auth hook sees it as [chatroom.AuthEvent].Face).
func (f *Face) Name() string { return "irc" }

// Form returns the form of a client without capabilities: the form of a
// client refused before its session started.
func (f *Face) Form() chatroom.Form {
	f.init()
	others, _ := formsFor(f, 0)
	return others
}

// LineLimit returns the longest line the face takes from a client, in
// bytes, when the longest text is limit: the text, the command around it
// (512 bytes, IRC's limit for a whole line), and the tags a client may
// send (4096 bytes). See [chatroom.LineLimiter].
func (f *Face) LineLimit(limit int) int {
	return limit + 512 + maxClientTags + 2
}

// Start begins a client's session: it is registered once it has sent
// NICK and USER (and CAP END, if it began a CAP negotiation). See
// [chatroom.Face].
func (f *Face) Start(c *chatroom.Client) chatroom.Session {
	f.init()
	s := &session{face: f, c: c, nick: "*"}
	s.setForms()
	return s
}

// Serve serves IRC clients that connect to ln into hub, as hub.ServeFace
// does: it blocks until ln fails or the hub closes, and returns a non-nil
// error ([chatroom.ErrRoomClosed] after the hub's Shutdown or Close). For
// TLS, hand it a listener from [crypto/tls.NewListener].
func (f *Face) Serve(hub *chatroom.Hub, ln net.Listener) error {
	return hub.ServeFace(ln, f)
}

// ListenAndServe listens on the TCP address addr and serves IRC clients
// into hub: see [Face.Serve].
func (f *Face) ListenAndServe(hub *chatroom.Hub, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("irc: %w", err)
	}
	return f.Serve(hub, ln)
}

// Serve serves IRC clients that connect to ln into hub with a Face of
// default settings: see [Face.Serve].
func Serve(hub *chatroom.Hub, ln net.Listener) error {
	return new(Face).Serve(hub, ln)
}

// oper reports whether name and password are an operator's credentials,
// comparing the password in constant time.
func (f *Face) oper(name, password string) bool {
	want, ok := f.Operators[name]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

// isupport is what the face tells clients of itself in 005, for a hub
// whose longest text is limit: tokens of Modern IRC's ISUPPORT list, no
// value holding "=".
func (f *Face) isupport(limit int) []string {
	n := strconv.Itoa(limit)
	return []string{
		"AWAYLEN=" + n,
		"CASEMAPPING=ascii",
		"CHANMODES=,,,st",
		"CHANNELLEN=33",
		"CHANTYPES=#",
		"ELIST=MNU",
		"KICKLEN=" + n,
		"MODES=4",
		"NETWORK=" + strings.Map(func(r rune) rune {
			if r == ' ' || r == '=' || r < 0x21 || r > 0x7e {
				return '-'
			}
			return r
		}, f.network),
		"NICKLEN=32",
		"PREFIX=(ov)@+",
		"SAFELIST",
		"TARGMAX=JOIN:,KICK:,LIST:,NAMES:,NOTICE:4,PART:,PRIVMSG:4,WHOIS:1",
		"TOPICLEN=" + n,
		"USERLEN=" + strconv.Itoa(maxUser),
		"WHOX",
	}
}

// maxUser is the longest user name the face keeps from USER.
const maxUser = 16
