// Package chatroom runs chat rooms that any number of clients join over
// any [net.Listener] or [net.Conn]: plain TCP, TLS, Unix sockets, or an
// adapter over WebSockets. Every line a client sends is relayed to the
// other clients in its room with a timestamp and the sender's name; "exit"
// leaves.
//
// A program that wants one room makes it with [NewRoom]; one that wants
// many makes a [Hub], whose clients move between rooms with /join. Either
// way one goroutine, the hub's, owns everything shared: every room, who is
// in each, every name, the counters. Each client has a reader: the
// goroutine of [Room.ServeConn], or, for a plain socket from Serve on
// Linux, turns of the hub's poller, which waits for the input of every
// quiet client in one epoll loop, so an idle client costs no goroutine.
// The reader frames, cleans and formats the client's lines and hands them
// to the hub; the hub queues each line, formatted once for every client
// that speaks the same protocol, on every recipient's bounded outbox, and
// once nothing else is waiting it writes each outbox to its socket in one
// system call that cannot block, as an event loop does. What a socket will
// not take at once, and everything for a TLS or wrapped connection, goes to
// a writer goroutine that lives only while that client has something left
// to write. A client whose outbox fills, or whose write misses its
// deadline, is evicted: the hub never waits for anybody.
//
// Clients speak the text protocol of docs/protocol.md, or another
// protocol, a [Face], such as the structured protocol for browsers of
// package web or IRC (package irc); all of them meet in the same rooms.
package chatroom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by hubs, rooms and clients. They are sentinel values for
// errors.Is.
var (
	// ErrRoomClosed is returned by Serve, ServeConn and Broadcast once
	// Shutdown or Close has been called, and by ServeConn for a client that
	// was in the hub when it closed.
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
	// [Room.Kick] or [Hub.Kick].
	ErrKicked = errors.New("chatroom: client kicked")

	// ErrNameTaken is returned by ServeConn for a client turned away because
	// its name (its address, or what the auth hook named it) is someone
	// else's in the hub, ignoring case; and by [Client.Register] and
	// [Client.Nick] for a name someone else has.
	ErrNameTaken = errors.New("chatroom: name taken")

	// ErrNoSuchClient is returned by [Room.Kick] for a name that nobody in
	// the room has, and by the Client methods that name another client.
	ErrNoSuchClient = errors.New("chatroom: no such client")

	// ErrTooManyFromHost is returned by ServeConn for a client turned away
	// because its address has too many connections open ([WithMaxPerHost])
	// or opens them too fast ([WithJoinRate]); the client was told and
	// disconnected.
	ErrTooManyFromHost = errors.New("chatroom: too many connections from one address")

	// ErrInvalidName is returned for a name that is not 1 to 32 ASCII
	// letters, digits and _-.[] (a client's), or 1 to 32 ASCII letters,
	// digits and _-. (a room's).
	ErrInvalidName = errors.New("chatroom: invalid name")

	// ErrTooManyRooms is returned when opening a room would pass the
	// hub's limit ([WithMaxRooms]).
	ErrTooManyRooms = errors.New("chatroom: too many rooms")

	// ErrNotInRoom is returned by the Client methods that act in a room
	// the client is not in, and by [Room.Kick] for a client in another room.
	ErrNotInRoom = errors.New("chatroom: not in that room")

	// ErrAlreadyInRoom is returned by [Client.Join] for a room the client
	// is in.
	ErrAlreadyInRoom = errors.New("chatroom: already in that room")

	// ErrNoSuchRoom is returned for a room that is not open.
	ErrNoSuchRoom = errors.New("chatroom: no such room")

	// ErrRejected is returned by the Client methods that say something
	// the filter ([WithFilter]) rejected.
	ErrRejected = errors.New("chatroom: message rejected")

	// ErrNotAllowed is returned for what the client may not do: a /nick
	// under an auth hook (names are set by the server), a kick by a client
	// the auth hook did not make an operator.
	ErrNotAllowed = errors.New("chatroom: not allowed")

	// ErrNotRegistered is returned by the Client methods that need a
	// registered client ([Client.Register]).
	ErrNotRegistered = errors.New("chatroom: not registered")

	// ErrHubRoom is returned by Shutdown and Close of a room that belongs
	// to a [Hub]: its hub closes it.
	ErrHubRoom = errors.New("chatroom: a hub's room closes with its hub")

	// ErrUnknownMode is returned by [Client.SetMode] for a mode the hub
	// does not know.
	ErrUnknownMode = errors.New("chatroom: unknown mode")

	// ErrReadsAsNotice is returned by [Client.Act] for an action that would
	// read as one of the hub's notices ("/me left"): a client cannot make
	// itself seem to leave, or to be someone else.
	ErrReadsAsNotice = errors.New("chatroom: an action cannot read as a notice")

	// ErrSlowDown is returned for what a client does faster than the hub
	// allows (renames: see [Client.Nick]).
	ErrSlowDown = errors.New("chatroom: too fast, wait a moment")
)

