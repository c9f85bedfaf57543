// Package chatroom runs a chat room that any number of clients join over
// any [net.Listener] or [net.Conn]: plain TCP, TLS, Unix sockets, or an
// adapter over WebSockets. Every line a client sends is relayed to every
// other client with a timestamp and the sender's name; "exit" leaves.
//
// One goroutine owns the room: who is in it, and the counters. Each
// connection has a reader, running in [Room.ServeConn], that frames, cleans
// and formats the client's lines and hands them to the room; the room
// queues each formatted line, built once and shared, on every other
// client's bounded outbox, and once nothing else is waiting it writes each
// outbox to its socket in one system call that cannot block, as an event
// loop does. What a socket will not take at once, and everything for a TLS
// or wrapped connection, goes to a writer goroutine that lives only while
// that client has something left to write. A client whose outbox fills, or
// whose write misses its deadline, is evicted: the room never waits for
// anybody.
package chatroom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by the room. They are sentinel values for errors.Is.
var (
	// ErrRoomClosed is returned by Serve, ServeConn and Broadcast once
	// Shutdown or Close has been called, and by ServeConn for a client that
	// was in the room when it closed.
	ErrRoomClosed = errors.New("chatroom: room closed")

	// ErrRoomFull is returned by ServeConn when the client limit is
	// reached; the client was told and disconnected.
	ErrRoomFull = errors.New("chatroom: room is full")

	// ErrIdleTimeout is returned by ServeConn for a client that completed no
	// line within the idle timeout (see [WithIdleTimeout]).
	ErrIdleTimeout = errors.New("chatroom: idle timeout")

	// ErrTooSlow is returned by ServeConn for a client that was evicted
	// because its outbox filled or a write to it missed the write timeout.
	ErrTooSlow = errors.New("chatroom: client too slow")
)

// Stats is a snapshot of a room's counters, taken by [Room.Stats].
type Stats struct {
	Clients  int    // clients in the room now
	Joined   uint64 // clients admitted since the room was made
	Left     uint64 // clients that left for any reason, evictions and shutdown included
	Refused  uint64 // clients turned away because the room was full
	Messages uint64 // chat lines relayed and Broadcast notices sent, each counted once
	Evicted  uint64 // clients cut off as too slow

	// Delivered counts lines written whole to clients: relayed messages,
	// notices and the server's replies alike, once per recipient.
	Delivered uint64
	// Dropped counts lines that were queued for a client but never
	// written, because it left, was evicted or was closed first.
	Dropped uint64
}

// A Room is a chat room. Create one with [NewRoom], then hand it listeners
// with [Room.Serve] or single connections with [Room.ServeConn]; all of them
// share one room. A Room is safe for concurrent use. A room that has served
// or broadcast runs a goroutine until [Room.Shutdown] or [Room.Close].
type Room struct {
	opts options

	// Precomputed replies that depend on options.
	lineTooLong  []byte
	lineRoomFull []byte

	readBuffers *sync.Pool // read buffers of bufferSize+2 bytes, lent to readers with unread input
	maxRelay    int        // the most lines a reader hands over in one relay

	// Requests to the room goroutine. Unbuffered: a reader waits until
	// the room takes its lines, which is what keeps a sender's lines in
	// order and a flooding sender from outrunning the room.
	joins  chan *client    // a client asks to join; answered on its admitted channel
	leaves chan departure  // a client's reader has stopped
	lines  chan relay      // lines to relay to everyone but their sender
	notes  chan []byte     // a Broadcast notice, formatted
	stats  chan chan Stats // a Stats request
	quit   chan struct{}   // closed when Shutdown or Close begins
	ran    chan struct{}   // closed when the room goroutine has returned

	// Counted by writers, which the room goroutine does not wait for.
	delivered atomic.Uint64
	dropped   atomic.Uint64

	mu        sync.Mutex
	started   bool                            // the room goroutine was started
	closing   bool                            // Shutdown or Close was called
	graceful  bool                            // ... and it was Shutdown
	listeners map[*onceCloseListener]struct{} // listeners in Serve
	conns     map[*client]struct{}            // every connection in ServeConn, admitted or not
	final     Stats                           // the counters the room goroutine left
	wg        sync.WaitGroup                  // the room goroutine and every ServeConn
}

