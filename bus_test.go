package chatroom_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// fakeBus is a Bus with no peers: it records what the hub publishes,
// numbers the lines and hands them back, as a bus orders them, answers a
// Subscribe with one line of history, holds names in a map, and can be
// told to fail.
type fakeBus struct {
	openErr  error
	claimErr error // returned by every Claim, when set

	mu        sync.Mutex
	names     map[string]bool // claimed, by lower-case name
	published []chatroom.BusMessage
	seq       uint64                // the last line's number
	todo      []chatroom.BusMessage // to deliver, in order
	wake      chan struct{}         // todo has something; buffered, 1
	done      chan struct{}         // closed by Close
	stopped   chan struct{}         // closed by the delivering goroutine as it returns
	closed    bool
	holding   bool // todo waits for release
}

func newFakeBus(taken ...string) *fakeBus {
	b := &fakeBus{names: make(map[string]bool)}
	for _, n := range taken {
		b.names[strings.ToLower(n)] = true
	}
	return b
}

func (b *fakeBus) Open(_ context.Context, deliver func(chatroom.BusMessage) bool) error {
	if b.openErr != nil {
		return b.openErr
	}
	b.wake, b.done, b.stopped = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go b.deliver(deliver)
	return nil
}

// deliver is the bus's goroutine: it hands the hub what is to do, in
// order, as a bus would from the network.
func (b *fakeBus) deliver(deliver func(chatroom.BusMessage) bool) {
	defer close(b.stopped)
	for {
		select {
		case <-b.wake:
		case <-b.done:
			return
		}
		b.mu.Lock()
		todo := b.todo
		b.todo = nil
		b.mu.Unlock()
		for _, m := range todo {
			if !deliver(m) {
				return
			}
		}
	}
}

// queue adds m to what the bus is to deliver.
func (b *fakeBus) queue(m chatroom.BusMessage) {
	b.todo = append(b.todo, m)
	if !b.holding {
		b.poke()
	}
}

// poke wakes the delivering goroutine.
func (b *fakeBus) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// hold has what is queued from now on wait for release, which hands it
// all to the hub at once.
func (b *fakeBus) hold() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = true
}

func (b *fakeBus) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.holding = false
	b.poke()
}

// lines is how many lines the hub published.
func (b *fakeBus) lines() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, m := range b.published {
		if m.Kind == chatroom.BusLine {
			n++
		}
	}
	return n
}

func (b *fakeBus) Publish(m chatroom.BusMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, m)
	if m.Kind == chatroom.BusLine {
		line := *m.Line
		b.seq++
		line.ID = b.seq
		b.queue(chatroom.BusMessage{Kind: chatroom.BusLine, Peer: "self", Room: m.Room, Line: &line})
	}
}

func (b *fakeBus) Subscribe(room string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	history := []*chatroom.Message{{Kind: chatroom.KindSay, ID: b.seq, Time: testTime, From: "zed", Text: "from the bus's history"}}
	b.queue(chatroom.BusMessage{Kind: chatroom.BusHistory, Room: room, Lines: history})
}

func (b *fakeBus) Unsubscribe(string) {}

func (b *fakeBus) Claim(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.claimErr != nil {
		return b.claimErr
	}
	if b.names[strings.ToLower(name)] {
		return chatroom.ErrNameTaken
	}
	b.names[strings.ToLower(name)] = true
	return nil
}

func (b *fakeBus) Release(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.names, strings.ToLower(name))
}

func (b *fakeBus) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	if b.done != nil {
		close(b.done)
		<-b.stopped
	}
	return nil
}

func (b *fakeBus) kinds() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var kinds []string
	for _, m := range b.published {
		kinds = append(kinds, m.Kind.String())
	}
	return kinds
}

func (b *fakeBus) holds(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.names[strings.ToLower(name)]
}