// maxAdmitting is how many connections may wait to be admitted or refused
// at once: accepted by Serve (or handed to ServeConn), and not yet in the
// hub or turned away, TLS handshakes, auth hooks and a face's
// registration included (each bounded by the write timeout); a connection
// from Serve that the poller reads keeps its place until its first turn is
// over too, so that one that hangs up at once leaves the hub in its place
// (see Hub.serve). Serve accepts no more while that many wait, leaving the
// rest in the kernel's backlog, and ServeConn waits for a place; so a
// flood of connections holds a bounded number of descriptors and
// goroutines in front of the hub.
const maxAdmitting = 256

// Stats is a snapshot of a hub's or a room's counters, taken by
// [Hub.Stats] or [Room.Stats].
type Stats struct {
	Clients  int    // clients in the room (the hub) now; with a bus, this process's own
	Joined   uint64 // clients that entered the room (were admitted to the hub)
	Left     uint64 // clients that left it for any reason, evictions and shutdown included
	Refused  uint64 // clients turned away: the hub was full, their name taken, their address over its limits, or the auth hook said no
	Messages uint64 // chat lines relayed and Broadcast notices sent, each counted once
	Evicted  uint64 // clients cut off as too slow

	// Rooms is how many rooms are open (hub-wide).
	Rooms int

	// Peak is the most clients the hub has had at once since it started
	// (hub-wide; with a bus, this process's own).
	Peak int
	// Invisible is how many clients in the hub are invisible now
	// ([Client.SetInvisible]; hub-wide, this process's own).
	Invisible int

	// Admitting is how many connections wait to be admitted or refused
	// now, at most 256 (see [Hub.Serve]).
	Admitting int

	// EventsDropped counts events the hub dropped because the observer
	// of [WithEvents] fell 10 000 behind.
	EventsDropped uint64

	// Delivered counts lines written whole to clients: relayed messages,
	// notices and the server's replies alike, once per recipient
	// (hub-wide).
	Delivered uint64
	// Dropped counts lines that were queued for a client but never
	// written, because it left, was evicted or was closed first
	// (hub-wide).
	Dropped uint64
}

