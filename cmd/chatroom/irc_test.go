package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo's IRC listener: -irc, -irc-name, -irc-password, -irc-oper, and
// TLS with -tls-cert/-tls-key.

// ircAddr returns where the demo serves IRC, from its log.
func (d *demo) ircAddr() string {
	d.t.Helper()
	line := d.logLine("serving IRC")
	m := regexp.MustCompile(`addr=(\S+)`).FindStringSubmatch(line)
	require.NotNil(d.t, m, line)
	return m[1]
}

// ircPeer is an IRC client of the demo.
type ircPeer struct {
	t    *testing.T
	conn net.Conn
	in   *bufio.Reader
}

func dialIRC(t *testing.T, conn net.Conn, err error) *ircPeer {
	t.Helper()
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitLimit))
	return &ircPeer{t, conn, bufio.NewReader(conn)}
}

func (p *ircPeer) send(lines ...string) {
	p.t.Helper()
	_, err := fmt.Fprint(p.conn, strings.Join(lines, "\r\n")+"\r\n")
	require.NoError(p.t, err)
}

// waitFor reads lines until one that contains want, and returns it.
func (p *ircPeer) waitFor(want string) string {
	p.t.Helper()
	for {
		line, err := p.in.ReadString('\n')
		require.NoError(p.t, err, "waiting for %q", want)
		if strings.Contains(line, want) {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

func TestServeIRC(t *testing.T) {
	d := startDemo(t, "-irc", "127.0.0.1:0", "-irc-name", "irc.demo", "-irc-oper", "root:sesame")
	conn, err := net.DialTimeout("tcp", d.ircAddr(), waitLimit)
	alice := dialIRC(t, conn, err)
	bob := joinDemo(t, d.addr, nil) // in the lobby

	alice.send("NICK alice", "USER alice 0 * :Alice", "JOIN #lobby")
	assert.Equal(t, ":irc.demo 001 alice :Welcome to the irc.demo IRC network, alice!~alice@127.0.0.1", alice.waitFor(" 001 "))
	alice.waitFor(" 366 alice #lobby ")
	bob.WaitForPart("* alice joined")
	alice.send("PRIVMSG #lobby :hello from IRC")
	bob.WaitForPart("alice say: hello from IRC")
	fmt.Fprint(bob.Conn, "hello from nc\n")
	alice.waitFor("PRIVMSG #lobby :hello from nc")

	alice.send("OPER root wrong", "OPER root sesame")
	alice.waitFor(" 464 alice ")
	alice.waitFor(" 381 alice ")
	d.stop()
	alice.waitFor("ERROR :Closing link (Server shutting down)")
}

func TestServeIRCPassword(t *testing.T) {
	d := startDemo(t, "-irc", "127.0.0.1:0", "-irc-password", "sesame")
	addr := d.ircAddr()
	for _, pass := range []string{"", "guess"} {
		conn, err := net.DialTimeout("tcp", addr, waitLimit)
		c := dialIRC(t, conn, err)
		if pass != "" {
			c.send("PASS " + pass)
		}
		c.send("NICK alice", "USER alice 0 * :Alice")
		c.waitFor("ERROR :Closing link (wrong password)")
	}
	conn, err := net.DialTimeout("tcp", addr, waitLimit)
	c := dialIRC(t, conn, err)
	c.send("PASS sesame", "NICK alice", "USER alice 0 * :Alice")
	c.waitFor(" 001 alice ")
	joinDemo(t, d.addr, nil) // a text client needs no password
}

func TestServeIRCOverTLS(t *testing.T) {
	cert := chattest.SelfSigned(t)
	certFile, keyFile := cert.WriteFiles(t, t.TempDir())
	d := startDemo(t, "-irc", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: waitLimit}, "tcp", d.ircAddr(), cert.Client)
	c := dialIRC(t, conn, err)
	c.send("NICK alice", "USER alice 0 * :Alice")
	c.waitFor(" 001 alice ")
}

func TestIRCCommandLineMistakes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"oper without a password", []string{"-irc", "127.0.0.1:0", "-irc-oper", "root"}, "-irc-oper"},
		{"oper with an empty name", []string{"-irc", "127.0.0.1:0", "-irc-oper", ":pw"}, "-irc-oper"},
		{"a password without -irc", []string{"-irc-password", "x"}, "-irc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := serve(tt.args)
			require.ErrorAs(t, err, new(usageError))
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
