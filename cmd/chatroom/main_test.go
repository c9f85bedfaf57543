package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"runtime/debug"
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

func startRoom(t *testing.T, wrap func(net.Listener) net.Listener, opts ...chatroom.Option) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom(opts...)
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

// TestJoinTellsATLSRoom: join without -tls against a TLS room, or with
// -tls against a plain one, fails with an error that names the flag to
// use, instead of printing nothing and succeeding.
func TestJoinTellsATLSRoom(t *testing.T) {
	t.Parallel()
	serverCfg := chattest.SelfSigned(t).Server
	tlsRoom := func(l net.Listener) net.Listener { return tls.NewListener(l, serverCfg) }
	// A TLS server that answers before the client speaks: with an alert
	// record (fatal, handshake_failure), as some do to a client they
	// cannot serve.
	alerting, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { alerting.Close() })
	go func() {
		for {
			c, err := alerting.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28})
			c.Close()
		}
	}()
	for _, tt := range []struct {
		name string
		addr string
		args []string
		want []string
	}{
		{"a TLS room that hangs up on a silent client",
			startRoom(t, tlsRoom, chatroom.WithWriteTimeout(100*time.Millisecond)), nil,
			[]string{"closed the connection without a word", "join it with -tls"}},
		{"a TLS room that waits longer than -timeout",
			startRoom(t, tlsRoom), []string{"-timeout", "200ms"},
			[]string{"no welcome from", "within 200ms", "join it with -tls"}},
		{"a TLS server that answers with an alert",
			alerting.Addr().String(), nil,
			[]string{"answered in TLS", "join it with -tls"}},
		{"a plain room, joined with -tls",
			startRoom(t, func(l net.Listener) net.Listener { return l }), []string{"-tls", "-insecure"},
			[]string{"does not speak TLS", "join it without -tls"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := join(append(tt.args, tt.addr), strings.NewReader("hello\n"), &out)
			require.Error(t, err)
			assert.False(t, errors.As(err, new(usageError)), "not a usage mistake: exit status 1")
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
			assert.Contains(t, err.Error(), tt.addr)
			assert.Empty(t, out.String())
		})
	}
}

// TestDemoJoinWithoutTLSExits1 runs the built program as a user would:
// "chatroom join ADDR" against the demo serving TLS says to use -tls and
// exits 1.
func TestDemoJoinWithoutTLSExits1(t *testing.T) {
	t.Parallel()
	cert := chattest.SelfSigned(t)
	certFile, keyFile := cert.WriteFiles(t, t.TempDir())
	d := startDemo(t, "-tls-cert", certFile, "-tls-key", keyFile, "-write-timeout", "200ms")

	stdout, stderr, code := runDemo(t, "hello\n", "join", d.addr)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "chatroom: join: "+d.addr+" closed the connection without a word: if it is a TLS room, join it with -tls")

	// With -tls and the certificate, the same room lets it in.
	stdout, _, code = runDemo(t, "", "join", "-tls", "-ca", certFile, d.addr)
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "* welcome 127.0.0.1:")
	d.stop()
}

// runDemo runs the built program with args and stdin to its end, at most
// waitLimit, and returns what it wrote and its exit status.
func runDemo(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the program")
	}
	bin, err := demoBinary()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	require.NoError(t, ctx.Err(), "%v did not end", args)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return out.String(), errOut.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return out.String(), errOut.String(), 0
}

// TestHelpAndVersion: "help" prints every command and flag, "help join"
// one command's, and "version" and "-version" the build's version.
func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, dispatch([]string{"help"}, nil, &out))
	for _, want := range []string{"chatroom join [flags] ADDR", "chatroom version", "-metrics address", "-trusted-proxy network", "-http-host name", "-timeout duration"} {
		assert.Contains(t, out.String(), want)
	}
	out.Reset()
	require.NoError(t, dispatch([]string{"help", "join"}, nil, &out))
	assert.True(t, strings.HasPrefix(out.String(), "Usage: chatroom join [flags] ADDR"), out.String())
	assert.NotContains(t, out.String(), "-metrics")

	info, ok := debug.ReadBuildInfo()
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		out.Reset()
		require.NoError(t, dispatch(args, nil, &out))
		assert.Equal(t, versionText(info, ok), out.String(), args)
		assert.Contains(t, out.String(), "built with "+runtime.Version())
	}
}