// A Hub serves many rooms to clients over any number of listeners: a
// client lands in the default room ([WithDefaultRoom]) and moves with
// /join. Create one with [NewHub]; it is safe for concurrent use. A hub
// that has served runs a goroutine until [Hub.Shutdown] or [Hub.Close].
type Hub struct {
	opts options

	logs *logSink     // takes the hub's log records to the user's handler without ever waiting (logs.go)
	poll *poller      // waits for the input of idle clients from Serve (poller_linux.go); nil until the first one, or off Linux
	log  *slog.Logger // the hub's logger, through logs

	handshakeFailures *burstLog  // failed TLS handshakes, logged at info and summarised in bursts
	events            *eventSink // the observer's goroutine and backlog (events.go); nil without WithEvents

	hosts        *hosts        // connections per address (hosts.go)
	inbox        peerInbox     // what the bus delivered, for the hub goroutine to take at once (bus.go)
	admitting    chan struct{} // a place for each connection waiting to be admitted; at most maxAdmitting
	reserved     atomic.Int32  // places Serve holds for the connection it is waiting to accept
	refusedEarly atomic.Uint64 // clients refused before they asked the hub: by their address, or by the auth hook
	hostRefusals *burstLog     // refusals by address, logged at info and summarised in bursts

	buffers  bufferPools // read buffers by size, lent to readers while they read (framing.go)
	maxRelay int         // the most lines a reader hands over in one request
	lobby    *Room       // the default room: newcomers land here, and it stays open

	// requests carries every request to the hub goroutine. Unbuffered: a
	// reader waits until the hub takes its lines, which is what keeps a
	// sender's lines in order and a flooding sender from outrunning the
	// hub.
	requests chan request
	ctx      context.Context    // ends when Shutdown or Close begins
	cancel   context.CancelFunc // ends ctx; called once, by stop
	ran      chan struct{}      // closed by the hub goroutine as it returns
	opened   chan struct{}      // closed by the hub goroutine once its bus is open, or failed to open (at once without a bus)
	openErr  error              // why the bus did not open, wrapped; written before opened is closed

	// Lines written whole and lines discarded, counted where that happens
	// (write.go), by the hub goroutine or a writer goroutine: the hub
	// never waits for writers to report.
	delivered atomic.Uint64
	dropped   atomic.Uint64

	mu        sync.Mutex
	started   bool                            // the hub goroutine was started
	pollTried bool                            // startPoller was called: poll is set, or there is none
	closing   bool                            // Shutdown or Close was called
	graceful  bool                            // ... and it was Shutdown
	listeners map[*onceCloseListener]struct{} // listeners in Serve
	conns     map[*Client]struct{}            // every connection being served, admitted or not
	final     Stats                           // the hub's counters the hub goroutine left
	wg        sync.WaitGroup                  // the hub goroutine, every ServeConn, every goroutine Serve starts
}

// NewHub returns a hub configured by opts: every room's defaults, and the
// hub's limits; see the With functions for each option and its default. It
// panics, naming the option, if an option's value is invalid. No goroutine
// starts until the hub serves.
func NewHub(opts ...Option) *Hub {
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
	h := &Hub{
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
		maxRelay:  max(1, min(relayBatch, o.outboxSize/8)),
		requests:  make(chan request),
		ctx:       ctx,
		cancel:    cancel,
		ran:       make(chan struct{}),
		opened:    make(chan struct{}),
		listeners: make(map[*onceCloseListener]struct{}),
		conns:     make(map[*Client]struct{}),
	}
	h.lobby = newRoom(h, o.defaultRoom, true)
	return h
}

// Serve accepts connections on ln and serves each with [Hub.ServeConn] in
// its own goroutine: newcomers land in the default room. It blocks until ln
// fails or the hub closes, and may run on several listeners at once, all
// feeding the same hub.
//
// A temporary Accept error is logged and retried after a pause that grows
// from 5ms to 1s. While 256 accepted connections wait to be admitted or
// refused (TLS handshakes, per-address checks, the hub's answer), Serve
// accepts no more: the rest wait in the kernel's backlog. Serve always
// returns a non-nil error and closes ln: after Shutdown or Close it returns
// [ErrRoomClosed]; otherwise the Accept error that stopped it, wrapped.
//
// On Linux, a client Serve accepted on a *net.TCPConn or *net.UnixConn
// costs no goroutine while it is quiet: once it is in, the hub's poller
// (one goroutine over epoll) waits for its input, and a goroutine runs for
// it only while it has input to deal with. Other connections, and those
// handed to ServeConn, have a goroutine each for as long as they stay.
func (h *Hub) Serve(ln net.Listener) error {
	return h.serveListener(ln, textFace{}, h.lobby)
}

