package irc

import (
	"strconv"
	"strings"
	"time"

	"github.com/chatroom-go/chatroom"
)

// This file is how what happens in the hub is written to IRC clients:
// forms, one per set of capabilities that changes how a message is
// written, each formatting a message once for all its clients.

// caps is a set of IRCv3 capabilities a client enabled.
type caps uint8

const (
	capServerTime caps = 1 << iota
	capMessageTags
	capEchoMessage
	capMultiPrefix
	capUserhostInNames
)

// capNames lists the capabilities the face offers, in the order CAP LS
// lists them.
var capNames = []struct {
	name string
	cap  caps
}{
	{"echo-message", capEchoMessage},
	{"message-tags", capMessageTags},
	{"multi-prefix", capMultiPrefix},
	{"server-time", capServerTime},
	{"userhost-in-names", capUserhostInNames},
}

// formCaps are the capabilities that change how the hub's messages are
// written: forms differ by them alone, so that clients differing in
// others share a form.
const formCaps = capServerTime | capMessageTags

// form writes messages to IRC clients that enabled caps. An own form
// writes what the client did itself: its joins, parts, renames, and the
// topics and modes it set always; its own lines only with echo-message.
// Forms are compared with ==: every client of one face with the same
// capabilities shares each of its two forms.
type form struct {
	face *Face
	caps caps // formCaps, and capEchoMessage for an own form
	own  bool
}

// formsFor returns the forms of a client of f with the capabilities c.
func formsFor(f *Face, c caps) (others, own form) {
	return form{face: f, caps: c & formCaps}, form{face: f, caps: c & (formCaps | capEchoMessage), own: true}
}

// Format writes m as IRC. See chatroom.Form.
func (fm form) Format(m *chatroom.Message) []byte {
	f := fm.face
	if fm.own {
		switch m.Kind {
		case chatroom.KindSay, chatroom.KindAction, chatroom.KindWhisper:
			if fm.caps&capEchoMessage == 0 {
				return nil
			}
		case chatroom.KindJoin, chatroom.KindPart, chatroom.KindNick, chatroom.KindTopic, chatroom.KindMode:
		default:
			return nil
		}
	}
	b := fm.tags(make([]byte, 0, 64+len(m.Text)+len(m.Room)+len(m.From)+len(m.User)+len(m.Host)), m)
	switch m.Kind {
	case chatroom.KindSay, chatroom.KindAction:
		return appendLine(b, f.source(m.From, m.User, m.Host), privmsg(m.Notice), true, channel(m.Room), ctcpAction(m))
	case chatroom.KindWhisper:
		return appendLine(b, f.source(m.From, m.User, m.Host), privmsg(m.Notice), true, word(m.To), m.Text)
	case chatroom.KindJoin:
		return appendLine(b, f.source(m.From, m.User, m.Host), "JOIN", false, channel(m.Room))
	case chatroom.KindPart:
		if m.Text == "" {
			return appendLine(b, f.source(m.From, m.User, m.Host), "PART", false, channel(m.Room))
		}
		return appendLine(b, f.source(m.From, m.User, m.Host), "PART", true, channel(m.Room), m.Text)
	case chatroom.KindKick:
		return appendLine(b, f.source(m.By, m.User, m.Host), "KICK", true, channel(m.Room), word(m.From), kickReason(m))
	case chatroom.KindQuit:
		return appendLine(b, f.source(m.From, m.User, m.Host), "QUIT", true, quitText(m.Reason, m.Text))
	case chatroom.KindNick:
		return appendLine(b, f.source(m.Old, m.User, m.Host), "NICK", false, word(m.From))
	case chatroom.KindTopic:
		return appendLine(b, f.source(m.By, m.User, m.Host), "TOPIC", true, channel(m.Room), m.Text)
	case chatroom.KindMode:
		if m.From != "" {
			return appendLine(b, f.source(m.By, m.User, m.Host), "MODE", false, channel(m.Room), m.Text, word(m.From))
		}
		return appendLine(b, f.source(m.By, m.User, m.Host), "MODE", false, channel(m.Room), m.Text)
	case chatroom.KindAnnounce:
		return appendLine(b, f.serverName, "NOTICE", true, noticeTarget(m.Room), m.Text)
	case chatroom.KindSummary:
		return appendLine(b, f.serverName, "NOTICE", true, channel(m.Room),
			strconv.Itoa(m.Joined)+" joined, "+strconv.Itoa(m.Left)+" left")
	case chatroom.KindGap:
		return appendLine(b, f.serverName, "NOTICE", true, channel(m.Room),
			"You missed more lines than the history keeps; the last ones follow")
	case chatroom.KindError:
		return appendLine(b, f.serverName, "NOTICE", true, "*", m.Text)
	case chatroom.KindBye:
		if text := byeText(m.Reason, m.Text); text != "" {
			return appendLine(b[:0], "", "ERROR", true, "Closing link ("+text+")")
		}
	}
	return nil
}

