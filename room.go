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
	"log/slog"
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

	// ErrKicked is returned by ServeConn for a client removed by
	// [Room.Kick].
	ErrKicked = errors.New("chatroom: client kicked")

	// ErrNameTaken is returned by ServeConn for a client turned away because
	// its name (its address, or what the auth hook named it) is someone
	// else's in the room, ignoring case.
	ErrNameTaken = errors.New("chatroom: name taken")

	// ErrNoSuchClient is returned by [Room.Kick] for a name that nobody in
	// the room has.
	ErrNoSuchClient = errors.New("chatroom: no such client")

	// ErrTooManyFromHost is returned by ServeConn for a client turned away
	// because its address has too many connections open ([WithMaxPerHost])
	// or opens them too fast ([WithJoinRate]); the client was told and
	// disconnected.
	ErrTooManyFromHost = errors.New("chatroom: too many connections from one address")
)

// maxAdmitting is how many connections may wait to be admitted or refused
// at once: accepted by Serve (or handed to ServeConn), and not yet in the
// room or turned away, TLS handshakes and auth hooks included (each bounded
// by the write timeout). Serve accepts no more
// while that many wait, leaving the rest in the kernel's backlog, and
// ServeConn waits for a place; so a flood of connections holds a bounded
// number of descriptors and goroutines in front of the room.
const maxAdmitting = 256

// Stats is a snapshot of a room's counters, taken by [Room.Stats].
type Stats struct {
	Clients  int    // clients in the room now (with a bus, this room's own)
	Joined   uint64 // clients admitted since the room was made
	Left     uint64 // clients that left for any reason, evictions and shutdown included
	Refused  uint64 // clients turned away: the room was full, their name taken, their address over its limits, or the auth hook said no
	Messages uint64 // chat lines relayed and Broadcast notices sent, each counted once
	Evicted  uint64 // clients cut off as too slow

	// Admitting is how many connections wait to be admitted or refused
	// now, at most 256 (see [Room.Serve]).
	Admitting int

	// EventsDropped counts events the room dropped because the observer
	// of [WithEvents] fell 10 000 behind.
	EventsDropped uint64

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

	// Replies that depend on options, built once.
	lineTooLong  []byte
	lineRoomFull []byte

	logs *logSink     // takes the room's log records to the user's handler without ever waiting (logs.go)
	poll *poller      // waits for the input of idle clients from Serve (poller_linux.go); nil until the first one, or off Linux
	log  *slog.Logger // the room's logger, through logs

	handshakeFailures *burstLog  // failed TLS handshakes, logged at info and summarised in bursts
	events            *eventSink // the observer's goroutine and backlog (events.go); nil without WithEvents

	hosts        *hosts        // connections per address (hosts.go)
	admitting    chan struct{} // a place for each connection waiting to be admitted; at most maxAdmitting
	reserved     atomic.Int32  // places Serve holds for the connection it is waiting to accept
	refusedEarly atomic.Uint64 // clients refused before they asked the room: by their address, or by the auth hook
	hostRefusals *burstLog     // refusals by address, logged at info and summarised in bursts

	readBuffers *bufferPool // read buffers of bufferSize+2 bytes, lent to readers while they read (framing.go)
	maxRelay    int         // the most lines a reader hands over in one request

	// requests carries every request to the room goroutine. Unbuffered: a
	// reader waits until the room takes its lines, which is what keeps a
	// sender's lines in order and a flooding sender from outrunning the
	// room.
	requests chan request
	ctx      context.Context    // ends when Shutdown or Close begins
	cancel   context.CancelFunc // ends ctx; called once, by stop
	ran      chan struct{}      // closed by the room goroutine as it returns
	opened   chan struct{}      // closed by the room goroutine once its bus is open, or failed to open (at once without a bus)
	openErr  error              // why the bus did not open, wrapped; written before opened is closed

	// Lines written whole and lines discarded, counted where that happens
	// (outbox.go), by the room goroutine or a writer goroutine: the room
	// never waits for writers to report.
	delivered atomic.Uint64
	dropped   atomic.Uint64

	mu        sync.Mutex
	started   bool                            // the room goroutine was started
	pollTried bool                            // startPoller was called: poll is set, or there is none
	closing   bool                            // Shutdown or Close was called
	graceful  bool                            // ... and it was Shutdown
	listeners map[*onceCloseListener]struct{} // listeners in Serve
	conns     map[*client]struct{}            // every connection in ServeConn, admitted or not
	final     Stats                           // the counters the room goroutine left
	wg        sync.WaitGroup                  // the room goroutine, every ServeConn, every goroutine Serve starts
}