// ServeFace is Serve for clients that speak face's protocol (package irc
// serves IRC with it).
func (h *Hub) ServeFace(ln net.Listener, face Face) error {
	return h.serveListener(ln, face, h.lobby)
}

// serveListener is Serve: each client speaks face and, with the text
// protocol, lands in landing.
func (h *Hub) serveListener(ln net.Listener, face Face, landing *Room) error {
	l := &onceCloseListener{Listener: ln}
	defer l.Close()
	if err := h.start(); err != nil {
		return err
	}
	if !h.trackListener(l) {
		return ErrRoomClosed
	}
	defer h.untrackListener(l)
	if h.opts.rate > 0 {
		limitReadBuffer(ln)
	}

	var delay time.Duration // how long to wait after a temporary error
	for {
		if !h.waitAdmitting() {
			return ErrRoomClosed
		}
		h.reserved.Add(1) // the place is for the connection Accept returns
		conn, err := l.Accept()
		h.reserved.Add(-1)
		if err != nil {
			<-h.admitting
			if h.isClosing() {
				return ErrRoomClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("chatroom: accept: %w", err)
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			h.log.Warn("accept failed; retrying", "err", err, "retry_in", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-h.ctx.Done():
				t.Stop()
				return ErrRoomClosed
			}
			continue
		}
		delay = 0
		if !h.spawn(func() { h.serveAccepted(conn, face, landing) }) {
			<-h.admitting
			conn.Close()
			return ErrRoomClosed
		}
	}
}

// serveAccepted serves a connection from Serve, which took its place in
// h.admitting.
func (h *Hub) serveAccepted(conn net.Conn, face Face, landing *Room) {
	if err := h.serve(conn, face, landing, true); err != nil {
		h.logEnded(conn, err)
	}
}

// waitAdmitting takes a place in h.admitting, waiting while every place is
// taken. It reports false if the hub closes first.
func (h *Hub) waitAdmitting() bool {
	select {
	case h.admitting <- struct{}{}:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// logEnded logs why a connection from Serve ended. It is not part of
// serveAccepted so that the logging call's frame is not on the stack of
// every parked reader.
func (h *Hub) logEnded(conn net.Conn, err error) {
	h.log.Debug("connection ended", "client", conn.RemoteAddr().String(), "err", err)
}

// ServeConn serves one connection that the caller has already accepted (a
// TLS connection, a WebSocket adapter, one end of [net.Pipe]), speaking
// the text protocol, and blocks until the client has left and its
// connection is closed. The client lands in the default room. The hub
// owns conn from the call on and always closes it.
//
// On Unix, a *net.TCPConn or *net.UnixConn is also used through its socket:
// the hub waits for its input without holding a read buffer, and writes to
// it without blocking. Any other type, including one that embeds either of
// them, is read and written only through its own Read and Write.
//
// While 256 connections wait to be admitted (see [Hub.Serve]), ServeConn
// waits for one of them to get in or be refused before it starts on conn.
//
// It returns nil when the client left on its own, by "exit", "/quit" or
// by hanging up; [ErrRoomFull], [ErrTooManyFromHost] or [ErrNameTaken] if
// it was turned away, or the auth hook's error (or context.DeadlineExceeded
// for a hook that did not answer in time), wrapped; [ErrRoomClosed] if the
// hub was closed before or while it was in it; [ErrIdleTimeout],
// [ErrTooSlow] or [ErrKicked] if the hub cut it off; or the error that
// broke the connection (a filter's panic included), wrapped.
func (h *Hub) ServeConn(conn net.Conn) error {
	return h.serve(conn, textFace{}, h.lobby, false)
}

// ServeConnFace is ServeConn for a client that speaks face's protocol
// (package web serves its structured protocol with it).
func (h *Hub) ServeConnFace(conn net.Conn, face Face) error {
	return h.serve(conn, face, h.lobby, false)
}

// serve is ServeConn, and Serve's for each connection it accepts
// (accepted): such a connection already holds a place in h.admitting, and
// once the client is in, the hub's poller, if it has one, reads a plain
// socket in turns and serve returns at once: an idle client then costs no
// goroutine. ServeConn's contract is to block until the client leaves, so
// its clients are read here, by their own goroutine.
//
// A connection the poller reads keeps its place in h.admitting until it is
// registered and its first turn, run here, is over, or waits out its rate
// in it (Client.throttle): so Serve's goroutines are at most maxAdmitting,
// a connection that hangs up at once (a storm of them) included, which
// leaves the hub on this goroutine.
func (h *Hub) serve(conn net.Conn, face Face, landing *Room, accepted bool) error {
	c := newClient(h, conn, face, landing)
	c.admitting = accepted
	c.firstTurn = accepted && c.raw != nil && h.startPoller()
	if err := h.trackConn(c); err != nil {
		c.doneAdmitting()
		conn.Close()
		return err
	}
	if err := c.admit(); err != nil {
		h.untrackConn(c)
		return err
	}
	if c.firstTurn && c.readPolled() {
		return nil // the poller's now; its last turn logs how it ended and untracks it
	}
	if c.firstTurn {
		c.firstTurn = false
		if c.reg {
			c.doneAdmitting()
		}
	}
	reason, err := c.read()
	err = c.leave(reason, err)
	h.untrackConn(c)
	return err
}

// Room returns the room called name, ignoring case and a leading "#",
// opening it if it is not open; a room opened here stays open, empty or
// not, until the hub closes. It returns [ErrInvalidName] for a name that
// is not 1 to 32 ASCII letters, digits and _-., [ErrTooManyRooms] past
// the hub's limit, and [ErrRoomClosed] once the hub is closing.
func (h *Hub) Room(name string) (*Room, error) {
	if err := h.start(); err != nil {
		return nil, err
	}
	name, ok := roomName(name)
	if !ok {
		return nil, ErrInvalidName
	}
	var a answer
	if !h.ask(request{kind: askOpen, name: name, reply: h.answers(&a)}) {
		return nil, ErrRoomClosed
	}
	a.await()
	return a.room, a.err
}

// answers returns a channel for one answer of the hub goroutine, and
// waits for it on return: the caller writes it into a.
func (h *Hub) answers(a *answer) chan<- answer {
	ch := make(chan answer, 1)
	a.wait = ch
	return ch
}

// Rooms lists every open room, sorted by name ignoring case. With a bus
// ([WithBus]) it lists the peers' rooms too, their members counted once.
// It returns nil for a hub that has not served yet or has closed.
func (h *Hub) Rooms() []RoomInfo {
	var a answer
	if !h.query(request{kind: askRooms, reply: h.answers(&a)}) {
		return nil
	}
	a.await()
	return a.rooms
}

// Clients returns everyone in the hub now, sorted by name ignoring case: a
// snapshot taken by the hub goroutine. With a bus it lists the peers'
// clients too. It returns nil for a hub that has not served yet or has
// closed.
func (h *Hub) Clients() []ClientInfo {
	return h.clients(nil)
}

// clients lists the members of room, or of the whole hub if room is nil.
func (h *Hub) clients(room *Room) []ClientInfo {
	var a answer
	if !h.query(request{kind: askClients, room: room, reply: h.answers(&a)}) {
		return nil
	}
	a.await()
	return a.infos
}

// Kick removes the client named name (ignoring case) from the hub: it is
// sent "* kicked: <reason>" ("* kicked" for an empty reason), which is
// written before its connection closes, and the others in its rooms see
// "<ts> * <name> left (kicked: <reason>)". The reason is cleaned like a
// chat line. Kick returns [ErrNoSuchClient] if nobody has that name, and
// [ErrRoomClosed] once the hub has closed. With a bus, a client of a peer
// is kicked by its own hub, which the bus asks to: Kick returns once the
// request is on its way.
func (h *Hub) Kick(name, reason string) error {
	return h.kick(nil, name, reason)
}

// kick is Kick, for a member of room if room is not nil.
func (h *Hub) kick(room *Room, name, reason string) error {
	var a answer
	if !h.query(request{kind: askKick, room: room, name: name, text: cleanString(reason), reply: h.answers(&a)}) {
		if h.isClosing() {
			return ErrRoomClosed
		}
		return ErrNoSuchClient // it has not served yet: nobody is in it
	}
	a.await()
	return a.err
}

// Broadcast sends "<ts> * text" to every client in every room. The text is
// cleaned like a client's line; it is queued for every client before
// Broadcast returns, and reaches each of them in order with the other
// messages. It returns [ErrRoomClosed] once Shutdown or Close was called.
func (h *Hub) Broadcast(text string) error {
	return h.broadcast(nil, text)
}

// broadcast is Broadcast, to room alone if room is not nil.
func (h *Hub) broadcast(room *Room, text string) error {
	if err := h.start(); err != nil {
		return err
	}
	m := &Message{Kind: KindAnnounce, Time: h.opts.now(), Text: cleanString(text)}
	if !h.ask(request{kind: askAnnounce, room: room, msg: m}) {
		return ErrRoomClosed
	}
	return nil
}

// query hands q to the hub goroutine and reports whether it took it: false
// if the hub has not served yet (nobody is in it; query does not start it)
// or has closed.
func (h *Hub) query(q request) bool {
	h.mu.Lock()
	started := h.started
	h.mu.Unlock()
	if !started {
		return false
	}
	select {
	case h.requests <- q:
		return true
	case <-h.ran:
		return false
	}
}

// Stats returns a snapshot of the hub's counters. Clients, Joined, Left,
// Messages and Evicted are read at one instant by the hub goroutine, so
// for example Clients always equals Joined minus Left. Delivered and
// Dropped are counted by the writers as writes complete; once the hub is
// quiet, or closed, every line queued is counted in one or the other.
// Refusals by address, and Admitting, are counted as they happen.
func (h *Hub) Stats() Stats {
	return h.stats(nil)
}

// stats is Stats, with room's own counters if room is not nil.
func (h *Hub) stats(room *Room) Stats {
	var a answer
	if h.query(request{kind: askStats, room: room, reply: h.answers(&a)}) {
		a.await()
		return *a.stats
	}
	h.mu.Lock()
	s := h.final
	h.mu.Unlock()
	if room != nil {
		s = room.finalStats(s)
	}
	return h.completeStats(s)
}

// completeStats adds to the hub goroutine's counters those counted
// elsewhere.
func (h *Hub) completeStats(s Stats) Stats {
	s.Delivered, s.Dropped = h.delivered.Load(), h.dropped.Load()
	s.Refused += h.refusedEarly.Load()
	s.Admitting = max(0, len(h.admitting)-int(h.reserved.Load()))
	if h.events != nil {
		s.EventsDropped = h.events.dropped.Load()
	}
	return s
}

// Shutdown closes the hub gracefully: it closes every listener, so Serve
// returns ErrRoomClosed; tells every client "* server shutting down";
// waits until each has been written all that was queued for it, or its
// write timeout passed; closes the connections; and waits for every
// goroutine of the hub to return, the one that hands log records to the
// logger's handler last (so Shutdown waits for a handler that blocks).
//
// If ctx ends first, Shutdown closes whatever is left, as Close does,
// waits for the goroutines, and returns ctx.Err(). Either way, no goroutine
// of the hub is running when it returns. Shutdown does not wait for
// clients that send nothing: their connections are simply closed.
func (h *Hub) Shutdown(ctx context.Context) error {
	err := h.stop(true)
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		h.closeConns()
		<-done
		err = ctx.Err()
	}
	h.closeRest()
	return err
}

// Close closes the hub at once: every listener and every connection,
// without a goodbye. It waits for every goroutine of the hub to return
// (as Shutdown does) and returns the first error from closing a listener,
// if any.
func (h *Hub) Close() error {
	err := h.stop(false)
	h.closeConns()
	h.wg.Wait()
	h.closeRest()
	return err
}

// closeRest releases what the hub keeps until every other goroutine of it
// has returned: the poller's descriptors, then its logging (its burst
// summaries, then the log goroutine).
func (h *Hub) closeRest() {
	h.mu.Lock()
	poll := h.poll
	h.mu.Unlock()
	if poll != nil {
		poll.close()
	}
	h.handshakeFailures.close()
	h.hostRefusals.close()
	if h.events != nil {
		h.events.burst.close()
	}
	h.logs.close()
}

// start starts the hub goroutine unless it runs already, and waits until
// the hub's bus, if any, is open. It returns ErrRoomClosed if the hub is
// closing, or the error that kept the bus from opening.
func (h *Hub) start() error {
	h.mu.Lock()
	if h.closing {
		started := h.started
		h.mu.Unlock()
		if started {
			<-h.opened
		}
		if h.openErr != nil {
			return h.openErr
		}
		return ErrRoomClosed
	}
	if !h.started {
		h.started = true
		h.logs.start()
		h.wg.Go(h.run)
		if h.events != nil {
			h.wg.Go(func() { h.events.deliver(h.log.Error) })
		}
	}
	h.mu.Unlock()
	<-h.opened
	return h.openErr
}

// startPoller starts the hub's poller, with the first client from Serve on
// a plain socket, and reports whether the hub has one.
func (h *Hub) startPoller() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pollTried {
		h.pollTried = true
		if h.poll = newPoller(h); h.poll != nil {
			h.wg.Go(h.poll.run)
		}
	}
	return h.poll != nil
}

// spawn runs f in a goroutine of the hub, counted on h.wg, unless the hub
// is closing; it reports whether it did. Counting before the goroutine
// starts is what keeps Shutdown from missing it.
func (h *Hub) spawn(f func()) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.wg.Go(f)
	return true
}

