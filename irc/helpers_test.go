package irc_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/irc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait in the tests: a condition that has not come
// true by then has failed, however slow the machine.
const waitLimit = 10 * time.Second

// testTime is the hub's clock in the tests; ts is how the text protocol
// prints it, and tag how server-time does.
var testTime = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

const (
	ts  = "2026-11-28 09:30:00"
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
	hub := chatroom.NewHub(append([]chatroom.Option{chatroom.WithClock(func() time.Time { return testTime })}, opts...)...)
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
			case <-time.After(waitLimit):
				t.Error("Serve did not return after Close")
			}
		}
	})
	return &server{hub: hub, text: tln.Addr().String(), irc: iln.Addr().String()}
}

// conn is a test's end of one connection, IRC or text: lines are read
// without their "\r\n" or "\n".
type conn struct {
	t    testing.TB
	c    net.Conn
	in   *bufio.Reader
	name string // the name the hub knows it by, once it has one
}

func dial(t testing.TB, addr string) *conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, in: bufio.NewReader(c)}
}

// send writes each line with IRC's "\r\n" (the text protocol takes it
// too).
func (c *conn) send(lines ...string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(waitLimit))
	_, err := io.WriteString(c.c, strings.Join(lines, "\r\n")+"\r\n")
	require.NoError(c.t, err)
}

// line reads the next line.
func (c *conn) line() string {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitLimit))
	s, err := c.in.ReadString('\n')
	require.NoError(c.t, err, "reading a line; got %q so far", s)
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
}

// expect reads the next line and checks it is want (formatted with args,
// if any).
func (c *conn) expect(want string, args ...any) {
	c.t.Helper()
	if len(args) > 0 {
		want = fmt.Sprintf(want, args...)
	}
	assert.Equal(c.t, want, c.line())
}

// until reads lines up to the first for which stop holds, and returns
// them all, that one included.
func (c *conn) until(stop func(string) bool) []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		if stop(l) {
			return lines
		}
	}
}

// syncs numbers the tokens of sync.
var syncs atomic.Int64

// sync sends a PING and returns every line that came before its PONG:
// what the hub owed the client, and what its earlier lines made others
// send it (irctest's way).
func (c *conn) sync() []string {
	c.t.Helper()
	token := fmt.Sprintf("sync%d", syncs.Add(1))
	c.send("PING " + token)
	lines := c.until(func(l string) bool { return strings.HasSuffix(l, " PONG "+serverName+" :"+token) })
	return lines[:len(lines)-1]
}

// expectNothing checks that nothing came before a PING's answer.
func (c *conn) expectNothing() {
	c.t.Helper()
	assert.Empty(c.t, c.sync())
}

// expectClosed checks that the hub closes the connection with nothing
// more to read.
func (c *conn) expectClosed() {
	c.t.Helper()
	c.c.SetReadDeadline(time.Now().Add(waitLimit))
	s, err := c.in.ReadString('\n')
	assert.Empty(c.t, s)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		c.t.Errorf("want the connection closed, got %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// ircClient connects an IRC client to s and registers it as nick, and
// reads the welcome, up to its 422 (the tests' face has no MOTD).
func ircClient(t testing.TB, s *server, nick string) *conn {
	t.Helper()
	c := dial(t, s.irc)
	c.send("NICK "+nick, "USER "+nick+" 0 * :Real "+nick)
	welcome := c.until(func(l string) bool { return strings.Contains(l, " 422 ") })
	require.Equal(t, ":"+serverName+" 001 "+nick+" :Welcome to the "+serverName+" IRC network, "+nick+"!~"+nick+"@127.0.0.1", welcome[0])
	c.name = nick
	return c
}

// textClient connects a text-protocol client to s, which lands in the
// lobby (where online clients are then), and names it with /nick.
func textClient(t testing.TB, s *server, name string, online int) *conn {
	t.Helper()
	c := dial(t, s.text)
	c.expect("* welcome %s, %d online", c.c.LocalAddr().String(), online)
	c.send("/nick " + name)
	c.expect("* you are now %s", name)
	c.name = name
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
