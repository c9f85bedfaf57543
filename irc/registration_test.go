package irc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/irc"
)

// Registration: NICK, USER, PASS, CAP, and the welcome.

func TestWelcome(t *testing.T) {
	t.Parallel()
	s := startServer(t, &irc.Face{ServerName: serverName, Network: "TestNet", MOTD: "Be kind.\nBe brief."})
	text := textClient(t, s, "bob", 1)
	text.send("/join games")
	text.expect("* you are in games, 1 online")

	c := dialIRC(t, s)
	c.send("NICK alice", "USER alice 0 * :Alice Liddell")
	lines := c.until(func(l string) bool { return strings.Contains(l, " 376 ") })
	require.GreaterOrEqual(t, len(lines), 12)
	assert.Equal(t, numeric("001", "alice", ":Welcome to the TestNet IRC network, alice!~alice@127.0.0.1"), lines[0])
	assert.Equal(t, numeric("002", "alice", ":Your host is irc.test, running version "+irc.Version), lines[1])
	assert.True(t, strings.HasPrefix(lines[2], numeric("003", "alice", ":This server was created ")), lines[2])
	assert.Equal(t, numeric("004", "alice", "irc.test "+irc.Version+" io ostv ov"), lines[3])

	var isupport []string
	rest := lines[4:]
	for len(rest) > 0 && strings.Contains(rest[0], " 005 ") {
		params := strings.Fields(strings.TrimPrefix(rest[0], numeric("005", "alice", "")))
		require.True(t, strings.HasSuffix(rest[0], " :are supported by this server"), rest[0])
		assert.LessOrEqual(t, len(params), 13+4, "at most 13 tokens and the text a line")
		isupport = append(isupport, params[:len(params)-4]...)
		rest = rest[1:]
	}
	for _, token := range []string{"CASEMAPPING=ascii", "CHANTYPES=#", "PREFIX=(ov)@+", "NETWORK=TestNet", "ELIST=MNU", "WHOX", "NICKLEN=32", "CHANMODES=,,,st"} {
		assert.Contains(t, isupport, token)
	}
	// Two clients, one of them in a room; the lobby and games are open.
	assert.Equal(t, []string{
		numeric("251", "alice", ":There are 2 users and 0 invisible on 1 servers"),
		numeric("254", "alice", "2 :channels formed"),
		numeric("255", "alice", ":I have 2 clients and 0 servers"),
		numeric("265", "alice", "2 2 :Current local users 2, max 2"),
		numeric("266", "alice", "2 2 :Current global users 2, max 2"),
		numeric("375", "alice", ":- irc.test Message of the day - "),
		numeric("372", "alice", ":- Be kind."),
		numeric("372", "alice", ":- Be brief."),
		numeric("376", "alice", ":End of /MOTD command."),
	}, rest)
	c.expectNothing()
}

func TestRegistrationErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	ircClient(t, s, "alice")

	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"nick taken, in any case", []string{"NICK ALICE", "USER u 0 * :x"}, []string{numeric("433", "*", "ALICE :Nickname is already in use")}},
		{"nick not a name", []string{"NICK al!ce"}, []string{numeric("432", "*", "al!ce :Erroneous nickname")}},
		{"no real name", []string{"USER u 0 * :"}, []string{numeric("461", "*", "USER :Not enough parameters")}},
		{"too few parameters", []string{"USER u 0"}, []string{numeric("461", "*", "USER :Not enough parameters")}},
		{"a command that needs registration", []string{"JOIN #games"}, []string{numeric("451", "*", ":You have not registered")}},
		{"an unknown command", []string{"FROB"}, []string{numeric("421", "*", "FROB :Unknown command")}},
		{"an unknown CAP subcommand", []string{"CAP FROB"}, []string{numeric("410", "*", "FROB :Invalid CAP command")}},
		{"a tag too long", []string{"@+x=" + strings.Repeat("a", 4096) + " PING x"}, []string{numeric("417", "*", ":Input line was too long")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialIRC(t, s)
			c.send(tt.lines...)
			assert.Equal(t, tt.want, c.sync())
		})
	}
}

// TestNickTakenThenAnother: a client whose nick is taken registers with
// the next one it sends.
func TestNickTakenThenAnother(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	ircClient(t, s, "alice")
	c := dialIRC(t, s)
	c.send("NICK alice", "USER u 0 * :x")
	c.expect(numeric("433", "*", "alice :Nickname is already in use"))
	c.send("NICK alice2")
	c.expect(numeric("001", "alice2", ":Welcome to the irc.test IRC network, alice2!~u@127.0.0.1"))
}