// stop marks the hub closing, ends h.ctx, which tells the hub goroutine
// and every reader, and closes the listeners. Only the first call ends
// h.ctx.
func (h *Hub) stop(graceful bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closing {
		h.closing, h.graceful = true, graceful
		h.cancel()
		if h.poll != nil {
			h.poll.wake() // its loop sees h.ctx end
		}
	}
	var err error
	for l := range h.listeners {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// closeConns closes every connection the hub holds, queued lines or not.
func (h *Hub) closeConns() {
	h.mu.Lock()
	conns := make([]*Client, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.shut(ReasonClosed, nil)
	}
}

func (h *Hub) isClosing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closing
}

func (h *Hub) isGraceful() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.graceful
}

// trackListener adds a listener in Serve; it reports false if the hub is
// closing. untrackListener removes it.
func (h *Hub) trackListener(l *onceCloseListener) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.listeners[l] = struct{}{}
	return true
}

func (h *Hub) untrackListener(l *onceCloseListener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.listeners, l)
}

// trackConn adds a connection being served, so that Close and Shutdown can
// reach it, and counts it on h.wg; it starts the hub goroutine if need be.
// It returns start's error, or ErrRoomClosed if the hub is closing. Every
// nil is matched by one untrackConn.
func (h *Hub) trackConn(c *Client) error {
	if err := h.start(); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return ErrRoomClosed
	}
	h.conns[c] = struct{}{}
	h.wg.Add(1)
	return nil
}