// tags appends the message's tags for the form's capabilities, if any:
// server-time's time, and with message-tags the line's msgid.
func (fm form) tags(b []byte, m *chatroom.Message) []byte {
	withTime := fm.caps&capServerTime != 0 && !m.Time.IsZero()
	withID := fm.caps&capMessageTags != 0 && m.ID != 0
	if !withTime && !withID {
		return b
	}
	b = append(b, '@')
	if withTime {
		b = append(b, "time="...)
		b = m.Time.UTC().AppendFormat(b, timeTagLayout)
	}
	if withID {
		if withTime {
			b = append(b, ';')
		}
		b = append(b, "msgid="...)
		b = strconv.AppendUint(b, m.ID, 10)
	}
	return append(b, ' ')
}

// timeTagLayout is server-time's: UTC, with milliseconds.
const timeTagLayout = "2006-01-02T15:04:05.000Z"

// privmsg is the command of a line said: NOTICE for a notice.
func privmsg(notice bool) string {
	if notice {
		return "NOTICE"
	}
	return "PRIVMSG"
}

// ctcpAction is the text of a line said: a /me as CTCP ACTION.
func ctcpAction(m *chatroom.Message) string {
	if m.Kind == chatroom.KindAction {
		return "\x01ACTION " + m.Text + "\x01"
	}
	return m.Text
}

// channel is the IRC name of the room called room.
func channel(room string) string { return "#" + room }

// noticeTarget is where a program's notice goes: the room's channel, or
// everyone ("*") for a notice to the whole hub.
func noticeTarget(room string) string {
	if room == "" {
		return "*"
	}
	return channel(room)
}

// kickReason is a KICK's comment: the kicker's name when it gave none.
func kickReason(m *chatroom.Message) string {
	if m.Text == "" {
		return m.By
	}
	return m.Text
}

// quitText is what others are told of a client that left the hub for
// reason, with text: its QUIT words, or a kick's reason.
func quitText(reason chatroom.LeaveReason, text string) string {
	switch reason {
	case chatroom.ReasonExit:
		if text == "" {
			return "Quit"
		}
		return "Quit: " + text
	case chatroom.ReasonDisconnect:
		return "Connection closed"
	case chatroom.ReasonIdle:
		return "Idle timeout"
	case chatroom.ReasonSlow:
		return "Too slow (outbox full)"
	case chatroom.ReasonKicked:
		if text == "" {
			return "Kicked"
		}
		return "Kicked: " + text
	case chatroom.ReasonShutdown, chatroom.ReasonClosed:
		return "Server shutting down"
	}
	return upperFirst(reason.String())
}

// byeText is why a client's connection closes, for its last line (ERROR),
// or "" for no last line: a client that hung up reads none.
func byeText(reason chatroom.LeaveReason, text string) string {
	switch reason {
	case chatroom.ReasonDisconnect, chatroom.ReasonNone:
		return ""
	case chatroom.ReasonRefused:
		return text
	}
	return quitText(reason, text)
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// source is IRC's nick!user@host for a client of the hub: a user name
// the hub does not know (a peer's client) is the nick's, a host it does
// not know the server's.
func (f *Face) source(nick, user, host string) string {
	nick = word(nick)
	if user == "" {
		user = nick
	}
	return nick + "!" + word(user) + "@" + f.hostParam(host)
}

// word makes a name one IRC word, which it nearly always is already: a
// name or user name the hub took from elsewhere than IRC (an auth hook's
// answer) may hold spaces, "!" or "@", or start with ":", and would
// otherwise break the line it is written in. Each such byte becomes "_".
func word(s string) string {
	if s != "" && s[0] != ':' && !strings.ContainsAny(s, " !@") {
		return s
	}
	if s == "" {
		return "*"
	}
	b := []byte(s)
	for i, c := range b {
		if c == ' ' || c == '!' || c == '@' || i == 0 && c == ':' {
			b[i] = '_'
		}
	}
	return string(b)
}

// hostParam is a client's host as IRC may carry it: one word that does
// not start with ":" (an IPv6 address such as "::1" is written "0::1"),
// or the server's name for none.
func (f *Face) hostParam(host string) string {
	switch {
	case host == "":
		return f.serverName
	case host[0] == ':':
		host = "0" + host
	}
	if strings.ContainsAny(host, " !@") {
		host = strings.Map(func(r rune) rune {
			if r == ' ' || r == '!' || r == '@' {
				return '-'
			}
			return r
		}, host)
	}
	return host
}

// timestamp is a time as IRC's numerics carry it: Unix seconds.
func timestamp(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
