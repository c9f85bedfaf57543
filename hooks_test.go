package chatroom_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// Hooks and the program's handles on the room: WithAuth, WithFilter,
// WithEvents, Clients and Kick. Hooks run on the goroutine of the client
// they concern, or on the events goroutine: a slow or panicking hook costs
// that client, or that observer, and nobody else.

// tokenAuth names a client by the first line it sends, "token NAME"; it
// refuses anything else, and "panic" makes it panic.
func tokenAuth(ctx context.Context, e chatroom.AuthEvent) (chatroom.AuthReply, error) {
	var line []byte
	b := make([]byte, 1)
	for len(line) < 64 {
		if _, err := e.Conn.Read(b); err != nil {
			return chatroom.AuthReply{}, err
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
	}
	name, ok := strings.CutPrefix(string(line), "token ")
	switch {
	case name == "panic":
		panic("the auth hook broke")
	case !ok:
		return chatroom.AuthReply{}, errors.New("bad token")
	}
	return chatroom.AuthReply{Name: name}, nil
}

// authClient connects to room over net.Pipe and sends first.
func authClient(t *testing.T, room *chatroom.Room, first string) (*client, <-chan error) {
	t.Helper()
	local, remote := net.Pipe()
	t.Cleanup(func() { local.Close() })
	done := make(chan error, 1)
	go func() { done <- room.ServeConn(namedConn{remote, "192.0.2.1:1234"}) }()
	c := chattest.NewClient(t, local, "")
	c.Send(first)
	return c, done
}

func TestAuth(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t, chatroom.WithAuth(tokenAuth))
	alice, _ := authClient(t, room, "token alice\n")
	alice.Expect("* welcome alice, 1 online")

	for _, tt := range []struct {
		name, first, want string
		err               error
	}{
		{"refused with the hook's error", "let me in\n", "* error: bad token", nil},
		{"a name taken", "token alice\n", "* error: name taken", chatroom.ErrNameTaken},
		{"a name taken in another case", "token ALICE\n", "* error: name taken", chatroom.ErrNameTaken},
		{"a hook that panics", "token panic\n", "* error: authentication failed", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, done := authClient(t, room, tt.first)
			c.Expect("%s", tt.want)
			c.ExpectClosed()
			err := <-done
			require.Error(t, err)
			if tt.err != nil {
				assert.ErrorIs(t, err, tt.err)
			}
		})
	}

	// The room survived the panic; nobody saw the refusals; names are set
	// by the server.
	bob, _ := authClient(t, room, "token bob\n")
	bob.Expect("* welcome bob, 2 online")
	alice.Expect(ts + " * bob joined")
	bob.Send("/nick robert\n")
	bob.Expect("* error: names are set by the server")
	bob.Send("hi\n")
	alice.Expect(ts + " bob say: hi")
	assert.Equal(t, uint64(4), room.Stats().Refused) // every refusal above
}

// TestAuthTimesOut: a hook that waits for a token that never comes is
// ended by its context at the write timeout, exactly, and the client is
// told. A hook that ignores its context is refused all the same.
func TestAuthTimesOut(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const timeout = time.Minute
		stubborn := func(ctx context.Context, e chatroom.AuthEvent) (chatroom.AuthReply, error) {
			if e.Conn.RemoteAddr().String() == "stubborn:1" {
				time.Sleep(2 * timeout) // ignores ctx
				return chatroom.AuthReply{Name: "stubborn"}, nil
			}
			return tokenAuth(ctx, e)
		}
		room := pipeRoom(t, chatroom.WithAuth(stubborn), chatroom.WithWriteTimeout(timeout))
		for _, name := range []string{"silent:1", "stubborn:1"} {
			local, remote := net.Pipe()
			defer local.Close()
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- room.ServeConn(namedConn{remote, name}) }()
			c := chattest.NewClient(t, local, "")
			c.Patience = time.Hour
			c.Expect("* error: authentication timed out")
			c.ExpectClosed()
			assert.ErrorIs(t, <-done, context.DeadlineExceeded)
			if name == "silent:1" {
				assert.Equal(t, timeout, time.Since(start), "the hook's read ends at its context's deadline")
			}
		}
	})
}

// TestAuthEndsWhenTheRoomCloses: Shutdown does not wait out a hook that
// honours its context.
func TestAuthEndsWhenTheRoomCloses(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		room := chatroom.NewRoom(chatroom.WithAuth(tokenAuth), chatroom.WithWriteTimeout(time.Hour))
		local, remote := net.Pipe()
		defer local.Close()
		done := make(chan error, 1)
		go func() { done <- room.ServeConn(namedConn{remote, "waiting:1"}) }()
		synctest.Wait()
		start := time.Now()
		require.NoError(t, room.Shutdown(context.Background()))
		assert.Zero(t, time.Since(start))
		assert.ErrorIs(t, <-done, chatroom.ErrRoomClosed)
	})
}

