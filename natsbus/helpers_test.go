package natsbus_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
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

// heartbeat is the buses' heartbeat in these tests: a process that dies
// is gone for the others after 5 to 6 of them. A second, as by default:
// a machine busy with other tests can hold a process up for a good part
// of a second, and a process must not be counted gone for that.
const heartbeat = time.Second

// ts is how the room prints the tests' clock (chattest.Clock): every
// notice and line said starts with it.
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
	return startNATSWith(t, server.Options{})
}

// startNATSWith starts a server with opts (a configuration file's), on a
// free port of 127.0.0.1, with JetStream in a temporary directory.
func startNATSWith(t testing.TB, opts server.Options) *natsServer {
	t.Helper()
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	n := &natsServer{t: t, opts: opts}
	n.start()
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port // a restart comes back on the same port
	t.Cleanup(n.stop)
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	opts := n.opts
	srv, err := server.NewServer(&opts)
	require.NoError(n.t, err)
	srv.Start()
	require.True(n.t, srv.ReadyForConnections(chattest.WaitLimit), "the NATS server did not start")
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

// process is one process's share of the hub: a hub on its own listener,
// joined to the others by its bus.
type process struct {
	hub  *chatroom.Hub
	bus  *natsbus.Bus
	nc   *nats.Conn // the bus's connection, for a test that cuts it
	addr string
}

// connect connects to url as a bus's connection should be.
func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectBufSize(-1), nats.NoEcho()}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// startProcess starts a hub on a fresh 127.0.0.1 port, with a bus for the
// namespace "lobby" over its own connection to url, and closes it when
// the test ends.
func startProcess(t testing.TB, url string, opts ...chatroom.Option) *process {
	t.Helper()
	return startProcessWith(t, url, nil, opts...)
}

// startProcessWith is startProcess with options for the bus.
func startProcessWith(t testing.TB, url string, busOpts []natsbus.Option, opts ...chatroom.Option) *process {
	t.Helper()
	nc := connect(t, url)
	bus, err := natsbus.New(nc, "lobby", append([]natsbus.Option{natsbus.WithHeartbeat(heartbeat), natsbus.WithLogger(testLogger(t))}, busOpts...)...)
	require.NoError(t, err)
	p := serveHub(t, bus, opts...)
	p.nc = nc
	return p
}

// serveHub serves a hub with bus on a fresh 127.0.0.1 port until the test
// ends.
func serveHub(t testing.TB, bus *natsbus.Bus, opts ...chatroom.Option) *process {
	t.Helper()
	hub := chatroom.NewHub(append([]chatroom.Option{chatroom.WithBus(bus), chatroom.WithClock(chattest.Clock),
		chatroom.WithRateLimit(0, 0)}, opts...)...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- hub.Serve(ln) }()
	p := &process{hub: hub, bus: bus, addr: ln.Addr().String()}
	t.Cleanup(func() {
		p.close(t)
		select {
		case err := <-served:
			assert.ErrorIs(t, err, chatroom.ErrRoomClosed)
		case <-time.After(chattest.WaitLimit):
			t.Error("Serve did not return after Close")
		}
	})
	return p
}

func (p *process) close(t testing.TB) {
	assert.NoError(t, p.hub.Close())
}

// names is who p's hub says is in the hub, sorted.
func (p *process) names() []string {
	var names []string
	for _, c := range p.hub.Clients() {
		names = append(names, c.Name)
	}
	return names
}

// rooms is p's hub's list of rooms, as /rooms says it.
func (p *process) rooms() string {
	var parts []string
	for _, r := range p.hub.Rooms() {
		parts = append(parts, fmt.Sprintf("%s (%d)", r.Name, r.Clients))
	}
	return strings.Join(parts, ", ")
}

// dial connects to p and reads the welcome.
func dial(t testing.TB, p *process) *chattest.Client {
	t.Helper()
	c := chattest.Dial(t, p.addr)
	require.Contains(t, c.Line(), "* welcome "+c.Name+", ")
	return c
}

