package chatroom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// leaveReason records why a client left the room. Logs, Stats and the
// error ServeConn returns are all derived from it.
type leaveReason uint8

const (
	reasonNone       leaveReason = iota
	reasonExit                   // the client sent "exit"
	reasonDisconnect             // the client hung up or its connection failed
	reasonIdle                   // no whole line within the idle timeout
	reasonSlow                   // its outbox filled, or a write missed its deadline
	reasonShutdown               // Room.Shutdown
	reasonClosed                 // Room.Close, or Shutdown's context ran out
)

func (r leaveReason) String() string {
	switch r {
	case reasonExit:
		return "exit"
	case reasonDisconnect:
		return "disconnect"
	case reasonIdle:
		return "idle timeout"
	case reasonSlow:
		return "too slow"
	case reasonShutdown:
		return "shutdown"
	case reasonClosed:
		return "closed"
	}
	return "none"
}

// handshakeTimeout bounds a TLS handshake when the room has no write
// timeout; a client is not admitted before its handshake completes.
const handshakeTimeout = DefaultWriteTimeout

// lineQueue is the backing store of an outbox. Queues are pooled and a
// client holds one only while it has lines to write, so an idle client
// costs no queue however busy it once was, and a busy one allocates none.
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

// client is one connection in the room. Its reader runs in ServeConn's
// goroutine. It has one writer at a time: the room goroutine, for the one
// non-blocking write to a socket it makes in flush, under mu, while no
// writer goroutine runs; or a writer goroutine (writing is set), which
// exists only while the outbox holds something the socket would not take
// at once. The room goroutine fills the
// outbox, and the reader adds its own replies (a line too long); slot and
// pending are the room's alone.
type client struct {
	room     *Room
	conn     net.Conn
	raw      syscall.RawConn // conn's socket, or nil if it is not a plain one (see rawSocket)
	name     string          // what others see: the remote address
	admitted chan bool       // the room's answer to this client's join; buffered so the room never waits

	slot    int  // index in the room's member list; owned by the room goroutine
	pending bool // in the room's list of clients to flush; owned by the room goroutine

	// mu guards the outbox and the connection's end. The room goroutine
	// appends under it, and makes its non-blocking writes under it; a
	// writer goroutine swaps the whole queue out under it and writes
	// without it, so queuing never waits for the network.
	mu      sync.Mutex
	queue   *lineQueue  // lines waiting to be written; nil while there are none
	skip    int         // bytes of the first queued line already written
	writing bool        // a writer goroutine is running
	final   bool        // the last line is queued: close once it is written
	closed  bool        // the connection is closed: nothing more is queued or written
	reason  leaveReason // why the client is leaving; set once, by final or close
	err     error       // the I/O error that ended the connection, if any

	writers   sync.WaitGroup // the writer goroutine, while one runs
	writeLoop func()         // c.write, bound once so that starting a writer does not allocate
	done      chan struct{}  // closed when the connection is closed
}

func newClient(r *Room, conn net.Conn) *client {
	c := &client{
		room:     r,
		conn:     conn,
		raw:      rawSocket(conn),
		name:     conn.RemoteAddr().String(),
		admitted: make(chan bool, 1),
		done:     make(chan struct{}),
	}
	c.writeLoop = c.write
	return c
}

// enqueue queues lines for the client, in order, without ever blocking on
// the network. It returns how many lines are now waiting, or -1 if the
// outbox could not take them all: those that did not fit are counted as
// dropped, and the caller evicts the client. A client that is already
// leaving takes no more lines and reports 0. With wake, it also makes sure
// a writer goroutine is on its way; without, the caller must flush later
// (the room does, once it has queued everything that is waiting, so that
// one write carries it all).
func (c *client) enqueue(lines [][]byte, wake bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.final {
		return 0
	}
	if c.queue == nil {
		c.queue = getQueue()
	}
	space := c.room.opts.outboxSize - len(c.queue.lines)
	if len(lines) > space {
		c.queue.lines = append(c.queue.lines, lines[:space]...)
		c.room.dropped.Add(uint64(len(lines) - space))
		return -1
	}
	c.queue.lines = append(c.queue.lines, lines...)
	if wake {
		c.startWriter()
	}
	return len(c.queue.lines)
}

