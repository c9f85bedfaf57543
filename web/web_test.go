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

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chatroom-go/chatroom/web"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The time limit and the fixed clock are chattest's.
const (
	waitLimit = chattest.WaitLimit
	ts        = chattest.TS
)

// site serves room's page at / and its WebSocket at /ws on a test server,
// and the room on a TCP listener too; all close when the test ends.
type site struct {
	room *chatroom.Room
	http *httptest.Server
	tcp  string
}

func newSite(t *testing.T, roomOpts []chatroom.Option, opts ...web.Option) *site {
	t.Helper()
	room := chatroom.NewRoom(append([]chatroom.Option{chatroom.WithClock(chattest.Clock)}, roomOpts...)...)
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

// browser is a WebSocket client of the room: the line client over the
// WebSocket's text messages, and the WebSocket itself.
type browser struct {
	*chattest.Client
	ws *websocket.Conn
}

func (s *site) browser(t *testing.T, header http.Header) *browser {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.http.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: header})
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() })
	// Not chattest.NewClient: closing the NetConn would wait for the
	// close handshake; CloseNow above does not.
	conn := websocket.NetConn(context.Background(), ws, websocket.MessageText)
	b := &browser{Client: &chattest.Client{T: t, Conn: conn, In: bufio.NewReader(conn)}, ws: ws}
	welcome := b.Line()
	require.True(t, strings.HasPrefix(welcome, "* welcome "), welcome)
	b.Name = strings.TrimPrefix(welcome[:strings.LastIndex(welcome, ",")], "* welcome ")
	return b
}

// terminal connects a TCP client to the room and reads its welcome.
func (s *site) terminal(t *testing.T) *chattest.Client {
	t.Helper()
	c := chattest.Dial(t, s.tcp)
	require.True(t, strings.HasPrefix(c.Line(), "* welcome "+c.Name))
	return c
}

func TestBrowserAndTerminalChat(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil)
	b := s.browser(t, nil)
	c := s.terminal(t)
	assert.Equal(t, ts+" * "+c.Name+" joined", b.Line())

	b.Send("hello from the browser\n")
	assert.Equal(t, ts+" "+b.Name+" say: hello from the browser", c.Line())
	c.Send("hello from the terminal\n")
	assert.Equal(t, ts+" "+c.Name+" say: hello from the terminal", b.Line())

	// Many lines in one message, and a line split over two.
	b.Send("one\ntwo\nthr")
	b.Send("ee\n")
	for _, want := range []string{"one", "two", "three"} {
		assert.Equal(t, ts+" "+b.Name+" say: "+want, c.Line())
	}
	// Commands work from the browser.
	b.Send("/nick webby\n")
	assert.Equal(t, "* you are now webby", b.Line())
	assert.Equal(t, ts+" * "+b.Name+" is now webby", c.Line())
}

func TestBrowserLineTooLong(t *testing.T) {
	t.Parallel()
	s := newSite(t, []chatroom.Option{chatroom.WithBufferSize(16)})
	b := s.browser(t, nil)
	c := s.terminal(t)
	b.Line() // c joined
	b.Send(strings.Repeat("x", 100) + "\nshort\n")
	assert.Equal(t, "* error: message too long (max 16 bytes)", b.Line())
	assert.Equal(t, ts+" "+b.Name+" say: short", c.Line())
}

func TestBrowserBinaryMessageRefused(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil)
	b := s.browser(t, nil)
	c := s.terminal(t)
	b.Line()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, b.ws.Write(ctx, websocket.MessageBinary, []byte("binary\n")))
	_, _, err := b.ws.Read(ctx)
	assert.Equal(t, websocket.StatusUnsupportedData, websocket.CloseStatus(err), "closed with a close frame: %v", err)
	assert.Equal(t, ts+" * "+b.Name+" left", c.Line())
}

func TestBadOriginRefused(t *testing.T) {
	t.Parallel()
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
	assert.NotEmpty(t, b.Name)
}

func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	forwarded := http.Header{"X-Forwarded-For": {"198.51.100.7, 203.0.113.9"}}
	s := newSite(t, nil)
	b := s.browser(t, forwarded)
	assert.True(t, strings.HasPrefix(b.Name, "127.0.0.1:"), "untrusted header ignored: %s", b.Name)

	s2 := newSite(t, nil, web.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")))
	b2 := s2.browser(t, forwarded)
	assert.Equal(t, "203.0.113.9:0", b2.Name, "the last hop before the trusted proxy")
}

func TestAuthHookReadsTheRequest(t *testing.T) {
	t.Parallel()
	auth := func(ctx context.Context, conn net.Conn) (string, error) {
		r, ok := conn.(interface{ Request() *http.Request })
		if !ok {
			return "", errors.New("not a browser")
		}
		c, err := r.Request().Cookie("user")
		if err != nil {
			return "", errors.New("no user cookie")
		}
		return c.Value, nil
	}
	s := newSite(t, []chatroom.Option{chatroom.WithAuth(auth)})
	b := s.browser(t, http.Header{"Cookie": {"user=ada"}})
	assert.Equal(t, "ada", b.Name)
}

func TestPageIsServed(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil)
	for _, path := range []string{"/", "/chat.js", "/style.css"} {
		resp, err := http.Get(s.http.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
}

func TestNilLoggerPanicsNamingTheOption(t *testing.T) {
	t.Parallel()
	defer func() { assert.Contains(t, fmt.Sprint(recover()), "web: WithLogger(nil)") }()
	web.NewHandler(chatroom.NewRoom(), web.WithLogger(nil))
	t.Error("NewHandler did not panic")
}
