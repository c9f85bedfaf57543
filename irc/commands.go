package irc

import (
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/chatroom-go/chatroom"
)

// This file is the IRC commands: one table, one row per command (as
// Ergo's irc/commands.go), with what it needs and what HELP says of it,
// then the commands, in the table's order.

// command is one row of the command table.
type command struct {
	run       func(s *session, m *message)
	minParams int    // fewer parameters: 461
	preReg    bool   // may be sent before registration; others get 451
	args      string // its parameters, for HELP
	help      string // what it does, for HELP
}

// commands is the command table, by command name; init fills it, since
// HELP reads it.
var commands map[string]*command

// commandNames is the table's names, sorted, for HELP.
var commandNames []string

func init() {
	commands = map[string]*command{
		"AWAY":     {run: (*session).away, args: "[<text>]", help: "Mark yourself away with <text>, or back without."},
		"CAP":      {run: (*session).cap, minParams: 1, preReg: true, args: "LS [302] | LIST | REQ <caps> | END", help: "Negotiate capabilities: server-time, message-tags, echo-message, multi-prefix, userhost-in-names."},
		"HELP":     {run: (*session).helpCmd, preReg: true, args: "[<command>]", help: "List the commands, or say what one does."},
		"HELPOP":   {run: (*session).helpCmd, preReg: true, args: "[<command>]", help: "The same as HELP."},
		"ISON":     {run: (*session).ison, minParams: 1, args: "<nick> {<nick>}", help: "Say which of the nicks are online."},
		"JOIN":     {run: (*session).join, minParams: 1, args: "<channel>{,<channel>} [<key>{,<key>}]", help: "Enter channels (rooms), opening them if need be; whoever opens one is its operator. JOIN 0 leaves every channel. Keys are ignored."},
		"KICK":     {run: (*session).kick, minParams: 2, args: "<channel>{,<channel>} <nick>{,<nick>} [<reason>]", help: "Put people out of a channel, as its operator."},
		"LIST":     {run: (*session).list, args: "[<channel>|<mask>|!<mask>|<N|>N{,...}]", help: "List the channels with people in them: all, those named or matching a mask, not matching !mask, with fewer (<N) or more (>N) people."},
		"LUSERS":   {run: (*session).lusersCmd, args: "", help: "Count the users and channels."},
		"MODE":     {run: (*session).mode, minParams: 1, args: "<channel> [+|-]ostv [<nick>...] | <nick> [+|-]i", help: "Show or change a channel's modes (o operator, v voice, t topic locked to operators, s secret), or your own (i invisible)."},
		"MOTD":     {run: (*session).motdCmd, args: "", help: "Show the message of the day."},
		"NAMES":    {run: (*session).names, args: "[<channel>{,<channel>}]", help: "List who is in channels."},
		"NICK":     {run: (*session).nickCmd, minParams: 1, preReg: true, args: "<nick>", help: "Take a nick: 1 to 32 letters, digits and _-.[], unique across the server."},
		"NOTICE":   {run: (*session).notice, args: "<target>{,<target>} <text>", help: "As PRIVMSG, asking for no automatic reply; never answered with an error."},
		"OPER":     {run: (*session).oper, minParams: 2, args: "<name> <password>", help: "Become an operator of the server."},
		"PART":     {run: (*session).part, minParams: 1, args: "<channel>{,<channel>} [<reason>]", help: "Leave channels."},
		"PASS":     {run: (*session).passCmd, minParams: 1, preReg: true, args: "<password>", help: "Give the server's password, before NICK and USER."},
		"PING":     {run: (*session).ping, minParams: 1, preReg: true, args: "<token>", help: "Ask for a PONG with <token>."},
		"PONG":     {run: (*session).pong, preReg: true, args: "<token>", help: "Answer a PING."},
		"PRIVMSG":  {run: (*session).privmsg, args: "<target>{,<target>} <text>", help: "Say <text> in a channel, or to a nick alone; \\x01ACTION text\\x01 is /me."},
		"QUIT":     {run: (*session).quitCmd, preReg: true, args: "[<reason>]", help: "Leave the server."},
		"TAGMSG":   {run: (*session).tagmsg, minParams: 1, args: "<target>", help: "Accepted and dropped: the server carries no client tags."},
		"TOPIC":    {run: (*session).topic, minParams: 1, args: "<channel> [<topic>]", help: "Show a channel's topic, or set it (\"\" clears it)."},
		"USER":     {run: (*session).userCmd, minParams: 4, preReg: true, args: "<user> 0 * <real name>", help: "Give your user name and real name, to register."},
		"USERHOST": {run: (*session).userhost, minParams: 1, args: "<nick> {<nick>}", help: "Show up to 5 nicks' user@host."},
		"VERSION":  {run: (*session).version, args: "", help: "Show the server's version and what it supports."},
		"WHO":      {run: (*session).who, args: "[<channel>|<mask> [o][%<fields>[,<token>]]]", help: "List the people in a channel, or matching a mask (WHOX fields: tcuihsnfdlaor)."},
		"WHOIS":    {run: (*session).whois, minParams: 1, args: "[<server>] <nick>", help: "Describe a nick."},
	}
	for name := range commands {
		commandNames = append(commandNames, name)
	}
	sort.Strings(commandNames)
}