// reply queues one line for the client alone, and wakes its writer. It
// reports false if the outbox was full.
func (c *client) reply(line []byte) bool {
	return c.enqueue([][]byte{line}, true) >= 0
}

// flush writes what is queued, unless a writer goroutine is at it already.
// The room goroutine calls it, once it has queued everything that was
// waiting. To a socket it writes straight away, in one non-blocking system
// call under c.mu, the way an event loop writes each client once per turn:
// no goroutine is woken for a client whose socket takes it all, which is
// nearly every client nearly always. Whatever the socket does not take, and
// everything for a connection that is not a plain socket, is left to a
// writer goroutine, which can wait for the socket under the write deadline.
func (c *client) flush(w *socketWriter) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.writing || c.queue == nil || len(c.queue.lines) == 0 {
		return
	}
	if c.raw != nil && !c.final {
		lines := c.queue.lines
		buf := getWriteBuffer()
		*buf = appendLines(*buf, lines, c.skip)
		n := w.tryWrite(c.raw, *buf)
		putWriteBuffer(buf)
		whole, skip := advance(lines, c.skip, n)
		c.room.delivered.Add(uint64(whole))
		if whole == len(lines) {
			putQueue(c.queue)
			c.queue, c.skip = nil, 0
			return
		}
		// Keep the unwritten lines at the front of the queue, for the
		// writer goroutine to resume skip bytes into the first.
		clear(lines[copy(lines, lines[whole:]):])
		c.queue.lines, c.skip = lines[:len(lines)-whole], skip
	}
	c.startWriter()
}

// enqueueFinal queues the last line the client will get, if line is not
// nil, whatever the outbox holds, and closes the connection once everything
// queued is written. reason is why the client leaves.
func (c *client) enqueueFinal(line []byte, reason leaveReason) {
	c.mu.Lock()
	if c.closed || c.final {
		c.mu.Unlock()
		return
	}
	c.final = true
	c.reason = reason
	if line != nil {
		if c.queue == nil {
			c.queue = getQueue()
		}
		c.queue.lines = append(c.queue.lines, line)
	}
	if c.queue == nil && !c.writing {
		c.mu.Unlock()
		c.shut(reason, nil) // nothing to flush, and no writer to close it
		return
	}
	c.startWriter() // or the running writer closes it when done
	c.mu.Unlock()
}

// startWriter starts the writer unless one is running. c.mu must be held.
func (c *client) startWriter() {
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.writeLoop()
	}
}

// shut closes the connection at once, discarding whatever is still queued,
// and records reason and err unless a reason was recorded already. It is
// safe to call from any goroutine, any number of times.
func (c *client) shut(reason leaveReason, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reason == reasonNone {
		c.reason, c.err = reason, err
	}
	if c.queue != nil {
		c.room.dropped.Add(uint64(len(c.queue.lines)))
		putQueue(c.queue)
		c.queue = nil
	}
	c.mu.Unlock()

	// Outside the lock: closing a TLS connection may write an alert.
	c.conn.Close()
	close(c.done)
}

