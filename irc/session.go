package irc

import (
	"errors"
	"strconv"
	"strings"

	"github.com/chatroom-go/chatroom"
)

// This file is one IRC client's session: its registration (NICK, USER,
// PASS, CAP) and how its replies are written. Its commands are
// commands.go's.

// session reads one IRC client's lines; the hub calls it on the client's
// reader, one line at a time, so its fields need no lock.
type session struct {
	face *Face
	c    *chatroom.Client

	nick     string // the client's name once registered; "*" before
	wantNick string // the nick NICK asked for, before registration
	user     string // USER's user name, "~" first (we run no ident lookup)
	realName string // USER's real name
	host     string // the client's host, as the hub knows it (once registered)
	pass     string // PASS's password, for the auth hook
	gotUser  bool   // USER was sent
	capping  bool   // a CAP negotiation began before registration and has not ended (CAP END)
	reg      bool   // registered
	caps     caps   // capabilities enabled
	cap302   bool   // the client asked for CAP LS 302 or later

	out []byte // replies to the line being handled, written by flush
}

// reply appends a line from the server to the client's replies: command,
// then params, the last one trailing where it must be.
func (s *session) reply(command string, params ...string) {
	s.out = appendLine(s.out, s.face.serverName, command, false, params...)
}

// num appends a numeric reply, addressed to the client ("*" before it
// registered); its last parameter is text.
func (s *session) num(code string, params ...string) {
	b := append(s.out, ':')
	b = append(b, s.face.serverName...)
	b = append(b, ' ')
	b = append(b, code...)
	b = append(b, ' ')
	b = append(b, s.nick...)
	for i, p := range params {
		b = append(b, ' ')
		if i == len(params)-1 && (p == "" || p[0] == ':' || strings.IndexByte(p, ' ') >= 0) {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	s.out = append(b, '\r', '\n')
}

// flush hands the replies so far to the hub, in one piece, to be written
// after everything before them. It comes before anything the session
// asks of the hub that writes to the client (a JOIN's echo, a PONG after
// what the client said), so that its replies keep their order.
func (s *session) flush() {
	if len(s.out) > 0 {
		s.c.Reply(s.out)
		s.out = nil
	}
}

// TooLong answers a line longer than the face takes: 417, and the line is
// dropped. See chatroom.Session.
func (s *session) TooLong() {
	s.num(errInputTooLong, "Input line was too long")
	s.flush()
}

// Line handles one line the client sent: it is parsed, and its command
// run from the command table. See chatroom.Session.
func (s *session) Line(line []byte) {
	m, ok := parse(line)
	if !ok {
		return
	}
	defer s.flush()
	if m.tags > maxClientTags {
		s.num(errInputTooLong, "Input line was too long")
		return
	}
	if s.reg {
		s.c.Touch() // every command counts as activity, as the text protocol's do
	}
	cmd := commands[m.command]
	switch {
	case cmd == nil:
		s.num(errUnknownCommand, m.command, "Unknown command")
	case !s.reg && !cmd.preReg:
		s.num(errNotRegistered, "You have not registered")
	case len(m.params) < cmd.minParams:
		s.num(errNeedMoreParams, m.command, "Not enough parameters")
	default:
		cmd.run(s, &m)
	}
}

// setForms gives the client the forms of its capabilities.
func (s *session) setForms() {
	others, own := formsFor(s.face, s.caps)
	s.flush()
	s.c.SetForm(others, own)
}

// source is the client's own nick!user@host.
func (s *session) source() string { return s.face.source(s.nick, s.user, s.host) }

// register registers the client once it has given NICK and USER and
// ended any CAP negotiation, and welcomes it.
func (s *session) register() {
	if s.reg || s.capping || s.wantNick == "" || !s.gotUser {
		return
	}
	s.flush()
	err := s.c.Register(chatroom.Registration{Name: s.wantNick, Password: s.pass, User: s.user, RealName: s.realName})
	switch {
	case err == nil:
	case errors.Is(err, chatroom.ErrNameTaken):
		s.num(errNicknameInUse, s.wantNick, "Nickname is already in use")
		return
	case errors.Is(err, chatroom.ErrInvalidName):
		s.num(errErroneusNickname, s.wantNick, "Erroneous nickname")
		return
	case errors.Is(err, chatroom.ErrRoomClosed):
		s.c.Quit("")
		return
	case errors.Is(err, chatroom.ErrRoomFull):
		s.quit("Server is full")
		return
	default:
		// The auth hook said no (or did not answer), or names cannot be
		// checked now: the hub wrapped its error.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		if s.pass != "" {
			s.num(errPasswdMismatch, "Password incorrect")
		}
		s.quit(err.Error())
		return
	}
	s.reg = true
	s.nick = s.c.Name()
	s.host = s.c.Addr()
	if info, err := s.c.Lookup(s.nick); err == nil {
		s.user, s.host = info.User, info.Host
	}
	s.welcome()
}

// quit ends the client with ERROR: for a client the hub did not take in.
func (s *session) quit(why string) {
	s.out = appendLine(s.out, "", "ERROR", true, "Closing link ("+why+")")
	s.flush()
	s.c.Quit(why)
}

// welcome writes what a client gets on registration, in one piece: 001 to
// 005, LUSERS and the MOTD.
func (s *session) welcome() {
	f := s.face
	s.num(rplWelcome, "Welcome to the "+f.network+" IRC network, "+s.source())
	s.num(rplYourHost, "Your host is "+f.serverName+", running version "+Version)
	s.num(rplCreated, "This server was created "+f.created)
	s.num(rplMyInfo, f.serverName, Version, "io", "ostv", "ov")
	s.isupport()
	s.lusers()
	s.motd()
}

// isupport writes 005: at most 12 tokens a line.
func (s *session) isupport() {
	tokens := s.face.isupport(s.c.Limit())
	for len(tokens) > 0 {
		n := min(12, len(tokens))
		s.num(rplISupport, append(tokens[:n:n], "are supported by this server")...)
		tokens = tokens[n:]
	}
}

// lusers writes LUSERS's answer from the hub's counters.
func (s *session) lusers() {
	st := s.c.Stats()
	users, invisible := strconv.Itoa(st.Clients-st.Invisible), strconv.Itoa(st.Invisible)
	clients, peak := strconv.Itoa(st.Clients), strconv.Itoa(max(st.Peak, st.Clients))
	s.num(rplLuserClient, "There are "+users+" users and "+invisible+" invisible on 1 servers")
	s.num(rplLuserChannels, strconv.Itoa(st.Rooms), "channels formed")
	s.num(rplLuserMe, "I have "+clients+" clients and 0 servers")
	s.num(rplLocalUsers, clients, peak, "Current local users "+clients+", max "+peak)
	s.num(rplGlobalUsers, clients, peak, "Current global users "+clients+", max "+peak)
}

// motd writes the message of the day, or 422.
func (s *session) motd() {
	f := s.face
	if len(f.motd) == 0 {
		s.num(errNoMotd, "MOTD File is missing")
		return
	}
	s.num(rplMotdStart, "- "+f.serverName+" Message of the day - ")
	for _, line := range f.motd {
		s.num(rplMotd, "- "+line)
	}
	s.num(rplEndOfMotd, "End of /MOTD command.")
}

// cap is CAP: LS, LIST, REQ and END (IRCv3 capability negotiation).
func (s *session) cap(m *message) {
	sub := strings.ToUpper(m.params[0])
	switch sub {
	case "LS":
		if !s.reg {
			s.capping = true
		}
		if v, err := strconv.Atoi(m.param(1)); err == nil && v >= 302 {
			s.cap302 = true
		}
		names := make([]string, len(capNames))
		for i, c := range capNames {
			names[i] = c.name
		}
		s.reply("CAP", s.nick, "LS", strings.Join(names, " "))
	case "LIST":
		var names []string
		for _, c := range capNames {
			if s.caps&c.cap != 0 {
				names = append(names, c.name)
			}
		}
		s.out = appendLine(s.out, s.face.serverName, "CAP", true, s.nick, "LIST", strings.Join(names, " "))
	case "REQ":
		if !s.reg {
			s.capping = true
		}
		req := m.param(1)
		next, ok := s.caps, true
		for _, word := range strings.Fields(req) {
			name, off := strings.CutPrefix(word, "-")
			c := capByName(name)
			if c == 0 {
				ok = false
				break
			}
			if off {
				next &^= c
			} else {
				next |= c
			}
		}
		if !ok {
			s.out = appendLine(s.out, s.face.serverName, "CAP", true, s.nick, "NAK", req)
			return
		}
		s.out = appendLine(s.out, s.face.serverName, "CAP", true, s.nick, "ACK", req)
		changed := next&(formCaps|capEchoMessage) != s.caps&(formCaps|capEchoMessage)
		s.caps = next
		if changed {
			s.setForms()
		}
	case "END":
		if !s.reg {
			s.capping = false
			s.register()
		}
	default:
		s.num(errInvalidCapCmd, m.params[0], "Invalid CAP command")
	}
}

// capByName is the capability called name, or 0.
func capByName(name string) caps {
	for _, c := range capNames {
		if c.name == name {
			return c.cap
		}
	}
	return 0
}

// nickCmd is NICK: before registration it names the client to be; after,
// it renames it, hub-wide.
func (s *session) nickCmd(m *message) {
	name := m.params[0]
	if name == "" {
		s.num(errNoNicknameGiven, "No nickname given")
		return
	}
	if !s.reg {
		if !validNick(name) {
			s.num(errErroneusNickname, name, "Erroneous nickname")
			return
		}
		s.wantNick = name
		s.register()
		return
	}
	if name == s.nick {
		return
	}
	s.flush()
	switch err := s.c.Nick(name); {
	case err == nil:
		s.nick = name
	case errors.Is(err, chatroom.ErrNameTaken):
		s.num(errNicknameInUse, name, "Nickname is already in use")
	case errors.Is(err, chatroom.ErrInvalidName):
		s.num(errErroneusNickname, name, "Erroneous nickname")
	case errors.Is(err, chatroom.ErrNotAllowed):
		s.num(errErroneusNickname, name, "Names are set by the server")
	case errors.Is(err, chatroom.ErrRoomClosed):
	default:
		s.num(errNicknameInUse, name, "Nickname cannot be checked now, try again later")
	}
}

// validNick reports whether name is a nick the hub takes: 1 to 32 ASCII
// letters, digits and _-.[] (the hub's rule for names).
func validNick(name string) bool {
	if len(name) == 0 || len(name) > 32 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '-', c == '.', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// userCmd is USER: the user name and real name, before registration.
func (s *session) userCmd(m *message) {
	if s.reg {
		s.num(errAlreadyRegistered, "You may not reregister")
		return
	}
	if m.params[3] == "" {
		s.num(errNeedMoreParams, "USER", "Not enough parameters")
		return
	}
	s.user = "~" + userName(m.params[0])
	s.realName = m.params[3]
	s.gotUser = true
	s.register()
}

// userName is the part of a user name the face keeps: ASCII letters,
// digits and _-., at most maxUser - 1 bytes (room for "~"), or "u" if
// none is left.
func userName(user string) string {
	b := make([]byte, 0, len(user))
	for i := 0; i < len(user) && len(b) < maxUser-1; i++ {
		switch c := user[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-', c == '.':
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "u"
	}
	return string(b)
}

// passCmd is PASS: the password handed to the hub's auth hook.
func (s *session) passCmd(m *message) {
	if s.reg {
		s.num(errAlreadyRegistered, "You may not reregister")
		return
	}
	s.pass = m.params[0]
}
