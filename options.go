package chatroom

import (
	"fmt"
	"log/slog"
	"time"
)

// Defaults for the options of [NewRoom].
const (
	// DefaultBufferSize is the longest message a client may send, in bytes,
	// not counting the line ending.
	DefaultBufferSize = 1024

	// DefaultWriteTimeout bounds one write to a client. A client whose
	// socket does not take a batch of queued lines within it is evicted as
	// too slow.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultOutboxSize is how many messages may wait for one client before
	// it counts as too slow. A healthy reader drains its whole outbox in one
	// write, so the outbox only fills for a client that stopped reading; it
	// is deep enough to absorb a join storm or a burst from every sender at
	// once. It costs nothing while empty: the queue grows on demand and is
	// released when the client goes idle.
	DefaultOutboxSize = 1024

	// DefaultMaxClients is no limit.
	DefaultMaxClients = 0

	// DefaultIdleTimeout is never.
	DefaultIdleTimeout = 0
)

// An Option configures a [Room]; pass options to [NewRoom].
type Option func(*options)

// options is the configuration of one room, fixed once NewRoom returns.
type options struct {
	bufferSize   int              // longest accepted line, in bytes, without "\r\n"
	maxClients   int              // admission limit; 0 means none
	idleTimeout  time.Duration    // time allowed to complete a line; 0 means forever
	writeTimeout time.Duration    // deadline for one batched write; 0 means none
	outboxSize   int              // messages queued per client before eviction
	logger       *slog.Logger     // never nil
	now          func() time.Time // the clock for timestamps; never nil
}

func defaultOptions() options {
	return options{
		bufferSize:   DefaultBufferSize,
		maxClients:   DefaultMaxClients,
		idleTimeout:  DefaultIdleTimeout,
		writeTimeout: DefaultWriteTimeout,
		outboxSize:   DefaultOutboxSize,
		logger:       slog.New(slog.DiscardHandler),
		now:          time.Now,
	}
}

// WithBufferSize sets the longest message a client may send, in bytes, not
// counting the newline (or "\r\n"). A longer line is answered with
// "* error: message too long (max n bytes)" and discarded up to its newline;
// the client stays connected. The default is [DefaultBufferSize]. n must be
// positive; NewRoom panics otherwise.
func WithBufferSize(n int) Option {
	return func(o *options) {
		if n <= 0 {
			panic(fmt.Sprintf("chatroom: WithBufferSize(%d): size must be positive", n))
		}
		o.bufferSize = n
	}
}

// WithMaxClients limits how many clients may be in the room at once. A
// client that arrives while the room is full is sent "* room is full (n
// clients)" and disconnected; nobody else notices. 0, the default, means no
// limit. NewRoom panics if n is negative.
func WithMaxClients(n int) Option {
	return func(o *options) {
		if n < 0 {
			panic(fmt.Sprintf("chatroom: WithMaxClients(%d): limit must not be negative", n))
		}
		o.maxClients = n
	}
}

// WithIdleTimeout disconnects a client that says nothing for d: it is sent
// "* idle timeout" and the others see it leave. The clock starts when the
// client joins and restarts only at a line that is relayed: empty lines,
// lines that are empty once cleaned, lines too long, and bytes that never
// end a line do not keep a client in. 0, the default, means never.
// NewRoom panics if d is negative.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			panic(fmt.Sprintf("chatroom: WithIdleTimeout(%v): timeout must not be negative", d))
		}
		o.idleTimeout = d
	}
}

// WithWriteTimeout bounds each write to a client. A client that does not
// accept a write within d is evicted as too slow, and the others see
// "<ts> * <name> left (too slow)". It also bounds how long [Room.Shutdown]
// waits for a client to take its last lines. The default is
// [DefaultWriteTimeout]; 0 means writes never time out, which leaves a
// stuck client to the outbox limit alone. NewRoom panics if d is negative.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			panic(fmt.Sprintf("chatroom: WithWriteTimeout(%v): timeout must not be negative", d))
		}
		o.writeTimeout = d
	}
}

// WithOutboxSize sets how many messages may wait to be written to one
// client. A message that finds the outbox full evicts that client as too
// slow instead of making anybody wait. The default is [DefaultOutboxSize].
// n must be positive; NewRoom panics otherwise.
func WithOutboxSize(n int) Option {
	return func(o *options) {
		if n <= 0 {
			panic(fmt.Sprintf("chatroom: WithOutboxSize(%d): size must be positive", n))
		}
		o.outboxSize = n
	}
}

// WithLogger sends the room's structured logs (joins, leaves with their
// reason, evictions, refusals, failed TLS handshakes, accept errors) to l.
// The default discards them. The room never waits for l's handler: records
// go to it from a goroutine of the room's, through a backlog of 1024; when
// the handler falls that far behind, records are dropped, and their count
// is logged once it catches up. Shutdown and Close wait for the handler to
// take what was queued. NewRoom panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			panic("chatroom: WithLogger(nil): logger must not be nil")
		}
		o.logger = l
	}
}

// WithClock sets the clock that stamps messages. The default is time.Now;
// a fixed clock makes output reproducible in tests and examples. Deadlines
// always use the real time. NewRoom panics if now is nil.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now == nil {
			panic("chatroom: WithClock(nil): clock must not be nil")
		}
		o.now = now
	}
}
