package chatroom

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// logBacklog is how many log records may wait for a slow handler. Past it,
// records are dropped, never waited for.
const logBacklog = 1024

// logSink hands the room's log records to the user's handler on a
// goroutine of its own, drain, so that a handler that blocks (a pipe that
// nobody reads, a log shipper that fell behind, a terminal paused with
// Ctrl-S) never stops the room, a reader or Serve. A record that finds
// the backlog full is dropped and counted; the count is logged, once,
// when the handler takes records again.
type logSink struct {
	root    slog.Handler      // the user's handler, for the dropped-records report
	records chan queuedRecord // the backlog, at most logBacklog; drain takes it in order
	dropped atomic.Uint64     // records dropped since the last report
	stop    chan struct{}     // closed by close: drain takes what is queued, then returns
	done    chan struct{}     // closed by drain as it returns
	once    sync.Once         // closes stop
	ran     atomic.Bool       // drain was started
}

// queuedRecord is a record on its way to the handler that the logger it
// was logged through would have used (with that logger's attributes).
type queuedRecord struct {
	h slog.Handler
	r slog.Record
}

func newLogSink(h slog.Handler) *logSink {
	return &logSink{
		root:    h,
		records: make(chan queuedRecord, logBacklog),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// logger returns the logger the room logs through.
func (s *logSink) logger() *slog.Logger { return slog.New(sinkHandler{next: s.root, sink: s}) }

// start starts drain; the room starts it with its own goroutine.
func (s *logSink) start() {
	s.ran.Store(true)
	go s.drain()
}

// close makes drain hand over what is queued and return, and waits for it.
// Records logged after that are never handled: the room has stopped.
func (s *logSink) close() {
	s.once.Do(func() { close(s.stop) })
	if s.ran.Load() {
		<-s.done
	}
}

// drain is the log goroutine: the only caller of the user's handler.
func (s *logSink) drain() {
	defer close(s.done)
	for {
		select {
		case q := <-s.records:
			s.handle(q)
		case <-s.stop:
			for {
				select {
				case q := <-s.records:
					s.handle(q)
				default:
					return
				}
			}
		}
	}
}

// handle hands one record over, then reports the records dropped since the
// last report, if any. A handler's panic is recovered: it loses that record.
func (s *logSink) handle(q queuedRecord) {
	func() {
		defer func() { recover() }()
		q.h.Handle(context.Background(), q.r)
	}()
	if n := s.dropped.Swap(0); n > 0 {
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "log records dropped: the log handler fell behind", 0)
		r.AddAttrs(slog.Uint64("dropped", n))
		func() {
			defer func() { recover() }()
			s.root.Handle(context.Background(), r)
		}()
	}
}

// sinkHandler is the slog.Handler of the room's logger: it queues records
// for drain, never waits, and drops a record that finds the backlog full.
type sinkHandler struct {
	next slog.Handler
	sink *logSink
}

func (h sinkHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h sinkHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.sink.records <- queuedRecord{h.next, r.Clone()}:
	default:
		h.sink.dropped.Add(1)
	}
	return nil
}

func (h sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return sinkHandler{h.next.WithAttrs(as), h.sink}
}

func (h sinkHandler) WithGroup(name string) slog.Handler {
	return sinkHandler{h.next.WithGroup(name), h.sink}
}

// burstWindow is how often a burstLog summarises a burst.
const burstWindow = time.Second

// burstLog logs an event that may come in floods (a failed TLS handshake):
// the first of a burst at once, with its details, and the rest as one
// summary record a second while the burst lasts, so that a flood is
// visible in the log at the cost of a line a second.
type burstLog struct {
	log     *slog.Logger
	msg     string // the first event's message
	summary string // the summary's message

	mu     sync.Mutex
	count  int            // events since the last record
	timer  *time.Timer    // the next summary; nil when no burst is on
	armed  sync.WaitGroup // counts the timer while it is set or running
	closed bool           // close was called: nothing more is logged
}

// event records one event, with the attributes of the first of a burst.
func (b *burstLog) event(args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.timer != nil {
		b.count++
		return
	}
	b.log.Info(b.msg, args...)
	b.arm()
}

// arm sets the timer for the next summary. b.mu must be held.
func (b *burstLog) arm() {
	b.armed.Add(1)
	b.timer = time.AfterFunc(burstWindow, b.summarise)
}

// summarise logs how many events came since the last record, and keeps
// the window open while they keep coming.
func (b *burstLog) summarise() {
	defer b.armed.Done()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.timer = nil
	if b.count == 0 {
		return
	}
	b.log.Info(b.summary, "count", b.count, "within", burstWindow)
	b.count = 0
	if !b.closed {
		b.arm()
	}
}

// close logs the summary of a burst still on, stops the summaries, and
// waits until none is being logged.
func (b *burstLog) close() {
	b.mu.Lock()
	b.closed = true
	if b.timer != nil && b.timer.Stop() {
		b.timer = nil
		b.armed.Done() // it will never run
		if b.count > 0 {
			b.log.Info(b.summary, "count", b.count, "within", burstWindow)
		}
	}
	b.mu.Unlock()
	b.armed.Wait()
}