// write is the writer goroutine. It alone writes to the connection while
// it runs. Each round takes everything queued and writes it in one go, one
// Write of a joined buffer under one deadline, so a client that fell behind
// catches up in a single system call. It exits when the outbox is empty,
// and closes the connection once a final line is out.
func (c *client) write() {
	defer c.writers.Done()
	// Let the goroutines that are already runnable (readers with lines for
	// the room) go first: the batch this writer takes is then bigger, and
	// the room's fan-out costs fewer system calls. Measured with chatbench
	// fanout (100 clients, 10 senders), when every write was a writer
	// goroutine's: 0.27 µs of server CPU per delivery with this yield,
	// 0.72 µs without.
	runtime.Gosched()
	var batch *lineQueue // the lines being written; the next queue once written
	deadline := false    // a write deadline is set
	for {
		c.mu.Lock()
		if c.closed || c.queue == nil || len(c.queue.lines) == 0 {
			finish, reason := c.final && !c.closed, c.reason
			if deadline && c.raw != nil && !c.final && !c.closed {
				// The room's own writes would stop at a deadline left
				// behind; lift it, outside the lock, before handing back.
				c.mu.Unlock()
				c.conn.SetWriteDeadline(time.Time{})
				deadline = false
				continue
			}
			c.writing = false
			if c.queue != nil {
				putQueue(c.queue)
				c.queue = nil
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
		batch, c.queue = c.queue, batch
		skip := c.skip
		c.skip = 0
		c.mu.Unlock()

		if d := c.room.opts.writeTimeout; d > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(d))
			deadline = true
		}
		written, err := c.writeBatch(batch.lines, skip)
		c.room.delivered.Add(uint64(written))
		if err != nil {
			c.room.dropped.Add(uint64(len(batch.lines) - written))
			putQueue(batch)
			reason := reasonDisconnect
			if errors.Is(err, os.ErrDeadlineExceeded) {
				reason = reasonSlow
			}
			c.shut(reason, err)
			return
		}
		clear(batch.lines)
		batch.lines = batch.lines[:0]
	}
}

// writeBatch writes lines to the connection, the first from skip bytes in,
// joined into one buffer in one Write, and returns how many were written
// whole.
//
// Joining costs a copy of bytes that are about to be copied into the kernel
// anyway. net.Buffers would hand them over with one writev instead, for the
// same CPU in chatbench's fan-out, but the runtime then keeps an iovec array
// per connection as long as its largest burst ever was (up to 16 KiB), which
// every idle client would carry; and on TLS it would make one record per line.
func (c *client) writeBatch(lines [][]byte, skip int) (int, error) {
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

// handshake completes a TLS handshake, if conn is TLS, before the client is
// admitted, so that a client that never finishes it holds no place in the
// room and cannot stall its own writer forever.
func (c *client) handshake() error {
	hs, ok := c.conn.(interface {
		HandshakeContext(context.Context) error
	})
	if !ok {
		return nil
	}
	d := c.room.opts.writeTimeout
	if d == 0 {
		d = handshakeTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return hs.HandshakeContext(ctx)
}

// join admits the client: it completes a TLS handshake, if any, and asks
// the room for a place. It returns the error ServeConn returns for a client
// that does not get in, having closed its connection.
func (c *client) join() error {
	r := c.room
	if err := c.handshake(); err != nil {
		c.shut(reasonDisconnect, err)
		return fmt.Errorf("chatroom: handshake with %s: %w", c.name, err)
	}
	select {
	case r.joins <- c:
	case <-r.quit:
		c.shut(reasonClosed, nil)
		return ErrRoomClosed
	}
	if !<-c.admitted {
		if d := r.opts.writeTimeout; d > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(d))
		}
		c.conn.Write(r.lineRoomFull)
		c.shut(reasonClosed, nil)
		return ErrRoomFull
	}
	return nil
}

// leave takes the client out of the room once its reader has stopped for
// reason (err if its connection broke), waits until its connection is
// closed, and returns the error ServeConn reports for it.
func (c *client) leave(reason leaveReason, err error) error {
	r := c.room
	if err != nil {
		c.shut(reasonDisconnect, err) // a broken connection: nothing more can reach it
	}
	if reason != reasonShutdown { // on shutdown the room says goodbye itself
		select {
		case r.leaves <- departure{c, reason}:
		case <-r.quit: // the room is closing; it ends this client itself
		}
	}
	<-c.done

	c.mu.Lock()
	reason, err = c.reason, c.err
	c.mu.Unlock()
	switch reason {
	case reasonExit:
		return nil
	case reasonIdle:
		return ErrIdleTimeout
	case reasonSlow:
		return ErrTooSlow
	case reasonShutdown, reasonClosed:
		return ErrRoomClosed
	}
	if err != nil {
		return fmt.Errorf("chatroom: client %s: %w", c.name, err)
	}
	return nil
}