func TestQuitBeforeAndAfterRegistration(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	early := dialIRC(t, s)
	early.send("QUIT :not staying")
	early.expect("ERROR :Closing link (Quit: not staying)")
	early.ExpectClosed()

	bob := ircClient(t, s, "bob")
	alice := ircClient(t, s, "alice")
	bob.send("JOIN #games")
	alice.send("JOIN #games")
	alice.sync()
	bob.sync()
	alice.send("QUIT :see you")
	alice.expect("ERROR :Closing link (Quit: see you)")
	alice.ExpectClosed()
	bob.expect(":" + source("alice", true) + " QUIT :Quit: see you")
}

func TestCapNegotiation(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	alice := ircClient(t, s, "alice")
	alice.send("JOIN #games")
	alice.sync()

	c := dialIRC(t, s)
	c.send("CAP LS 302", "NICK bob", "USER bob 0 * :Bob")
	c.expect(":irc.test CAP * LS :echo-message message-tags multi-prefix server-time userhost-in-names")
	assert.Empty(t, c.sync(), "no welcome before CAP END")
	c.send("CAP REQ :server-time frobnicate")
	c.expect(":irc.test CAP * NAK :server-time frobnicate")
	c.send("CAP REQ :server-time echo-message")
	c.expect(":irc.test CAP * ACK :server-time echo-message")
	c.send("CAP LIST")
	c.expect(":irc.test CAP * LIST :echo-message server-time")
	c.send("CAP END")
	c.expect(numeric("001", "bob", ":Welcome to the irc.test IRC network, bob!~bob@127.0.0.1"))
	c.sync()

	// server-time: lines carry the hub's clock; echo-message: bob's own
	// lines come back.
	c.send("JOIN #games")
	c.expect(tag + " :" + source("bob", true) + " JOIN #games")
	c.sync()
	alice.send("PRIVMSG #games :hi bob")
	alice.sync()
	c.expect(tag + " :" + source("alice", true) + " PRIVMSG #games :hi bob")
	c.send("PRIVMSG #games :hi alice")
	c.expect(tag + " :" + source("bob", true) + " PRIVMSG #games :hi alice")
	alice.expect(":" + source("bob", true) + " PRIVMSG #games :hi alice")

	// Capabilities come off again, and the forms follow.
	c.send("CAP REQ :-server-time")
	c.expect(":irc.test CAP bob ACK :-server-time")
	c.send("CAP LIST")
	c.expect(":irc.test CAP bob LIST :echo-message")
	c.send("PRIVMSG #games :no time")
	c.expect(":" + source("bob", true) + " PRIVMSG #games :no time")
	c.send("CAP REQ :-echo-message message-tags")
	c.expect(":irc.test CAP bob ACK :-echo-message message-tags")
	c.send("PRIVMSG #games :not echoed")
	c.expectNothing()
	assert.Equal(t, []string{
		":" + source("bob", true) + " PRIVMSG #games :no time",
		":" + source("bob", true) + " PRIVMSG #games :not echoed",
	}, alice.sync())
	alice.send("PRIVMSG #games :with an id")
	line := c.Line()
	assert.Regexp(t, `^@msgid=[0-9]+ :`+source("alice", true)+` PRIVMSG #games :with an id$`, line)
}

// TestPassword: PASS goes to the hub's auth hook, which refuses a client
// without the right one.
func TestPassword(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, chatroom.WithAuth(func(_ context.Context, e chatroom.AuthEvent) (chatroom.AuthReply, error) {
		if e.Password != "sesame" {
			return chatroom.AuthReply{}, errors.New("wrong password")
		}
		return chatroom.AuthReply{Name: e.Name}, nil
	}))
	for _, pass := range []string{"", "PASS guess"} {
		c := dialIRC(t, s)
		if pass != "" {
			c.send(pass)
		}
		c.send("NICK alice", "USER alice 0 * :Alice")
		if pass != "" {
			c.expect(numeric("464", "*", ":Password incorrect"))
		}
		c.expect("ERROR :Closing link (wrong password)")
		c.ExpectClosed()
	}
	c := dialIRC(t, s)
	c.send("PASS sesame", "NICK alice", "USER alice 0 * :Alice")
	c.expect(numeric("001", "alice", ":Welcome to the irc.test IRC network, alice!~alice@127.0.0.1"))
	c.sync()
	c.send("NICK alice2")
	c.expect(numeric("432", "alice", "alice2 :Names are set by the server"))
}

func TestPingPong(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	early := dialIRC(t, s)
	early.send("PING :before registering")
	early.expect(":irc.test PONG irc.test :before registering")
	c := ircClient(t, s, "alice")
	c.send("PING abc", "PING :", "PING")
	c.expect(":irc.test PONG irc.test :abc")
	c.expect(":irc.test PONG irc.test :")
	c.expect(numeric("461", "alice", "PING :Not enough parameters"))
}
