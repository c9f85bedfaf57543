package natsbus

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// TestLineBatch: the publisher takes into one message the lines queued
// behind the first in its room, and stops, leaving it for next, at
// anything else: another room's line, a presence message, a line that
// would pass the bytes a batch may hold.
func TestLineBatch(t *testing.T) {
	t.Parallel()
	nc, err := nats.Connect(runNATS(t))
	require.NoError(t, err)
	defer nc.Close()
	b, err := New(nc, "lobby")
	require.NoError(t, err)
	p := &publisher{b: b}

	line := func(room, text string) *item {
		return &item{kind: chatroom.BusLine, room: room, said: chatroom.KindSay, name: "alice", text: text}
	}
	long := strings.Repeat("x", maxBatchBytes/2)
	queue := []*item{
		line("games", "1"), line("games", "2"), line("games", "3"), // a batch
		line("lobby", "4"), // another room
		{kind: chatroom.BusJoin, room: "lobby", name: "bob"}, // presence
		line("lobby", long), line("lobby", long), // the second would pass maxBatchBytes
	}
	for _, it := range queue[1:] {
		b.out <- it
	}
	var batches [][]*item
	first := queue[0]
	for first != nil {
		if first.kind == chatroom.BusLine {
			batches = append(batches, p.lineBatch(first))
		} else {
			batches = append(batches, []*item{first})
		}
		first, p.next = p.next, nil
		if first == nil && len(b.out) > 0 {
			first = <-b.out
		}
	}
	assert.Equal(t, [][]*item{queue[0:3], queue[3:4], queue[4:5], queue[5:6], queue[6:7]}, batches)
}
