package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is the client's reader: the goroutine running ServeConn or
// Serve's for the connection, and then, for a client the poller reads, the
// turn runner taking each of its turns (poller_linux.go). It joins the
// room, reads and frames the client's lines and hands them to the room,
// and leaves. What is written to the client is in outbox.go.

// handshakeTimeout bounds a TLS handshake when the room has no write
// timeout; a client is not admitted before its handshake completes.
const handshakeTimeout = DefaultWriteTimeout

// client is one connection in the room. Three goroutines meet here, each
// owning its part:
//
//   - the reader (this file: ServeConn's goroutine, or a turn runner in
//     its turn) reads conn, and owns nothing below but what it reads;
//   - the room goroutine owns seat (members.go) and fills the outbox;
//   - the writers (outbox.go) share the outbox and conn's end under mu.
//
// conn has one writer at a time: the reader, for a refusal, before the
// client is admitted (nobody else knows it yet); the room goroutine, for
// one non-blocking write in flush, under mu, while no writer goroutine
// runs; or the writer goroutine, while writing is set.
type client struct {
	room   *Room
	conn   net.Conn
	raw    syscall.RawConn // conn's socket, or nil if it is not a plain one (see rawSocket)
	addr   string          // the remote address
	answer chan answer     // the room's answer to this client's join, /nick, /who or /msg, made by askRoom while it asks; buffered, so the room never waits

	// The reader's own.
	name      string     // the client's name: its address, the auth hook's name, or its /nick; the room keeps its own copy in seat, and sets this one before it answers a join
	named     bool       // name came from the auth hook: refused if taken, not made unique
	claimed   bool       // name is claimed through the room's bus: leave releases it
	admitting bool       // holds a place in Room.admitting
	host      netip.Addr // the remote IP address, if any
	counted   bool       // counted in Room.hosts: untrackConn closes its account
	tokens    float64    // WithRateLimit's tokens, as of tokensAt
	tokensAt  time.Time
	lr        *lineReader // frames the client's input; a polled client has one only during a turn
	part      []byte      // a polled client's part of a line, kept between turns (see lineReader.park)
	skipping  bool        // ... and whether it is discarding the rest of a line too long
	onRunner  bool        // the running turn holds a turn runner's place (poller_linux.go); mayWait gives it up

	// The poller's (poller_linux.go), for a client it reads: polled says
	// whether a turn runs; slot and gen, set once by register, are the
	// client's token; idleAt, the poller clock's reading at which the
	// client has been idle too long, moves on with every line that counts.
	polled atomic.Int32
	slot   int32
	gen    int32
	timer  int32 // the client's place in the poller's heap of idle deadlines, plus 1; 0: none (guarded by the poller's mu)
	idleAt atomic.Int64

	seat seat // the room goroutine's record of this client (members.go)

	// mu guards the outbox and the end of the connection. The room
	// goroutine queues under it and makes its non-blocking writes under
	// it; the reader queues its own replies under it; a writer goroutine
	// takes the whole outbox under it and writes without it, so queuing
	// never waits for the network.
	mu      sync.Mutex
	outbox  *lineQueue  // lines waiting to be written, oldest first; nil or empty when none wait; nil once closed
	view    [][]byte    // or, instead, the lines waiting in the room's list of lines for everyone (see outbox.go); nil when none
	skip    int         // bytes of the outbox's first line already written; 0 when none wait
	writing bool        // a writer goroutine runs; set by startWriter, cleared by the writer as it exits
	final   bool        // the last line is queued: nothing more is taken, and conn closes once the outbox is written
	closed  bool        // conn is closed: nothing more is queued or written
	reason  leaveReason // why the client leaves; set once, by enqueueFinal or shut
	err     error       // the I/O error that ended the connection, if any; set with reason

	writers   sync.WaitGroup // counts the writer goroutine while one runs
	runWriter func()         // c.writer, bound once so that starting a writer does not allocate
	closing   sync.WaitGroup // 1 until conn is closed (shut): leave waits on it
}

