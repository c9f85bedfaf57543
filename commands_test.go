package chatroom_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Commands: names, /who, /me, /msg, /help, /quit, // and unknown commands,
// through real connections (net.Pipe, served by ServeConn).

// trio joins alice, bob and carol to room and reads the join notices, so
// that each one's next line is what the test does.
func trio(t *testing.T, room *chatroom.Room) (alice, bob, carol *client) {
	t.Helper()
	alice, _ = pipeClient(t, room, "alice", 1)
	bob, _ = pipeClient(t, room, "bob", 2)
	alice.expect(ts + " * bob joined")
	carol, _ = pipeClient(t, room, "carol", 3)
	alice.expect(ts + " * carol joined")
	bob.expect(ts + " * carol joined")
	return alice, bob, carol
}

func TestNick(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)

	alice.send("/nick Alice_2\n")
	alice.expect("* you are now Alice_2")
	bob.expect(ts + " * alice is now Alice_2")
	carol.expect(ts + " * alice is now Alice_2")

	// From then on every line and notice carries the new name, and the
	// room finds the client by it.
	alice.send("hello\n")
	bob.expect(ts + " Alice_2 say: hello")
	carol.expect(ts + " Alice_2 say: hello")
	bob.send("/msg alice_2 psst\n") // found ignoring case
	alice.expect(ts + " bob whispers: psst")
	assert.Equal(t, []string{"Alice_2", "bob", "carol"}, names(room.Clients()))

	// The same name in another case is the client's own.
	alice.send("/NICK alice_2\n")
	alice.expect("* you are now alice_2")
	bob.expect(ts + " * Alice_2 is now alice_2")
	carol.expect(ts + " * Alice_2 is now alice_2")

	for _, tt := range []struct{ name, send, want string }{
		{"taken", "/nick bob", "* error: nickname taken"},
		{"taken in another case", "/nick BOB", "* error: nickname taken"},
		{"missing", "/nick", "* error: invalid nickname"},
		{"too long", "/nick " + strings.Repeat("x", 33), "* error: invalid nickname"},
		{"a space", "/nick a b", "* error: invalid nickname"},
		{"not ASCII", "/nick zoë", "* error: invalid nickname"},
		{"a colon", "/nick a:b", "* error: invalid nickname"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			alice.send(tt.send + "\n")
			alice.expect("%s", tt.want)
		})
	}
	alice.send("/nick " + strings.Repeat("x", 32) + "\n")
	alice.expect("* you are now %s", strings.Repeat("x", 32))
	bob.expect(ts+" * alice_2 is now %s", strings.Repeat("x", 32))
	carol.expect(ts+" * alice_2 is now %s", strings.Repeat("x", 32))

	// A name given up is free again.
	bob.send("/nick [alice-2.]\n")
	bob.expect("* you are now [alice-2.]")
	carol.expect(ts + " * bob is now [alice-2.]")
	carol.send("/nick alice_2\n")
	carol.expect("* you are now alice_2")
}

func names(infos []chatroom.ClientInfo) []string {
	var out []string
	for _, c := range infos {
		out = append(out, c.Name)
	}
	return out
}

func TestWho(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	bob.send("/nick Bob\n")
	bob.expect("* you are now Bob")
	alice.expect(ts + " * bob is now Bob")

	alice.send("/who\n")
	alice.expect("* 3 online: alice, Bob, carol") // sorted ignoring case
	alice.send("/WHO   \n")
	alice.expect("* 3 online: alice, Bob, carol")
}

func TestMe(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)
	alice.send("/me waves  at everyone\n") // a run of blanks is one space
	bob.expect(ts + " * alice waves at everyone")
	carol.expect(ts + " * alice waves at everyone")
	alice.send("/me\n")
	alice.expect("* error: usage: /me TEXT") // nothing came back before it
}

func TestMsg(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)

	alice.send("/msg bob meet me at noon\n")
	bob.expect(ts + " alice whispers: meet me at noon")
	alice.send("/msg alice a note to self\n")
	alice.expect(ts + " alice whispers: a note to self")
	alice.send("/msg dave hello?\n")
	alice.expect("* error: no such client dave")
	alice.send("/msg bob\n")
	alice.expect("* error: usage: /msg NAME TEXT")

	// carol heard none of it: her next line is alice's next chat line.
	alice.send("back in the room\n")
	carol.expect(ts + " alice say: back in the room")
	bob.expect(ts + " alice say: back in the room")
}

