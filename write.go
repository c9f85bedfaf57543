package chatroom

import (
	"sync"
	"time"
)

// This file is what is written to a client: its outbox, the hub
// goroutine's non-blocking flush, and the writer goroutine that takes over
// what a socket will not take at once. The fields it works on, and who
// owns each, are described on Client (client.go).

// A client's outbox is either of two things, never both at once:
//
//   - a view (Client.view): lines the hub sent to everyone in a room who
//     has the client's form, still in the room's list of them (a
//     sharedList), which the hub writes out or hands over by its next
//     flushAll. A client that has nothing else to write follows its room
//     this way: a line for everyone costs it no queue, only the length of
//     its view.
//   - a queue of its own (Client.outbox): lines for it alone, and
//     everything after them, or everything a writer goroutine has to
//     finish. A view becomes a queue (unshare) as soon as anything else is
//     queued for the client, lines from another list included, so its
//     lines stay in order.

// sharedList is the lines a room sent, since the hub's last flushAll, to
// everyone in it who has one form: the lines its members' views are part
// of. Only the hub goroutine changes it (state.go).
type sharedList struct {
	form  Form
	lines [][]byte
	mark  uint64 // the broadcast that last appended to it (state.mark)
	from  int    // where that broadcast's lines start in lines
	used  bool   // in state.used: cleared by the next flushAll
}

// lineQueue is the backing store of an outbox. Queues are pooled and a
// client holds one only while it has lines of its own to write, so an idle
// client costs no queue however busy it once was, and a busy one allocates
// none.
type lineQueue struct {
	lines [][]byte // lines waiting to be written, oldest first; shared, never modified
}

// maxPooledQueue is the longest queue returned to the pool; a longer one,
// left by a rare huge burst, goes back to the heap instead.
const maxPooledQueue = 4 * DefaultOutboxSize

var lineQueues = sync.Pool{New: func() any { return new(lineQueue) }}

func getQueue() *lineQueue { return lineQueues.Get().(*lineQueue) }

func putQueue(q *lineQueue) {
	if cap(q.lines) > maxPooledQueue {
		return
	}
	clear(q.lines) // let the lines go: other outboxes may still hold them
	q.lines = q.lines[:0]
	lineQueues.Put(q)
}

// enqueue queues lines for the client, in order, without ever blocking on
// the network. It returns how many lines are now waiting, or -1 if the
// outbox could not take them all: those that did not fit are counted as
// dropped, and the caller evicts the client. A client that is already
// leaving takes no more lines and reports 0. With wake, it also makes sure
// a writer goroutine is on its way; without, the caller must flush later
// (the hub does, once it has queued everything that is waiting, so that
// one write carries it all).
func (c *Client) enqueue(lines [][]byte, wake bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enqueueLocked(lines, wake)
}

// enqueueLocked is enqueue, with c.mu held.
func (c *Client) enqueueLocked(lines [][]byte, wake bool) int {
	if c.closed || c.final {
		return 0
	}
	c.unshare()
	if c.outbox == nil {
		c.outbox = getQueue()
	}
	space := c.hub.opts.outboxSize - len(c.outbox.lines)
	fit := min(len(lines), space, c.fitting(lines))
	c.outbox.lines = append(c.outbox.lines, lines[:fit]...)
	c.waiting += linesBytes(lines[:fit])
	if fit < len(lines) {
		c.hub.dropped.Add(uint64(len(lines) - fit))
		return -1
	}
	if wake {
		c.startWriter()
	}
	return len(c.outbox.lines)
}

// fitting returns how many of lines fit in what the client's outbox may
// hold in bytes ([WithOutboxBytes]) besides what waits. c.mu must be held.
func (c *Client) fitting(lines [][]byte) int {
	room := c.hub.opts.outboxBytes - c.waiting
	for i, l := range lines {
		if room -= len(l); room < 0 {
			return i
		}
	}
	return len(lines)
}

// linesBytes is the size of lines.
func linesBytes(lines [][]byte) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

// share queues for the client the lines list.lines[list.from:], the last a
// room sent to everyone of the client's form: as a view into the list if it
// has nothing else waiting, or only a view of that list, or else on its
// queue (see enqueue). Only the hub goroutine calls it; a view of the list
// ends where the new lines start. It returns what enqueue returns.
func (c *Client) share(list *sharedList) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.final {
		return 0
	}
	shared, from := list.lines, list.from
	if c.outbox != nil || c.writing || c.view != nil && c.viewOf != list {
		return c.enqueueLocked(shared[from:], false)
	}
	start := from - len(c.view)
	c.viewOf = list
	added := shared[from:]
	fit := min(len(added), c.hub.opts.outboxSize-len(c.view), c.fitting(added))
	c.view = shared[start : from+fit]
	c.waiting += linesBytes(added[:fit])
	if fit < len(added) {
		c.hub.dropped.Add(uint64(len(added) - fit))
		return -1
	}
	return len(c.view)
}

