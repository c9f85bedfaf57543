package web_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

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

var testTime = chattest.Time

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

func TestInvalidOptionsPanicNamingTheOption(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opt  web.Option
		want string
	}{
		{web.WithLogger(nil), "web: WithLogger(nil)"},
		{web.WithMaxPerHost(-1), "web: WithMaxPerHost(-1)"},
		{web.WithAllowedHosts("chat.example.com", "["), `web: WithAllowedHosts("[")`},
	} {
		func() {
			defer func() { assert.Contains(t, fmt.Sprint(recover()), tt.want) }()
			web.NewHandler(chatroom.NewRoom(), tt.opt)
			t.Errorf("NewHandler did not panic for %s", tt.want)
		}()
	}
}

// dial opens a WebSocket to s's /ws with opts, and reads the room's
// welcome when it is let in; it returns the refusal's status and body when
// it is not.
func (s *site) dial(t *testing.T, opts *websocket.DialOptions) (ws *websocket.Conn, status int, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.http.URL, "http")+"/ws", opts)
	if err != nil {
		require.NotNil(t, resp, "no HTTP answer: %v", err)
		b, _ := io.ReadAll(resp.Body)
		return nil, resp.StatusCode, string(b)
	}
	t.Cleanup(func() { ws.CloseNow() })
	_, msg, err := ws.Read(ctx)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(msg), "* welcome "), "%q", msg)
	return ws, http.StatusSwitchingProtocols, ""
}

// TestHostAllowList: a WebSocket whose Host is not the server's is refused
// with 421 before the upgrade, even with an Origin to match (a page whose
// DNS name was rebound to the server's address); localhost, the address
// the request came to and WithAllowedHosts are let in.
func TestHostAllowList(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil)
	named := newSite(t, nil, web.WithAllowedHosts("chat.example.com", "*.Chat.Example.org."))
	port := s.http.Listener.Addr().(*net.TCPAddr).Port
	withPort := func(host string) string { return fmt.Sprintf("%s:%d", host, port) }
	for _, tt := range []struct {
		name   string
		s      *site
		host   string // "" for the URL's, 127.0.0.1:port
		origin string
		want   int
	}{
		{"the listener's own address", s, "", "", http.StatusSwitchingProtocols},
		{"localhost", s, "localhost", "", http.StatusSwitchingProtocols},
		{"localhost with a port, and its page's origin", s, withPort("LocalHost"), "http://" + withPort("localhost"), http.StatusSwitchingProtocols},
		{"a rebound name with a matching origin", s, withPort("evil.example"), "http://" + withPort("evil.example"), http.StatusMisdirectedRequest},
		{"another IP address", s, "192.0.2.1", "", http.StatusMisdirectedRequest},
		{"an allowed name", named, withPort("chat.example.com"), "http://" + withPort("chat.example.com"), http.StatusSwitchingProtocols},
		{"an allowed name, fully qualified", named, "Chat.Example.Com.", "", http.StatusSwitchingProtocols},
		{"an allowed pattern", named, "eu.chat.example.org", "", http.StatusSwitchingProtocols},
		{"a name the pattern does not cover", named, "chat.example.org", "", http.StatusMisdirectedRequest},
		{"a rebound name next to allowed ones", named, "evil.example", "http://evil.example", http.StatusMisdirectedRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			joined := tt.s.room.Stats().Joined
			opts := &websocket.DialOptions{Host: tt.host}
			if tt.origin != "" {
				opts.HTTPHeader = http.Header{"Origin": {tt.origin}}
			}
			_, status, body := tt.s.dial(t, opts)
			assert.Equal(t, tt.want, status, body)
			if tt.want != http.StatusSwitchingProtocols {
				assert.Contains(t, body, "unknown host")
				assert.Equal(t, joined, tt.s.room.Stats().Joined, "nobody joined the room")
			}
		})
	}
}