// read is the client's reader: it runs in ServeConn's goroutine until the
// client leaves, and returns why. It restarts the idle deadline before each
// line, answers a line that is too long without involving the room, and
// hands every other line, cleaned and formatted, to the room.
//
// Lines are handed over in batches: every whole line the last read brought
// in, up to maxRelay, goes to the room in one relay, and nothing is kept
// back while the reader waits for input. The room then queues the batch on
// each outbox at once, and each client gets it in one write: a sender whose
// client flushes sixteen lines at a time costs sixteen times fewer room
// turns, outbox locks and writes than one relayed line by line.
func (c *client) read() (leaveReason, error) {
	r := c.room
	var ready func() error
	if c.raw != nil {
		ready = readiness(c.raw)
	}
	lr := newLineReader(c.conn, ready, r.opts.bufferSize, r.readBuffers)
	var said *lineQueue // formatted lines not yet handed to the room
	for {
		if said != nil && (len(said.lines) >= r.maxRelay || !lr.buffered()) {
			if !c.handOver(said) {
				return reasonShutdown, nil
			}
			said = nil // the room's now; it returns it to the pool
		}
		c.restartIdleClock()
		line, tooLong, err := lr.next()
		if err != nil { // said is empty: it was handed over before next could read
			lr.release()
			return c.readFailed(err)
		}
		if reason, ok := c.heard(line, tooLong, &said); !ok {
			return reason, nil
		}
	}
}

// The idle client's reader is parked in read for as long as it stays idle,
// and each goroutine's stack is sized for its deepest point: read, and
// ServeConn above it, keep their frames small by leaving the work of each
// line to the functions below. Measured in process: parked readers then
// keep 4 KiB stacks instead of 8 KiB.

// restartIdleClock gives the client the idle timeout, from now, to complete
// its next line.
func (c *client) restartIdleClock() {
	if d := c.room.opts.idleTimeout; d > 0 {
		c.conn.SetReadDeadline(time.Now().Add(d))
	}
}

// heard deals with one line from the client: a line too long gets the
// error reply, "exit" hands over what was said before it and reports
// false, and any other line is cleaned, formatted and added to said.
func (c *client) heard(line []byte, tooLong bool, said **lineQueue) (leaveReason, bool) {
	r := c.room
	if tooLong {
		if !c.reply(r.lineTooLong) {
			c.shut(reasonSlow, nil)
		}
		return reasonNone, true
	}
	msg, text := lineSay(r.opts.now(), c.name, line, r.opts.bufferSize)
	switch {
	case len(text) == 0:
		return reasonNone, true // nothing left to say
	case isExit(text):
		if *said != nil { // what it said before it left comes first
			if !c.handOver(*said) {
				return reasonShutdown, false
			}
			*said = nil
		}
		return reasonExit, false
	}
	if *said == nil {
		*said = getQueue()
	}
	(*said).lines = append((*said).lines, msg)
	return reasonNone, true
}

// handOver gives the room a batch of lines to relay, and the batch with
// them. It reports false if the room is closing instead; the batch then
// goes back to the pool.
func (c *client) handOver(said *lineQueue) bool {
	select {
	case c.room.lines <- relay{from: c, said: said}:
		return true
	case <-c.room.quit:
		putQueue(said)
		return false
	}
}

// readFailed turns a read error into the reason the client leaves. If the
// room or the writer closed the connection, their reason stands.
func (c *client) readFailed(err error) (leaveReason, error) {
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	switch {
	case reason != reasonNone:
		return reason, nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return reasonIdle, nil
	case err == io.EOF:
		return reasonDisconnect, nil
	}
	return reasonDisconnect, err
}