// isChannel reports whether target names a channel: channels start with
// "#" (CHANTYPES=#).
func isChannel(target string) bool { return strings.HasPrefix(target, "#") }

// exists reports whether the channel is open (and, if secret, the client
// is in it): it tells 403 from 442 and 404.
func (s *session) exists(ch string) bool {
	_, err := s.c.Room(ch)
	return err == nil
}

// notHere answers an action on a channel the client is not in: 442 if it
// is open, 403 if not.
func (s *session) notHere(ch string) {
	if isChannel(ch) && s.exists(ch) {
		s.num(errNotOnChannel, ch, "You're not on that channel")
	} else {
		s.num(errNoSuchChannel, ch, "No such channel")
	}
}

// --- Channels ---------------------------------------------------------

func (s *session) join(m *message) {
	if m.params[0] == "0" {
		info, err := s.c.Lookup(s.nick)
		if err != nil {
			return
		}
		for _, room := range info.Rooms {
			s.c.Part(room, "")
		}
		return
	}
	for _, ch := range strings.Split(m.params[0], ",") {
		if !isChannel(ch) {
			s.num(errNoSuchChannel, ch, "No such channel")
			continue
		}
		s.flush()
		switch err := s.c.Join(ch, 0); {
		case err == nil:
			s.joined(ch)
		case errors.Is(err, chatroom.ErrInvalidName):
			s.num(errNoSuchChannel, ch, "No such channel")
		case errors.Is(err, chatroom.ErrTooManyRooms):
			s.num(errTooManyChannels, ch, "Too many channels are open")
		case errors.Is(err, chatroom.ErrAlreadyInRoom):
		case errors.Is(err, chatroom.ErrRoomClosed):
			return
		}
	}
}

// joined tells a client that joined ch what IRC clients expect after the
// JOIN echo: the topic, if any, and who is there.
func (s *session) joined(ch string) {
	info, err := s.c.Room(ch)
	if err != nil {
		return
	}
	name := channel(info.Name)
	if info.Topic != "" {
		s.num(rplTopic, name, info.Topic)
		s.num(rplTopicWhoTime, name, info.TopicBy, timestamp(info.TopicAt))
	}
	s.namesOf(ch)
	s.num(rplEndOfNames, name, "End of /NAMES list")
}

func (s *session) part(m *message) {
	for _, ch := range strings.Split(m.params[0], ",") {
		if !isChannel(ch) {
			s.num(errNoSuchChannel, ch, "No such channel")
			continue
		}
		s.flush()
		if err := s.c.Part(ch, m.param(1)); errors.Is(err, chatroom.ErrNotInRoom) {
			s.notHere(ch)
		}
	}
}

func (s *session) names(m *message) {
	if len(m.params) == 0 || m.params[0] == "" {
		s.num(rplEndOfNames, "*", "End of /NAMES list")
		return
	}
	for _, ch := range strings.Split(m.params[0], ",") {
		s.namesOf(ch)
	}
	s.num(rplEndOfNames, m.params[0], "End of /NAMES list")
}