// TestMaxPerHostBeforeUpgrade: behind a trusted proxy on 127.0.0.1, the
// forwarded addresses are counted: with WithMaxPerHost(2), a third
// WebSocket from one IPv4 address, or from one IPv6 /64, is refused with
// 429 before the upgrade, while other addresses and other /64s get in; a
// place is free again once its WebSocket closes. Loopback is exempt.
func TestMaxPerHostBeforeUpgrade(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil, web.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8")), web.WithMaxPerHost(2))
	from := func(addr string) *websocket.DialOptions {
		return &websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {addr}}}
	}
	first, status, _ := s.dial(t, from("198.51.100.7"))
	require.Equal(t, http.StatusSwitchingProtocols, status)
	_, status, _ = s.dial(t, from("198.51.100.7"))
	require.Equal(t, http.StatusSwitchingProtocols, status)
	joined := s.room.Stats().Joined
	_, status, body := s.dial(t, from("198.51.100.7"))
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Contains(t, body, "too many connections from your address (max 2)")
	assert.Equal(t, joined, s.room.Stats().Joined, "the refused one never reached the room")
	_, status, _ = s.dial(t, from("198.51.100.8"))
	assert.Equal(t, http.StatusSwitchingProtocols, status, "another address")

	for _, addr := range []string{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"} {
		_, status, _ = s.dial(t, from(addr))
		require.Equal(t, http.StatusSwitchingProtocols, status, addr)
	}
	_, status, _ = s.dial(t, from("2001:db8:1:2:abcd::1"))
	assert.Equal(t, http.StatusTooManyRequests, status, "a third address of the same /64")
	_, status, _ = s.dial(t, from("2001:db8:1:3::1"))
	assert.Equal(t, http.StatusSwitchingProtocols, status, "another /64")

	// The first one leaves: its place is free once the handler is done
	// with it.
	first.CloseNow()
	deadline := time.Now().Add(waitLimit)
	for {
		_, status, _ = s.dial(t, from("198.51.100.7"))
		if status == http.StatusSwitchingProtocols {
			break
		}
		require.Equal(t, http.StatusTooManyRequests, status)
		require.True(t, time.Now().Before(deadline), "the place was never freed")
		time.Sleep(10 * time.Millisecond)
	}

	// Loopback is exempt: no limit without a forwarded address.
	lo := newSite(t, nil, web.WithMaxPerHost(1))
	for range 3 {
		_, status, _ = lo.dial(t, nil)
		assert.Equal(t, http.StatusSwitchingProtocols, status)
	}
}

// TestPageSecurityHeaders: every response of the page forbids framing and
// anything but the page's own script, style and connections; and the page
// holds nothing inline that such a policy would block.
func TestPageSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := newSite(t, nil)
	for _, path := range []string{"/", "/chat.js", "/style.css", "/no-such-file"} {
		resp, err := http.Get(s.http.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		directives := map[string]string{}
		for _, d := range strings.Split(csp, ";") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
			directives[name] = value
		}
		assert.Equal(t, map[string]string{
			"default-src":     "'none'",
			"script-src":      "'self'",
			"style-src":       "'self'",
			"connect-src":     "'self'",
			"img-src":         "'self'",
			"base-uri":        "'none'",
			"form-action":     "'none'",
			"frame-ancestors": "'none'",
		}, directives, path)
		assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), path)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
	}

	resp, err := http.Get(s.http.URL + "/")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	html := strings.ToLower(string(page))
	for _, script := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		assert.Contains(t, script, ` src=`, "an inline script: script-src 'self' blocks it")
	}
	assert.NotContains(t, html, "<style", "an inline style sheet: style-src 'self' blocks it")
	assert.NotRegexp(t, `\sstyle=`, html, "an inline style attribute: style-src 'self' blocks it")
	assert.NotRegexp(t, `\son[a-z]+=`, html, "an inline event handler: script-src 'self' blocks it")
}

// TestBrowserLineAcrossMessages: over the text protocol a WebSocket's
// messages are a byte stream, as TCP's: a line may come in pieces, and
// one message may hold several lines.
func TestBrowserLineAcrossMessages(t *testing.T) {
	s := newSite(t, nil)
	b := s.browser(t, nil)
	c := s.terminal(t)
	assert.Equal(t, ts+" * "+c.Name+" joined", b.Line())
	b.Send("hel")
	b.Send("lo\nand ")
	b.Send("")
	b.Send("more\n")
	assert.Equal(t, ts+" "+b.Name+" say: hello", c.Line())
	assert.Equal(t, ts+" "+b.Name+" say: and more", c.Line())
}
