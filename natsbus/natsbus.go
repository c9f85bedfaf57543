// Package natsbus serves one chat room from many processes over NATS: a
// [chatroom.Bus] that joins each process's room to the others with the
// same room name on the same NATS system.
//
//	bus, err := natsbus.Connect("nats://127.0.0.1:4222", "lobby")
//	if err != nil { ... }
//	room := chatroom.NewRoom(chatroom.WithBus(bus), chatroom.WithHistory(50))
//	room.Serve(ln) // room.Close closes the bus
//
// What travels where:
//
//   - Lines, notices, joins, leaves, renames, whispers and kicks go over core
//     NATS, one subject tree per room (chatroom.<room>.>), published by each
//     process in the order its room saw them and numbered, so that each
//     sender's order is kept and a receiver knows when it missed some. Each
//     line is formatted once, by the process where it was said, and relayed
//     by the others as it is.
//   - Who is where: each process keeps the others' member lists from their
//     joins, leaves and renames, and asks a process for its whole list
//     whenever it missed one of its messages. Each process says it is alive
//     once a heartbeat (1s by default); one silent for five heartbeats is
//     counted gone, and its clients leave the room for everyone.
//   - Names: a JetStream key-value bucket (chatroom_<room>_names) holds every
//     name in the room, ignoring case, with the process that holds it. A
//     name is claimed with the bucket's atomic Create, so of two clients
//     that claim one name at once on two processes, one gets it; a name
//     whose process is gone is taken over with an atomic Update.
//   - History: a JetStream stream (chatroom_<room>_history), on file storage
//     when the server has it, keeps the room's last say and /me lines; a
//     process starts its room's history from it.
//
// When the connection to NATS is lost, each process goes on serving its own
// clients: what they say in the gap reaches its own clients only, and what
// the other processes' clients say in the gap does not reach it. Nothing is
// queued to be sent late. Once reconnected, the processes exchange their
// member lists, so /who and the join and leave notices catch up, and
// nobody is counted gone for the gap itself. A name cannot be claimed
// during the gap: a client that connects or takes a /nick then is told to
// try again.
package natsbus

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/chatroom-go/chatroom"
)

// Defaults.
const (
	// DefaultHeartbeat is how often a process says it is alive; one silent
	// for deadAfter heartbeats is counted gone (see WithHeartbeat).
	DefaultHeartbeat = time.Second

	// deadAfter is how many heartbeats a process may miss before its
	// clients are counted gone.
	deadAfter = 5

	// outQueue is how many messages may wait to be published. The room
	// never waits for the bus: past this, messages are dropped and counted,
	// and the others are sent this process's whole member list.
	outQueue = 1 << 16

	// inQueue is how many received messages may wait for the room. Past
	// it NATS drops them (a slow consumer): the numbering shows the gap.
	inQueue = 1 << 16

	// openTimeout bounds Open's work with JetStream, and closeTimeout
	// Close's last messages and the release of names.
	openTimeout  = 10 * time.Second
	closeTimeout = 3 * time.Second
)

// ErrBadRoomName is returned by New and Connect for a room name that is not
// 1 to 64 ASCII letters, digits, '_' or '-' (it names NATS subjects, a
// stream and a bucket).
var ErrBadRoomName = errors.New("natsbus: a room name is 1 to 64 letters, digits, '_' or '-'")

var roomName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// An Option configures a Bus.
type Option func(*config)

type config struct {
	heartbeat time.Duration
	logger    *slog.Logger
}

// WithHeartbeat sets how often the process says it is alive. A process
// that dies without a word has its clients leave the room for everyone
// after five heartbeats without one, and at most six: 5 to 6 seconds with
// the default of [DefaultHeartbeat]. New panics if d is not positive.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			panic(fmt.Sprintf("natsbus: WithHeartbeat(%v): the heartbeat must be positive", d))
		}
		c.heartbeat = d
	}
}

// WithLogger sets where the bus logs what it could not do: messages it
// dropped or missed, a state it could not send. The default discards.
// New panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			panic("natsbus: WithLogger(nil): the logger must not be nil")
		}
		c.logger = l
	}
}