// TestBusLinesOfSeveralSenders: lines of several senders that the bus
// hands back together reach every member in the bus's order, each sender
// the others' lines and not its own (a text client is not sent its own).
func TestBusLinesOfSeveralSenders(t *testing.T) {
	t.Parallel()
	bus := newFakeBus()
	room := pipeRoom(t, chatroom.WithBus(bus), chatroom.WithHistory(5))
	alice, _ := pipeClient(t, room, "alice", 1)
	alice.Expect(ts + " zed say: from the bus's history")
	bob, _ := pipeClient(t, room, "bob", 2)
	bob.Expect(ts + " zed say: from the bus's history")
	alice.Expect(ts + " * bob joined")
	carol, _ := pipeClient(t, room, "carol", 3)
	carol.Expect(ts + " zed say: from the bus's history")
	alice.Expect(ts + " * carol joined")
	bob.Expect(ts + " * carol joined")

	bus.hold()
	said := []struct {
		by   *client
		text string
	}{{alice, "a1"}, {bob, "b1"}, {bob, "b2"}, {alice, "a2"}, {carol, "c1"}, {alice, "a3"}}
	for i, s := range said {
		s.by.Send(s.text + "\n")
		eventually(t, func() bool { return bus.lines() == i+1 }, "the line is published")
	}
	bus.release()
	for _, c := range []*client{alice, bob, carol} {
		for _, s := range said {
			if s.by != c {
				c.Expect("%s %s say: %s", ts, map[*client]string{alice: "alice", bob: "bob", carol: "carol"}[s.by], s.text)
			}
		}
	}
	alice.Send("after\n")
	bob.Expect(ts + " alice say: after")
	carol.Expect(ts + " alice say: after")
}

// TestBusOpenFailureStopsTheRoom: a bus that does not open is an error
// from Serve, ServeConn and Broadcast, and the room holds nothing.
func TestBusOpenFailureStopsTheRoom(t *testing.T) {
	t.Parallel()
	broken := errors.New("no JetStream")
	room := chatroom.NewRoom(chatroom.WithBus(&fakeBus{openErr: broken}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = room.Serve(ln)
	assert.ErrorIs(t, err, broken)
	assert.ErrorContains(t, err, "chatroom: opening the bus")
	local, remote := net.Pipe()
	defer local.Close()
	assert.ErrorIs(t, room.ServeConn(remote), broken)
	assert.ErrorIs(t, room.Broadcast("hello"), broken)
	require.NoError(t, room.Close())
}

// TestBusNames: names are claimed through the bus before the room hears
// of them, released when given up; a name by address that is taken gets a
// suffix, and a bus that cannot tell refuses the client.
func TestBusNames(t *testing.T) {
	t.Parallel()
	bus := newFakeBus("alice", "bob")
	room := pipeRoom(t, chatroom.WithBus(bus), chatroom.WithHistory(5))
	alice, _ := pipeClient(t, room, "alice#2", 1) // "alice" is held on another process
	alice.Expect(ts + " zed say: from the bus's history")
	alice.Send("/nick bob\n")
	alice.Expect("* error: nickname taken")
	alice.Send("/nick carol\n")
	alice.Expect("* you are now carol")
	assert.True(t, bus.holds("carol"))
	// The reader releases the old name once the room has answered, and
	// the room queues "you are now" before it answers: the client can read
	// it first.
	eventually(t, func() bool { return !bus.holds("alice#2") }, "the old name is released")
	alice.Send("hello\nexit\n")
	alice.Expect("* bye")
	eventually(t, func() bool { return !bus.holds("carol") }, "the name is released when its client leaves")
	assert.Equal(t, []string{"join", "nick", "line", "quit"}, bus.kinds())

	bus.mu.Lock()
	bus.claimErr = errors.New("NATS is down")
	bus.mu.Unlock()
	local, remote := net.Pipe()
	defer local.Close()
	done := make(chan error, 1)
	go func() { done <- room.ServeConn(namedConn{remote, "dave"}) }()
	c := chattest.NewClient(t, local, "dave")
	c.Expect("* error: names cannot be checked now, try again later")
	assert.ErrorContains(t, <-done, "NATS is down")
}
