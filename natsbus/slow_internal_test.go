package natsbus

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// TestSlowConsumerRecovers: a hub that holds the bus up while a room's
// lines pour in makes NATS drop most of them (the bus's queue is 8 deep
// here); the bus reads what was dropped from the stream, and the hub gets
// every line once, in the stream's order, those that came several in one
// message too.
func TestSlowConsumerRecovers(t *testing.T) {
	nc, err := nats.Connect(runNATS(t), nats.NoEcho())
	require.NoError(t, err)
	defer nc.Close()

	b, err := New(nc, "lobby", WithHeartbeat(100*time.Millisecond))
	require.NoError(t, err)
	b.in = make(chan *nats.Msg, 8)
	gate := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var ids []uint64
	history := make(chan chatroom.BusMessage, 1)
	deliver := func(m chatroom.BusMessage) bool {
		switch m.Kind {
		case chatroom.BusHistory:
			history <- m
		case chatroom.BusLine:
			once.Do(func() { <-gate }) // the hub is busy with the first line
			mu.Lock()
			ids = append(ids, m.Line.ID)
			mu.Unlock()
		}
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), chattest.WaitLimit)
	defer cancel()
	require.NoError(t, b.Open(ctx, deliver))
	defer b.Close()
	const lines = 500
	b.Subscribe("games", lines+1)
	h := <-history
	require.NoError(t, h.Err)
	require.Empty(t, h.Lines)

	js, err := jetstream.New(nc)
	require.NoError(t, err)
	var want []uint64
	for len(want) < lines {
		e := &envelope{kind: kindLine, from: "0123456789abcdef", msg: chatroom.BusMessage{Room: "games",
			Line: &chatroom.Message{Kind: chatroom.KindSay, From: "alice", Text: "line", Time: time.Now()}}}
		n := 1 + len(want)%4 // 1 to 4 lines in a message
		if n > 1 {
			e.kind, e.msg.Line = kindLines, nil
			for range n {
				e.lines = append(e.lines, &chatroom.Message{Kind: chatroom.KindSay, From: "alice", Text: "line", Time: time.Now()})
			}
		}
		ack, err := js.Publish(ctx, "chatroom.lobby.line.games", e.encode(nil))
		require.NoError(t, err)
		for i := range n {
			want = append(want, lineID(ack.Sequence, i))
		}
	}
	close(gate)
	chattest.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) >= len(want)
	}, "the hub got %d lines", len(want))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, ids, "every line once, in order")
	assert.Positive(t, b.recovered.Load(), "no line was read from the stream: NATS dropped none, and the test did not test")
}

// runNATS runs a NATS server with JetStream on a free port of 127.0.0.1
// until the test ends, and returns its URL: the package's own tests
// cannot use the external tests' startNATS.
func runNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true})
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	require.True(t, srv.ReadyForConnections(chattest.WaitLimit))
	return "nats://" + srv.Addr().(*net.TCPAddr).String()
}