// namesOf writes 353 for the channel ch, as many as its names take, or
// nothing for a channel that is not open (or is secret, and the client is
// not in it). Invisible members are left out for a client not in it.
func (s *session) namesOf(ch string) {
	if !isChannel(ch) {
		return
	}
	info, err := s.c.Room(ch)
	if err != nil {
		return
	}
	members, _, err := s.c.Members(ch, 0)
	if err != nil {
		return
	}
	in := false
	for _, mb := range members {
		if foldEqual(mb.Name, s.nick) {
			in = true
			break
		}
	}
	var infos map[string]chatroom.ClientInfo
	if !in || s.caps&capUserhostInNames != 0 {
		if infos, err = s.clients(ch); err != nil {
			return
		}
	}
	symbol := "="
	if info.Secret {
		symbol = "@"
	}
	name := channel(info.Name)
	prefix := ":" + s.face.serverName + " " + rplNamReply + " " + s.nick + " " + symbol + " " + name + " :"
	line := []byte(prefix)
	for _, mb := range members {
		ci, known := infos[lowerASCII(mb.Name)]
		if !in && known && ci.Invisible {
			continue
		}
		entry := s.prefixes(mb) + word(mb.Name)
		if s.caps&capUserhostInNames != 0 && known {
			entry += "!" + word(ci.User) + "@" + s.face.hostParam(ci.Host)
		}
		if len(line) > len(prefix) && len(line)+1+len(entry) > maxLine {
			s.out = append(append(s.out, line...), '\r', '\n')
			line = []byte(prefix)
		}
		if len(line) > len(prefix) {
			line = append(line, ' ')
		}
		line = append(line, entry...)
	}
	if len(line) > len(prefix) {
		s.out = append(append(s.out, line...), '\r', '\n')
	}
}

// maxLine is the longest line the face writes where it has a choice (353,
// 319), without its "\r\n": IRC's 512 bytes.
const maxLine = 510

// clients describes the members of the channel ch (or of the hub for
// ""), by their names in lower case.
func (s *session) clients(ch string) (map[string]chatroom.ClientInfo, error) {
	list, err := s.c.Clients(ch)
	if err != nil {
		return nil, err
	}
	infos := make(map[string]chatroom.ClientInfo, len(list))
	for _, ci := range list {
		infos[lowerASCII(ci.Name)] = ci
	}
	return infos, nil
}

// prefixes is a member's prefix in NAMES and WHO: "@" for an operator,
// "+" for a voiced member, both with multi-prefix.
func (s *session) prefixes(mb chatroom.Member) string {
	switch {
	case mb.Operator && mb.Voiced && s.caps&capMultiPrefix != 0:
		return "@+"
	case mb.Operator:
		return "@"
	case mb.Voiced:
		return "+"
	}
	return ""
}

func (s *session) topic(m *message) {
	ch := m.params[0]
	if !isChannel(ch) {
		s.num(errNoSuchChannel, ch, "No such channel")
		return
	}
	if len(m.params) == 1 {
		info, err := s.c.Room(ch)
		switch {
		case err != nil:
			s.num(errNoSuchChannel, ch, "No such channel")
		case info.Topic == "":
			s.num(rplNoTopic, channel(info.Name), "No topic is set")
		default:
			s.num(rplTopic, channel(info.Name), info.Topic)
			s.num(rplTopicWhoTime, channel(info.Name), info.TopicBy, timestamp(info.TopicAt))
		}
		return
	}
	s.flush()
	switch err := s.c.SetTopic(ch, m.params[1]); {
	case errors.Is(err, chatroom.ErrNotInRoom):
		s.notHere(ch)
	case errors.Is(err, chatroom.ErrNotAllowed):
		s.num(errChanOPrivsNeeded, ch, "You're not channel operator")
	}
}