// NewRoom returns a room configured by opts; see the With functions for
// each option and its default. It panics, naming the option, if an option's
// value is invalid. No goroutine starts until the room serves.
func NewRoom(opts ...Option) *Room {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogSink(o.logger.Handler())
	log := logs.logger()
	var events *eventSink
	if o.events != nil {
		events = newEventSink(o.events, &burstLog{log: log,
			msg: "events dropped: the observer fell behind", summary: "events dropped"})
	}
	return &Room{
		events: events,
		opts:   o,
		logs:   logs,
		log:    log,
		handshakeFailures: &burstLog{log: log,
			msg: "TLS handshake failed", summary: "TLS handshakes failed"},
		hosts:     newHosts(o),
		admitting: make(chan struct{}, maxAdmitting),
		hostRefusals: &burstLog{log: log,
			msg: "refused: too many connections from one address", summary: "refused: too many connections from some addresses"},
		lineTooLong:  lineTooLong(o.bufferSize),
		lineRoomFull: lineRoomFull(o.maxClients),
		readBuffers:  newBufferPool(o.bufferSize),
		maxRelay:     max(1, min(relayBatch, o.outboxSize/8)),
		requests:     make(chan request),
		ctx:          ctx,
		cancel:       cancel,
		ran:          make(chan struct{}),
		opened:       make(chan struct{}),
		listeners:    make(map[*onceCloseListener]struct{}),
		conns:        make(map[*client]struct{}),
	}
}

