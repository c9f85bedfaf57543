package chatroom

import (
	"fmt"
	"math"
	"net"
	"time"
)

// This file is the client's reader: the goroutine running ServeConn or
// Serve's for the connection, and then, for a client the poller reads, the
// turn runner taking each of its turns (poller_linux.go). It reads and
// frames the client's lines, paces them (flood control), and hands each to
// the client's session, which acts through the Client's methods
// (client.go).

// read is the client's reader: it runs in ServeConn's goroutine until the
// client leaves, and returns why, or ReasonNone if the hub is closing and
// ends the client itself (see readLines).
func (c *Client) read() (LeaveReason, error) {
	c.startReading(false)
	defer c.lr.release()
	return c.readLines()
}

// startReading prepares the client's reader; polled is for a client the
// poller reads, in turns, each with a reader of its own (borrowReader).
// The idle clock starts.
func (c *Client) startReading(polled bool) {
	h := c.hub
	if h.opts.rate > 0 {
		c.tokens, c.tokensAt = float64(h.opts.rateBurst), time.Now()
	}
	if polled {
		return // the poller starts the idle clock as it registers the client
	}
	var in *socketInput
	if c.raw != nil {
		in = readiness(c.raw)
	}
	c.lr = newLineReader(c.conn, in, c.lineLimit(), h.buffers.pool(c.lineLimit()))
	c.restartIdleClock()
}

// lineLimit is the longest line the client may send: the hub's limit, or
// more for a face whose lines wrap text in more (see LineLimiter).
func (c *Client) lineLimit() int {
	limit := c.hub.opts.bufferSize
	if l, ok := c.face.(LineLimiter); ok {
		limit = max(limit, l.LineLimit(limit))
	}
	return limit
}

// A LineLimiter is a [Face] whose lines may be longer than the text they
// carry (JSON, IRC's tags): the hub takes lines of up to LineLimit(limit)
// bytes from its clients, where limit is the longest text
// ([WithBufferSize]).
type LineLimiter interface {
	LineLimit(limit int) int
}

// borrowReader lends a polled client a reader for a turn, with the part of
// a line it kept from the last one.
func (c *Client) borrowReader() {
	lr := lineReaders.Get().(*lineReader)
	limit := c.lineLimit()
	lr.src, lr.pool, lr.max = lr.in, c.hub.buffers.pool(limit), limit // reads without waiting
	lr.in.rc = c.raw
	if r := c.rare; r != nil {
		lr.part, lr.skipping = r.part, r.skipping
		r.part = nil
	}
	c.lr = lr
}

// returnReader gives the reader back at the end of a turn, which ends
// waiting for input: its buffer is back in the pool, and the part of a line
// it holds, if any, stays with the client.
func (c *Client) returnReader() {
	lr := c.lr
	if lr.part != nil || lr.skipping || c.rare != nil {
		r := c.rarely()
		r.part, r.skipping = lr.part, lr.skipping
	}
	in := lr.in
	in.rc = nil
	*lr = lineReader{in: in, nonblocking: true}
	lineReaders.Put(lr)
	c.lr = nil
}

// readLines reads the client's lines and hands each to its session until
// the client leaves, and returns why, or ReasonNone if the hub is closing
// and ends the client itself. A polled client's turn ends instead when the
// socket has nothing more for now: readLines then returns errWouldBlock.
//
// Lines said are handed over in batches (Client.sayMessage): every line
// the last read brought in, up to maxRelay, goes to the hub in one
// request, and nothing is kept back while the reader waits for input (or
// its turn ends). The hub then keeps the batch once for everyone
// (state.broadcast), and each client gets it in one write.
func (c *Client) readLines() (LeaveReason, error) {
	h := c.hub
	lr := c.lr
	for {
		if n := len(c.said.lines); n > 0 && (n >= h.maxRelay || !lr.buffered()) {
			if !c.flushSaid() {
				return ReasonNone, nil
			}
		}
		if c.quitting != ReasonNone || c.isShut() {
			return c.stopped()
		}
		line, tooLong, err := lr.next()
		if err == errWouldBlock {
			return ReasonNone, err
		}
		if err != nil { // nothing is said: it was handed over before next could read
			return c.readFailed(err)
		}
		if (h.opts.rate > 0 || h.opts.hostRate > 0) && !c.throttle() {
			return ReasonNone, nil
		}
		if !c.handle(line, tooLong) {
			return c.stopped()
		}
	}
}

// handle hands one line to the client's session, recovering a session that
// panics: the client is then disconnected. It reports false if the client
// is to stop.
func (c *Client) handle(line []byte, tooLong bool) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.hub.log.Error("face panicked; disconnecting the client", "face", c.face.Name(), "client", c.name, "panic", fmt.Sprint(p))
			c.shut(ReasonDisconnect, fmt.Errorf("chatroom: face %s panicked: %v", c.face.Name(), p))
			ok = false
		}
	}()
	if tooLong {
		c.session.TooLong()
	} else {
		c.session.Line(line)
	}
	return c.quitting == ReasonNone && !c.isShut()
}

// stopped is what the reader reports once the session quit or the
// connection was shut: what the client said goes to the hub first.
func (c *Client) stopped() (LeaveReason, error) {
	if !c.flushSaid() {
		return ReasonNone, nil
	}
	if c.quitting != ReasonNone {
		return c.quitting, nil
	}
	return c.readFailed(net.ErrClosed)
}