func TestFilter(t *testing.T) {
	t.Parallel()
	filter := func(e chatroom.FilterEvent) (chatroom.FilterReply, error) {
		switch {
		case strings.Contains(e.Text, "spam"):
			return chatroom.FilterReply{}, errors.New("spam")
		case strings.Contains(e.Text, "boom") && e.Name == "carol":
			panic("the filter broke")
		}
		return chatroom.FilterReply{Text: strings.ReplaceAll(strings.ReplaceAll(e.Text, "darn", "d**n"), "RED", "\x1b[31mred")}, nil
	}
	room := pipeRoom(t, chatroom.WithFilter(filter))
	alice, bob, carol := trio(t, room)

	alice.Send("oh darn\n")
	bob.Expect(ts + " alice say: oh d**n")
	carol.Expect(ts + " alice say: oh d**n")
	alice.Send("buy spam now\n")
	alice.Expect("* error: message rejected")
	alice.Send("/me says darn\n")
	bob.Expect(ts + " * alice says d**n")
	carol.Expect(ts + " * alice says d**n")
	alice.Send("/msg bob darn spam\n")
	alice.Expect("* error: message rejected")
	alice.Send("/msg bob darn it\n")
	bob.Expect(ts + " alice whispers: d**n it")
	alice.Send("RED alert\n") // what the filter adds is cleaned too
	bob.Expect(ts + " alice say: [31mred alert")
	carol.Expect(ts + " alice say: [31mred alert")

	// A filter that panics costs its sender the connection, nothing more.
	carol.Send("boom\n")
	carol.ExpectClosed()
	alice.Expect(ts + " * carol left")
	bob.Expect(ts + " * carol left")
	bob.Send("still here\n")
	alice.Expect(ts + " bob say: still here")
}

// TestSlowFilterSlowsItsSenderOnly: a filter that takes an hour over one
// sender's line holds that sender alone; the others talk on meanwhile.
func TestSlowFilterSlowsItsSenderOnly(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		filter := func(e chatroom.FilterEvent) (chatroom.FilterReply, error) {
			if e.Name == "slow" {
				time.Sleep(time.Hour)
			}
			return chatroom.FilterReply{Text: e.Text}, nil
		}
		room := pipeRoom(t, chatroom.WithFilter(filter))
		slow, _ := pipeClient(t, room, "slow", 1)
		fast, _ := pipeClient(t, room, "fast", 2)
		slow.Patience, fast.Patience = 2*time.Hour, 2*time.Hour
		slow.Expect(ts + " * fast joined")

		start := time.Now()
		slow.Send("considered\n")
		fast.Send("quick\n")
		slow.Expect(ts + " fast say: quick")
		assert.Zero(t, time.Since(start), "the other sender waited for the slow filter")
		fast.Expect(ts + " slow say: considered")
		assert.Equal(t, time.Hour, time.Since(start))
	})
}

func TestEvents(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	observe := func(e chatroom.Event) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, testTime, e.Time)
		got = append(got, fmt.Sprintf("%s name=%s addr=%s text=%q to=%s action=%v old=%s reason=%s",
			e.Kind, e.Name, e.Addr, e.Text, e.To, e.Action, e.Old, e.Reason))
	}
	room := pipeRoom(t, chatroom.WithEvents(observe), chatroom.WithFilter(func(e chatroom.FilterEvent) (chatroom.FilterReply, error) {
		if strings.Contains(e.Text, "spam") {
			return chatroom.FilterReply{}, errors.New("spam")
		}
		return chatroom.FilterReply{Text: strings.ReplaceAll(e.Text, "darn", "d**n")}, nil
	}))
	alice, bob, _ := trio(t, room)
	alice.Send("oh darn\n")
	bob.Expect(ts + " alice say: oh d**n")
	alice.Send("spam\n") // rejected: no event
	alice.Expect("* error: message rejected")
	alice.Send("/me waves\n")
	bob.Expect(ts + " * alice waves")
	alice.Send("/msg bob psst\n")
	bob.Expect(ts + " alice whispers: psst")
	alice.Send("/nick ann\n")
	bob.Expect(ts + " * alice is now ann")
	require.NoError(t, room.Kick("carol", "testing"))
	bob.Expect(ts + " * carol left (kicked: testing)")
	bob.Send("exit\n")
	bob.Expect("* bye")
	alice.Expect("* you are now ann")
	alice.WaitFor(ts + " * bob left")
	require.NoError(t, room.Close()) // delivers what is queued, then returns

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		`join name=alice addr=alice text="" to= action=false old= reason=`,
		`join name=bob addr=bob text="" to= action=false old= reason=`,
		`join name=carol addr=carol text="" to= action=false old= reason=`,
		`message name=alice addr=alice text="oh d**n" to= action=false old= reason=`,
		`message name=alice addr=alice text="waves" to= action=true old= reason=`,
		`message name=alice addr=alice text="psst" to=bob action=false old= reason=`,
		`nick name=ann addr=alice text="" to= action=false old=alice reason=`,
		`leave name=carol addr=carol text="" to= action=false old= reason=kicked`,
		`leave name=bob addr=bob text="" to= action=false old= reason=exit`,
		`leave name=ann addr=alice text="" to= action=false old= reason=closed`,
	}, got)
	assert.Zero(t, room.Stats().EventsDropped)
}