func TestVersionText(t *testing.T) {
	t.Parallel()
	info := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/chatroom-go/chatroom/cmd/chatroom", Version: version}}
		for i := 0; i < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	for _, tt := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"a released version", info("v1.2.3", "GOOS", "linux", "GOARCH", "arm64"), true,
			"chatroom v1.2.3\nbuilt with go1.26.8 for linux/arm64\n"},
		{"a build from a clone", info("v0.0.0-20261202233800-ada235a4a9ca", "vcs.revision", "ada235a4a9ca", "vcs.time", "2026-12-02T23:38:00Z", "vcs.modified", "false", "GOOS", "linux", "GOARCH", "amd64"), true,
			"chatroom v0.0.0-20261202233800-ada235a4a9ca\nrevision ada235a4a9ca, committed 2026-12-02T23:38:00Z\nbuilt with go1.26.8 for linux/amd64\n"},
		{"uncommitted changes", info("(devel)", "vcs.revision", "ada235a4a9ca", "vcs.modified", "true", "GOOS", "linux", "GOARCH", "amd64"), true,
			"chatroom (devel)\nrevision ada235a4a9ca (with uncommitted changes)\nbuilt with go1.26.8 for linux/amd64\n"},
		{"no build information", nil, false,
			"chatroom: no build information in this binary (" + runtime.Version() + ")\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, versionText(tt.info, tt.ok))
		})
	}
}

// TestDemoHelpAndVersion: the built program answers "help", "version" and
// "-version" on stdout with status 0, and a mistake with status 2.
func TestDemoHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help"}, 0, "chatroom join [flags] ADDR"},
		{[]string{"help", "serve"}, 0, "-tls-cert file"},
		{[]string{"version"}, 0, "built with go1."},
		{[]string{"-version"}, 0, "built with go1."},
		{[]string{"-h"}, 0, ""},
		{[]string{"help", "nope"}, 2, ""},
		{[]string{"hepl"}, 2, ""},
	} {
		stdout, stderr, code := runDemo(t, "", tt.args...)
		assert.Equal(t, tt.code, code, "%v: %s", tt.args, stderr)
		assert.Contains(t, stdout, tt.want, tt.args)
		if tt.code == 0 && tt.want != "" {
			assert.True(t, strings.HasPrefix(stdout, "Usage") || strings.HasPrefix(stdout, "chatroom "), "%v: %q", tt.args, stdout)
		}
	}
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
		{"negative keepalive", func() error { return serve([]string{"-keepalive", "-1s"}) }, "-keepalive"},
		{"keepalive under a second", func() error { return serve([]string{"-keepalive", "500ms"}) }, "-keepalive"},
		{"negative history", func() error { return serve([]string{"-history", "-1"}) }, "-history"},
		{"negative rate", func() error { return serve([]string{"-rate", "-1"}) }, "-rate"},
		{"NaN rate", func() error { return serve([]string{"-rate", "NaN"}) }, "-rate"},
		{"negative max-per-host", func() error { return serve([]string{"-max-per-host", "-1"}) }, "-max-per-host"},
		{"negative join-rate", func() error { return serve([]string{"-join-rate", "-2"}) }, "-join-rate"},
		{"infinite join-rate", func() error { return serve([]string{"-join-rate", "Inf"}) }, "-join-rate"},
		{"key without cert", func() error { return serve([]string{"-tls-key", "k.pem"}) }, "-tls-cert"},
		{"stray argument", func() error { return serve([]string{"now"}) }, "now"},
		{"unknown flag", func() error { return serve([]string{"-htpp", "x"}) }, "-htpp"},
		{"trusted proxy without -http", func() error { return serve([]string{"-trusted-proxy", "10.0.0.0/8"}) }, "-trusted-proxy"},
		{"a trusted proxy that is no network", func() error { return serve([]string{"-http", ":0", "-trusted-proxy", "10.0.0.0/8,proxy"}) }, `"proxy"`},
		{"http-host without -http", func() error { return serve([]string{"-http-host", "chat.example.com"}) }, "-http-host"},
		{"room without -nats", func() error { return serve([]string{"-room", "x"}) }, "-nats"},
		{"help for no command", func() error { return dispatch([]string{"help", "nope"}, nil, io.Discard) }, "nope"},
		{"version with an argument", func() error { return dispatch([]string{"version", "x"}, nil, io.Discard) }, "x"},
		{"join with an unknown flag", func() error { return join([]string{"-tsl", "h:1"}, strings.NewReader(""), io.Discard) }, "-tsl"},
		{"join without address", func() error { return join(nil, strings.NewReader(""), io.Discard) }, "address"},
		{"ca without tls", func() error { return join([]string{"-ca", "x", "h:1"}, strings.NewReader(""), io.Discard) }, "-tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.run()
			require.ErrorAs(t, err, new(usageError))
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestTrustedProxyFlag(t *testing.T) {
	t.Parallel()
	var p prefixFlag
	require.NoError(t, p.Set("10.0.0.0/8, 192.168.1.7"))
	require.NoError(t, p.Set("2001:db8::/32,::ffff:172.16.0.1"))
	require.NoError(t, p.Set("10.1.2.3/16"))
	assert.Equal(t, prefixFlag{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("172.16.0.1/32"),
		netip.MustParsePrefix("10.1.0.0/16"),
	}, p)
	assert.Equal(t, "10.0.0.0/8,192.168.1.7/32,2001:db8::/32,172.16.0.1/32,10.1.0.0/16", p.String())
	assert.Error(t, p.Set("10.0.0.0/33"))
	assert.Error(t, p.Set("proxy.example"))
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
