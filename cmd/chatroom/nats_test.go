package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
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
// until the test ends, and returns its URL.
func startNATSServer(t *testing.T) string {
	t.Helper()
	bin := natsServerBinary(t)
	addr := freePort(t)
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	cmd := exec.Command(bin, "-js", "-a", host, "-p", port, "-sd", t.TempDir())
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
