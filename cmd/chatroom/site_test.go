package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHTTPServerLimits: the demo's HTTP servers close a keep-alive
// connection left idle, and one that sends its headers too slowly, and
// refuse headers that are too large (431), through real HTTP on
// 127.0.0.1, with the limits made short.
func TestHTTPServerLimits(t *testing.T) {
	t.Parallel()
	for name, d := range map[string]time.Duration{"readHeader": siteLimits.readHeader, "read": siteLimits.read, "write": siteLimits.write, "idle": siteLimits.idle} {
		assert.Positive(t, d, "siteLimits.%s", name)
	}
	assert.Positive(t, siteLimits.maxHeaderBytes)

	limits := httpLimits{readHeader: 300 * time.Millisecond, read: time.Second, write: time.Second, idle: 300 * time.Millisecond, maxHeaderBytes: 1 << 10}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	failed := make(chan error, 1)
	s, err := startSite("test", "127.0.0.1:0", "/", ok, nil, limits, slog.New(slog.DiscardHandler), failed)
	require.NoError(t, err)
	t.Cleanup(s.close)
	addr := strings.TrimSuffix(strings.TrimPrefix(s.url, "http://"), "/")

	// ended reads conn until the server closes it, and reports whether it
	// did within waitLimit.
	ended := func(conn net.Conn, in *bufio.Reader) bool {
		conn.SetReadDeadline(time.Now().Add(waitLimit))
		_, err := io.Copy(io.Discard, in)
		return err == nil // io.Copy's nil is the end of the stream; a timeout is an error
	}
	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn, bufio.NewReader(conn)
	}

	t.Run("idle keep-alive", func(t *testing.T) {
		t.Parallel()
		conn, in := dial()
		_, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(in, nil)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.False(t, resp.Close, "a keep-alive connection")
		assert.True(t, ended(conn, in), "the idle connection was not closed")
	})
	t.Run("slow headers", func(t *testing.T) {
		t.Parallel()
		conn, in := dial()
		_, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n")
		require.NoError(t, err)
		assert.True(t, ended(conn, in), "a request with unfinished headers kept its connection")
	})
	t.Run("silent connection", func(t *testing.T) {
		t.Parallel()
		conn, in := dial()
		assert.True(t, ended(conn, in), "a connection that sends nothing was kept")
	})
	t.Run("large headers", func(t *testing.T) {
		t.Parallel()
		conn, in := dial()
		_, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\nCookie: "+strings.Repeat("c", 8<<10)+"\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(in, nil)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
	})
	select {
	case err := <-failed:
		t.Fatal(err)
	default:
	}
}

// TestDemoServesHTTPS: with -tls-cert and -tls-key, -http serves the page
// over HTTPS and the WebSocket over WSS, in the same room as the TLS chat
// listener; a plain-HTTP request to it gets no page.
func TestDemoServesHTTPS(t *testing.T) {
	t.Parallel()
	cert := chattest.SelfSigned(t)
	certFile, keyFile := cert.WriteFiles(t, t.TempDir())
	d := startDemo(t, "-tls-cert", certFile, "-tls-key", keyFile, "-http", "127.0.0.1:0")
	m := regexp.MustCompile(`addr=https://(\S+)/`).FindStringSubmatch(d.logLine("serving the web page"))
	require.NotNil(t, m, "the page is served over HTTPS")
	site := m[1]

	// A client that offers HTTP/2, as browsers do.
	client := &http.Client{Timeout: waitLimit, Transport: &http.Transport{TLSClientConfig: cert.Client, ForceAttemptHTTP2: true}}
	t.Cleanup(client.CloseIdleConnections)
	resp, err := client.Get("https://" + site + "/")
	require.NoError(t, err)
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(page), `id="messages"`)
	assert.Equal(t, "HTTP/1.1", resp.Proto, "WebSockets need HTTP/1.1")

	plain := &http.Client{Timeout: waitLimit}
	t.Cleanup(plain.CloseIdleConnections)
	resp, err = plain.Get("http://" + site + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), "HTTPS")

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "wss://"+site+"/ws", &websocket.DialOptions{HTTPClient: client})
	require.NoError(t, err)
	defer ws.CloseNow()
	fromWS := bufio.NewReader(websocket.NetConn(context.Background(), ws, websocket.MessageText))
	welcome, err := fromWS.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, welcome, "* welcome ")

	tcp := joinDemo(t, d.addr, func() (net.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", d.addr, cert.Client)
	})
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte("hello over WSS\n")))
	tcp.WaitForPart("say: hello over WSS")
	d.stop()
}

// TestDemoTrustedProxyAndHosts: -trusted-proxy makes the forwarded address
// the client's; -http-host adds a name to the hosts the WebSocket accepts,
// and any other name is refused (421).
func TestDemoTrustedProxyAndHosts(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "-http", "127.0.0.1:0", "-trusted-proxy", "192.0.2.0/24,127.0.0.0/8", "-http-host", "chat.example.com")
	site := d.webAddr()
	dial := func(host string, header http.Header) (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		ws, resp, err := websocket.Dial(ctx, "ws://"+site+"/ws", &websocket.DialOptions{Host: host, HTTPHeader: header})
		if err != nil {
			require.NotNil(t, resp, "no HTTP answer: %v", err)
			return "", resp.StatusCode
		}
		defer ws.CloseNow()
		_, welcome, err := ws.Read(ctx)
		require.NoError(t, err)
		return string(welcome), http.StatusSwitchingProtocols
	}
	welcome, status := dial("", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	require.Equal(t, http.StatusSwitchingProtocols, status)
	assert.True(t, strings.HasPrefix(welcome, "* welcome 203.0.113.9:0,"), welcome)

	_, status = dial("chat.example.com", http.Header{"Origin": {"https://chat.example.com"}})
	assert.Equal(t, http.StatusSwitchingProtocols, status)
	_, status = dial("evil.example", http.Header{"Origin": {"https://evil.example"}})
	assert.Equal(t, http.StatusMisdirectedRequest, status)
	d.stop()
}