func (s *session) kick(m *message) {
	chans, nicks := strings.Split(m.params[0], ","), strings.Split(m.params[1], ",")
	if len(chans) != 1 && len(chans) != len(nicks) {
		s.num(errNeedMoreParams, "KICK", "Not enough parameters")
		return
	}
	for i, nick := range nicks {
		ch := chans[0]
		if len(chans) > 1 {
			ch = chans[i]
		}
		if !isChannel(ch) {
			s.num(errNoSuchChannel, ch, "No such channel")
			continue
		}
		s.flush()
		switch err := s.c.Kick(ch, nick, m.param(2)); {
		case errors.Is(err, chatroom.ErrNotInRoom):
			s.notHere(ch)
		case errors.Is(err, chatroom.ErrNotAllowed):
			s.num(errChanOPrivsNeeded, ch, "You're not channel operator")
		case errors.Is(err, chatroom.ErrNoSuchClient):
			s.num(errUserNotInChannel, nick, ch, "They aren't on that channel")
		}
	}
}

func (s *session) mode(m *message) {
	if isChannel(m.params[0]) {
		s.channelMode(m)
	} else {
		s.userMode(m)
	}
}

// channelMode shows a channel's modes, or changes them: +o, +v, +t, +s,
// each through the hub, which tells the members. The ban, exception and
// invite lists are always empty; other modes are unknown (472).
func (s *session) channelMode(m *message) {
	ch := m.params[0]
	if len(m.params) == 1 {
		info, err := s.c.Room(ch)
		if err != nil {
			s.num(errNoSuchChannel, ch, "No such channel")
			return
		}
		modes := "+"
		if info.Secret {
			modes += "s"
		}
		if info.TopicLocked {
			modes += "t"
		}
		s.num(rplChannelModeIs, channel(info.Name), modes)
		s.num(rplCreationTime, channel(info.Name), timestamp(info.Opened))
		return
	}
	args := m.params[2:]
	next := func() (string, bool) {
		if len(args) == 0 {
			return "", false
		}
		a := args[0]
		args = args[1:]
		return a, true
	}
	sign := byte(0)
	for i := 0; i < len(m.params[1]); i++ {
		c := m.params[1][i]
		switch c {
		case '+', '-':
			sign = c
		case 't', 's', 'o', 'v':
			nick := ""
			if c == 'o' || c == 'v' {
				var ok bool
				if nick, ok = next(); !ok {
					continue
				}
			}
			if sign == 0 {
				sign = '+'
			}
			if !s.setMode(ch, string([]byte{sign, c}), nick) {
				return
			}
		case 'b', 'e', 'I':
			if _, ok := next(); ok && sign != 0 {
				s.num(errUnknownMode, string(c), "is unknown mode char to me")
				continue
			}
			end := map[byte][2]string{
				'b': {rplEndOfBanList, "End of channel ban list"},
				'e': {rplEndOfExceptList, "End of channel exception list"},
				'I': {rplEndOfInviteList, "End of channel invite list"},
			}[c]
			s.num(end[0], ch, end[1])
		case 'k', 'l':
			if sign != '-' || c == 'k' {
				next()
			}
			s.num(errUnknownMode, string(c), "is unknown mode char to me")
		default:
			s.num(errUnknownMode, string(c), "is unknown mode char to me")
		}
	}
}

// setMode changes one mode of ch through the hub, and reports whether
// the next may be tried.
func (s *session) setMode(ch, mode, nick string) bool {
	s.flush()
	switch err := s.c.SetMode(ch, mode, nick); {
	case errors.Is(err, chatroom.ErrNotInRoom):
		s.notHere(ch)
		return false
	case errors.Is(err, chatroom.ErrNotAllowed):
		s.num(errChanOPrivsNeeded, ch, "You're not channel operator")
		return false
	case errors.Is(err, chatroom.ErrNoSuchClient):
		s.num(errUserNotInChannel, nick, ch, "They aren't on that channel")
	case errors.Is(err, chatroom.ErrUnknownMode):
		s.num(errUnknownMode, mode[1:], "is unknown mode char to me")
	case errors.Is(err, chatroom.ErrRoomClosed):
		return false
	}
	return true
}