func newClient(r *Room, conn net.Conn) *client {
	addr := conn.RemoteAddr().String()
	c := &client{
		room: r,
		conn: conn,
		raw:  rawSocket(conn),
		addr: addr,
		name: addr,
		seat: seat{index: -1},
	}
	c.closing.Add(1)
	c.runWriter = c.writer
	return c
}

// join admits the client: it waits for a place among those being
// admitted, checks its address's limits, completes a TLS handshake, if
// any, and asks the room for a place. It returns the error ServeConn
// returns for a client that does not get in, having closed its connection.
func (c *client) join() error {
	r := c.room
	if !c.admitting && !r.waitAdmitting() {
		c.shut(reasonClosed, nil)
		return ErrRoomClosed
	}
	c.admitting = true
	defer c.doneAdmitting() // in or out, it is no longer waiting

	c.host = hostOf(c.conn)
	if line := r.hosts.open(c.host, time.Now()); line != nil {
		r.refusedEarly.Add(1)
		r.hostRefusals.event("client", c.name, "reason", string(line[2:len(line)-1]))
		c.refuse(line)
		return ErrTooManyFromHost
	}
	c.counted = true

	if err := c.handshake(); err != nil {
		if r.ctx.Err() != nil { // the room is closing: that ended it
			c.shut(reasonClosed, nil)
			return ErrRoomClosed
		}
		c.shut(reasonDisconnect, err)
		r.handshakeFailures.event("client", c.name, "err", err)
		return fmt.Errorf("chatroom: handshake with %s: %w", c.name, err)
	}
	if r.opts.auth != nil {
		if err := c.authenticate(); err != nil {
			return err
		}
	}
	if r.opts.bus != nil {
		if err := c.claimName(); err != nil {
			return err
		}
	}
	a, ok := c.askRoom(request{kind: askJoin, client: c})
	if !ok {
		c.releaseName()
		c.shut(reasonClosed, nil)
		return ErrRoomClosed
	}
	switch a {
	case answerFull:
		c.releaseName()
		c.refuse(r.lineRoomFull)
		return ErrRoomFull
	case answerTaken:
		c.releaseName()
		c.refuse(lineNameTaken)
		return ErrNameTaken
	}
	return nil
}

// maxNameSuffix bounds the suffixes claimName tries.
const maxNameSuffix = 100

// askRoom asks the room q, a request the room answers (a join, /nick,
// /who, /msg), and waits for the answer. It reports false if the room is
// closing. The answer's channel exists only while the reader asks: a
// quiet client holds none.
func (c *client) askRoom(q request) (answer, bool) {
	c.mayWait()
	c.answer = make(chan answer, 1)
	defer func() { c.answer = nil }() // the room's send, its last use, came before the receive
	if !c.room.ask(q) {
		return 0, false
	}
	return <-c.answer, true
}

// claimName claims the client's name through the room's bus, before it
// asks the room to join. A name by address that someone else holds gets
// the first free suffix, "#2", "#3", and so on, as the room gives one
// without a bus; an auth hook's name is refused. It returns the error
// ServeConn returns for a client refused, having told it why and closed
// its connection.
func (c *client) claimName() error {
	r := c.room
	ctx, cancel := context.WithTimeout(r.ctx, c.hookTimeout())
	defer cancel()
	name := c.name
	for n := 2; ; n++ {
		err := r.opts.bus.Claim(ctx, name)
		switch {
		case err == nil:
			c.name, c.claimed = name, true
			return nil
		case r.ctx.Err() != nil:
			c.shut(reasonClosed, nil)
			return ErrRoomClosed
		case !errors.Is(err, ErrNameTaken):
			r.log.Warn("refused: the bus could not claim a name", "client", c.addr, "name", name, "err", err)
			r.refusedEarly.Add(1)
			c.refuse(lineNamesDown)
			return fmt.Errorf("chatroom: claiming %q: %w", name, err)
		case c.named || n > maxNameSuffix:
			r.log.Info("refused: name taken", "client", c.addr, "name", name)
			r.refusedEarly.Add(1)
			c.refuse(lineNameTaken)
			return ErrNameTaken
		}
		name = c.name + "#" + strconv.Itoa(n)
	}
}