// isShut reports whether the connection was closed, by the hub, a writer
// or the client's own hook.
func (c *Client) isShut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// readPolled hands the client to the hub's poller: from its first turn,
// run here, on the goroutine of Serve that admitted it, it is read in
// turns, each on a goroutine that lives while the client has input to
// deal with (see turn). It reports false if the poller would not take it;
// the client is then read as any other.
func (c *Client) readPolled() bool {
	c.polled.Store(pollBusy)
	if err := c.hub.poll.register(c); err != nil {
		c.polled.Store(pollOff)
		return false
	}
	c.startReading(true)
	c.turn()
	return true
}

// turn is one turn of a polled client's reader: it deals with whatever
// input the socket has, then arms the poller for more and returns. A turn
// that ends the client (it left, was cut off, or the hub closed it) also
// takes it out of the hub and completes what ServeConn would. A turn
// runner takes a turn when the poller has an event for the client; the
// idle timeout starts idle instead; and a client closed while no turn
// runs starts its last turn itself (shut). turn reports whether the turn
// still holds the runner's place it was given (see mayWait).
func (c *Client) turn() (held bool) {
	for {
		c.borrowReader()
		reason, err := c.readLines()
		if err != errWouldBlock {
			c.finish(reason, err)
			return false
		}
		c.returnReader()
		if c.firstTurn {
			c.firstTurn = false
			if c.reg {
				c.doneAdmitting() // in, and idle (see Hub.serve)
			}
		}
		held, c.onRunner = c.onRunner, false // the next turn may be another runner's
		c.polled.Store(pollIdle)             // before arming: the next event must find it idle
		err = c.hub.poll.arm(c)
		if err == nil {
			return held
		}
		// Closed meanwhile (or epoll failed): whoever takes the client
		// now meets the closed connection and ends it.
		c.shut(ReasonDisconnect, fmt.Errorf("chatroom: polling: %w", err))
		if !c.polled.CompareAndSwap(pollIdle, pollBusy) {
			return held
		}
		c.onRunner = held
	}
}

// mayWait comes before anything a turn does that may wait: the hub's
// answer, a hook, flood control, leaving. A turn that holds a turn
// runner's place gives it up to a new runner (poller.stepOut), so that no
// other client's turn waits behind it.
func (c *Client) mayWait() {
	if c.onRunner {
		c.onRunner = false
		c.hub.poll.stepOut()
	}
}

// idle ends a polled client whose idle timeout passed; the poller runs it
// as a turn of its own.
func (c *Client) idle() {
	c.finish(ReasonIdle, nil)
}

// finish takes a polled client out of the hub for reason (see leave),
// and does what ServeConn's return would: gives the poller its slot back,
// logs how it ended, and forgets it.
func (c *Client) finish(reason LeaveReason, err error) {
	c.mayWait() // leaving waits for the hub and for the connection to close
	if c.lr == nil {
		c.borrowReader() // with the part of a line kept between turns, if any
	}
	c.lr.release()
	c.returnReader()
	err = c.leave(reason, err)
	c.hub.poll.unregister(c)
	if err != nil {
		c.hub.logEnded(c.conn, err)
	}
	c.hub.untrackConn(c)
}

// deadline is how long the client may stay without doing anything that
// counts: its face's registration time until it registers, then the idle
// timeout (0 for never).
func (c *Client) deadline() time.Duration {
	if !c.reg {
		return c.hookTimeout()
	}
	return c.hub.opts.idleTimeout
}

// restartIdleClock gives the client its deadline, from now, to do
// something that counts.
func (c *Client) restartIdleClock() {
	d := c.deadline()
	polled := c.polled.Load() != pollOff
	switch {
	case polled && d <= 0:
		c.idleAt.Store(math.MaxInt64) // never: the poller's heap entry, if any, stays unused
	case polled:
		c.idleAt.Store(c.hub.poll.now() + int64(d)) // the poller's to enforce
	case d > 0:
		c.conn.SetReadDeadline(time.Now().Add(d))
		c.deadlineSet = true
	case c.deadlineSet:
		c.conn.SetReadDeadline(time.Time{})
		c.deadlineSet = false
	}
}

// readFailed turns a read error into the reason the client leaves. If the
// hub or a writer closed the connection, their reason stands.
func (c *Client) readFailed(err error) (LeaveReason, error) {
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	if reason != ReasonNone {
		return reason, nil
	}
	return reasonForReadError(err)
}

// throttle takes one of the client's rate tokens for a line, and one of
// its address's, waiting for them if there are none: meanwhile the reader
// reads nothing, and the client's own connection holds it back (the
// kernel's buffers fill, then its writes wait). What it said before is
// handed over first, so it does not wait too. It reports false if the hub
// closes meanwhile.
func (c *Client) throttle() bool {
	o := &c.hub.opts
	now := time.Now()
	var wait time.Duration
	if o.rate > 0 {
		c.tokens = min(float64(o.rateBurst), c.tokens+now.Sub(c.tokensAt).Seconds()*o.rate)
		c.tokensAt = now
		if c.tokens < 1 {
			wait = time.Duration((1 - c.tokens) / o.rate * float64(time.Second))
			c.tokens, c.tokensAt = 0, now.Add(wait) // the token it waits for is this line's
		} else {
			c.tokens--
		}
	}
	if c.counted {
		wait = max(wait, c.hub.hosts.lineWait(c.host, now))
	}
	if wait <= 0 {
		return true
	}
	if !c.flushSaid() {
		return false
	}
	if c.firstTurn && c.reg {
		c.firstTurn = false
		c.doneAdmitting() // in, and waiting on its own rate: the place is the next connection's
	}
	c.mayWait()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.hub.ctx.Done():
		return false
	}
}
