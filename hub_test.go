package chatroom_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// A hub of rooms, over net.Pipe: /join, /rooms, names and whispers across
// rooms, rooms that close when empty, and the hub's handles.

// pipeHub makes a hub for clients over net.Pipe (see hubClient), with the
// tests' clock, and closes it when the test ends.
func pipeHub(t testing.TB, opts ...chatroom.Option) *chatroom.Hub {
	t.Helper()
	hub := chatroom.NewHub(append([]chatroom.Option{chatroom.WithClock(fixedClock)}, opts...)...)
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	return hub
}

// hubClient joins hub over net.Pipe under name, landing in the default
// room with online members there, and returns the client and a channel
// that gets ServeConn's result.
func hubClient(t testing.TB, hub *chatroom.Hub, name string, online int) (*client, <-chan error) {
	t.Helper()
	local, remote := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- hub.ServeConn(namedConn{remote, name}) }()
	return welcome(t, local, name, online), done
}

func TestJoinMovesBetweenRooms(t *testing.T) {
	hub := pipeHub(t, chatroom.WithHistory(5))
	alice, _ := hubClient(t, hub, "alice", 1)
	bob, _ := hubClient(t, hub, "bob", 2)
	alice.Expect(ts + " * bob joined")

	alice.Send("/join games\n")
	alice.Expect("* you are in games, 1 online")
	bob.Expect(ts + " * alice left")
	alice.Send("gg\n")

	bob.Send("/join #Games\n") // a leading # and another case are the same room
	bob.Expect("* you are in games, 2 online")
	bob.Expect(ts + " alice say: gg") // the room's history
	alice.Expect(ts + " * bob joined")
	bob.Send("/join games\n")
	bob.Expect("* you are already in games")

	alice.Send("/rooms\n")
	alice.Expect("* 2 rooms: games (2), lobby (0)")
	bob.Send("/who\n")
	bob.Expect("* 2 online: alice, bob")

	bob.Send("/join lobby\n")
	bob.Expect("* you are in lobby, 1 online")
	alice.Expect(ts + " * bob left")
	alice.Send("still here\n") // not to bob, who left
	bob.Send("/who\n")
	bob.Expect("* 1 online: bob")
}

func TestJoinRefusals(t *testing.T) {
	hub := pipeHub(t, chatroom.WithMaxRooms(2))
	alice, _ := hubClient(t, hub, "alice", 1)
	for _, tt := range []struct{ line, want string }{
		{"/join\n", "* error: usage: /join ROOM"},
		{"/join no spaces\n", "* error: invalid room name"},
		{"/join inv@lid\n", "* error: invalid room name"},
		{"/join " + fmt.Sprintf("%033d", 0) + "\n", "* error: invalid room name"},
		{"/join lobby\n", "* you are already in lobby"},
	} {
		alice.Send(tt.line)
		alice.Expect("%s", tt.want)
	}
	alice.Send("/join one\n")
	alice.Expect("* you are in one, 1 online")
	alice.Send("/join two\n") // lobby and one are open: the most
	alice.Expect("* error: too many rooms (max 2)")
	alice.Send("/join lobby\n") // one closes, empty
	alice.Expect("* you are in lobby, 1 online")
	alice.Send("/join two\n")
	alice.Expect("* you are in two, 1 online")
}

func TestRoomClosesWhenEmptyAndReopensFresh(t *testing.T) {
	hub := pipeHub(t, chatroom.WithHistory(5))
	alice, _ := hubClient(t, hub, "alice", 1)
	alice.Send("/join den\n")
	alice.Expect("* you are in den, 1 online")
	alice.Send("remember me\n")
	alice.Send("/rooms\n")
	alice.Expect("* 2 rooms: den (1), lobby (0)")
	alice.Send("/join lobby\n")
	alice.Expect("* you are in lobby, 1 online")
	alice.Send("/rooms\n")
	alice.Expect("* 1 rooms: lobby (1)")
	alice.Send("/join den\n")
	alice.Expect("* you are in den, 1 online") // and no history: a fresh room
	alice.Send("/who\n")
	alice.Expect("* 1 online: alice")
}

func TestNamesAndWhispersAcrossRooms(t *testing.T) {
	hub := pipeHub(t)
	alice, _ := hubClient(t, hub, "alice", 1)
	bob, _ := hubClient(t, hub, "bob", 2)
	alice.Expect(ts + " * bob joined")
	bob.Send("/join games\n")
	bob.Expect("* you are in games, 1 online")
	alice.Expect(ts + " * bob left")

	alice.Send("/nick BOB\n")
	alice.Expect("* error: nickname taken") // bob is in another room, and names are the hub's
	alice.Send("/msg bob psst\n")
	bob.Expect(ts + " alice whispers: psst")
	bob.Send("/nick robert\n")
	bob.Expect("* you are now robert")
	alice.Send("/msg bob psst\n")
	alice.Expect("* error: no such client bob")

	// A newcomer named by an address someone in another room has gets a
	// suffix, as in one room.
	carol, _ := hubClient(t, hub, "robert#2", 2)
	_ = carol
}

func TestHelpInAHubListsRooms(t *testing.T) {
	hub := pipeHub(t)
	alice, _ := hubClient(t, hub, "alice", 1)
	alice.Send("/help\n")
	var help []string
	for l := alice.Line(); l != "*   //text          say a line that starts with /"; l = alice.Line() {
		help = append(help, l)
	}
	assert.Contains(t, help, "*   /join ROOM      move to ROOM, opening it if need be")
	assert.Contains(t, help, "*   /rooms          list the open rooms")

	room := pipeRoom(t)
	bob, _ := pipeClient(t, room, "bob", 1)
	bob.Send("/join games\n")
	bob.Expect("* error: unknown command /join (try /help)")
	bob.Send("/rooms\n")
	bob.Expect("* error: unknown command /rooms (try /help)")
}