// Bus is a [chatroom.Bus] over NATS for one room. Make one with [New] or
// [Connect] and hand it to one room with [chatroom.WithBus]; the room opens
// and closes it.
type Bus struct {
	nc     *nats.Conn
	owned  bool // Connect made nc: Close closes it
	js     jetstream.JetStream
	names  jetstream.KeyValue
	room   string
	id     string // this process's name on the bus: random, new for each Bus
	prefix string // "chatroom.<room>."
	cfg    config
	log    *slog.Logger

	deliver func(chatroom.BusMessage) bool // the room's, from Open
	sub     *nats.Subscription
	in      chan *nats.Msg // received, for the receiver goroutine
	out     chan outgoing  // to publish, for the publisher goroutine
	state   chan struct{}  // a state is asked for; buffered, 1
	resync  atomic.Bool    // a message was dropped from out: send the whole state
	done    chan struct{}  // closed by Close
	wg      sync.WaitGroup // the bus's goroutines
	once    sync.Once
	opened  time.Time // when Open subscribed; the receiver's clock for names of unknown processes

	mu       sync.Mutex
	peers    map[string]*peer  // the other processes heard from, by id
	claimed  map[string]uint64 // names this process's clients hold, by key, with their revision (0 while claiming)
	fetched  map[msgID]bool    // history lines Open read from the stream, so that the live copy is not relayed twice
	releases []release         // names to release, for the releaser goroutine
	wake     chan struct{}     // the releaser has work; buffered, 1

	published, dropped, lost atomic.Uint64
}

// peer is another process, as the receiver goroutine knows it.
type peer struct {
	seq   uint64    // the last of its messages received
	heard time.Time // when it was last heard from
	asked time.Time // when its state was last asked for
}

// msgID names one message on the bus.
type msgID struct {
	from string
	seq  uint64
}

// outgoing is one message for the publisher goroutine.
type outgoing struct {
	kind   kind
	msg    chatroom.BusMessage
	target string // kindSync
}

type release struct {
	key string
	rev uint64
}

// Stats counts what a Bus did, for logs and tests.
type Stats struct {
	Peers     int    // other processes serving the room now
	Published uint64 // messages published
	Dropped   uint64 // messages not published: the queue was full or NATS was unreachable
	Lost      uint64 // messages of other processes known to be missed
}

// Connect connects to the NATS server at url (a comma-separated list is
// fine) with the options a bus wants, and returns a bus for the room named
// room on it; the bus closes the connection when it closes. The
// connection reconnects forever, every 250ms, and queues nothing while
// disconnected (see the package documentation for what that means). Use
// [New] to bring a connection of your own (credentials, TLS).
func Connect(url, room string, opts ...Option) (*Bus, error) {
	if !roomName.MatchString(room) {
		return nil, fmt.Errorf("%w: %q", ErrBadRoomName, room)
	}
	nc, err := nats.Connect(url,
		nats.Name("chatroom "+room),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.NoEcho(),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connecting to %s: %w", url, err)
	}
	b, err := New(nc, room, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// New returns a bus for the room named room over nc, which stays the
// caller's: close it after the room. nc needs JetStream. For the gap
// behaviour the package documents, connect with nats.ReconnectBufSize(-1)
// (otherwise what is said in a gap is sent late, up to the buffer's size);
// with nats.NoEcho() the process does not receive its own messages back.
// New creates the room's key-value bucket for names if need be.
func New(nc *nats.Conn, room string, opts ...Option) (*Bus, error) {
	if !roomName.MatchString(room) {
		return nil, fmt.Errorf("%w: %q", ErrBadRoomName, room)
	}
	cfg := config{heartbeat: DefaultHeartbeat, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	names, err := createBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      "chatroom_" + room + "_names",
		Description: "who holds each name in chat room " + room,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: the names bucket: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	return &Bus{
		nc:      nc,
		js:      js,
		names:   names,
		room:    room,
		id:      hex.EncodeToString(id[:]),
		prefix:  "chatroom." + room + ".",
		cfg:     cfg,
		log:     cfg.logger.With("room", room),
		in:      make(chan *nats.Msg, inQueue),
		out:     make(chan outgoing, outQueue),
		state:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		peers:   make(map[string]*peer),
		claimed: make(map[string]uint64),
		wake:    make(chan struct{}, 1),
	}, nil
}

// createBucket creates or updates a key-value bucket on file storage, or
// in memory if the server has no file storage.
func createBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Storage = jetstream.FileStorage
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		cfg.Storage = jetstream.MemoryStorage
		if kv, err2 := js.CreateOrUpdateKeyValue(ctx, cfg); err2 == nil {
			return kv, nil
		}
	}
	return kv, err
}

// ID is this process's name on the bus: [chatroom.ClientInfo] Peer for its
// clients, on the other processes.
func (b *Bus) ID() string { return b.id }

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	n := len(b.peers)
	b.mu.Unlock()
	return Stats{Peers: n, Published: b.published.Load(), Dropped: b.dropped.Load(), Lost: b.lost.Load()}
}