// userMode shows the client's own modes, or changes them: +i and -i
// (invisible), and -o (an operator no longer).
func (s *session) userMode(m *message) {
	target := m.params[0]
	if !foldEqual(target, s.nick) {
		if _, err := s.c.Lookup(target); err != nil {
			s.num(errNoSuchNick, target, "No such nick/channel")
		} else {
			s.num(errUsersDontMatch, "Can't change mode for other users")
		}
		return
	}
	info, err := s.c.Lookup(s.nick)
	if err != nil {
		return
	}
	if len(m.params) == 1 {
		modes := "+"
		if info.Invisible {
			modes += "i"
		}
		if info.Operator {
			modes += "o"
		}
		s.num(rplUModeIs, modes)
		return
	}
	sign, changed, unknown := byte('+'), "", false
	for i := 0; i < len(m.params[1]); i++ {
		switch c := m.params[1][i]; {
		case c == '+' || c == '-':
			sign = c
		case c == 'i':
			if on := sign == '+'; on != info.Invisible {
				s.c.SetInvisible(on)
				info.Invisible = on
				changed += string([]byte{sign, c})
			}
		case c == 'o':
			if sign == '-' && info.Operator {
				s.c.SetOperator(false)
				info.Operator = false
				changed += "-o"
			}
		default:
			unknown = true
		}
	}
	if changed != "" {
		s.out = appendLine(s.out, s.source(), "MODE", true, s.nick, changed)
	}
	if unknown {
		s.num(errUModeUnknownFlag, "Unknown MODE flag")
	}
}

func (s *session) list(m *message) {
	var names, masks, notMasks []string
	minUsers, maxUsers := -1, -1
	if arg := m.param(0); arg != "" {
		for _, item := range strings.Split(arg, ",") {
			switch {
			case strings.HasPrefix(item, ">"):
				if n, err := strconv.Atoi(item[1:]); err == nil {
					minUsers = max(minUsers, n)
				}
			case strings.HasPrefix(item, "<"):
				if n, err := strconv.Atoi(item[1:]); err == nil && (maxUsers < 0 || n < maxUsers) {
					maxUsers = n
				}
			case strings.HasPrefix(item, "!"):
				notMasks = append(notMasks, item[1:])
			case isMask(item):
				masks = append(masks, item)
			case item != "":
				names = append(names, item)
			}
		}
	}
	s.num(rplListStart, "Channel", "Users  Name")
	for _, r := range s.c.Rooms() {
		name := channel(r.Name)
		if r.Clients == 0 || minUsers >= 0 && r.Clients <= minUsers || maxUsers >= 0 && r.Clients >= maxUsers {
			continue
		}
		if (len(names) > 0 || len(masks) > 0) && !matchesAny(name, names, masks) {
			continue
		}
		if matchesAny(name, nil, notMasks) {
			continue
		}
		s.num(rplList, name, strconv.Itoa(r.Clients), r.Topic)
	}
	s.num(rplListEnd, "End of /LIST")
}

// matchesAny reports whether the channel name is one of names, or matches
// one of masks.
func matchesAny(name string, names, masks []string) bool {
	for _, n := range names {
		if foldEqual(n, name) {
			return true
		}
	}
	for _, p := range masks {
		if mask(p, name) {
			return true
		}
	}
	return false
}

// --- Messages ---------------------------------------------------------

func (s *session) privmsg(m *message) { s.say(m, false) }
func (s *session) notice(m *message)  { s.say(m, true) }

// maxTargets is how many targets PRIVMSG and NOTICE take (TARGMAX).
const maxTargets = 4

// say is PRIVMSG and NOTICE: a NOTICE is never answered with an error.
func (s *session) say(m *message, notice bool) {
	command := privmsg(notice)
	switch {
	case m.param(0) == "":
		if !notice {
			s.num(errNoRecipient, "No recipient given ("+command+")")
		}
		return
	case m.param(1) == "":
		if !notice {
			s.num(errNoTextToSend, "No text to send")
		}
		return
	}
	targets := strings.Split(m.params[0], ",")
	if len(targets) > maxTargets {
		if !notice {
			s.num(errTooManyTargets, m.params[0], "Too many targets")
		}
		return
	}
	for _, t := range targets {
		s.sayTo(t, m.params[1], notice)
	}
}

