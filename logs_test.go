package chatroom_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Logging: the room never waits for its logger.

// stalledHandler is a log handler whose Handle blocks until release is
// closed, like a stderr pipe that nobody reads; it keeps what it handled.
type stalledHandler struct {
	release chan struct{}
	mu      *sync.Mutex
	records *[]slog.Record
}

func newStalledHandler() stalledHandler {
	return stalledHandler{release: make(chan struct{}), mu: new(sync.Mutex), records: new([]slog.Record)}
}

func (h stalledHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h stalledHandler) Handle(_ context.Context, r slog.Record) error {
	<-h.release
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, r)
	return nil
}

func (h stalledHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h stalledHandler) WithGroup(string) slog.Handler      { return h }

func (h stalledHandler) handled() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), *h.records...)
}

// TestStalledLogDoesNotStopTheRoom: with a handler that blocks, 1 000
// clients come and go (2 000 records, twice the backlog), and the room
// still welcomes newcomers and relays their lines. Once the handler is
// released, every record is either handled or counted in a "log records
// dropped" report.
func TestStalledLogDoesNotStopTheRoom(t *testing.T) {
	h := newStalledHandler()
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock), chatroom.WithLogger(slog.New(h)))
	const churn = 1000
	for i := range churn {
		c, done := pipeClient(t, room, fmt.Sprintf("churn%d", i), 1)
		c.send("exit\n")
		c.expect("* bye")
		require.NoError(t, <-done)
	}
	a, _ := pipeClient(t, room, "a", 1)
	b, _ := pipeClient(t, room, "b", 2)
	a.expect(ts + " * b joined")
	b.send("the room still talks\n")
	a.expect(ts + " b say: the room still talks")

	close(h.release)
	require.NoError(t, room.Close()) // waits for the log goroutine to hand over its backlog

	// Records the room made: joined and left for each churner; joined for
	// a and b, and left (closed) for each of them at Close.
	const made = 2*churn + 4
	var handled, dropped, reports int
	for _, r := range h.handled() {
		if r.Message != "log records dropped: the log handler fell behind" {
			handled++
			continue
		}
		reports++
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "dropped" {
				dropped += int(a.Value.Uint64())
			}
			return true
		})
	}
	assert.Positive(t, reports, "the drops were reported")
	assert.Positive(t, dropped)
	assert.Equal(t, made, handled+dropped, "every record handled or counted")
	t.Logf("%d records: %d handled, %d dropped while the handler was stalled (%d reports)", made, handled, dropped, reports)
}
