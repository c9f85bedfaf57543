package chatroom_test

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The time limit, the fixed clock and the line client are chattest's:
// short names for them here.
const (
	waitLimit = chattest.WaitLimit
	ts        = chattest.TS
)

var testTime = chattest.Time

// fixedClock is the tests' clock: always testTime.
var fixedClock = chattest.Clock

// client is a test's end of one connection.
type client = chattest.Client

// noFloodControl turns WithRateLimit off, for tests that flood the room on
// purpose to load it.
var noFloodControl = chatroom.WithRateLimit(0, 0)

// startRoom serves a room on a fresh 127.0.0.1 port and closes it when the
// test ends, checking that Serve then returns ErrRoomClosed.
func startRoom(t testing.TB, opts ...chatroom.Option) (*chatroom.Room, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return serveOn(t, ln, opts...), ln.Addr().String()
}

// serveOn serves a room on ln until the test ends.
func serveOn(t testing.TB, ln net.Listener, opts ...chatroom.Option) *chatroom.Room {
	t.Helper()
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithClock(chattest.Clock)}, opts...)...)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, room.Close())
		select {
		case err := <-served:
			assert.ErrorIs(t, err, chatroom.ErrRoomClosed)
		case <-time.After(waitLimit):
			t.Error("Serve did not return after Close")
		}
	})
	return room
}

// dial connects to the room at addr and reads its welcome, which must say
// that online clients are now in the room.
func dial(t testing.TB, addr string, online int) *client {
	t.Helper()
	c := chattest.Dial(t, addr)
	c.Expect("* welcome %s, %d online", c, online)
	return c
}

// dialPair connects two clients, a then b, to an empty room at addr, and
// returns once a has heard b arrive.
func dialPair(t testing.TB, addr string) (a, b *client) {
	t.Helper()
	a = dial(t, addr, 1)
	b = dial(t, addr, 2)
	a.Expect(ts+" * %s joined", b)
	return a, b
}

// welcome wraps conn and expects the welcome line for name.
func welcome(t testing.TB, conn net.Conn, name string, online int) *client {
	t.Helper()
	c := chattest.NewClient(t, conn, name)
	c.Expect("* welcome %s, %d online", name, online)
	return c
}

// eventually waits until cond holds (see chattest.Eventually).
func eventually(t testing.TB, cond func() bool, msg string) {
	t.Helper()
	chattest.Eventually(t, cond, "%s", msg)
}

// namedConn gives a connection a name: the room calls a client by its
// RemoteAddr.
type namedConn struct {
	net.Conn
	name string
}

func (c namedConn) RemoteAddr() net.Addr { return nameAddr(c.name) }

type nameAddr string

func (a nameAddr) Network() string { return "name" }
func (a nameAddr) String() string  { return string(a) }

// pipeRoom makes a room for clients over net.Pipe (see pipeClient), with
// the tests' clock, and closes it when the test ends.
func pipeRoom(t testing.TB, opts ...chatroom.Option) *chatroom.Room {
	t.Helper()
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithClock(chattest.Clock)}, opts...)...)
	t.Cleanup(func() { assert.NoError(t, room.Close()) })
	return room
}

// pipeClient joins room over net.Pipe under name, served by ServeConn, and
// returns the client and a channel that gets ServeConn's result.
func pipeClient(t testing.TB, room *chatroom.Room, name string, online int) (*client, <-chan error) {
	t.Helper()
	local, remote := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- room.ServeConn(namedConn{remote, name}) }()
	return welcome(t, local, name, online), done
}

// discard reads and drops whatever comes to c from now on, so that its
// writer never waits: a client the test does not read from. It takes
// pipeClient's results as they come.
func discard(c *client, _ <-chan error) { c.Discard() }

// selfSigned makes a certificate for 127.0.0.1 and returns a server
// config and a client config that trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	c := chattest.SelfSigned(t)
	return c.Server, c.Client
}

// selfSignedConfigs is selfSigned for the examples, which have no test.
func selfSignedConfigs() (server, client *tls.Config, err error) {
	c, err := chattest.NewCert()
	if err != nil {
		return nil, nil, err
	}
	return c.Server, c.Client, nil
}

// newTestPKI makes a CA and a server certificate it signed, for the
// examples (see chattest.PKI).
func newTestPKI() (*chattest.PKI, error) { return chattest.NewPKI() }

// openFDs counts this process's open file descriptors; the tests that
// call it are not parallel, since others would open and close their own.
func openFDs(t testing.TB) int {
	t.Helper()
	return chattest.OpenFDs(t, 0)
}