// sayTo says text to one target, a channel or a nick.
func (s *session) sayTo(target, text string, notice bool) {
	action, isCTCP := ctcp(text)
	if isCTCP && action == "" {
		return // a CTCP request other than ACTION: the hub cannot carry it
	}
	if isChannel(target) {
		s.flush()
		var err error
		switch {
		case isCTCP:
			err = s.c.Act(target, action)
		case notice:
			err = s.c.Notice(target, text)
		default:
			err = s.c.Say(target, text)
		}
		switch {
		case err == nil || notice:
		case errors.Is(err, chatroom.ErrNotInRoom):
			if s.exists(target) {
				s.num(errCannotSendToChan, target, "Cannot send to channel")
			} else {
				s.num(errNoSuchChannel, target, "No such channel")
			}
		case errors.Is(err, chatroom.ErrRejected):
			s.num(errCannotSendToChan, target, "Cannot send to channel (message rejected)")
		}
		return
	}
	away := ""
	if !notice {
		info, err := s.c.Lookup(target)
		if err != nil {
			s.num(errNoSuchNick, target, "No such nick/channel")
			return
		}
		target, away = info.Name, info.Away
	}
	if isCTCP {
		text = "* " + s.nick + " " + action // a whisper carries no ACTION
	}
	s.flush()
	switch err := s.c.Whisper(target, text, notice); {
	case err == nil:
		if away != "" {
			s.num(rplAway, word(target), away)
		}
	case notice:
	case errors.Is(err, chatroom.ErrNoSuchClient):
		s.num(errNoSuchNick, target, "No such nick/channel")
	case errors.Is(err, chatroom.ErrRejected):
		s.num(errCannotSendToChan, target, "Cannot send (message rejected)")
	}
}

// ctcp reads a CTCP message (text between \x01): it reports whether text
// is one, and for an ACTION its text ("" for another request).
func ctcp(text string) (action string, isCTCP bool) {
	if !strings.HasPrefix(text, "\x01") {
		return "", false
	}
	body := strings.TrimSuffix(text[1:], "\x01")
	if rest, ok := strings.CutPrefix(body, "ACTION "); ok && strings.TrimSpace(rest) != "" {
		return rest, true
	}
	return "", true
}

func (s *session) tagmsg(*message) {}

// --- Users ------------------------------------------------------------

func (s *session) who(m *message) {
	target := m.param(0)
	if target == "" {
		target = "*"
	}
	opts, fields, token := m.param(1), "", ""
	if i := strings.IndexByte(opts, '%'); i >= 0 {
		fields, token, _ = strings.Cut(opts[i+1:], ",")
		opts = opts[:i]
	}
	operOnly := strings.Contains(opts, "o")
	w := whoQuery{fields: fields, token: token, whox: strings.Contains(m.param(1), "%")}
	pick := func(ci chatroom.ClientInfo) bool { return !operOnly || ci.Operator }

	switch {
	case isChannel(target):
		info, err := s.c.Room(target)
		if err != nil {
			break
		}
		members, _, err := s.c.Members(target, 0)
		if err != nil {
			break
		}
		infos, err := s.clients(target)
		if err != nil {
			break
		}
		in := false
		for _, mb := range members {
			in = in || foldEqual(mb.Name, s.nick)
		}
		for _, mb := range members {
			ci, ok := infos[lowerASCII(mb.Name)]
			if !ok || ci.Invisible && !in || !pick(ci) {
				continue
			}
			s.whoReply(w, channel(info.Name), ci, s.prefixes(mb))
		}
	case !isMask(target) && target != "0":
		if ci, err := s.c.Lookup(target); err == nil && pick(ci) {
			s.whoReply(w, "*", ci, "")
		}
	default:
		list, err := s.c.Clients("")
		if err != nil {
			break
		}
		mine := map[string]bool{}
		for _, ci := range list {
			if foldEqual(ci.Name, s.nick) {
				for _, r := range ci.Rooms {
					mine[lowerASCII(r)] = true
				}
			}
		}
		all := target == "*" || target == "0"
		for _, ci := range list {
			if !all && !mask(target, ci.Name) && !mask(target, ci.Host) && !mask(target, ci.User) && !mask(target, ci.RealName) {
				continue
			}
			if ci.Invisible && !foldEqual(ci.Name, s.nick) && !shares(mine, ci.Rooms) || !pick(ci) {
				continue
			}
			s.whoReply(w, "*", ci, "")
		}
	}
	s.num(rplEndOfWho, target, "End of WHO list")
}