// Open subscribes to the room's subjects, reads the room's history from its
// stream, and starts the bus's goroutines. The room calls it once.
func (b *Bus) Open(ctx context.Context, history int, deliver func(chatroom.BusMessage) bool) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	b.deliver = deliver
	sub, err := b.nc.ChanSubscribe(b.prefix+">", b.in)
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribing: %w", err)
	}
	if err := b.nc.FlushWithContext(ctx); err != nil { // the server knows the subscription before the history is read
		sub.Unsubscribe()
		return nil, fmt.Errorf("natsbus: subscribing: %w", err)
	}
	b.sub = sub
	b.opened = time.Now()
	var lines [][]byte
	if history > 0 {
		if lines, err = b.readHistory(ctx, history); err != nil {
			sub.Unsubscribe()
			return nil, err
		}
	}
	b.wg.Add(4)
	go b.publisher()
	go b.receiver()
	go b.watcher()
	go b.releaser()
	return lines, nil
}

// Publish queues what one of the room's clients did, to be published in
// order. It never waits: with outQueue messages queued, it drops m and
// counts it, and the whole member list is sent once the queue drains.
func (b *Bus) Publish(m chatroom.BusMessage) {
	select {
	case b.out <- outgoing{kind: kind(m.Kind), msg: m}:
	case <-b.done:
	default:
		b.dropped.Add(1)
		b.resync.Store(true)
	}
}

// Close publishes what is queued and a goodbye, so that the other
// processes count this one's clients gone at once, releases the names its
// clients hold, and stops the bus; after [Connect], it closes the
// connection too. It waits at most 3s for NATS.
func (b *Bus) Close() error {
	b.once.Do(func() {
		close(b.done)
		b.wg.Wait()
		if b.sub != nil {
			b.sub.Unsubscribe()
		}
		if b.owned {
			b.nc.Close()
		}
	})
	return nil
}

// send publishes one envelope, numbering it. A message NATS refuses (the
// connection is down) takes no number: the others miss nothing they could
// have had, and learn what changed from the member lists exchanged on
// reconnecting.
func (b *Bus) send(e *envelope, seq *uint64, buf []byte) []byte {
	e.from, e.seq = b.id, *seq+1
	buf = e.encode(buf[:0])
	subject := b.prefix + "ev"
	if e.kind == kind(chatroom.BusSay) {
		subject = b.prefix + "line" // the history stream's subject
	}
	if err := b.nc.Publish(subject, buf); err != nil {
		b.dropped.Add(1)
		return buf
	}
	*seq++
	b.published.Add(1)
	return buf
}