// untrackConn waits until no writer goroutine of c runs (its connection is
// closed by then: admit or leave closed it), closes its account with its
// address, then forgets c and counts it done on h.wg.
func (h *Hub) untrackConn(c *Client) {
	c.writers.Wait()
	if c.counted {
		h.hosts.close(c.host)
	}
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
	h.wg.Done()
}

// ask hands q to the hub goroutine, waiting until it takes it. It reports
// false instead once the hub is closing; the hub then ends every client
// itself.
func (h *Hub) ask(q request) bool {
	select {
	case h.requests <- q:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// run is the hub goroutine, the Go form of the select() loop. It alone
// owns the rooms, their members, the names and the counters (state.go);
// everything else reaches it as a request. It never blocks on a client:
// outboxes take a line at once or report full, and its writes to sockets
// take what the kernel takes at once and leave the rest to a writer
// goroutine.
func (h *Hub) run() {
	s := newState(h)
	defer func() {
		h.mu.Lock()
		h.final = s.stats
		h.mu.Unlock()
		if h.events != nil {
			close(h.events.events) // the events goroutine delivers the rest, then returns
		}
		close(h.ran)
	}()
	if !h.openBus(s) {
		return
	}
	yields := 0      // times run has yielded since its last flush
	fruitful := true // ... and the last yield brought a request
	handled := 0     // requests handled since the last flush
	for {
		// Take every request that is already waiting before writing
		// anything, so that each client gets all of it in one write: the
		// hub's version of an event loop's flush before it sleeps. But
		// never more than maxUnflushed: a queue of requests that never
		// empties must not hold everyone's lines back.
		if handled < maxUnflushed {
			select {
			case q := <-h.requests:
				s.handle(q)
				handled++
				fruitful = true
				continue
			default:
			}
			if len(s.dirty) > 0 && fruitful && yields < maxYields {
				yields++
				fruitful = false
				yield() // a reader the hub just took lines from may have more
				continue
			}
		}
		yields, fruitful, handled = 0, true, 0
		s.flushAll()

		var tick <-chan time.Time // the storms' ticks (notices.go), while there are storms
		if s.tick != nil {
			tick = s.tick.C
		}
		select {
		case q := <-h.requests:
			s.handle(q)
			handled++
		case <-tick:
			s.ticked()
			s.evictSlow()
		case <-h.ctx.Done():
			if s.tick != nil {
				s.tick.Stop()
			}
			s.closeAll(h.isGraceful())
			h.closeBus()
			return
		}
	}
}

// maxUnflushed bounds the requests the hub goroutine takes before it
// writes what they queued: however busy it is, every client's lines leave
// at least that often.
const maxUnflushed = 256

// yield lets the goroutines that are ready to run go first. The hub and
// its writers yield in three places, and only there, for one rule: a write
// system call costs nearly as much for one line as for a hundred, so a
// batch is written once those who would add to it have had their turn.
//
//   - The hub goroutine, before it flushes (run): a reader it just took
//     lines from has likely read more; and again while each yield brings
//     it a request, up to maxYields times.
//   - The hub goroutine, once an outbox is more than half full
//     (state.broadcast): that client's writer goroutine is at work, and on
//     a busy machine readers can feed the hub faster than writers get
//     scheduled, filling a healthy client's outbox.
//   - A new writer goroutine, before it takes its batch (Client.writer):
//     readers with lines for the hub go first, so the batch is bigger.
func yield() { runtime.Gosched() }

// maxYields bounds the hub goroutine's yields before one flush: it yields
// again only while each yield brought it a request, and at most this many
// times, so that a steady stream of requests delays nobody's lines by more
// than a few of the readers' turns.
const maxYields = 16

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

// RoomInfo describes an open room, as [Hub.Rooms] reports it.
type RoomInfo struct {
	Name        string    // as it was first opened
	Clients     int       // members now, the peers' included
	Topic       string    // "" for none
	TopicBy     string    // who set the topic
	TopicAt     time.Time // when, by the hub's clock
	TopicLocked bool      // mode +t: only its operators set the topic
	Secret      bool      // mode +s: listed only to its members
	Opened      time.Time // when it was opened, by the hub's clock
}

// A Member is one member of a room, as a room's roster lists it.
type Member struct {
	Name     string
	Operator bool // an operator of the room: may put others out, set its modes, and its topic when locked
	Voiced   bool // mode +v: a mark (IRC's voice), nothing more
}

// sortRooms sorts rooms by name, ignoring case.
func sortRooms(rooms []RoomInfo) {
	slices.SortFunc(rooms, func(a, b RoomInfo) int { return compareNames(a.Name, b.Name) })
}
