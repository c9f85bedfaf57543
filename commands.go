package chatroom

import (
	"errors"
	"fmt"
	"strings"
)

// This file is the text protocol's commands: one table, each command a
// row (as ergo's irc/commands.go), so that adding a command is adding a
// row.

// command is one row of the command table.
type command struct {
	name  string                            // the word, "/nick", matched ignoring case
	args  string                            // what follows it, for /help
	help  string                            // what it does, for /help
	rooms bool                              // only in a hub that may have more than one room
	run   func(s *textSession, args string) // args: the rest of the line, trimmed
}

// commandTable is every command, in the order /help lists them.
var commandTable = []command{
	{name: "/nick", args: "NAME", help: "take a name: 1 to 32 letters, digits and _-.[]", run: (*textSession).nick},
	{name: "/who", help: "who is here", run: (*textSession).who},
	{name: "/me", args: "TEXT", help: `say what you do: "* NAME TEXT"`, run: (*textSession).me},
	{name: "/msg", args: "NAME TEXT", help: "whisper to NAME alone", run: (*textSession).msg},
	{name: "/join", args: "ROOM", help: "move to ROOM, opening it if need be", rooms: true, run: (*textSession).join},
	{name: "/rooms", help: "list the open rooms", rooms: true, run: (*textSession).rooms},
	{name: "/quit", help: "leave (so does exit)", run: (*textSession).quit},
	{name: "/help", help: "this list", run: (*textSession).help},
}

// commandByName finds a row of commandTable by its word.
var commandByName = func() map[string]*command {
	m := make(map[string]*command, len(commandTable))
	for i := range commandTable {
		m[commandTable[i].name] = &commandTable[i]
	}
	return m
}()

// helpLines is /help's answer: in a room of its own ([0]), or in a hub of
// many rooms ([1]); built by init, from commandTable, which refers to it.
var helpLines [2][]byte

func init() { helpLines = [2][]byte{helpText(false), helpText(true)} }

func helpText(rooms bool) []byte {
	var b strings.Builder
	b.WriteString("* commands:\n")
	for _, cmd := range commandTable {
		if !cmd.rooms || rooms {
			fmt.Fprintf(&b, "*   %-15s %s\n", strings.TrimSpace(cmd.name+" "+cmd.args), cmd.help)
		}
	}
	b.WriteString("*   //text          say a line that starts with /\n")
	return []byte(b.String())
}

// manyRooms reports whether the client's hub may have more than one room:
// then /join and /rooms are commands.
func (s *textSession) manyRooms() bool { return s.c.hub.opts.maxRooms > 1 }

// command runs the command line text, clean; every command counts as
// activity, whatever it does.
func (s *textSession) command(text string) {
	s.c.Touch()
	word, args, _ := strings.Cut(text, " ")
	cmd := commandByName[strings.ToLower(word)]
	if cmd == nil || cmd.rooms && !s.manyRooms() {
		s.c.Reply(lineUnknownCommand(word))
		return
	}
	cmd.run(s, strings.TrimSpace(args))
}

func (s *textSession) nick(name string) {
	switch err := s.c.Nick(name); {
	case err == nil:
	case errors.Is(err, ErrNotAllowed):
		s.c.Reply(lineNamesByServer)
	case errors.Is(err, ErrInvalidName):
		s.c.Reply(lineInvalidNick)
	case errors.Is(err, ErrNameTaken):
		s.c.Reply(lineNickTaken)
	case errors.Is(err, errNamesDown):
		s.c.Reply(lineNamesDown)
	case errors.Is(err, ErrSlowDown):
		s.c.Reply(lineSlowDown)
	}
}

// whoLimit is how many names /who lists; it says how many more there are.
const whoLimit = 100

func (s *textSession) who(string) {
	r := s.c.current()
	if r == nil {
		return
	}
	if members, count, err := s.c.Members(r.name, whoLimit); err == nil {
		s.c.Reply(lineWho(members, count))
	}
}

func (s *textSession) me(action string) {
	if action == "" {
		s.c.Reply(lineUsageMe)
		return
	}
	s.say(action, KindAction)
}

func (s *textSession) msg(args string) {
	to, text, _ := strings.Cut(args, " ")
	text = strings.TrimSpace(text)
	if to == "" || text == "" {
		s.c.Reply(lineUsageMsg)
		return
	}
	switch err := s.c.Whisper(to, text, false); {
	case errors.Is(err, ErrNoSuchClient):
		s.c.Reply(lineNoSuchClient(to))
	case errors.Is(err, ErrRejected):
		s.c.Reply(lineRejected)
	}
}

func (s *textSession) join(room string) {
	if room == "" {
		s.c.Reply(lineUsageJoin)
		return
	}
	switch err := s.c.Move(room); {
	case errors.Is(err, ErrInvalidName):
		s.c.Reply(lineInvalidRoom)
	case errors.Is(err, ErrTooManyRooms):
		s.c.Reply(lineTooManyRooms(s.c.hub.opts.maxRooms))
	case errors.Is(err, ErrAlreadyInRoom):
		if r := s.c.current(); r != nil {
			s.c.Reply(lineAlreadyIn(r.name))
		}
	}
}

func (s *textSession) rooms(string) {
	s.c.Reply(lineRooms(s.c.Rooms()))
}

func (s *textSession) quit(string) {
	s.c.Quit("")
}

func (s *textSession) help(string) {
	rooms := 0
	if s.manyRooms() {
		rooms = 1
	}
	s.c.Reply(helpLines[rooms])
}