// releaseName gives up the client's name through the bus, if it claimed
// it.
func (c *client) releaseName() {
	if c.claimed {
		c.claimed = false
		c.room.opts.bus.Release(c.name)
	}
}

// handshake completes a TLS handshake, if conn is TLS, before the client is
// admitted, so that a client that never finishes it holds no place in the
// room and cannot stall its own writer forever. The handshake ends when the
// write timeout passes or the room begins to close: a connection that has
// not joined is not a member, and Shutdown does not wait for it.
func (c *client) handshake() error {
	hs, ok := c.conn.(interface {
		HandshakeContext(context.Context) error
	})
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.room.ctx, c.hookTimeout())
	defer cancel()
	return hs.HandshakeContext(ctx)
}

// doneAdmitting gives up the client's place among those being admitted, if it
// holds one.
func (c *client) doneAdmitting() {
	if c.admitting {
		c.admitting = false
		<-c.room.admitting
	}
}

// hookTimeout is how long a hook that gets a context (the TLS handshake,
// the auth hook) may take: the write timeout, or handshakeTimeout without
// one.
func (c *client) hookTimeout() time.Duration {
	if d := c.room.opts.writeTimeout; d > 0 {
		return d
	}
	return handshakeTimeout
}

// refuse writes line to a client that is not admitted, within the write
// timeout, and closes its connection.
func (c *client) refuse(line []byte) {
	if d := c.room.opts.writeTimeout; d > 0 {
		c.conn.SetWriteDeadline(time.Now().Add(d))
	}
	c.conn.Write(line)
	c.shut(reasonClosed, nil)
}

// leave takes the client out of the room once its reader has stopped for
// reason (reasonNone if the room is ending it; err if its connection
// broke), waits until its connection is closed, and returns the error
// ServeConn reports for it.
func (c *client) leave(reason leaveReason, err error) error {
	if err != nil {
		c.shut(reasonDisconnect, err) // a broken connection: nothing more can reach it
	}
	if reason != reasonNone {
		c.room.ask(request{kind: askLeave, client: c, reason: reason})
	}
	c.closing.Wait()
	c.releaseName()

	c.mu.Lock()
	reason, err = c.reason, c.err
	c.mu.Unlock()
	if e := reason.effect(); e.err != nil {
		return e.err
	}
	if err != nil {
		return fmt.Errorf("chatroom: client %s: %w", c.name, err)
	}
	return nil
}

// read is the client's reader: it runs in ServeConn's goroutine until the
// client leaves, and returns why, or reasonNone if the room is closing and
// ends the client itself (see readLines).
func (c *client) read() (leaveReason, error) {
	c.startReading(false)
	defer c.lr.release()
	return c.readLines()
}

// startReading prepares the client's reader; polled is for a client the
// poller reads, in turns, each with a reader of its own (borrowReader).
// The idle clock starts.
func (c *client) startReading(polled bool) {
	r := c.room
	if r.opts.rate > 0 {
		c.tokens, c.tokensAt = float64(r.opts.rateBurst), time.Now()
		c.limitReadBuffer()
	}
	if polled {
		return // the poller starts the idle clock as it registers the client
	}
	var in *socketInput
	if c.raw != nil {
		in = readiness(c.raw)
	}
	c.lr = newLineReader(c.conn, in, r.opts.bufferSize, r.readBuffers)
	c.restartIdleClock()
}

// borrowReader lends a polled client a reader for a turn, with the part of
// a line it kept from the last one.
func (c *client) borrowReader() {
	lr := lineReaders.Get().(*lineReader)
	lr.src, lr.pool, lr.max = lr.in, c.room.readBuffers, c.room.opts.bufferSize // reads without waiting
	lr.in.rc = c.raw
	lr.part, lr.skipping = c.part, c.skipping
	c.part = nil
	c.lr = lr
}

