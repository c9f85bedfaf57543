package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// natsServerBinary finds nats-server in PATH or in $GOPATH/bin, as .ci/run
// installs it; the test that needs it skips without it.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	gopath, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(string(gopath[:len(gopath)-1]), "bin", "nats-server")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("nats-server is not installed: go install github.com/nats-io/nats-server/v2@v2.15.2")
	return ""
}

// startNATSServer runs nats-server with JetStream on a free loopback port
// until the test ends, and returns its URL; with args (a configuration
// file: "-c", FILE) too.
func startNATSServer(t *testing.T, args ...string) string {
	t.Helper()
	return runNATSServer(t, append(args, "-js", "-sd", t.TempDir())...)
}

// runNATSServer runs nats-server with args on a free loopback port until
// the test ends, and returns its URL.
func runNATSServer(t *testing.T, args ...string) string {
	t.Helper()
	bin := natsServerBinary(t)
	addr := freePort(t)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{"-a", host, "-p", port}, args...)...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	chattest.Eventually(t, func() bool {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, "nats-server listening on %s", addr)
	return "nats://" + addr
}

// TestDemoOverNATS: two demo processes with -nats serve one room, as the
// README has a new user try it: people on each chat, rename, whisper, see
// who is here and the same history; both exit 0 on SIGTERM.
func TestDemoOverNATS(t *testing.T) {
	t.Parallel()
	url := startNATSServer(t)
	one := startDemo(t, "-nats", url, "-room", "demo", "-history", "5")
	two := startDemo(t, "-nats", url, "-room", "demo", "-history", "5")

	ann := joinDemo(t, one.addr, nil)
	ann.Send("/nick ann\n")
	ann.WaitForPart("* you are now ann")
	bob := joinDemo(t, two.addr, nil)
	bob.Send("/nick bob\n")
	bob.WaitForPart("* you are now bob")
	ann.WaitForPart(" is now bob")

	ann.Send("hello from one\n")
	bob.WaitForPart(" ann say: hello from one")
	bob.Send("/me waves from two\n")
	ann.WaitForPart("* bob waves from two")
	ann.Send("/msg bob psst\n")
	bob.WaitForPart(" ann whispers: psst")
	bob.Send("/nick ann\n")
	bob.WaitForPart("* error: nickname taken")
	bob.Send("/nick bobby\n")
	ann.WaitForPart("* bob is now bobby")
	ann.Send("/who\n")
	ann.WaitForPart("* 2 online: ann, bobby")

	for _, d := range []*demo{one, two} {
		newcomer := joinDemo(t, d.addr, nil)
		newcomer.WaitForPart(" ann say: hello from one")
		newcomer.WaitForPart("* bob waves from two")
	}
	one.stop()
	bob.WaitForPart("* ann left")
	two.stop()
}

// TestDemoNATSUnreachable: with -nats and no NATS server there, or one
// without JetStream, the demo exits 1 at start, saying what it needs.
func TestDemoNATSUnreachable(t *testing.T) {
	t.Parallel()
	nobody := "nats://" + freePort(t)
	_, stderr, code := runDemo(t, "", "-addr", "127.0.0.1:0", "-nats", nobody)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "chatroom: -nats: natsbus: connecting to "+nobody+": nats: no servers available for connection; "+
		"the room needs a NATS server with JetStream at that URL (nats-server -js), or leave -nats out")

	noJetStream := runNATSServer(t)
	_, stderr, code = runDemo(t, "", "-addr", "127.0.0.1:0", "-nats", noJetStream)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "jetstream not enabled")
	assert.Contains(t, stderr, "nats-server -js")
}

// TestDemoOverNATSWithCredentials: the demo against a NATS server
// configured as docs/nats.md says (natsbus/testdata/nats-server.conf: the
// chat processes in their own account, with only the permissions they
// need): one process with a user and password in the URL, one with
// -nats-nkey; and a process without credentials cannot start.
func TestDemoOverNATSWithCredentials(t *testing.T) {
	url := startNATSServer(t, "-c", filepath.Join("..", "..", "natsbus", "testdata", "nats-server.conf"))
	hostPort := strings.TrimPrefix(url, "nats://")
	one := startDemo(t, "-nats", "nats://chat:chat-secret@"+hostPort, "-history", "5")
	two := startDemo(t, "-nats", url, "-nats-nkey", filepath.Join("..", "..", "natsbus", "testdata", "chat.nk"), "-history", "5")

	ann := joinDemo(t, one.addr, nil)
	ann.Send("/nick ann\n")
	ann.WaitForPart("* you are now ann")
	bob := joinDemo(t, two.addr, nil)
	bob.Send("/nick bob\n")
	bob.WaitForPart("* you are now bob")
	ann.WaitForPart(" is now bob")
	ann.Send("hello from one\n")
	bob.WaitForPart(" ann say: hello from one")
	bob.Send("/msg ann psst\n")
	ann.WaitForPart(" bob whispers: psst")

	bin, err := demoBinary()
	require.NoError(t, err)
	for name, args := range map[string][]string{
		"no credentials": {"-nats", url},
		"no such creds":  {"-nats", url, "-nats-creds", filepath.Join(t.TempDir(), "missing.creds")},
	} {
		out, err := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...).CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s: %s", name, out)
		assert.Equal(t, 1, exit.ExitCode(), "%s: %s", name, out)
	}
	one.stop()
	two.stop()
}

func TestNATSCredentialsNeedNATS(t *testing.T) {
	for _, args := range [][]string{{"-nats-creds", "x.creds"}, {"-nats-nkey", "x.nk"}} {
		err := serve(args)
		require.ErrorAs(t, err, new(usageError))
		assert.Contains(t, err.Error(), "-nats")
	}
}