// Serve accepts connections on ln and serves each with [Room.ServeConn] in
// its own goroutine. It blocks until ln fails or the room closes, and may
// run on several listeners at once, all feeding the same room.
//
// A temporary Accept error is logged and retried after a pause that grows
// from 5ms to 1s. While 256 accepted connections wait to be admitted or
// refused (TLS handshakes, per-address checks, the room's answer), Serve
// accepts no more: the rest wait in the kernel's backlog. Serve always
// returns a non-nil error and closes ln: after Shutdown or Close it returns
// [ErrRoomClosed]; otherwise the Accept error that stopped it, wrapped.
//
// On Linux, a client Serve accepted on a *net.TCPConn or *net.UnixConn
// costs no goroutine while it is quiet: once it is in, the room's poller
// (one goroutine over epoll) waits for its input, and a goroutine runs for
// it only while it has input to deal with. Other connections, and those
// handed to ServeConn, have a goroutine each for as long as they stay.
func (r *Room) Serve(ln net.Listener) error {
	l := &onceCloseListener{Listener: ln}
	defer l.Close()
	if err := r.start(); err != nil {
		return err
	}
	if !r.trackListener(l) {
		return ErrRoomClosed
	}
	defer r.untrackListener(l)

	var delay time.Duration // how long to wait after a temporary error
	for {
		if !r.waitAdmitting() {
			return ErrRoomClosed
		}
		r.reserved.Add(1) // the place is for the connection Accept returns
		conn, err := l.Accept()
		r.reserved.Add(-1)
		if err != nil {
			<-r.admitting
			if r.isClosing() {
				return ErrRoomClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("chatroom: accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.Warn("accept failed; retrying", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				return ErrRoomClosed
			}
			continue
		}
		delay = 0
		if !r.spawn(func() { r.serveAccepted(conn) }) {
			<-r.admitting
			conn.Close()
			return ErrRoomClosed
		}
	}
}

// serveAccepted serves a connection from Serve, which took its place in
// r.admitting.
func (r *Room) serveAccepted(conn net.Conn) {
	if err := r.serve(conn, true); err != nil {
		r.logEnded(conn, err)
	}
}

// waitAdmitting takes a place in r.admitting, waiting while every place is
// taken. It reports false if the room closes first.
func (r *Room) waitAdmitting() bool {
	select {
	case r.admitting <- struct{}{}:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// logEnded logs why a connection from Serve ended. It is not part of
// serveAccepted so that the logging call's frame is not on the stack of
// every parked reader.
func (r *Room) logEnded(conn net.Conn, err error) {
	r.log.Debug("connection ended", "client", conn.RemoteAddr().String(), "err", err)
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
// While 256 connections wait to be admitted (see [Room.Serve]), ServeConn
// waits for one of them to get in or be refused before it starts on conn.
//
// It returns nil when the client left on its own, by "exit", "/quit" or
// by hanging up; [ErrRoomFull], [ErrTooManyFromHost] or [ErrNameTaken] if
// it was turned away, or the auth hook's error (or context.DeadlineExceeded
// for a hook that did not answer in time), wrapped; [ErrRoomClosed] if the
// room was closed before or while it was in it; [ErrIdleTimeout],
// [ErrTooSlow] or [ErrKicked] if the room cut it off; or the error that
// broke the connection (a filter's panic included), wrapped.
func (r *Room) ServeConn(conn net.Conn) error {
	return r.serve(conn, false)
}

// serve is ServeConn, and Serve's for each connection it accepts
// (accepted): such a connection already holds a place in r.admitting, and
// once the client is in, the room's poller, if it has one, reads a plain
// socket in turns and serve returns at once: an idle client then costs no
// goroutine. ServeConn's contract is to block until the client leaves, so
// its clients are read here, by their own goroutine.
func (r *Room) serve(conn net.Conn, accepted bool) error {
	c := newClient(r, conn)
	c.admitting = accepted
	if err := r.trackConn(c); err != nil {
		c.doneAdmitting()
		conn.Close()
		return err
	}
	if err := c.join(); err != nil {
		r.untrackConn(c)
		return err
	}
	if accepted && c.raw != nil && r.startPoller() && c.readPolled() {
		return nil // the poller's now; its last turn logs how it ended and untracks it
	}
	reason, err := c.read()
	err = c.leave(reason, err)
	r.untrackConn(c)
	return err
}

// Broadcast sends "<ts> * text" to every client in the room. The text is
// cleaned like a client's line; it is queued for every client before
// Broadcast returns, and reaches each of them in order with the other
// messages. It returns [ErrRoomClosed] once Shutdown or Close was called.
func (r *Room) Broadcast(text string) error {
	if err := r.start(); err != nil {
		return err
	}
	line := lineNotice(r.opts.now(), string(appendClean(nil, []byte(text), math.MaxInt)))
	if !r.ask(request{kind: askNotice, line: line}) {
		return ErrRoomClosed
	}
	return nil
}

// Clients returns everyone in the room now, sorted by name ignoring case:
// a snapshot taken by the room goroutine. With a bus ([WithBus]) it lists
// the peers' clients too, each with its Peer. It returns nil for a room that
// has not served yet or has closed.
func (r *Room) Clients() []ClientInfo {
	reply := make(chan []ClientInfo, 1)
	if !r.query(request{kind: askClients, clients: reply}) {
		return nil
	}
	return <-reply
}

// Kick removes the client named name (ignoring case) from the room: it is
// sent "* kicked: <reason>" ("* kicked" for an empty reason), which is
// written before its connection closes, and the others see "<ts> * <name>
// left (kicked: <reason>)". The reason is cleaned like a chat line. Kick
// returns [ErrNoSuchClient] if nobody has that name, and [ErrRoomClosed]
// once the room has closed. With a bus ([WithBus]), a client of a peer is
// kicked by its own room, which the bus asks to: Kick returns once the
// request is on its way.
func (r *Room) Kick(name, reason string) error {
	done := make(chan error, 1)
	if !r.query(request{kind: askKick, name: name, text: cleanString(reason), done: done}) {
		if r.isClosing() {
			return ErrRoomClosed
		}
		return ErrNoSuchClient // it has not served yet: nobody is in it
	}
	return <-done
}

// query hands q to the room goroutine and reports whether it took it:
// false if the room has not served yet (nobody is in it; query does not
// start it) or has closed.
func (r *Room) query(q request) bool {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if !started {
		return false
	}
	select {
	case r.requests <- q:
		return true
	case <-r.ran:
		return false
	}
}

// Stats returns a snapshot of the room's counters. Clients, Joined, Left,
// Messages and Evicted are read at one instant by the room goroutine, so
// for example Clients always equals Joined minus Left. Delivered and
// Dropped are counted by the writers as writes complete; once the room is
// quiet, or closed, every line queued is counted in one or the other.
// Refusals by address, and Admitting, are counted as they happen.
func (r *Room) Stats() Stats {
	reply := make(chan Stats, 1)
	if r.query(request{kind: askStats, stats: reply}) {
		return <-reply
	}
	r.mu.Lock()
	s := r.final
	r.mu.Unlock()
	return r.completeStats(s)
}

// completeStats adds to the room goroutine's counters those counted
// elsewhere.
func (r *Room) completeStats(s Stats) Stats {
	s.Delivered, s.Dropped = r.delivered.Load(), r.dropped.Load()
	s.Refused += r.refusedEarly.Load()
	s.Admitting = max(0, len(r.admitting)-int(r.reserved.Load()))
	if r.events != nil {
		s.EventsDropped = r.events.dropped.Load()
	}
	return s
}

// Shutdown closes the room gracefully: it closes every listener, so Serve
// returns ErrRoomClosed; tells every client "* server shutting down";
// waits until each has been written all that was queued for it, or its
// write timeout passed; closes the connections; and waits for every
// goroutine of the room to return, the one that hands log records to the
// logger's handler last (so Shutdown waits for a handler that blocks).
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
	case <-ctx.Done():
		r.closeConns()
		<-done
		err = ctx.Err()
	}
	r.closeRest()
	return err
}

// Close closes the room at once: every listener and every connection,
// without a goodbye. It waits for every goroutine of the room to return
// (as Shutdown does) and returns the first error from closing a listener,
// if any.
func (r *Room) Close() error {
	err := r.stop(false)
	r.closeConns()
	r.wg.Wait()
	r.closeRest()
	return err
}

// closeRest releases what the room keeps until every other goroutine of
// it has returned: the poller's descriptors, then its logging (its burst
// summaries, then the log goroutine).
func (r *Room) closeRest() {
	r.mu.Lock()
	poll := r.poll
	r.mu.Unlock()
	if poll != nil {
		poll.close()
	}
	r.handshakeFailures.close()
	r.hostRefusals.close()
	if r.events != nil {
		r.events.burst.close()
	}
	r.logs.close()
}

// start starts the room goroutine unless it runs already, and waits until
// the room's bus, if any, is open. It returns ErrRoomClosed if the room is
// closing, or the error that kept the bus from opening.
func (r *Room) start() error {
	r.mu.Lock()
	if r.closing {
		started := r.started
		r.mu.Unlock()
		if started {
			<-r.opened
		}
		if r.openErr != nil {
			return r.openErr
		}
		return ErrRoomClosed
	}
	if !r.started {
		r.started = true
		r.logs.start()
		r.wg.Go(r.run)
		if r.events != nil {
			r.wg.Go(func() { r.events.deliver(r.log.Error) })
		}
	}
	r.mu.Unlock()
	<-r.opened
	return r.openErr
}

// startPoller starts the room's poller, with the first client from Serve
// on a plain socket, and reports whether the room has one.
func (r *Room) startPoller() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.pollTried {
		r.pollTried = true
		if r.poll = newPoller(r); r.poll != nil {
			r.wg.Go(r.poll.run)
		}
	}
	return r.poll != nil
}

// spawn runs f in a goroutine of the room, counted on r.wg, unless the
// room is closing; it reports whether it did. Counting before the goroutine
// starts is what keeps Shutdown from missing it.
func (r *Room) spawn(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.wg.Go(f)
	return true
}

// stop marks the room closing, ends r.ctx, which tells the room goroutine
// and every reader, and closes the listeners. Only the first call ends
// r.ctx.
func (r *Room) stop(graceful bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closing {
		r.closing, r.graceful = true, graceful
		r.cancel()
		if r.poll != nil {
			r.poll.wake() // its loop sees r.ctx end
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

func (r *Room) isGraceful() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.graceful
}

// trackListener adds a listener in Serve; it reports false if the room is
// closing. untrackListener removes it.
func (r *Room) trackListener(l *onceCloseListener) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.listeners[l] = struct{}{}
	return true
}

func (r *Room) untrackListener(l *onceCloseListener) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.listeners, l)
}

