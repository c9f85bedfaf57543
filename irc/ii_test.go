package irc_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom/internal/chattest"
)

// TestRealClientII: ii, a real IRC client (suckless's, file based: it
// reads commands from a FIFO "in" and writes what arrives to a file
// "out", per server and per channel), joins the lobby, talks with an nc
// user there, and leaves.
func TestRealClientII(t *testing.T) {
	t.Parallel()
	path, err := exec.LookPath("ii")
	if err != nil {
		t.Skip("ii is not installed (Debian package ii; .ci/run installs it): the test with a real IRC client does not run")
	}
	s := startServer(t, nil)
	bob := textClient(t, s, "bob", 1)

	dir := t.TempDir()
	host, port, err := net.SplitHostPort(s.irc)
	require.NoError(t, err)
	var output bytes.Buffer
	cmd := exec.Command(path, "-s", host, "-p", port, "-i", dir, "-n", "iibot", "-f", "ii bot")
	cmd.Stdout, cmd.Stderr = &output, &output
	require.NoError(t, cmd.Start())
	exited := make(chan struct{}) // closed once ii has exited, and waited is its Wait's error
	var waited error
	go func() {
		waited = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("ii's output: %s", output.String())
		}
	})

	// ii makes its server directory and FIFO once it has connected.
	server := filepath.Join(dir, host)
	in := openFIFO(t, filepath.Join(server, "in"))
	write(t, in, "/j #lobby")
	bob.expect(ts + " * iibot joined")

	lobby := openFIFO(t, filepath.Join(server, "#lobby", "in"))
	write(t, lobby, "hello from ii")
	bob.expect(ts + " iibot say: hello from ii")
	bob.send("hello from nc")
	waitForText(t, filepath.Join(server, "#lobby", "out"), "<bob> hello from nc")
	bob.send("/me waves")
	waitForText(t, filepath.Join(server, "#lobby", "out"), "<bob> \x01ACTION waves\x01") // ii shows CTCP as it comes

	write(t, lobby, "/l see you")
	bob.expect(ts + " * iibot left")
	write(t, in, "/q")
	select {
	case <-exited:
		assert.NoError(t, waited, "ii exits once the server closes the connection")
	case <-time.After(chattest.WaitLimit):
		t.Fatal("ii did not exit after /q")
	}
}

// openFIFO opens ii's FIFO at path for writing, once ii has made it.
func openFIFO(t *testing.T, path string) *os.File {
	t.Helper()
	chattest.Eventually(t, func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Mode()&os.ModeNamedPipe != 0
	}, "ii made %s", path)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// write writes one line to ii.
func write(t *testing.T, f *os.File, line string) {
	t.Helper()
	_, err := f.WriteString(line + "\n")
	require.NoError(t, err)
}

// waitForText waits until the file at path holds text.
func waitForText(t *testing.T, path, text string) {
	t.Helper()
	chattest.Eventually(t, func() bool {
		b, err := os.ReadFile(path)
		return err == nil && strings.Contains(string(b), text)
	}, "%s holds %q", path, text)
}
