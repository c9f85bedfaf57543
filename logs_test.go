package chatroom_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

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
	t.Parallel()
	h := newStalledHandler()
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock), chatroom.WithLogger(slog.New(h)))
	const churn = 1000
	for i := range churn {
		c, done := pipeClient(t, room, fmt.Sprintf("churn%d", i), 1)
		c.Send("exit\n")
		c.Expect("* bye")
		require.NoError(t, <-done)
	}
	a, _ := pipeClient(t, room, "a", 1)
	b, _ := pipeClient(t, room, "b", 2)
	b.Send("the room still talks\n")
	a.WaitFor(ts + " b say: the room still talks") // after b's arrival, told one by one or counted: the churn was a storm

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

// TestFailedHandshakesAreLoggedInBursts: a flood of connections that send
// garbage instead of a ClientHello is logged at info, the first with its
// address and error, the rest as one summary a second, not one line each.
func TestFailedHandshakesAreLoggedInBursts(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		serverCfg, _ := selfSigned(t)
		h := newStalledHandler()
		close(h.release)
		room := chatroom.NewRoom(chatroom.WithLogger(slog.New(h)))
		const flood = 100
		var served sync.WaitGroup
		for i := range flood {
			local, remote := net.Pipe()
			served.Go(func() {
				room.ServeConn(tls.Server(namedConn{remote, fmt.Sprintf("10.0.0.%d:1", i)}, serverCfg))
			})
			local.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			local.Close()
		}
		served.Wait()
		time.Sleep(time.Second) // the end of the burst's window
		require.NoError(t, room.Close())

		var got []string
		for _, r := range h.handled() {
			assert.Equal(t, slog.LevelInfo, r.Level)
			attrs := map[string]string{}
			r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
			switch r.Message {
			case "TLS handshake failed":
				assert.Regexp(t, `^10\.0\.0\.\d+:1$`, attrs["addr"], "one of the flood, whichever failed first")
				assert.NotEmpty(t, attrs["err"])
			case "TLS handshakes failed":
				assert.Equal(t, fmt.Sprint(flood-1), attrs["count"])
			}
			got = append(got, r.Message)
		}
		assert.Equal(t, []string{"TLS handshake failed", "TLS handshakes failed"}, got, "%v", h.handled())
	})
}
