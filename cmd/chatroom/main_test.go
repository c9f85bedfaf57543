package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if demoDir != "" {
			os.RemoveAll(demoDir)
		}
		os.Exit(code)
	}))
}

// waitLimit bounds every wait of these tests (chattest's).
const waitLimit = chattest.WaitLimit

func startRoom(t *testing.T, wrap func(net.Listener) net.Listener) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(wrap(ln)) }()
	t.Cleanup(func() {
		room.Close()
		<-served
	})
	return ln.Addr().String()
}

func TestJoinSendsTypedLinesAndLeavesAtEndOfInput(t *testing.T) {
	t.Parallel()
	addr := startRoom(t, func(l net.Listener) net.Listener { return l })
	other := chattest.Dial(t, addr)
	other.WaitForPart(", 1 online")

	var out bytes.Buffer
	require.NoError(t, join([]string{addr}, strings.NewReader("hello\nhow are you\n"), &out))
	other.WaitForPart(" say: hello")
	other.WaitForPart(" say: how are you")
	other.WaitForPart(" left")
	assert.Contains(t, out.String(), ", 2 online\n")
	assert.True(t, strings.HasSuffix(out.String(), "* bye\n"), "output %q", out.String())
}

func TestJoinTLSWithCA(t *testing.T) {
	t.Parallel()
	cert := chattest.SelfSigned(t)
	caFile, _ := cert.WriteFiles(t, t.TempDir()) // the certificate is its own CA
	addr := startRoom(t, func(l net.Listener) net.Listener { return tls.NewListener(l, cert.Server) })

	var out bytes.Buffer
	// Flags after the address are accepted too.
	require.NoError(t, join([]string{addr, "-tls", "-ca", caFile}, strings.NewReader("exit\n"), &out))
	assert.Contains(t, out.String(), ", 1 online\n")
	assert.True(t, strings.HasSuffix(out.String(), "* bye\n"), "output %q", out.String())

	// Without the CA the certificate is not trusted.
	err := join([]string{"-tls", addr}, strings.NewReader(""), io.Discard)
	assert.ErrorAs(t, err, new(*tls.CertificateVerificationError))
}

func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"negative buffer", func() error { return serve([]string{"-buffer", "-1"}) }, "-buffer"},
		{"zero outbox", func() error { return serve([]string{"-outbox", "0"}) }, "-outbox"},
		{"negative idle", func() error { return serve([]string{"-idle", "-1s"}) }, "-idle"},
		{"negative history", func() error { return serve([]string{"-history", "-1"}) }, "-history"},
		{"negative rate", func() error { return serve([]string{"-rate", "-1"}) }, "-rate"},
		{"NaN rate", func() error { return serve([]string{"-rate", "NaN"}) }, "-rate"},
		{"negative max-per-host", func() error { return serve([]string{"-max-per-host", "-1"}) }, "-max-per-host"},
		{"negative join-rate", func() error { return serve([]string{"-join-rate", "-2"}) }, "-join-rate"},
		{"infinite join-rate", func() error { return serve([]string{"-join-rate", "Inf"}) }, "-join-rate"},
		{"key without cert", func() error { return serve([]string{"-tls-key", "k.pem"}) }, "-tls-cert"},
		{"stray argument", func() error { return serve([]string{"now"}) }, "now"},
		{"join without address", func() error { return join(nil, strings.NewReader(""), io.Discard) }, "address"},
		{"ca without tls", func() error { return join([]string{"-ca", "x", "h:1"}, strings.NewReader(""), io.Discard) }, "-tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			require.ErrorAs(t, err, new(usageError))
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestServeShutsDownOnSIGTERM builds the demo, serves a room, connects two
// clients and sends SIGTERM: both are told, and the program exits 0.
func TestServeShutsDownOnSIGTERM(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the program")
	}
	bin, err := demoBinary()
	require.NoError(t, err)

	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	logs := bufio.NewScanner(stderr)
	addrRe := regexp.MustCompile(`msg=serving addr=(\S+)`)
	var addr string
	for addr == "" && logs.Scan() {
		if m := addrRe.FindStringSubmatch(logs.Text()); m != nil {
			addr = m[1]
		}
	}
	require.NotEmpty(t, addr, "the program logs where it serves")
	go func() {
		io.Copy(io.Discard, stderr)
		exited <- cmd.Wait()
	}()

	var peers []*chattest.Client
	for i := range 2 {
		p := chattest.Dial(t, addr)
		p.WaitForPart(", " + string(rune('1'+i)) + " online")
		peers = append(peers, p)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for _, p := range peers {
		p.WaitForPart("* server shutting down")
	}
	select {
	case err := <-exited:
		assert.NoError(t, err, "exit status 0")
	case <-time.After(waitLimit):
		cmd.Process.Kill()
		t.Fatal("the program did not exit")
	}
}

// TestServeHTTP: with -http, the demo serves the page at / and the
// WebSocket at /ws, in the same room as its TCP listener.
func TestServeHTTP(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "-http", "127.0.0.1:0")
	line := d.logLine("serving the web page")
	m := regexp.MustCompile(`addr=http://(\S+)/`).FindStringSubmatch(line)
	require.NotNil(t, m, line)
	site := m[1]

	resp, err := http.Get("http://" + site + "/")
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(page), `id="messages"`)

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+site+"/ws", nil)
	require.NoError(t, err)
	defer ws.CloseNow()
	fromWS := bufio.NewReader(websocket.NetConn(context.Background(), ws, websocket.MessageText))
	welcome, err := fromWS.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, welcome, "* welcome ")

	tcp := joinDemo(t, d.addr, nil)
	require.NoError(t, ws.Write(ctx, websocket.MessageText, []byte("hello from a browser\n")))
	tcp.WaitForPart("say: hello from a browser")
	tcp.Send("hello from a terminal\n")
	for {
		line, err := fromWS.ReadString('\n')
		require.NoError(t, err)
		if strings.Contains(line, "say: hello from a terminal") {
			break
		}
	}
	d.stop()
}