// queuedLines is how many lines wait for the client.
func (c *Client) queuedLines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.view)
	if c.outbox != nil {
		n += len(c.outbox.lines)
	}
	return n
}

// unshareLines is unshare, for the hub goroutine.
func (c *Client) unshareLines() {
	c.mu.Lock()
	c.unshare()
	c.mu.Unlock()
}

// unshare turns the client's view, if it has one, into a queue of its
// own, so that lines for it alone can follow. c.mu must be held.
func (c *Client) unshare() {
	if c.view == nil {
		return
	}
	if c.outbox == nil {
		c.outbox = getQueue()
	}
	c.outbox.lines = append(c.outbox.lines, c.view...)
	c.view, c.viewOf = nil, nil
}

// flush writes what is queued, unless a writer goroutine is at it already.
// The hub goroutine calls it, once it has queued everything that was
// waiting. To a socket it writes straight away, in one non-blocking system
// call under c.mu, the way an event loop writes each client once per turn:
// no goroutine is woken for a client whose socket takes it all, which is
// nearly every client nearly always. Whatever the socket does not take, and
// everything for a connection that is not a plain socket, is left to a
// writer goroutine, which can wait for the socket under the write deadline.
// Either way the client has no view left: the hub may reuse its list.
func (c *Client) flush(w *socketWriter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.writing {
		return
	}
	if c.view != nil && c.raw != nil && !c.final {
		whole, skip := c.tryWrite(w, c.view, 0)
		if whole == len(c.view) {
			c.view, c.viewOf, c.waiting = nil, nil, 0
			return
		}
		// The writer goroutine resumes skip bytes into the first line not
		// written whole, from a queue of the client's own.
		c.view = c.view[whole:]
		c.unshare()
		c.skip = skip
		c.waiting = linesBytes(c.outbox.lines) - skip
		c.startWriter()
		return
	}
	c.unshare()
	if c.outbox == nil || len(c.outbox.lines) == 0 {
		return
	}
	if c.raw != nil && !c.final {
		lines := c.outbox.lines
		whole, skip := c.tryWrite(w, lines, c.skip)
		if whole == len(lines) {
			putQueue(c.outbox)
			c.outbox, c.skip, c.waiting = nil, 0, 0
			return
		}
		// Keep the unwritten lines at the front of the outbox, for the
		// writer goroutine to resume skip bytes into the first.
		clear(lines[copy(lines, lines[whole:]):])
		c.outbox.lines, c.skip = lines[:len(lines)-whole], skip
		c.waiting = linesBytes(c.outbox.lines) - skip
	}
	c.startWriter()
}

// tryWrite writes lines, the first from skip bytes in, to the client's
// socket in one non-blocking system call, and returns how many it wrote
// whole and how far into the next it got. c.mu must be held.
func (c *Client) tryWrite(w *socketWriter, lines [][]byte, skip int) (whole, rest int) {
	buf := getWriteBuffer()
	*buf = appendLines(*buf, lines, skip)
	n := w.tryWrite(c.raw, *buf)
	putWriteBuffer(buf)
	whole, rest = advance(lines, skip, n)
	c.hub.delivered.Add(uint64(whole))
	return whole, rest
}

// end ends the client's connection as reason says (reason.go): after last
// (if not nil) and what was queued for it are written, or at once.
func (c *Client) end(reason LeaveReason, last []byte) {
	if reason.effect().flush {
		c.enqueueFinal(last, reason)
	} else {
		c.shut(reason, nil)
	}
}

// enqueueFinal queues the last line the client will get, if line is not
// nil, whatever the outbox holds, and closes the connection once everything
// queued is written. reason is why the client leaves.
func (c *Client) enqueueFinal(line []byte, reason LeaveReason) {
	c.mu.Lock()
	if c.closed || c.final {
		c.mu.Unlock()
		return
	}
	c.final = true
	c.reason = reason
	c.unshare()
	if line != nil {
		if c.outbox == nil {
			c.outbox = getQueue()
		}
		c.outbox.lines = append(c.outbox.lines, line)
		c.waiting += len(line)
	}
	if (c.outbox == nil || len(c.outbox.lines) == 0) && !c.writing {
		c.mu.Unlock()
		c.shut(reason, nil) // nothing to flush, and no writer to close it
		return
	}
	c.startWriter() // or the running writer closes it when done
	c.mu.Unlock()
}

// startWriter starts the writer goroutine unless one is running. c.mu must
// be held.
func (c *Client) startWriter() {
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.runWriter()
	}
}