// relay is a batch of lines from a client's reader to the room, which
// returns the batch's queue to the pool once it has relayed them.
type relay struct {
	from *client
	said *lineQueue // "<ts> <name> say: <text>\n" lines, in the order said
}

// departure tells the room that a client's reader has stopped.
type departure struct {
	c      *client
	reason leaveReason
}

// NewRoom returns a room configured by opts; see the With functions for
// each option and its default. It panics, naming the option, if an option's
// value is invalid. No goroutine starts until the room serves.
func NewRoom(opts ...Option) *Room {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return &Room{
		opts:         o,
		lineTooLong:  lineTooLong(o.bufferSize),
		lineRoomFull: lineRoomFull(o.maxClients),
		readBuffers:  newReadBuffers(o.bufferSize),
		maxRelay:     max(1, min(relayBatch, o.outboxSize/8)),
		joins:        make(chan *client),
		leaves:       make(chan departure),
		lines:        make(chan relay),
		notes:        make(chan []byte),
		stats:        make(chan chan Stats),
		quit:         make(chan struct{}),
		ran:          make(chan struct{}),
		listeners:    make(map[*onceCloseListener]struct{}),
		conns:        make(map[*client]struct{}),
	}
}

// Serve accepts connections on ln and serves each with [Room.ServeConn] in
// its own goroutine. It blocks until ln fails or the room closes, and may
// run on several listeners at once, all feeding the same room.
//
// A temporary Accept error is logged and retried after a pause that grows
// from 5ms to 1s. Serve always returns a non-nil error and closes ln: after
// Shutdown or Close it returns [ErrRoomClosed]; otherwise the Accept error
// that stopped it, wrapped.
func (r *Room) Serve(ln net.Listener) error {
	l := &onceCloseListener{Listener: ln}
	defer l.Close()
	if !r.trackListener(l, true) {
		return ErrRoomClosed
	}
	defer r.trackListener(l, false)

	var delay time.Duration // how long to wait after a temporary error
	for {
		conn, err := l.Accept()
		if err != nil {
			if r.isClosing() {
				return ErrRoomClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("chatroom: accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.opts.logger.Warn("accept failed; retrying", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.quit:
				t.Stop()
				return ErrRoomClosed
			}
			continue
		}
		delay = 0
		// Track, then spawn: Shutdown must not miss this connection.
		r.mu.Lock()
		if r.closing {
			r.mu.Unlock()
			conn.Close()
			return ErrRoomClosed
		}
		r.wg.Add(1)
		r.mu.Unlock()
		go r.serveAccepted(conn)
	}
}

// serveAccepted is the goroutine Serve starts for each connection.
func (r *Room) serveAccepted(conn net.Conn) {
	defer r.wg.Done()
	if err := r.ServeConn(conn); err != nil {
		r.logEnded(conn, err)
	}
}

// logEnded logs why a connection from Serve ended. It is not part of
// serveAccepted so that the logging call's frame is not on the stack of
// every parked reader.
func (r *Room) logEnded(conn net.Conn, err error) {
	r.opts.logger.Debug("connection ended", "client", conn.RemoteAddr().String(), "err", err)
}

// ServeConn serves one connection that the caller has already accepted (a
// TLS connection, a WebSocket adapter, one end of [net.Pipe]) and blocks
// until the client has left and its connection is closed. The room owns
// conn from the call on and always closes it.
//
// On Unix, a *net.TCPConn or *net.UnixConn is also used through its socket:
// the room waits for its input without holding a read buffer, and writes to
// it without blocking. Any other type, including one that embeds either of
// them, is read and written only through its own Read and Write.
//
// It returns nil when the client left on its own, by "exit" or by hanging
// up; [ErrRoomFull] if it was turned away; [ErrRoomClosed] if the room was
// closed before or while it was in it; [ErrIdleTimeout] or [ErrTooSlow]
// if the room cut it off; or the error that broke the connection, wrapped.
func (r *Room) ServeConn(conn net.Conn) error {
	c := newClient(r, conn)
	if !r.trackConn(c, true) {
		conn.Close()
		return ErrRoomClosed
	}
	defer r.wg.Done()
	defer r.trackConn(c, false)
	defer c.writers.Wait()

	if err := c.join(); err != nil {
		return err
	}
	reason, err := c.read()
	return c.leave(reason, err)
}

// Broadcast sends "<ts> * text" to every client in the room. The text is
// cleaned like a client's line; it is queued for every client before
// Broadcast returns, and reaches each of them in order with the other
// messages. It returns [ErrRoomClosed] once Shutdown or Close was called.
func (r *Room) Broadcast(text string) error {
	if !r.start() {
		return ErrRoomClosed
	}
	line := lineNotice(r.opts.now(), string(appendClean(nil, []byte(text), math.MaxInt)))
	select {
	case r.notes <- line:
		return nil
	case <-r.quit:
		return ErrRoomClosed
	}
}

// Stats returns a snapshot of the room's counters. Everything but Delivered
// and Dropped is read at one instant by the room goroutine, so for example
// Clients always equals Joined minus Left. Delivered and Dropped are counted
// by the writers as writes complete; once the room is quiet, or closed,
// every line queued is counted in one or the other.
func (r *Room) Stats() Stats {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if started {
		reply := make(chan Stats, 1)
		select {
		case r.stats <- reply:
			return <-reply
		case <-r.ran:
		}
	}
	r.mu.Lock()
	s := r.final
	r.mu.Unlock()
	s.Delivered, s.Dropped = r.delivered.Load(), r.dropped.Load()
	return s
}

// Shutdown closes the room gracefully: it closes every listener, so Serve
// returns ErrRoomClosed; tells every client "* server shutting down";
// waits until each has been written all that was queued for it, or its
// write timeout passed; closes the connections; and waits for every
// goroutine of the room to return.
//
// If ctx ends first, Shutdown closes whatever is left, as Close does,
// waits for the goroutines, and returns ctx.Err(). Either way, no goroutine
// of the room is running when it returns. Shutdown does not wait for
// clients that send nothing: their connections are simply closed.
func (r *Room) Shutdown(ctx context.Context) error {
	err := r.stop(true)
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		r.closeConns()
		<-done
		return ctx.Err()
	}
}

