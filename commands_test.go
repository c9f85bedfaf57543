package chatroom_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// Commands: names, /who, /me, /msg, /help, /quit, // and unknown commands,
// through real connections (net.Pipe, served by ServeConn).

// trio joins alice, bob and carol to room and reads the join notices, so
// that each one's next line is what the test does.
func trio(t *testing.T, room *chatroom.Room) (alice, bob, carol *client) {
	t.Helper()
	alice, _ = pipeClient(t, room, "alice", 1)
	bob, _ = pipeClient(t, room, "bob", 2)
	alice.Expect(ts + " * bob joined")
	carol, _ = pipeClient(t, room, "carol", 3)
	alice.Expect(ts + " * carol joined")
	bob.Expect(ts + " * carol joined")
	return alice, bob, carol
}

func TestNick(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)

	alice.Send("/nick Alice_2\n")
	alice.Expect("* you are now Alice_2")
	bob.Expect(ts + " * alice is now Alice_2")
	carol.Expect(ts + " * alice is now Alice_2")

	// From then on every line and notice carries the new name, and the
	// room finds the client by it.
	alice.Send("hello\n")
	bob.Expect(ts + " Alice_2 say: hello")
	carol.Expect(ts + " Alice_2 say: hello")
	bob.Send("/msg alice_2 psst\n") // found ignoring case
	alice.Expect(ts + " bob whispers: psst")
	assert.Equal(t, []string{"Alice_2", "bob", "carol"}, names(room.Clients()))

	// The same name in another case is the client's own.
	alice.Send("/NICK alice_2\n")
	alice.Expect("* you are now alice_2")
	bob.Expect(ts + " * Alice_2 is now alice_2")
	carol.Expect(ts + " * Alice_2 is now alice_2")

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
			alice.Send(tt.send + "\n")
			alice.Expect("%s", tt.want)
		})
	}
	alice.Send("/nick " + strings.Repeat("x", 32) + "\n")
	alice.Expect("* you are now %s", strings.Repeat("x", 32))
	bob.Expect(ts+" * alice_2 is now %s", strings.Repeat("x", 32))
	carol.Expect(ts+" * alice_2 is now %s", strings.Repeat("x", 32))

	// A name given up is free again.
	bob.Send("/nick [alice-2.]\n")
	bob.Expect("* you are now [alice-2.]")
	carol.Expect(ts + " * bob is now [alice-2.]")
	carol.Send("/nick alice_2\n")
	carol.Expect("* you are now alice_2")
}

func names(infos []chatroom.ClientInfo) []string {
	var out []string
	for _, c := range infos {
		out = append(out, c.Name)
	}
	return out
}

func TestWho(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	bob.Send("/nick Bob\n")
	bob.Expect("* you are now Bob")
	alice.Expect(ts + " * bob is now Bob")

	alice.Send("/who\n")
	alice.Expect("* 3 online: alice, Bob, carol") // sorted ignoring case
	alice.Send("/WHO   \n")
	alice.Expect("* 3 online: alice, Bob, carol")
}

func TestMe(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)
	alice.Send("/me waves  at everyone\n") // a run of blanks is one space
	bob.Expect(ts + " * alice waves at everyone")
	carol.Expect(ts + " * alice waves at everyone")
	alice.Send("/me\n")
	alice.Expect("* error: usage: /me TEXT") // nothing came back before it
}

func TestMsg(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)

	alice.Send("/msg bob meet me at noon\n")
	bob.Expect(ts + " alice whispers: meet me at noon")
	alice.Send("/msg alice a note to self\n")
	alice.Expect(ts + " alice whispers: a note to self")
	alice.Send("/msg dave hello?\n")
	alice.Expect("* error: no such client dave")
	alice.Send("/msg bob\n")
	alice.Expect("* error: usage: /msg NAME TEXT")

	// carol heard none of it: her next line is alice's next chat line.
	alice.Send("back in the room\n")
	carol.Expect(ts + " alice say: back in the room")
	bob.Expect(ts + " alice say: back in the room")
}