// TestStuckObserverCostsOnlyEvents: an observer that never returns (until
// the test lets it) holds no one up: the room goes on, drops what does not
// fit in the backlog of 10 000, and counts it.
func TestStuckObserverCostsOnlyEvents(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var seen sync.WaitGroup
	seen.Add(1)
	var once sync.Once
	var panicked bool
	observe := func(e chatroom.Event) {
		once.Do(seen.Done)
		if !panicked {
			panicked = true
			panic("the observer broke") // recovered: it goes on with the next
		}
		<-release
	}
	const lines = 12_000
	// An outbox that holds every line: bob, read by the test, is never too
	// slow for alice, who sends as fast as a pipe goes.
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock), chatroom.WithEvents(observe), noFloodControl,
		chatroom.WithOutboxSize(2*lines))
	alice, _ := pipeClient(t, room, "alice", 1)
	bob, _ := pipeClient(t, room, "bob", 2)
	alice.Expect(ts + " * bob joined")
	seen.Wait()

	go func() {
		for i := range lines {
			if _, err := fmt.Fprintf(alice.Conn, "line %d\n", i); err != nil {
				return
			}
		}
	}()
	for i := range lines {
		bob.Expect(ts+" alice say: line %d", i)
	}
	s := room.Stats()
	assert.Equal(t, uint64(lines), s.Messages)
	assert.Positive(t, s.EventsDropped)
	t.Logf("%d messages while the observer was stuck: %d events dropped", lines, s.EventsDropped)
	close(release)
	require.NoError(t, room.Close())
}

func TestKick(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	alice, bob, carol := trio(t, room)
	carol.Send("/nick Carla\n")
	carol.Expect("* you are now Carla")
	alice.Expect(ts + " * carol is now Carla")
	bob.Expect(ts + " * carol is now Carla")

	assert.ErrorIs(t, room.Kick("carol", "old name"), chatroom.ErrNoSuchClient)
	require.NoError(t, room.Kick("CARLA", "flooding\x1b[2J the room"))
	carol.Expect("* kicked: flooding[2J the room")
	carol.ExpectClosed()
	alice.Expect(ts + " * Carla left (kicked: flooding[2J the room)")
	bob.Expect(ts + " * Carla left (kicked: flooding[2J the room)")

	require.NoError(t, room.Kick("bob", ""))
	bob.Expect("* kicked")
	bob.ExpectClosed()
	alice.Expect(ts + " * bob left (kicked)")
	assert.Equal(t, []string{"alice"}, names(room.Clients()))

	require.NoError(t, room.Close())
	assert.ErrorIs(t, room.Kick("alice", ""), chatroom.ErrRoomClosed)
	assert.Nil(t, room.Clients())
}

// TestKickMidBurst: a client kicked while it floods the room is gone at
// once; none of its lines reach anyone after the notice of its leaving.
func TestKickMidBurst(t *testing.T) {
	t.Parallel()
	// The flood is bounded, and the watcher's outbox holds all of it: the
	// watcher, read by the test, is never too slow for a pipe's flood.
	const most = 20_000
	room := pipeRoom(t, noFloodControl, chatroom.WithOutboxSize(2*most))
	flooder, done := pipeClient(t, room, "flooder", 1)
	discard(flooder, nil)
	watcher, _ := pipeClient(t, room, "watcher", 2)
	go func() {
		for i := range most {
			if _, err := fmt.Fprintf(flooder.Conn, "flood %d\n", i); err != nil {
				return
			}
		}
	}()
	watcher.WaitFor(ts + " flooder say: flood 100")
	require.NoError(t, room.Kick("flooder", "enough"))
	n := len(watcher.WaitFor(ts + " * flooder left (kicked: enough)"))
	t.Logf("the watcher heard %d more lines of the flood before the kick's notice", n)
	assert.ErrorIs(t, <-done, chatroom.ErrKicked)
	watcher.Send("/who\n")
	watcher.Expect("* 1 online: watcher") // nothing of the flood after the notice
}

func TestClients(t *testing.T) {
	t.Parallel()
	room := pipeRoom(t)
	assert.Empty(t, room.Clients())
	trio(t, room)
	infos := room.Clients()
	require.Len(t, infos, 3)
	for i, name := range []string{"alice", "bob", "carol"} {
		assert.Equal(t, chatroom.ClientInfo{Name: name, Addr: name, Joined: testTime, Rooms: []string{"lobby"}, Face: "text", User: "text", Host: name}, infos[i])
	}
}

// TestHandlesOnARoomThatNeverServed: nobody is in it, and asking starts no
// goroutine (goleak checks, at the end of the package, that none is left).
func TestHandlesOnARoomThatNeverServed(t *testing.T) {
	t.Parallel()
	room := chatroom.NewRoom()
	assert.ErrorIs(t, room.Kick("anyone", ""), chatroom.ErrNoSuchClient)
	assert.Nil(t, room.Clients())
	assert.Equal(t, chatroom.Stats{}, room.Stats())
}
