package irc_test

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chatroom-go/chatroom/irc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ts is the tests' clock (chattest.Clock) as the text protocol prints
// it, and tag as server-time does.
const (
	ts  = chattest.TS
	tag = "@time=2026-11-28T09:30:00.000Z"
)

// serverName is the IRC server's name in the tests.
const serverName = "irc.test"

// server is a hub serving the text protocol and IRC, each on a port of
// 127.0.0.1 of its own, until the test ends.
type server struct {
	hub  *chatroom.Hub
	text string // the text protocol's address
	irc  string // IRC's address
}

// startServer serves a hub with opts (and the tests' clock) over the text
// protocol and, through face (a default one with the tests' server name
// if nil), IRC. The hub closes when the test ends, and both Serve calls
// must then return ErrRoomClosed.
func startServer(t testing.TB, face *irc.Face, opts ...chatroom.Option) *server {
	t.Helper()
	if face == nil {
		face = &irc.Face{ServerName: serverName}
	}
	hub := chatroom.NewHub(append([]chatroom.Option{chatroom.WithClock(chattest.Clock)}, opts...)...)
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	iln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 2)
	go func() { served <- hub.Serve(tln) }()
	go func() { served <- face.Serve(hub, iln) }()
	t.Cleanup(func() {
		assert.NoError(t, hub.Close())
		for range 2 {
			select {
			case err := <-served:
				assert.ErrorIs(t, err, chatroom.ErrRoomClosed)
			case <-time.After(chattest.WaitLimit):
				t.Error("Serve did not return after Close")
			}
		}
	})
	return &server{hub: hub, text: tln.Addr().String(), irc: iln.Addr().String()}
}

// conn is a test's end of one connection, IRC or text: a chattest
// client, which reads IRC's lines without their "\r\n" (CRLF) and the
// text protocol's without their "\n".
type conn struct{ *chattest.Client }

// dialIRC connects to s's IRC port.
func dialIRC(t testing.TB, s *server) *conn {
	t.Helper()
	c := chattest.Dial(t, s.irc)
	c.CRLF = true
	return &conn{c}
}

// send writes each line with IRC's "\r\n" (the text protocol takes it
// too).
func (c *conn) send(lines ...string) {
	c.T.Helper()
	c.Send(strings.Join(lines, "\r\n") + "\r\n")
}

// expect reads the next line and checks that it is line, as it is: the
// tests build their lines with source and numeric, not as formats.
func (c *conn) expect(line string) {
	c.T.Helper()
	c.Expect("%s", line)
}

// until reads lines up to the first for which stop holds, and returns
// them all, that one included.
func (c *conn) until(stop func(string) bool) []string {
	c.T.Helper()
	var lines []string
	c.WaitUntil(func(l string) bool {
		lines = append(lines, l)
		return stop(l)
	})
	return lines
}

// syncs numbers the tokens of sync.
var syncs atomic.Int64

// sync sends a PING and returns every line that came before its PONG:
// what the hub owed the client, and what its earlier lines made others
// send it (irctest's way).
func (c *conn) sync() []string {
	c.T.Helper()
	token := fmt.Sprintf("sync%d", syncs.Add(1))
	c.send("PING " + token)
	lines := c.until(func(l string) bool { return strings.HasSuffix(l, " PONG "+serverName+" :"+token) })
	return lines[:len(lines)-1]
}

// expectNothing checks that nothing came before a PING's answer.
func (c *conn) expectNothing() {
	c.T.Helper()
	assert.Empty(c.T, c.sync())
}

// ircClient connects an IRC client to s and registers it as nick, and
// reads the welcome, up to its 422 (the tests' face has no MOTD).
func ircClient(t testing.TB, s *server, nick string) *conn {
	t.Helper()
	c := dialIRC(t, s)
	c.send("NICK "+nick, "USER "+nick+" 0 * :Real "+nick)
	welcome := c.until(func(l string) bool { return strings.Contains(l, " 422 ") })
	require.Equal(t, ":"+serverName+" 001 "+nick+" :Welcome to the "+serverName+" IRC network, "+nick+"!~"+nick+"@127.0.0.1", welcome[0])
	c.Name = nick
	return c
}

// textClient connects a text-protocol client to s, which lands in the
// lobby (where online clients are then), and names it with /nick.
func textClient(t testing.TB, s *server, name string, online int) *conn {
	t.Helper()
	c := &conn{chattest.Dial(t, s.text)}
	c.Expect("* welcome %s, %d online", c, online)
	c.send("/nick " + name)
	c.Expect("* you are now %s", name)
	c.Name = name
	return c
}

// source is how IRC names a client of the tests: nick!user@127.0.0.1,
// its user name "~nick" for an IRC client, "text" for the text
// protocol's.
func source(nick string, ircUser bool) string {
	if ircUser {
		return nick + "!~" + nick + "@127.0.0.1"
	}
	return nick + "!text@127.0.0.1"
}

// numeric is a numeric reply's line, from the tests' server to nick.
func numeric(code, nick string, params string) string {
	return ":" + serverName + " " + code + " " + nick + " " + params
}