func TestHelpQuitAndOtherCommands(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)

	alice.Send("/help\n")
	var help []string
	for line := alice.Line(); ; line = alice.Line() {
		require.True(t, strings.HasPrefix(line, "* "), "help line %q", line)
		help = append(help, line)
		if strings.Contains(line, "//text") {
			break
		}
	}
	for _, cmd := range []string{"/nick", "/who", "/me", "/msg", "/quit", "/help"} {
		assert.Contains(t, strings.Join(help, "\n"), cmd)
	}

	alice.Send("/dance now\n")
	alice.Expect("* error: unknown command /dance (try /help)")
	alice.Send("/\n")
	alice.Expect("* error: unknown command / (try /help)")

	// "//" escapes a leading slash; a line is never relayed as a command.
	alice.Send("//shrug\n")
	bob.Expect(ts + " alice say: /shrug")
	alice.Send("//\n")
	bob.Expect(ts + " alice say: /")

	alice.Send("/QUIT\n")
	alice.Expect("* bye")
	alice.ExpectClosed()
	bob.Expect(ts + " * alice left")
}

func TestHistory(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t, chatroom.WithHistory(3))
	alice, _ := pipeClient(t, room, "alice", 1)
	first, _ := pipeClient(t, room, "first", 2) // history shorter than n
	alice.Expect(ts + " * first joined")
	alice.Send("one\n")
	first.Expect(ts + " alice say: one")

	newcomer := func(name string, online int, history ...string) *client {
		t.Helper()
		c, _ := pipeClient(t, room, name, online)
		for _, h := range history {
			c.Expect("%s", h)
		}
		return c
	}
	second := newcomer("second", 3, ts+" alice say: one")
	first.Expect(ts + " * second joined")
	alice.Expect(ts + " * second joined")

	alice.Send("two\n")
	alice.Send("/me three\n")
	alice.Send("/msg first never in history\n")
	alice.Send("four\n")
	second.Expect(ts + " alice say: two")
	second.Expect(ts + " * alice three")
	second.Expect(ts + " alice say: four")

	// The last three say and /me lines, unchanged; no whisper, join or leave.
	third := newcomer("third", 4, ts+" alice say: two", ts+" * alice three", ts+" alice say: four")
	second.Expect(ts + " * third joined")
	second.Send("five\n")
	third.Expect(ts + " second say: five")
}

func TestCommandsCountAsActivityButNotAsChat(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	alice.Send("/who\n")
	alice.Expect("* 3 online: alice, bob, carol")
	alice.Send("real\n")
	bob.Expect(ts + " alice say: real")
	assert.Equal(t, uint64(1), room.Stats().Messages, "only the chat line is a message")
}

// TestNickNamesEveryLineAfterIt: lines said before a rename carry the old
// name, lines after it the new one, in the order said, even within one
// write.
func TestNickNamesEveryLineAfterIt(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	alice.Send("before\n/nick ann\nafter\n")
	bob.Expect(ts + " alice say: before")
	bob.Expect(ts + " * alice is now ann")
	bob.Expect(ts + " ann say: after")
	alice.Expect("* you are now ann")
	for i := range 3 {
		alice.Send(fmt.Sprintf("line %d\n", i))
		bob.Expect(ts+" ann say: line %d", i)
	}
}

// TestRepliesComeInTheOrderAsked: what the room answers (the welcome, "you
// are now") and what the reader answers itself (an unknown command's
// error) reach the client in the order the lines were sent, however the
// goroutines are scheduled. Each round races them again.
func TestRepliesComeInTheOrderAsked(t *testing.T) {
	t.Parallel()
	room, addr := startRoom(t)
	for i := range 50 {
		eventually(t, func() bool { return room.Stats().Clients == 0 }, "the last round's client left")
		conn, err := net.DialTimeout("tcp", addr, waitLimit)
		require.NoError(t, err)
		// Sent before the welcome could be read: in the socket as the
		// reader starts.
		_, err = fmt.Fprintf(conn, "/bogus\n/nick n%d\n/bogus\n", i)
		require.NoError(t, err)
		c := chattest.NewClient(t, conn, conn.LocalAddr().String())
		c.Expect("* welcome %s, 1 online", c)
		c.Expect("* error: unknown command /bogus (try /help)")
		c.Expect("* you are now n%d", i)
		c.Expect("* error: unknown command /bogus (try /help)")
		require.NoError(t, conn.Close())
	}
}
