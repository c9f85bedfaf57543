package chatroom_test

import (
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// What one client could do to pass for another, or for the hub: names
// that look like another's, a name taken the moment its owner leaves,
// actions that read as notices, renames without end.

func TestNamesThatLookAlikeAreTaken(t *testing.T) {
	room := pipeRoom(t)
	alice, _ := pipeClient(t, room, "alice", 1)
	mallory, _ := pipeClient(t, room, "mallory", 2)
	alice.Expect(ts + " * mallory joined")
	for _, name := range []string{"aIice", "a1ice", "ALICE", "alice.", "alice_", "[alice]", "alice-", "aIice..", "[a1ice]_"} {
		mallory.Send("/nick " + name + "\n")
		mallory.Expect("* error: nickname taken")
	}
	mallory.Send("/nick alicia\n")
	mallory.Expect("* you are now alicia")
	mallory.Send("/nick b0b\n")
	mallory.Expect("* you are now b0b")
	// A name by address that looks like one present is not refused: it
	// gets a suffix, as a name taken does.
	local, remote := net.Pipe()
	go room.ServeConn(namedConn{remote, "bob"})
	welcome(t, local, "bob#2", 3)
}

// TestNameHeldAfterItsOwnerLeaves: for a short while after alice leaves,
// her name is hers alone: a client from another address cannot take it,
// or one that looks like it; she can, from hers.
func TestNameHeldAfterItsOwnerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t)
		join := func(addr string, online int) *client {
			local, remote := net.Pipe()
			go room.ServeConn(namedConn{remote, addr})
			return welcome(t, local, addr, online)
		}
		alice := join("192.0.2.1:1000", 1)
		alice.Send("/nick alice\n")
		alice.Expect("* you are now alice")
		mallory := join("198.51.100.7:2000", 2)
		alice.Expect(ts + " * 198.51.100.7:2000 joined")
		alice.Send("exit\n")
		alice.Expect("* bye")
		mallory.Expect(ts + " * alice left")

		mallory.Send("/nick alice\n")
		mallory.Expect("* error: nickname taken")
		mallory.Send("/nick AIice\n")
		mallory.Expect("* error: nickname taken")
		back := join("192.0.2.1:1001", 2) // alice again, from her address
		back.Send("/nick alice\n")
		back.Expect("* you are now alice")
		back.Send("/nick alicia\n")
		back.Expect("* you are now alicia")
		mallory.Expect(ts + " * 192.0.2.1:1001 joined")
		mallory.Expect(ts + " * 192.0.2.1:1001 is now alice")
		mallory.Expect(ts + " * alice is now alicia")

		time.Sleep(11 * time.Second) // past the grace
		mallory.Send("/nick alice\n")
		mallory.Expect("* you are now alice")
	})
}

func TestMeCannotReadAsANotice(t *testing.T) {
	room := pipeRoom(t)
	alice, bob, _ := trio(t, room)
	for _, action := range []string{"left", "left (kicked: flooding)", "joined", "is now carol", "joined, 5 left",
		"set the topic: free pizza", "sets mode +o", "left, bye"} {
		alice.Send("/me " + action + "\n")
		alice.Expect("* error: /me cannot read as a notice (joined, left, is now...)")
	}
	alice.Send("/me leftover pizza\n")
	bob.Expect(ts + " * alice leftover pizza")
	alice.Send("/me rejoined\n")
	bob.Expect(ts + " * alice rejoined")
}

func TestRenamesCoolDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t)
		alice, _ := pipeClient(t, room, "alice", 1)
		alice.Patience = time.Minute
		for i := range 5 {
			name := string(rune('a'+i)) + "lias"
			alice.Send("/nick " + name + "\n")
			alice.Expect("* you are now %s", name)
		}
		alice.Send("/nick ezra\n")
		alice.Expect("* error: too many renames, wait a moment")
		time.Sleep(10 * time.Second)
		alice.Send("/nick ezra\n")
		alice.Expect("* you are now ezra")
		alice.Send("/nick finn\n")
		alice.Expect("* error: too many renames, wait a moment")
		assert.Equal(t, 1, room.Stats().Clients)
	})
}
