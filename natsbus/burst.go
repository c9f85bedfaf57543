package natsbus

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// burstLog counts what went wrong, and logs it at most once a second: the
// first at once, and the ones after it as one summary with their count,
// so that a peer sending junk as fast as it can costs one log line a
// second.
type burstLog struct {
	log   *slog.Logger
	msg   string
	total atomic.Uint64 // noted, ever

	mu     sync.Mutex
	last   time.Time // when a line was last logged
	held   uint64    // noted since, not logged yet
	detail string    // the last of those
}

func newBurstLog(log *slog.Logger, msg string) *burstLog {
	return &burstLog{log: log, msg: msg}
}

// note counts one, with a word on what it was, and logs it unless a line
// was logged within the last second.
func (l *burstLog) note(detail string) {
	l.total.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held++
	l.detail = detail
	l.flushLocked(time.Now())
}

// flush logs the count held back, if a second has passed since the last
// line.
func (l *burstLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(time.Now())
}

func (l *burstLog) flushLocked(now time.Time) {
	if l.held > 0 && now.Sub(l.last) >= time.Second {
		l.log.Warn(l.msg, "count", l.held, "last", l.detail)
		l.last, l.held = now, 0
	}
}

// close logs what is held back, whenever the last line was.
func (l *burstLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked(l.last.Add(time.Second))
}
