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

// fakeBus is a Bus with no peers: it records what the room publishes,
// holds names in a map, and can be told to fail.
type fakeBus struct {
	openErr  error
	claimErr error // returned by every Claim, when set

	mu        sync.Mutex
	names     map[string]bool // claimed, by lower-case name
	published []chatroom.BusMessage
	closed    bool
}

func newFakeBus(taken ...string) *fakeBus {
	b := &fakeBus{names: make(map[string]bool)}
	for _, n := range taken {
		b.names[strings.ToLower(n)] = true
	}
	return b
}

func (b *fakeBus) Open(context.Context, int, func(chatroom.BusMessage) bool) ([][]byte, error) {
	if b.openErr != nil {
		return nil, b.openErr
	}
	return [][]byte{[]byte(ts + " zed say: from the bus's history\n")}, nil
}

func (b *fakeBus) Publish(m chatroom.BusMessage) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.published = append(b.published, m)
}

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
	defer b.mu.Unlock()
	b.closed = true
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
	assert.Equal(t, []string{"join", "nick", "say", "leave"}, bus.kinds())

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