// shares reports whether one of rooms is in mine (names in lower case).
func shares(mine map[string]bool, rooms []string) bool {
	for _, r := range rooms {
		if mine[lowerASCII(r)] {
			return true
		}
	}
	return false
}

// whoQuery is what a WHO asked to be told: the classic 352, or WHOX's
// fields (354) and token.
type whoQuery struct {
	whox          bool
	fields, token string
}

// whoxOrder is the order of WHOX's fields in 354, whatever the order
// asked.
const whoxOrder = "tcuihsnfdlaor"

// whoReply writes one WHO reply: ci, in the channel ch ("*" for none),
// with its prefix there.
func (s *session) whoReply(w whoQuery, ch string, ci chatroom.ClientInfo, prefix string) {
	f := s.face
	flags := "H"
	if ci.Away != "" {
		flags = "G"
	}
	if ci.Operator {
		flags += "*"
	}
	flags += prefix
	host := f.hostParam(ci.Host)
	if !w.whox {
		s.num(rplWhoReply, ch, word(ci.User), host, f.serverName, word(ci.Name), flags, "0 "+ci.RealName)
		return
	}
	params := make([]string, 0, len(whoxOrder))
	for i := 0; i < len(whoxOrder); i++ {
		c := whoxOrder[i]
		if strings.IndexByte(w.fields, c) < 0 {
			continue
		}
		var v string
		switch c {
		case 't':
			v = cmpOr(w.token, "0")
		case 'c':
			v = ch
		case 'u':
			v = word(ci.User)
		case 'i':
			v = "255.255.255.255"
			if ip := ci.Host; ip != "" && strings.Trim(ip, "0123456789abcdefABCDEF.:") == "" {
				v = host
			}
		case 'h':
			v = host
		case 's':
			v = f.serverName
		case 'n':
			v = word(ci.Name)
		case 'f':
			v = flags
		case 'd':
			v = "0"
		case 'l':
			v = "0" // the hub does not tell how long a client has been idle
		case 'a':
			v = "0" // no accounts
		case 'o':
			v = "n/a"
		case 'r':
			v = ci.RealName
		}
		params = append(params, v)
	}
	s.num(rplWhoSpcRpl, params...)
}

func (s *session) whois(m *message) {
	target := m.params[len(m.params)-1]
	target, _, _ = strings.Cut(target, ",")
	ci, err := s.c.Lookup(target)
	if err != nil {
		s.num(errNoSuchNick, target, "No such nick/channel")
		s.num(rplEndOfWhois, target, "End of /WHOIS list")
		return
	}
	f := s.face
	name := word(ci.Name)
	s.num(rplWhoisUser, name, word(ci.User), f.hostParam(ci.Host), "*", ci.RealName)
	if chans := s.channelsOf(ci); len(chans) > 0 {
		prefix := ":" + f.serverName + " " + rplWhoisChannels + " " + s.nick + " " + name + " :"
		line := []byte(prefix)
		for _, ch := range chans {
			if len(line) > len(prefix) && len(line)+1+len(ch) > maxLine {
				s.out = append(append(s.out, line...), '\r', '\n')
				line = []byte(prefix)
			}
			if len(line) > len(prefix) {
				line = append(line, ' ')
			}
			line = append(line, ch...)
		}
		s.out = append(append(s.out, line...), '\r', '\n')
	}
	s.num(rplWhoisServer, name, f.serverName, f.network)
	if ci.Away != "" {
		s.num(rplAway, name, ci.Away)
	}
	if ci.Operator {
		s.num(rplWhoisOperator, name, "is an IRC operator")
	}
	s.num(rplEndOfWhois, name, "End of /WHOIS list")
}