// shut closes the connection at once, discarding whatever is still queued,
// and records reason and err unless a reason was recorded already. It is
// safe to call from any goroutine, any number of times.
func (c *Client) shut(reason LeaveReason, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reason == ReasonNone {
		c.reason, c.err = reason, err
	}
	if c.outbox != nil {
		c.hub.dropped.Add(uint64(len(c.outbox.lines)))
		putQueue(c.outbox)
		c.outbox, c.skip = nil, 0
	}
	c.hub.dropped.Add(uint64(len(c.view)))
	c.view, c.viewOf, c.waiting = nil, nil, 0
	c.mu.Unlock()

	// Outside the lock: closing a TLS connection may write an alert.
	c.conn.Close()
	c.closing.Done()
	// A polled client with no turn running has nobody to notice: start
	// its last turn, which meets the closed connection and ends it.
	if c.polled.CompareAndSwap(pollIdle, pollBusy) {
		c.hub.wg.Go(func() { c.turn() })
	}
}

// writer is the writer goroutine. It alone writes to the connection while
// it runs. Each round takes the whole outbox and writes it in one go, one
// Write of a joined buffer under one deadline, so a client that fell behind
// catches up in a single system call. It exits when the outbox is empty,
// and closes the connection once a final line is out.
func (c *Client) writer() {
	defer c.writers.Done()
	// Readers with lines for the hub go first: a bigger batch.
	yield()
	var batch *lineQueue // the lines being written; the next outbox once written
	deadline := false    // a write deadline is set
	for {
		c.mu.Lock()
		if c.closed || c.outbox == nil || len(c.outbox.lines) == 0 {
			finish, reason := c.final && !c.closed, c.reason
			if deadline && c.raw != nil && !c.final && !c.closed {
				// The hub's own writes would stop at a deadline left
				// behind; lift it, outside the lock, before handing back.
				c.mu.Unlock()
				c.conn.SetWriteDeadline(time.Time{})
				deadline = false
				continue
			}
			c.writing = false
			if c.outbox != nil {
				putQueue(c.outbox)
				c.outbox = nil
			}
			c.mu.Unlock()
			if batch != nil {
				putQueue(batch)
			}
			if finish {
				c.shut(reason, nil)
			}
			return
		}
		batch, c.outbox = c.outbox, batch
		skip := c.skip
		c.skip = 0
		inFlight := linesBytes(batch.lines) - skip
		c.mu.Unlock()

		if d := c.hub.opts.writeTimeout; d > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(d))
			deadline = true
		}
		written, err := c.writeBatch(batch.lines, skip)
		c.hub.delivered.Add(uint64(written))
		if err != nil {
			c.hub.dropped.Add(uint64(len(batch.lines) - written))
			putQueue(batch)
			c.shut(reasonForWriteError(err), err)
			return
		}
		clear(batch.lines)
		batch.lines = batch.lines[:0]
		c.mu.Lock()
		c.waiting -= inFlight
		c.mu.Unlock()
	}
}

// writeBatch writes lines to the connection, the first from skip bytes in,
// joined into one buffer in one Write, and returns how many were written
// whole.
//
// Joining costs a copy of bytes that are about to be copied into the kernel
// anyway. net.Buffers would hand them over with one writev instead, but the
// runtime then keeps an iovec array per connection as long as its largest
// burst ever was, which every idle client would carry; and on TLS it would
// make one record per line.
func (c *Client) writeBatch(lines [][]byte, skip int) (int, error) {
	buf := getWriteBuffer()
	defer putWriteBuffer(buf)
	*buf = appendLines(*buf, lines, skip)
	n, err := c.conn.Write(*buf)
	if err == nil {
		return len(lines), nil
	}
	written, _ := advance(lines, skip, n)
	return written, err
}

// appendLines appends lines to buf, the first from skip bytes in.
func appendLines(buf []byte, lines [][]byte, skip int) []byte {
	for i, l := range lines {
		if i == 0 {
			l = l[skip:]
		}
		buf = append(buf, l...)
	}
	return buf
}

// advance reports how many of lines a write of n bytes completed, the first
// line from skip bytes in, and how many bytes into the next line it got.
func advance(lines [][]byte, skip, n int) (whole, rest int) {
	for whole < len(lines) {
		left := len(lines[whole]) - skip
		if n < left {
			return whole, skip + n
		}
		n -= left
		skip = 0
		whole++
	}
	return whole, 0
}

// writeBuffers holds the buffers that batches are joined in. Pooled rather
// than per client, so an idle client holds none.
var writeBuffers = sync.Pool{New: func() any { return new([]byte) }}

func getWriteBuffer() *[]byte { return writeBuffers.Get().(*[]byte) }

func putWriteBuffer(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // a rare huge batch; do not pin its memory
	}
	*b = (*b)[:0]
	writeBuffers.Put(b)
}