// Close closes the room at once: every listener and every connection,
// without a goodbye. It waits for every goroutine of the room to return
// and returns the first error from closing a listener, if any.
func (r *Room) Close() error {
	err := r.stop(false)
	r.closeConns()
	r.wg.Wait()
	return err
}

// start starts the room goroutine unless it runs already. It reports false
// if the room is closing.
func (r *Room) start() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	if !r.started {
		r.started = true
		r.wg.Add(1)
		go r.run()
	}
	return true
}

// stop marks the room closing, signals the room goroutine and closes the
// listeners. Only the first call signals.
func (r *Room) stop(graceful bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closing {
		r.closing, r.graceful = true, graceful
		close(r.quit)
		if !r.started {
			close(r.ran)
		}
	}
	var err error
	for l := range r.listeners {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// closeConns closes every connection the room holds, queued lines or not.
func (r *Room) closeConns() {
	r.mu.Lock()
	conns := make([]*client, 0, len(r.conns))
	for c := range r.conns {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	for _, c := range conns {
		c.shut(reasonClosed, nil)
	}
}

func (r *Room) isClosing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closing
}

// trackListener adds or removes a listener in Serve. Adding reports false
// if the room is closing.
func (r *Room) trackListener(l *onceCloseListener, add bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !add {
		delete(r.listeners, l)
		return true
	}
	if r.closing {
		return false
	}
	r.listeners[l] = struct{}{}
	return true
}

// trackConn adds or removes a connection in ServeConn and counts it on
// r.wg. Adding reports false if the room is closing, and starts the room
// goroutine otherwise.
func (r *Room) trackConn(c *client, add bool) bool {
	if !add {
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		return true
	}
	if !r.start() {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	return true
}

// run is the room goroutine, the Go form of the select() loop. It alone
// owns the member list and the counters in members; everything else
// reaches it through its channels. It never blocks on a client: outboxes
// take a line at once or report full, and its writes to sockets take what
// the kernel takes at once and leave the rest to a writer goroutine.
func (r *Room) run() {
	defer r.wg.Done()
	m := &members{room: r, out: newSocketWriter()}
	defer func() {
		r.mu.Lock()
		r.final = m.stats
		r.mu.Unlock()
		close(r.ran)
	}()
	yielded := false
	for {
		// Take everything that is already waiting before writing
		// anything, so that each client gets all of it in one write: the
		// room's version of an event loop's "before sleep" flush.
		select {
		case c := <-r.joins:
			m.join(c)
			continue
		case d := <-r.leaves:
			m.leave(d.c, d.reason)
			continue
		case rl := <-r.lines:
			m.relay(rl)
			continue
		case line := <-r.notes:
			m.notice(line)
			continue
		default:
		}
		if len(m.pending) > 0 && !yielded {
			// A reader the room just took lines from is runnable, and
			// has likely read more: let it hand them over first.
			yielded = true
			runtime.Gosched()
			continue
		}
		yielded = false
		m.flushAll()

		select {
		case c := <-r.joins:
			m.join(c)
		case d := <-r.leaves:
			m.leave(d.c, d.reason)
		case rl := <-r.lines:
			m.relay(rl)
		case line := <-r.notes:
			m.notice(line)
		case reply := <-r.stats:
			s := m.stats
			s.Delivered, s.Dropped = r.delivered.Load(), r.dropped.Load()
			reply <- s
		case <-r.quit:
			r.mu.Lock()
			graceful := r.graceful
			r.mu.Unlock()
			m.closeAll(graceful)
			return
		}
	}
}

// members is the room's state: who is in it, and the counters. Only the
// room goroutine touches it.
type members struct {
	room    *Room
	list    []*client // everyone in the room; a client's slot is its index
	stats   Stats
	slow    []*client     // clients whose outbox filled during a send, to evict after it
	pending []*client     // clients with lines queued since the last flushAll
	out     *socketWriter // the room's non-blocking writes (see client.flush)
}

// relay sends a client's lines to everyone else. The lines of a sender
// that was evicted while they were on their way are dropped.
func (m *members) relay(rl relay) {
	if m.has(rl.from) {
		m.stats.Messages += uint64(len(rl.said.lines))
		m.send(rl.said.lines, rl.from)
	}
	putQueue(rl.said)
}

// notice sends a Broadcast notice to everyone.
func (m *members) notice(line []byte) {
	m.stats.Messages++
	m.sendLine(line, nil)
}

// flushAll writes, or has written, what every client was queued since the
// last call.
func (m *members) flushAll() {
	for i, c := range m.pending {
		c.pending = false
		c.flush(m.out)
		m.pending[i] = nil
	}
	m.pending = m.pending[:0]
}

func (m *members) has(c *client) bool {
	return c.slot >= 0 && c.slot < len(m.list) && m.list[c.slot] == c
}

// join admits c, or refuses it if the room is full.
func (m *members) join(c *client) {
	r := m.room
	if max := r.opts.maxClients; max > 0 && len(m.list) >= max {
		m.stats.Refused++
		c.admitted <- false
		r.opts.logger.Info("refused: room full", "client", c.name, "max_clients", max)
		return
	}
	c.slot = len(m.list)
	m.list = append(m.list, c)
	m.stats.Joined++
	m.stats.Clients = len(m.list)
	c.admitted <- true
	m.queue(c, [][]byte{lineWelcome(c.name, len(m.list))})
	r.opts.logger.Info("joined", "client", c.name, "online", len(m.list))
	m.sendLine(lineNotice(r.opts.now(), c.name+" joined"), c)
}

// leave takes c out of the room for reason, gives it its last line if it
// has one, and tells the others. A client that is no longer a member (it
// was evicted while its reader was still stopping) is ignored.
func (m *members) leave(c *client, reason leaveReason) {
	if !m.has(c) {
		return
	}
	m.remove(c, reason)
	switch reason {
	case reasonExit:
		c.enqueueFinal(lineBye, reason)
	case reasonIdle:
		c.enqueueFinal(lineIdle, reason)
	case reasonDisconnect:
		// The client hung up, or at least closed its half: what it was
		// owed (an error reply to its last line, say) still goes out.
		c.enqueueFinal(nil, reason)
	default:
		c.shut(reason, nil)
	}
	left := " left"
	if reason == reasonSlow {
		left = " left (too slow)"
	}
	m.sendLine(lineNotice(m.room.opts.now(), c.name+left), nil)
}

// remove takes c out of the member list and counts why.
func (m *members) remove(c *client, reason leaveReason) {
	last := len(m.list) - 1
	m.list[c.slot] = m.list[last]
	m.list[c.slot].slot = c.slot
	m.list[last] = nil
	m.list = m.list[:last]
	c.slot = -1
	m.stats.Left++
	m.stats.Clients = len(m.list)
	log := m.room.opts.logger
	if reason == reasonSlow {
		m.stats.Evicted++
		log.Warn("evicted", "client", c.name, "reason", reason.String())
	} else {
		log.Info("left", "client", c.name, "reason", reason.String())
	}
}

// Batch sizes, in lines, measured with chatbench's fan-out (1 000 clients,
// 4 senders): writes of a few dozen lines each cost the room twice the CPU
// per delivery of writes of a hundred or more.
const (
	// relayBatch is the most lines a reader hands the room at once (at
	// most an eighth of the outbox, so one relay cannot fill a healthy
	// client's outbox by itself).
	relayBatch = 64
	// flushBatch is how many queued lines make a batch worth writing at
	// once, without waiting for the room to run out of work: beyond it,
	// bigger batches save little, and waiting longer only risks the
	// outbox.
	flushBatch = 256
)

// sendLine sends one line to every member but except (which may be nil).
func (m *members) sendLine(line []byte, except *client) {
	m.send([][]byte{line}, except)
}

// send queues lines for every member but except (which may be nil), then
// evicts whoever could not take them. Evictions are announced with send in
// turn, which may evict more.
//
// If an outbox is more than half full, send also yields the processor
// before it returns. That client's writer goroutine is at work (its socket
// is full), and readers hand lines to the room faster than writers can be
// scheduled, so on a busy machine the room could fill a healthy client's
// outbox before its writer ran again. Yielding lets the writers catch up; a
// client that really stopped reading fills its outbox all the same and is
// evicted, and nobody ever waits for it.
func (m *members) send(lines [][]byte, except *client) {
	busy := false
	for _, c := range m.list {
		if c != except && m.queue(c, lines) > m.room.opts.outboxSize/2 {
			busy = true
		}
	}
	for len(m.slow) > 0 {
		c := m.slow[len(m.slow)-1]
		m.slow = m.slow[:len(m.slow)-1]
		if m.has(c) {
			m.leave(c, reasonSlow)
		}
	}
	if busy {
		runtime.Gosched()
	}
}

// queue queues lines for c, to be written by the next flushAll, or at once
// if c's queue has reached flushBatch lines or half its outbox. It returns
// how many lines c has waiting; a client that could not take them all is
// put on the list to evict.
func (m *members) queue(c *client, lines [][]byte) int {
	n := c.enqueue(lines, false)
	switch {
	case n < 0:
		m.slow = append(m.slow, c)
	case n > m.room.opts.outboxSize/2,
		n >= flushBatch && n-len(lines) < flushBatch: // a batch worth a write already
		c.flush(m.out)
	case n > 0 && !c.pending:
		c.pending = true
		m.pending = append(m.pending, c)
	}
	return n
}

// closeAll ends the room for every member: on Shutdown each gets a last
// line, written before its connection closes; on Close the connections are
// closed by Close itself.
func (m *members) closeAll(graceful bool) {
	for len(m.list) > 0 {
		c := m.list[len(m.list)-1]
		if graceful {
			m.remove(c, reasonShutdown)
			c.enqueueFinal(lineShutdown, reasonShutdown)
		} else {
			m.remove(c, reasonClosed)
			c.shut(reasonClosed, nil)
		}
	}
}

// onceCloseListener wraps a listener so that Serve's deferred Close and
// Shutdown's Close do not both close it.
type onceCloseListener struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *onceCloseListener) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// isTemporary reports whether an Accept error is worth retrying, the same
// test net/http makes.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}