// trackConn adds a connection in ServeConn, so that Close and Shutdown can
// reach it, and counts it on r.wg; it starts the room goroutine if need be.
// It returns start's error, or ErrRoomClosed if the room is closing. Every
// nil is matched by one untrackConn.
func (r *Room) trackConn(c *client) error {
	if err := r.start(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return ErrRoomClosed
	}
	r.conns[c] = struct{}{}
	r.wg.Add(1)
	return nil
}

// untrackConn waits until no writer goroutine of c runs (its connection is
// closed by then: join or leave closed it), closes its account with its
// address, then forgets c and counts it done on r.wg.
func (r *Room) untrackConn(c *client) {
	c.writers.Wait()
	if c.counted {
		r.hosts.close(c.host)
	}
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	r.wg.Done()
}

// A request is what a goroutine outside the room asks of the room
// goroutine, which takes requests one at a time, in the order they arrive.
// Where an answer is due, it goes on a buffered channel, so the room never
// waits for whoever asked.
type request struct {
	kind    requestKind
	client  *client             // the client asking (askJoin, askLeave, askRelay, askNick, askWho, askWhisper)
	reason  leaveReason         // askLeave: why it leaves
	said    *lineQueue          // askRelay: formatted lines, in order; the room returns the queue to the pool
	action  bool                // askRelay: the lines are /me lines
	line    []byte              // askNotice: the Broadcast line; askWhisper: the whisper, formatted
	name    string              // askNick: the new name; askWhisper, askKick: whose
	text    string              // askWhisper: the whisper's text; askKick: the reason
	stats   chan<- Stats        // askStats: the answer
	clients chan<- []ClientInfo // askClients: the answer
	done    chan<- error        // askKick: the answer
	peer    *BusMessage         // askPeer: what a peer's client did
}