// TestMaxRoomsOneIsOneRoom: a hub with WithMaxRooms(1) behaves as a room.
func TestMaxRoomsOneIsOneRoom(t *testing.T) {
	hub := pipeHub(t, chatroom.WithMaxRooms(1))
	alice, _ := hubClient(t, hub, "alice", 1)
	alice.Send("/join games\n")
	alice.Expect("* error: unknown command /join (try /help)")
}

func TestHubHandles(t *testing.T) {
	hub := pipeHub(t)
	games, err := hub.Room("#Games")
	require.NoError(t, err)
	assert.Equal(t, "Games", games.Name())
	_, err = hub.Room("no such thing")
	assert.ErrorIs(t, err, chatroom.ErrInvalidName)

	alice, _ := hubClient(t, hub, "alice", 1)
	local, remote := net.Pipe()
	go games.ServeConn(namedConn{remote, "bob"}) // lands in games
	bob := welcome(t, local, "bob", 1)

	assert.Equal(t, []chatroom.RoomInfo{
		{Name: "Games", Clients: 1, Opened: testTime},
		{Name: "lobby", Clients: 1, Opened: testTime},
	}, hub.Rooms())
	require.Len(t, games.Clients(), 1)
	assert.Equal(t, "bob", games.Clients()[0].Name)
	assert.Len(t, hub.Clients(), 2)

	require.NoError(t, games.Broadcast("games only"))
	bob.Expect(ts + " * games only")
	require.NoError(t, hub.Broadcast("everyone"))
	alice.Expect(ts + " * everyone")
	bob.Expect(ts + " * everyone")

	assert.ErrorIs(t, games.Kick("alice", ""), chatroom.ErrNoSuchClient, "alice is in another room")
	s := games.Stats()
	assert.Equal(t, 1, s.Clients)
	assert.Equal(t, 2, s.Rooms)
	assert.ErrorIs(t, games.Close(), chatroom.ErrHubRoom)
	assert.ErrorIs(t, games.Shutdown(context.Background()), chatroom.ErrHubRoom)

	require.NoError(t, hub.Kick("bob", "bye"))
	bob.Expect("* kicked: bye")
	bob.ExpectClosed() // and nothing more: a line sent now may find the pipe closed already

	// A room the program opened stays open, empty.
	alice.Send("/rooms\n")
	alice.Expect("* 2 rooms: Games (0), lobby (1)")
}

// TestEventsCarryTheRoom: a move is a leave, for "part", and a join; a
// client that leaves the hub leaves its room.
func TestEventsCarryTheRoom(t *testing.T) {
	var mu sync.Mutex
	var got []string
	observe := func(e chatroom.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%s %s room=%s reason=%s text=%q", e.Kind, e.Name, e.Room, e.Reason, e.Text))
	}
	hub := pipeHub(t, chatroom.WithEvents(observe))
	alice, _ := hubClient(t, hub, "alice", 1)
	alice.Send("/join games\n")
	alice.Expect("* you are in games, 1 online")
	alice.Send("hi\n/msg alice note\nexit\n")
	alice.Expect(ts + " alice whispers: note")
	alice.Expect("* bye")
	require.NoError(t, hub.Close())

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		`join alice room=lobby reason= text=""`,
		`leave alice room=lobby reason=part text=""`,
		`join alice room=games reason= text=""`,
		`message alice room=games reason= text="hi"`,
		`message alice room= reason= text="note"`,
		`leave alice room=games reason=exit text=""`,
	}, got)
	assert.Equal(t, "part", chatroom.ReasonPart.String())
}

// TestSlowMemberOfOneRoomDelaysNoOtherRoom: a member of one room who
// never reads fills its outbox and is evicted; meanwhile the other room
// talks on, and its lines arrive at once.
func TestSlowMemberOfOneRoomDelaysNoOtherRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := pipeHub(t, chatroom.WithOutboxSize(16), chatroom.WithWriteTimeout(time.Minute), noFloodControl)
		stuck, _ := hubClient(t, hub, "stuck", 1) // never reads again
		talker, _ := hubClient(t, hub, "talker", 2)
		stuck.Expect(ts + " * talker joined")
		a, _ := hubClient(t, hub, "a", 3)
		talker.Expect(ts + " * a joined")
		a.Send("/join quiet\n")
		a.Expect("* you are in quiet, 1 online")
		talker.Expect(ts + " * a left")
		b, _ := hubClient(t, hub, "b", 3)
		talker.Expect(ts + " * b joined")
		b.Send("/join quiet\n")
		b.Expect("* you are in quiet, 2 online")
		talker.Expect(ts + " * b left")
		a.Expect(ts + " * b joined")

		start := time.Now()
		for i := range 40 { // more than stuck's outbox takes
			talker.Send(fmt.Sprintf("line %d\n", i))
			a.Send(fmt.Sprintf("quiet %d\n", i))
			b.Expect(ts+" a say: quiet %d", i)
		}
		assert.Zero(t, time.Since(start), "the quiet room waited for the stuck member of the other")
		talker.Send("/who\n")
		talker.WaitFor("* 1 online: talker") // stuck was evicted as too slow, the moment its outbox filled
	})
}
