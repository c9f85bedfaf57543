package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const waitLimit = 10 * time.Second

var testTime = time.Date(2026, 11, 28, 9, 30, 0, 0, time.UTC)

const ts = "2026-11-28 09:30:00"

// site serves room's page at / and its WebSocket at /ws on a test server,
// and the room on a TCP listener too; all close when the test ends.
type site struct {
	room *chatroom.Room
	http *httptest.Server
	tcp  string
}

func newSite(t *testing.T, roomOpts []chatroom.Option, opts ...web.Option) *site {
	t.Helper()
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithClock(func() time.Time { return testTime })}, roomOpts...)...)
	mux := http.NewServeMux()
	mux.Handle("/", web.Page())
	mux.Handle("/ws", web.NewHandler(room, opts...))
	srv := httptest.NewServer(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, room.Close())
		<-served
		srv.Close()
	})
	return &site{room: room, http: srv, tcp: ln.Addr().String()}
}

// browser is a WebSocket client of the room.
type browser struct {
	t    *testing.T
	ws   *websocket.Conn
	in   *bufio.Reader
	name string
}

func (s *site) browser(t *testing.T, header http.Header) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.http.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: header})
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() })
	b := &browser{t: t, ws: ws, in: bufio.NewReader(websocket.NetConn(context.Background(), ws, websocket.MessageText))}
	welcome := b.line()
	require.True(t, strings.HasPrefix(welcome, "* welcome "), welcome)
	b.name = strings.TrimPrefix(welcome[:strings.LastIndex(welcome, ",")], "* welcome ")
	return b
}

func (b *browser) send(msg string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(b.t, b.ws.Write(ctx, websocket.MessageText, []byte(msg)))
}

func (b *browser) line() string {
	b.t.Helper()
	type result struct {
		s   string
		err error
	}
	got := make(chan result, 1)
	go func() {
		s, err := b.in.ReadString('\n')
		got <- result{s, err}
	}()
	select {
	case r := <-got:
		require.NoError(b.t, r.err)
		return strings.TrimSuffix(r.s, "\n")
	case <-time.After(waitLimit):
		b.t.Fatal("no line from the room")
	}
	return ""
}

// terminal is a TCP client of the same room.
type terminal struct {
	t    *testing.T
	conn net.Conn
	in   *bufio.Reader
	name string
}

func (s *site) terminal(t *testing.T) *terminal {
	t.Helper()
	conn, err := net.Dial("tcp", s.tcp)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c := &terminal{t: t, conn: conn, in: bufio.NewReader(conn), name: conn.LocalAddr().String()}
	require.True(t, strings.HasPrefix(c.line(), "* welcome "+c.name))
	return c
}

func (c *terminal) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(waitLimit))
	s, err := c.in.ReadString('\n')
	require.NoError(c.t, err)
	return strings.TrimSuffix(s, "\n")
}

func TestBrowserAndTerminalChat(t *testing.T) {
	s := newSite(t, nil)
	b := s.browser(t, nil)
	c := s.terminal(t)
	assert.Equal(t, ts+" * "+c.name+" joined", b.line())

	b.send("hello from the browser\n")
	assert.Equal(t, ts+" "+b.name+" say: hello from the browser", c.line())
	_, err := c.conn.Write([]byte("hello from the terminal\n"))
	require.NoError(t, err)
	assert.Equal(t, ts+" "+c.name+" say: hello from the terminal", b.line())

	// Many lines in one message, and a line split over two.
	b.send("one\ntwo\nthr")
	b.send("ee\n")
	for _, want := range []string{"one", "two", "three"} {
		assert.Equal(t, ts+" "+b.name+" say: "+want, c.line())
	}
	// Commands work from the browser.
	b.send("/nick webby\n")
	assert.Equal(t, "* you are now webby", b.line())
	assert.Equal(t, ts+" * "+b.name+" is now webby", c.line())
}

func TestBrowserLineTooLong(t *testing.T) {
	s := newSite(t, []chatroom.Option{chatroom.WithBufferSize(16)})
	b := s.browser(t, nil)
	c := s.terminal(t)
	b.line() // c joined
	b.send(strings.Repeat("x", 100) + "\nshort\n")
	assert.Equal(t, "* error: message too long (max 16 bytes)", b.line())
	assert.Equal(t, ts+" "+b.name+" say: short", c.line())
}

func TestBrowserBinaryMessageRefused(t *testing.T) {
	s := newSite(t, nil)
	b := s.browser(t, nil)
	c := s.terminal(t)
	b.line()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, b.ws.Write(ctx, websocket.MessageBinary, []byte("binary\n")))
	_, _, err := b.ws.Read(ctx)
	assert.Equal(t, websocket.StatusUnsupportedData, websocket.CloseStatus(err), "closed with a close frame: %v", err)
	assert.Equal(t, ts+" * "+b.name+" left", c.line())
}

func TestBadOriginRefused(t *testing.T) {
	s := newSite(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.http.URL, "http") + "/ws"
	_, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}})
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Zero(t, s.room.Stats().Joined)

	// Allowed by a pattern, it gets in.
	s2 := newSite(t, nil, web.WithOriginPatterns("*.example"))
	b := s2.browser(t, http.Header{"Origin": {"https://chat.example"}})
	assert.NotEmpty(t, b.name)
}

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	forwarded := http.Header{"X-Forwarded-For": {"198.51.100.7, 203.0.113.9"}}
	s := newSite(t, nil)
	b := s.browser(t, forwarded)
	assert.True(t, strings.HasPrefix(b.name, "127.0.0.1:"), "untrusted header ignored: %s", b.name)

	s2 := newSite(t, nil, web.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	b2 := s2.browser(t, forwarded)
	assert.Equal(t, "203.0.113.9:0", b2.name, "the last hop before the trusted proxy")
}

func TestAuthHookReadsTheRequest(t *testing.T) {
	auth := func(ctx context.Context, e chatroom.AuthEvent) (chatroom.AuthReply, error) {
		r, ok := e.Conn.(interface{ Request() *http.Request })
		if !ok {
			return chatroom.AuthReply{}, errors.New("not a browser")
		}
		c, err := r.Request().Cookie("user")
		if err != nil {
			return chatroom.AuthReply{}, errors.New("no user cookie")
		}
		return chatroom.AuthReply{Name: c.Value}, nil
	}
	s := newSite(t, []chatroom.Option{chatroom.WithAuth(auth)})
	b := s.browser(t, http.Header{"Cookie": {"user=ada"}})
	assert.Equal(t, "ada", b.name)
}

func TestPageIsServed(t *testing.T) {
	s := newSite(t, nil)
	for _, path := range []string{"/", "/chat.js", "/style.css"} {
		resp, err := http.Get(s.http.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}

func TestNilLoggerPanicsNamingTheOption(t *testing.T) {
	defer func() { assert.Contains(t, fmt.Sprint(recover()), "web: WithLogger(nil)") }()
	web.NewHandler(chatroom.NewRoom(), web.WithLogger(nil))
	t.Error("NewHandler did not panic")
}