type requestKind uint8

const (
	askJoin    requestKind = iota + 1 // a client asks to join; answered on its answer channel
	askLeave                          // a client's reader has stopped
	askRelay                          // lines to relay to everyone but their sender
	askNotice                         // a Broadcast notice for everyone
	askNick                           // a client asks for a new name; answered on its answer channel
	askWho                            // a client's /who; answered on its answer channel once queued
	askWhisper                        // a client's /msg; answered on its answer channel once queued
	askStats                          // Room.Stats
	askClients                        // Room.Clients
	askKick                           // Room.Kick
	askPeer                           // what a peer's client did, from the bus (bus.go)
)

// answer is the room's answer to a client's join, /nick, /who or /msg.
type answer uint8

const (
	answerYes   answer = iota // admitted, or renamed
	answerNo                  // not a member any more
	answerFull                // the room is full
	answerTaken               // the name is someone else's
)

// ask hands q to the room goroutine, waiting until it takes it. It reports
// false instead once the room is closing; the room then ends every client
// itself.
func (r *Room) ask(q request) bool {
	select {
	case r.requests <- q:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// run is the room goroutine, the Go form of the select() loop. It alone
// owns the member list and the counters (members.go); everything else
// reaches it as a request. It never blocks on a client: outboxes take a
// line at once or report full, and its writes to sockets take what the
// kernel takes at once and leave the rest to a writer goroutine.
func (r *Room) run() {
	m := newMembers(r)
	defer func() {
		r.mu.Lock()
		r.final = m.stats
		r.mu.Unlock()
		if r.events != nil {
			close(r.events.events) // the events goroutine delivers the rest, then returns
		}
		close(r.ran)
	}()
	if !r.openBus(m) {
		return
	}
	yields := 0      // times run has yielded since its last flush
	fruitful := true // ... and the last yield brought a request
	taken := 0       // requests handled since the last flush
	for {
		// Take every request that is already waiting before writing
		// anything, so that each client gets all of it in one write: the
		// room's version of an event loop's flush before it sleeps; but
		// no more than maxTaken.
		if taken < maxTaken {
			select {
			case q := <-r.requests:
				m.handle(q)
				taken++
				fruitful = true
				continue
			default:
			}
			if len(m.dirty) > 0 && fruitful && yields < maxYields {
				yields++
				fruitful = false
				yield() // a reader the room just took lines from may have more
				continue
			}
		}
		yields, fruitful, taken = 0, true, 0
		m.flushAll()

		select {
		case q := <-r.requests:
			m.handle(q)
		case <-r.ctx.Done():
			m.closeAll(r.isGraceful())
			r.closeBus()
			return
		}
	}
}

// yield lets the goroutines that are ready to run go first. The room and
// its writers yield in three places, and only there, for one rule: a write
// system call costs nearly as much for one line as for a hundred, so a
// batch is written once those who would add to it have had their turn.
//
//   - The room goroutine, before it flushes (run): a reader it just took
//     lines from has likely read more; and again while each yield brings
//     it a request, up to maxYields times.
//   - The room goroutine, once an outbox is more than half full
//     (members.send): that client's writer goroutine is at work, and on a
//     busy machine readers can feed the room faster than writers get
//     scheduled, filling a healthy client's outbox.
//   - A new writer goroutine, before it takes its batch (client.writer):
//     readers with lines for the room go first, so the batch is bigger.
func yield() { runtime.Gosched() }

// maxYields bounds the room goroutine's yields before one flush: it yields
// again only while each yield brought it a request, and at most this many
// times, so that a steady stream of requests delays nobody's lines by more
// than a few of the readers' turns.
const maxYields = 16

// maxTaken bounds the requests the room goroutine takes before one flush,
// however many more are waiting: a room that never runs out of requests
// (a storm of joins and leaves on a busy machine) still writes, at least
// every maxTaken requests, what waits for a flush, a newcomer's welcome
// among it. Batches stay big: an outbox is written at once from
// flushBatch lines anyway.
const maxTaken = 256

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