// returnReader gives the reader back at the end of a turn, which ends
// waiting for input: its buffer is back in the pool, and the part of a line
// it holds, if any, stays with the client.
func (c *client) returnReader() {
	lr := c.lr
	c.part, c.skipping = lr.part, lr.skipping
	in := lr.in
	in.rc = nil
	*lr = lineReader{in: in, nonblocking: true}
	lineReaders.Put(lr)
	c.lr = nil
}

// readLines reads the client's lines and deals with each until the client
// leaves, and returns why, or reasonNone if the room is closing and ends
// the client itself. A polled client's turn ends instead when the socket
// has nothing more for now: readLines then returns errWouldBlock. It
// answers a line that is too long without involving the room, and hands
// every other line, cleaned and formatted, to the room. The idle clock
// restarts only at a line that does something (see heard).
//
// Lines are handed over in batches: every whole line the last read brought
// in, up to maxRelay, goes to the room in one request, and nothing is kept
// back while the reader waits for input (or its turn ends). The room then
// keeps the batch once for everyone (members.send), and each client gets
// it in one write.
func (c *client) readLines() (leaveReason, error) {
	r := c.room
	lr := c.lr
	var said *lineQueue // formatted lines not yet handed to the room
	for {
		if said != nil && (len(said.lines) >= r.maxRelay || !lr.buffered()) {
			if !c.handOver(said) {
				return reasonNone, nil
			}
			said = nil // the room's now; it returns it to the pool
		}
		line, tooLong, err := lr.next()
		if err == errWouldBlock {
			return reasonNone, err
		}
		if err != nil { // said is empty: it was handed over before next could read
			return c.readFailed(err)
		}
		if r.opts.rate > 0 && !c.throttle(&said) {
			return reasonNone, nil
		}
		if reason, ok := c.heard(line, tooLong, &said); !ok {
			return reason, nil
		}
	}
}

// readPolled hands the client to the room's poller: from its first turn,
// run here, on the goroutine of Serve that admitted it, it is read in
// turns, each on a goroutine that lives while the client has input to
// deal with (see turn). It reports false if the poller would not take it;
// the client is then read as any other.
func (c *client) readPolled() bool {
	c.polled.Store(pollBusy)
	if err := c.room.poll.register(c); err != nil {
		c.polled.Store(pollOff)
		return false
	}
	c.startReading(true)
	c.turn()
	return true
}

// turn is one turn of a polled client's reader: it deals with whatever
// input the socket has, then arms the poller for more and returns. A turn
// that ends the client (it left, was cut off, or the room closed it) also
// takes it out of the room and completes what ServeConn would. A turn
// runner takes a turn when the poller has an event for the client; the
// idle timeout starts idle instead; and a client closed while no turn
// runs starts its last turn itself (shut). turn reports whether the turn
// still holds the runner's place it was given (see mayWait).
func (c *client) turn() (held bool) {
	for {
		c.borrowReader()
		reason, err := c.readLines()
		if err != errWouldBlock {
			c.finish(reason, err)
			return false
		}
		c.returnReader()
		held, c.onRunner = c.onRunner, false // the next turn may be another runner's
		c.polled.Store(pollIdle)             // before arming: the next event must find it idle
		err = c.room.poll.arm(c)
		if err == nil {
			return held
		}
		// Closed meanwhile (or epoll failed): whoever takes the client
		// now meets the closed connection and ends it.
		c.shut(reasonDisconnect, fmt.Errorf("chatroom: polling: %w", err))
		if !c.polled.CompareAndSwap(pollIdle, pollBusy) {
			return held
		}
		c.onRunner = held
	}
}

// mayWait comes before anything a turn does that may wait: the room's
// answer, a hook, flood control, leaving. A turn that holds a turn
// runner's place gives it up to a new runner (poller.stepOut), so that no
// other client's turn waits behind it.
func (c *client) mayWait() {
	if c.onRunner {
		c.onRunner = false
		c.room.poll.stepOut()
	}
}

// idle ends a polled client whose idle timeout passed; the poller runs it
// as a turn of its own.
func (c *client) idle() {
	c.finish(reasonIdle, nil)
}