// publisher is the publisher goroutine: it publishes what the room hands
// Publish, in order, heartbeats, and this process's member list when it is
// asked for, after a reconnection, or after messages were dropped. It
// keeps that list from the joins, leaves and renames it publishes, so the
// list is exact at its place among them.
func (b *Bus) publisher() {
	defer b.wg.Done()
	var seq uint64
	var buf []byte
	members := make(map[string]chatroom.ClientInfo) // this process's clients, by key
	state := func(ask bool) {
		e := &envelope{kind: kindState, ask: ask, members: make([]chatroom.ClientInfo, 0, len(members))}
		for _, c := range members {
			e.members = append(e.members, c)
		}
		buf = b.send(e, &seq, buf)
	}
	apply := func(o outgoing) {
		m := o.msg
		switch m.Kind {
		case chatroom.BusJoin:
			members[nameKey(m.Name)] = chatroom.ClientInfo{Name: m.Name, Addr: m.Addr, Joined: m.Time}
		case chatroom.BusLeave:
			delete(members, nameKey(m.Name))
		case chatroom.BusNick:
			c := members[nameKey(m.Old)]
			delete(members, nameKey(m.Old))
			c.Name = m.Name
			members[nameKey(m.Name)] = c
		}
		if m.Kind == chatroom.BusSay { // one envelope per line: the history stream counts lines
			for _, l := range m.Lines {
				buf = b.send(&envelope{kind: o.kind, msg: chatroom.BusMessage{Kind: m.Kind, Line: l}}, &seq, buf)
			}
			return
		}
		buf = b.send(&envelope{kind: o.kind, msg: m, target: o.target}, &seq, buf)
	}
	tick := time.NewTicker(b.cfg.heartbeat)
	defer tick.Stop()
	reconnects := b.nc.Stats().Reconnects
	state(true) // hello: here is mine, send me yours
	for {
		select {
		case o := <-b.out:
			apply(o)
			if b.resync.Swap(false) {
				state(false)
			}
		case <-b.state:
			state(false)
		case <-tick.C:
			if n := b.nc.Stats().Reconnects; n != reconnects {
				reconnects = n
				state(true) // the others missed ours, and we theirs
			} else {
				buf = b.send(&envelope{kind: kindHeartbeat}, &seq, buf)
			}
		case <-b.done:
		drain:
			for {
				select {
				case o := <-b.out:
					apply(o)
				default:
					break drain
				}
			}
			b.send(&envelope{kind: kindBye}, &seq, buf)
			if err := b.nc.FlushTimeout(closeTimeout); err != nil && b.nc.IsConnected() {
				b.log.Warn("natsbus: the goodbye may not have reached NATS", "err", err)
			}
			return
		}
	}
}

// askState has the publisher send this process's member list.
func (b *Bus) askState() {
	select {
	case b.state <- struct{}{}:
	default: // one is on its way
	}
}

// receiver is the receiver goroutine: it reads every message on the room's
// subjects, in the order NATS delivers them, keeps track of each other
// process, and hands the room what their clients did.
func (b *Bus) receiver() {
	defer b.wg.Done()
	for {
		select {
		case m := <-b.in:
			if !b.receive(m) {
				return
			}
		case <-b.done:
			return
		}
	}
}

// maxBatch is the most lines the receiver hands the room at once.
const maxBatch = 64

// receive deals with one message. A line is handed to the room with the
// lines already waiting behind it, up to maxBatch, so that the room writes
// them to each client at once. It reports false once the room is closing.
func (b *Bus) receive(m *nats.Msg) bool {
	e := b.open(m)
	switch {
	case e == nil:
		return true
	case e.kind == kind(chatroom.BusSay):
		return b.receiveLines(e)
	}
	return b.receiveOne(e)
}

// open decodes a message and records it was heard; it returns nil for one
// to skip: malformed, or this process's own.
func (b *Bus) open(m *nats.Msg) *envelope {
	e, err := decode(m.Data)
	if err != nil {
		b.log.Warn("natsbus: dropped a malformed message", "subject", m.Subject, "err", err)
		return nil
	}
	if e.from == b.id {
		return nil // our own, echoed
	}
	b.track(e)
	return e
}