func TestHelpQuitAndOtherCommands(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)

	alice.send("/help\n")
	var help []string
	for line := alice.line(); ; line = alice.line() {
		require.True(t, strings.HasPrefix(line, "* "), "help line %q", line)
		help = append(help, line)
		if strings.Contains(line, "//text") {
			break
		}
	}
	for _, cmd := range []string{"/nick", "/who", "/me", "/msg", "/quit", "/help"} {
		assert.Contains(t, strings.Join(help, "\n"), cmd)
	}

	alice.send("/dance now\n")
	alice.expect("* error: unknown command /dance (try /help)")
	alice.send("/\n")
	alice.expect("* error: unknown command / (try /help)")

	// "//" escapes a leading slash; a line is never relayed as a command.
	alice.send("//shrug\n")
	bob.expect(ts + " alice say: /shrug")
	alice.send("//\n")
	bob.expect(ts + " alice say: /")

	alice.send("/QUIT\n")
	alice.expect("* bye")
	alice.expectClosed()
	bob.expect(ts + " * alice left")
}

func TestHistory(t *testing.T) {
	room := pipeRoom(t, chatroom.WithHistory(3))
	alice, _ := pipeClient(t, room, "alice", 1)
	first, _ := pipeClient(t, room, "first", 2) // history shorter than n
	alice.expect(ts + " * first joined")
	alice.send("one\n")
	first.expect(ts + " alice say: one")

	newcomer := func(name string, online int, history ...string) *client {
		t.Helper()
		c, _ := pipeClient(t, room, name, online)
		for _, h := range history {
			c.expect("%s", h)
		}
		return c
	}
	second := newcomer("second", 3, ts+" alice say: one")
	first.expect(ts + " * second joined")
	alice.expect(ts + " * second joined")

	alice.send("two\n")
	alice.send("/me three\n")
	alice.send("/msg first never in history\n")
	alice.send("four\n")
	second.expect(ts + " alice say: two")
	second.expect(ts + " * alice three")
	second.expect(ts + " alice say: four")

	// The last three say and /me lines, unchanged; no whisper, join or leave.
	third := newcomer("third", 4, ts+" alice say: two", ts+" * alice three", ts+" alice say: four")
	second.expect(ts + " * third joined")
	second.send("five\n")
	third.expect(ts + " second say: five")
}

func TestCommandsCountAsActivityButNotAsChat(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	alice.send("/who\n")
	alice.expect("* 3 online: alice, bob, carol")
	alice.send("real\n")
	bob.expect(ts + " alice say: real")
	assert.Equal(t, uint64(1), room.Stats().Messages, "only the chat line is a message")
}

// TestNickNamesEveryLineAfterIt: lines said before a rename carry the old
// name, lines after it the new one, in the order said, even within one
// write.
func TestNickNamesEveryLineAfterIt(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	alice.send("before\n/nick ann\nafter\n")
	bob.expect(ts + " alice say: before")
	bob.expect(ts + " * alice is now ann")
	bob.expect(ts + " ann say: after")
	alice.expect("* you are now ann")
	for i := range 3 {
		alice.send(fmt.Sprintf("line %d\n", i))
		bob.expect(ts+" ann say: line %d", i)
	}
}

// TestRepliesComeInTheOrderAsked: what the room answers (the welcome, "you
// are now") and what the reader answers itself (an unknown command's
// error) reach the client in the order the lines were sent, however the
// goroutines are scheduled. Each round races them again.
func TestRepliesComeInTheOrderAsked(t *testing.T) {
	room, addr := startRoom(t)
	for i := range 50 {
		eventually(t, func() bool { return room.Stats().Clients == 0 }, "the last round's client left")
		conn, err := net.DialTimeout("tcp", addr, waitLimit)
		require.NoError(t, err)
		// Sent before the welcome could be read: in the socket as the
		// reader starts.
		_, err = fmt.Fprintf(conn, "/bogus\n/nick n%d\n/bogus\n", i)
		require.NoError(t, err)
		c := &client{t: t, conn: conn, in: bufio.NewReader(conn), name: conn.LocalAddr().String()}
		c.expect("* welcome %s, 1 online", c)
		c.expect("* error: unknown command /bogus (try /help)")
		c.expect("* you are now n%d", i)
		c.expect("* error: unknown command /bogus (try /help)")
		require.NoError(t, conn.Close())
	}
}