// finish takes a polled client out of the room for reason (see leave),
// and does what ServeConn's return would: gives the poller its slot back,
// logs how it ended, and forgets it.
func (c *client) finish(reason leaveReason, err error) {
	c.mayWait() // leaving waits for the room and for the connection to close
	if c.lr == nil {
		c.borrowReader() // with the part of a line kept between turns, if any
	}
	c.lr.release()
	c.returnReader()
	err = c.leave(reason, err)
	c.room.poll.unregister(c)
	if err != nil {
		c.room.logEnded(c.conn, err)
	}
	c.room.untrackConn(c)
}

// restartIdleClock gives the client the idle timeout, from now, to say
// something that counts.
func (c *client) restartIdleClock() {
	d := c.room.opts.idleTimeout
	switch {
	case d <= 0:
	case c.polled.Load() != pollOff:
		c.idleAt.Store(c.room.poll.now() + int64(d)) // the poller's to enforce
	default:
		c.conn.SetReadDeadline(time.Now().Add(d))
	}
}

// heard deals with one line from the client: a line too long gets the
// error reply, "exit" hands over what was said before it and reports
// false, a command or any line under a filter goes to heardText
// (commands.go), and any other line is cleaned, formatted and added to
// said. It reports false, with why, when the reader is to stop.
//
// Only a line that is relayed, or a command, restarts the idle clock: a
// line too long, an empty line, or one that is empty once cleaned does
// not, so that a client cannot hold its place by sending nothing anyone
// sees.
func (c *client) heard(line []byte, tooLong bool, said **lineQueue) (leaveReason, bool) {
	r := c.room
	if tooLong {
		c.replyOrShut(r.lineTooLong)
		return reasonNone, true
	}
	msg, text := lineSay(r.opts.now(), c.name, line, r.opts.bufferSize)
	switch {
	case len(text) == 0:
		return reasonNone, true // nothing left to say
	case isExit(text):
		return c.exit(said)
	case text[0] == '/' || r.opts.filter != nil:
		return c.heardText(string(text), said)
	}
	return c.addSaid(msg, said)
}

// addSaid adds msg, a formatted chat line, to what the client said since
// the last hand-over: it counts as activity for the idle clock.
func (c *client) addSaid(msg []byte, said **lineQueue) (leaveReason, bool) {
	if *said == nil {
		*said = getQueue()
	}
	(*said).lines = append((*said).lines, msg)
	c.restartIdleClock()
	return reasonNone, true
}

// exit hands over what the client said before it left, and reports that
// it leaves.
func (c *client) exit(said **lineQueue) (leaveReason, bool) {
	if !c.flushSaid(said) {
		return reasonNone, false
	}
	return reasonExit, false
}

// flushSaid hands over what the client said so far, so that what it does
// next comes after it. It reports false if the room is closing.
func (c *client) flushSaid(said **lineQueue) bool {
	if *said == nil {
		return true
	}
	ok := c.handOver(*said)
	*said = nil
	return ok
}

// handOver gives the room a batch of lines to relay, and the batch with
// them. It reports false if the room is closing instead; the batch then
// goes back to the pool.
func (c *client) handOver(said *lineQueue) bool {
	return c.handOverLines(said, false)
}

// handOverLines is handOver, for /me lines if action is set.
func (c *client) handOverLines(said *lineQueue, action bool) bool {
	q := request{kind: askRelay, client: c, said: said, action: action}
	select {
	case c.room.requests <- q: // the room was waiting for it
		return true
	default:
	}
	c.mayWait()
	if !c.room.ask(q) {
		putQueue(said)
		return false
	}
	return true
}

// readFailed turns a read error into the reason the client leaves. If the
// room or a writer closed the connection, their reason stands.
func (c *client) readFailed(err error) (leaveReason, error) {
	c.mu.Lock()
	reason := c.reason
	c.mu.Unlock()
	if reason != reasonNone {
		return reason, nil
	}
	return reasonForReadError(err)
}