// receiveLines hands the room the line e carries and the lines waiting
// behind it; a message after them that is not a line is dealt with next.
func (b *Bus) receiveLines(e *envelope) bool {
	var lines [][]byte
	add := func(e *envelope) {
		if !b.seen(msgID{e.from, e.seq}) {
			lines = append(lines, e.msg.Line)
		}
	}
	add(e)
	var after *envelope // the first message waiting that is not a line
	for len(lines) < maxBatch {
		m := b.more()
		if m == nil {
			break
		}
		next := b.open(m)
		switch {
		case next == nil:
			continue
		case next.kind != kind(chatroom.BusSay):
			after = next
		default:
			add(next)
			continue
		}
		break
	}
	if len(lines) > 0 && !b.deliver(chatroom.BusMessage{Kind: chatroom.BusSay, Lines: lines}) {
		return false
	}
	return after == nil || b.receiveOne(after)
}

// more returns a message already waiting, or nil.
func (b *Bus) more() *nats.Msg {
	select {
	case m := <-b.in:
		return m
	default:
		return nil
	}
}

// receiveOne deals with an envelope that is not a line.
func (b *Bus) receiveOne(e *envelope) bool {
	msg := e.msg
	msg.Peer = e.from
	switch e.kind {
	case kindHeartbeat:
		return true
	case kindSync:
		if e.target == b.id {
			b.askState()
		}
		return true
	case kindState:
		if e.ask {
			b.askState()
		}
		msg.Kind, msg.Members = chatroom.BusState, e.members
	case kindBye:
		msg.Kind = chatroom.BusGone
	}
	return b.deliver(msg)
}

// seen reports whether a line was read from the history already.
func (b *Bus) seen(id msgID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fetched[id] {
		delete(b.fetched, id)
		return true
	}
	return false
}

// track records that e was heard from its sender, and asks for the
// sender's member list if e shows that some of its messages were missed
// (or the sender is new).
func (b *Bus) track(e *envelope) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	p := b.peers[e.from]
	missed := false
	switch {
	case e.kind == kindBye:
		delete(b.peers, e.from)
		return
	case p == nil:
		p = &peer{}
		b.peers[e.from] = p
		missed = e.kind != kindState
	case e.kind != kindState && e.seq != p.seq+1:
		missed = true
		if e.seq > p.seq {
			b.lost.Add(e.seq - p.seq - 1)
		}
	}
	p.seq, p.heard = e.seq, now
	if missed && now.Sub(p.asked) >= b.cfg.heartbeat {
		p.asked = now
		select {
		case b.out <- outgoing{kind: kindSync, target: e.from}:
		default: // the queue is full; the next message asks again
		}
	}
}

// watcher is the watcher goroutine: once a heartbeat it counts gone every
// process not heard from for deadAfter heartbeats. While this process is
// cut off from NATS, it counts nobody gone: it cannot hear anyone.
func (b *Bus) watcher() {
	defer b.wg.Done()
	tick := time.NewTicker(b.cfg.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-b.done:
			return
		}
		for _, id := range b.silent() {
			b.log.Info("natsbus: a process went silent; its clients are gone", "peer", id)
			if !b.deliver(chatroom.BusMessage{Kind: chatroom.BusGone, Peer: id}) {
				return
			}
		}
	}
}

// silent forgets, and returns, the processes not heard from for deadAfter
// heartbeats.
func (b *Bus) silent() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	if !b.nc.IsConnected() {
		for _, p := range b.peers {
			p.heard = now
		}
		return nil
	}
	var gone []string
	for id, p := range b.peers {
		if now.Sub(p.heard) > deadAfter*b.cfg.heartbeat {
			delete(b.peers, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// alive reports whether the process id may still hold a name: it was heard
// from lately, or this process has not listened long enough to tell.
func (b *Bus) alive(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peers[id] != nil || time.Since(b.opened) < (deadAfter+1)*b.cfg.heartbeat
}

// nameKey is the key of a name in the names bucket: names are unique
// ignoring case, as the room's are, and keys allow fewer characters than
// names by address have.
func nameKey(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(name)))
}