// channelsOf lists the channels ci is in that the client may see, each
// with ci's prefix there: a secret one only if the client is in it too,
// and, for an invisible ci, only those the two share.
func (s *session) channelsOf(ci chatroom.ClientInfo) []string {
	if len(ci.Rooms) == 0 {
		return nil
	}
	visible := map[string]bool{}
	for _, r := range s.c.Rooms() {
		visible[lowerASCII(r.Name)] = true
	}
	mine := map[string]bool{}
	if ci.Invisible && !foldEqual(ci.Name, s.nick) {
		if me, err := s.c.Lookup(s.nick); err == nil {
			for _, r := range me.Rooms {
				mine[lowerASCII(r)] = true
			}
		}
	}
	var chans []string
	for _, room := range ci.Rooms {
		key := lowerASCII(room)
		if !visible[key] || ci.Invisible && !foldEqual(ci.Name, s.nick) && !mine[key] {
			continue
		}
		prefix := ""
		if members, _, err := s.c.Members(room, 0); err == nil {
			for _, mb := range members {
				if foldEqual(mb.Name, ci.Name) {
					prefix = s.prefixes(mb)
					break
				}
			}
		}
		chans = append(chans, prefix+channel(room))
	}
	return chans
}

func (s *session) userhost(m *message) {
	var found []string
	for _, nick := range m.params[:min(5, len(m.params))] {
		ci, err := s.c.Lookup(nick)
		if err != nil {
			continue
		}
		entry := word(ci.Name)
		if ci.Operator {
			entry += "*"
		}
		if ci.Away != "" {
			entry += "=-"
		} else {
			entry += "=+"
		}
		found = append(found, entry+word(ci.User)+"@"+s.face.hostParam(ci.Host))
	}
	s.out = appendLine(s.out, s.face.serverName, rplUserHost, true, s.nick, strings.Join(found, " "))
}

func (s *session) ison(m *message) {
	var found []string
	for _, p := range m.params {
		for _, nick := range strings.Fields(p) {
			if ci, err := s.c.Lookup(nick); err == nil {
				found = append(found, word(ci.Name))
			}
		}
	}
	s.out = appendLine(s.out, s.face.serverName, rplIsOn, true, s.nick, strings.Join(found, " "))
}

func (s *session) away(m *message) {
	text := m.param(0)
	s.c.SetAway(text)
	if text == "" {
		s.num(rplUnAway, "You are no longer marked as being away")
	} else {
		s.num(rplNowAway, "You have been marked as being away")
	}
}

func (s *session) oper(m *message) {
	switch {
	case len(s.face.Operators) == 0:
		s.num(errNoOperHost, "No O-lines for your host")
	case !s.face.oper(m.params[0], m.params[1]):
		s.num(errPasswdMismatch, "Password incorrect")
	default:
		if err := s.c.SetOperator(true); err != nil {
			return
		}
		s.num(rplYoureOper, "You are now an IRC operator")
		s.out = appendLine(s.out, s.source(), "MODE", true, s.nick, "+o")
	}
}

// --- The server -------------------------------------------------------

func (s *session) ping(m *message) {
	s.flush() // after what the client said: it syncs with PING
	s.out = appendLine(s.out, s.face.serverName, "PONG", true, s.face.serverName, m.params[0])
}

func (s *session) pong(*message) {}

func (s *session) quitCmd(m *message) {
	text := m.param(0)
	if !s.reg {
		s.quit("Quit: " + text)
		return
	}
	s.flush()
	s.c.Quit(text)
}

func (s *session) lusersCmd(*message) { s.lusers() }
func (s *session) motdCmd(*message)   { s.motd() }

func (s *session) version(*message) {
	s.num(rplVersion, Version, s.face.serverName, "chatroom hub, IRC face")
	s.isupport()
}

// helpCmd is HELP and HELPOP: the commands, or one of them, from the
// command table.
func (s *session) helpCmd(m *message) {
	subject := strings.ToUpper(m.param(0))
	if subject == "" {
		s.num(rplHelpStart, "*", "Commands (HELP <command> for one):")
		for i := 0; i < len(commandNames); i += 8 {
			s.num(rplHelpTxt, "*", strings.Join(commandNames[i:min(i+8, len(commandNames))], " "))
		}
		s.num(rplEndOfHelp, "*", "End of /HELP")
		return
	}
	cmd := commands[subject]
	if cmd == nil {
		s.num(errHelpNotFound, subject, "No help available on this topic")
		return
	}
	s.num(rplHelpStart, subject, strings.TrimSpace(subject+" "+cmd.args))
	s.num(rplHelpTxt, subject, cmd.help)
	s.num(rplEndOfHelp, subject, "End of /HELP")
}
