package natsbus_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chatroom-go/chatroom/natsbus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitLimit bounds every wait of these tests (chattest's).
const waitLimit = chattest.WaitLimit

// heartbeat is the buses' heartbeat in these tests: a process that dies
// is gone for the others after 5 to 6 of them.
const heartbeat = 200 * time.Millisecond

// ts is how the rooms, on chattest's fixed clock, print the time.
const ts = chattest.TS

// natsServer is a NATS server with JetStream inside the test process, on
// 127.0.0.1, with its store in a temporary directory that outlives a
// restart.
type natsServer struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	n := &natsServer{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}}
	n.start()
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port // a restart comes back on the same port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	srv, err := server.NewServer(&n.opts)
	require.NoError(n.t, err)
	srv.Start()
	require.True(n.t, srv.ReadyForConnections(waitLimit), "the NATS server did not start")
	n.srv = srv
}

func (n *natsServer) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port) }

// process is one process's share of the room: a room on its own listener,
// joined to the others by its bus.
type process struct {
	room *chatroom.Room
	bus  *natsbus.Bus
	nc   *nats.Conn // the bus's connection, for a test that cuts it
	addr string
}

// startProcess starts a room named lobby on a fresh 127.0.0.1 port, with a
// bus over its own connection to ns, and closes it when the test ends.
func startProcess(t testing.TB, ns *natsServer, opts ...chatroom.Option) *process {
	t.Helper()
	nc, err := nats.Connect(ns.url(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(-1), nats.NoEcho())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	bus, err := natsbus.New(nc, "lobby", natsbus.WithHeartbeat(heartbeat))
	require.NoError(t, err)
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithBus(bus), chatroom.WithClock(chattest.Clock),
		chatroom.WithRateLimit(0, 0)}, opts...)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	p := &process{room: room, bus: bus, nc: nc, addr: ln.Addr().String()}
	t.Cleanup(func() {
		p.close(t)
		select {
		case err := <-served:
			assert.ErrorIs(t, err, chatroom.ErrRoomClosed)
		case <-time.After(waitLimit):
			t.Error("Serve did not return after Close")
		}
	})
	return p
}

func (p *process) close(t testing.TB) {
	assert.NoError(t, p.room.Close())
}

// names is who p's room says is in the room, sorted.
func (p *process) names() []string {
	var names []string
	for _, c := range p.room.Clients() {
		names = append(names, c.Name)
	}
	return names
}

// client is a test's end of one connection.
type client = chattest.Client

// dial connects to p and reads the welcome.
func dial(t testing.TB, p *process) *client {
	t.Helper()
	c := chattest.Dial(t, p.addr)
	require.Contains(t, c.Line(), "* welcome "+c.Name+", ")
	return c
}

// join connects to p as nick.
func join(t testing.TB, p *process, nick string) *client {
	t.Helper()
	c := dial(t, p)
	c.Sendf("/nick %s\n", nick)
	require.Equal(t, "* you are now "+nick, reply(c))
	c.Name = nick
	return c
}

// reply reads c's lines until one that is not a notice (a notice starts
// with the time), and returns it.
func reply(c *client) string {
	c.T.Helper()
	return c.WaitUntil(func(l string) bool { return !strings.HasPrefix(l, ts+" ") })
}

// allSee waits until every process lists exactly names.
func allSee(t testing.TB, names []string, ps ...*process) {
	t.Helper()
	for i, p := range ps {
		chattest.Eventually(t, func() bool { return assert.ObjectsAreEqual(names, p.names()) },
			"process %d lists %v, not %v", i, p.names(), names)
	}
}