// join connects to p as nick.
func join(t testing.TB, p *process, nick string) *chattest.Client {
	t.Helper()
	c := dial(t, p)
	c.Sendf("/nick %s\n", nick)
	require.Equal(t, "* you are now "+nick, reply(c))
	c.Name = nick
	return c
}

// reply reads c's lines until one that is not a notice (a notice starts
// with the time), and returns it.
func reply(c *chattest.Client) string {
	c.T.Helper()
	return c.WaitUntil(func(l string) bool { return !strings.HasPrefix(l, ts+" ") })
}

// endsWith matches, for Client.WaitUntil, a line that ends in suffix.
func endsWith(suffix string) func(line string) bool {
	return func(l string) bool { return strings.HasSuffix(l, suffix) }
}

// allSee waits until every process lists exactly names.
func allSee(t testing.TB, names []string, ps ...*process) {
	t.Helper()
	for i, p := range ps {
		chattest.Eventually(t, func() bool { return slices.Equal(names, p.names()) },
			"process %d lists %v, not %v", i, p.names(), names)
	}
}

// allList waits until every process's /rooms says rooms.
func allList(t testing.TB, rooms string, ps ...*process) {
	t.Helper()
	for i, p := range ps {
		chattest.Eventually(t, func() bool { return p.rooms() == rooms },
			"process %d lists rooms %q, not %q", i, p.rooms(), rooms)
	}
}

// recFace is a face for tests: a client that registers as name, enters
// room having seen the line numbered since, and is written one line per
// message: "say ID ROOM FROM TEXT", "gap ROOM SINCE", "join ROOM FROM",
// "error TEXT". It says "ROOM TEXT" lines.
type recFace struct {
	name, room string
	since      uint64
}

func (f recFace) Name() string        { return "rec" }
func (f recFace) Form() chatroom.Form { return recForm{} }

func (f recFace) Start(c *chatroom.Client) chatroom.Session {
	c.SetForm(recForm{}, recForm{})
	if err := c.Register(chatroom.Registration{Name: f.name}); err != nil {
		c.Reply([]byte("error " + err.Error() + "\n"))
		c.Quit("")
	} else if err := c.Join(f.room, f.since); err != nil {
		c.Reply([]byte("error " + err.Error() + "\n"))
	}
	return recSession{c}
}

type recForm struct{}

func (recForm) Format(m *chatroom.Message) []byte {
	switch m.Kind {
	case chatroom.KindSay:
		return fmt.Appendf(nil, "say %d %s %s %s\n", m.ID, m.Room, m.From, m.Text)
	case chatroom.KindGap:
		return fmt.Appendf(nil, "gap %s %d\n", m.Room, m.Since)
	case chatroom.KindJoin:
		return fmt.Appendf(nil, "join %s %s\n", m.Room, m.From)
	case chatroom.KindError:
		return fmt.Appendf(nil, "error %s\n", m.Text)
	}
	return nil
}

type recSession struct{ c *chatroom.Client }

func (s recSession) Line(line []byte) {
	room, text, _ := strings.Cut(string(line), " ")
	s.c.Say(room, text)
}

func (s recSession) TooLong() {}

// recClient connects to p through recFace.
func recClient(t testing.TB, p *process, f recFace) *chattest.Client {
	t.Helper()
	local, remote := net.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { p.hub.ServeConnFace(remote, f) })
	t.Cleanup(wg.Wait) // after the client's own cleanup closes local
	return chattest.NewClient(t, local, f.name)
}

// testLogger logs to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// proxy passes TCP connections to target until it is cut: then it closes
// every connection it passes, and refuses new ones until it is mended.
type proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	held  bool
}

func startProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		held := p.held
		p.mu.Unlock()
		if held {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(out, in); out.Close() })
		p.wg.Go(func() { io.Copy(in, out); in.Close() })
	}
}

// cut closes every connection, and refuses new ones until mend.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) mend() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held = false
}
