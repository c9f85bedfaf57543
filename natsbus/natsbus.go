// Package natsbus serves one chat hub from many processes over NATS: a
// [chatroom.Bus] that joins each process's hub to the others with the same
// namespace on the same NATS system, so that together they are one hub:
// the same rooms, names unique across all of them, /rooms, /who, /msg and
// kicks across processes, and each room's lines in one order everywhere.
//
//	bus, err := natsbus.Connect("nats://127.0.0.1:4222", "lobby", natsbus.WithCredsFile("chat.creds"))
//	if err != nil { ... }
//	hub := chatroom.NewHub(chatroom.WithBus(bus), chatroom.WithHistory(50))
//	hub.Serve(ln) // hub.Close closes the bus
//
// What travels where, for the namespace NS (a room's token, ROOM below, is
// its name in lower case with each '.' written '~': rooms are unique
// ignoring case, and '.' separates the tokens of a NATS subject):
//
//   - Lines said in a room are ordered by JetStream. A process publishes
//     its clients' lines to the stream chatroom_NS_lines on the subject
//     chatroom.NS.line.ROOM, the lines said one after the other in a room
//     that are queued together in one message (up to 256 lines, 64 KiB of
//     text), and relays them, to its own clients too, only when they come
//     back: the stream numbers the message (a line's ID is its message's
//     stream sequence times 256 plus its place in the message, the same on
//     every process) and re-publishes it (the stream's RePublish) on
//     chatroom.NS.live.ROOM, with its sequence and the sequence of the
//     room's message before it in headers.
//     A process subscribes with core NATS to the live subject of each room
//     it has members in, and only those: a room's traffic reaches only the
//     processes that want it. The stream keeps the last lines of each room
//     (MaxMsgsPerSubject: the most any process asked for, WithHistory + 1),
//     on file storage when the server has it, bounded as a whole
//     ([WithStreamBytes]); a process entering a room
//     reads them with one batched direct get. A line that arrives with a
//     gap before it (a slow consumer, a reconnection) is recovered from the
//     stream, in order, not skipped. A line the stream does not take (NATS
//     is unreachable, its limits refuse it) is not relayed anywhere, and
//     its sender is told.
//   - Presence goes over core NATS on chatroom.NS.ev: who joined, left or
//     was renamed, topics, announcements, each process's heartbeat (one
//     silent for five heartbeats is counted gone) and goodbye. Each
//     process numbers its messages there; one that missed some of another's
//     asks for that process's state (everyone on it, with their rooms), as
//     a process that starts or reconnects asks everyone.
//   - What is for one process goes to it alone, on chatroom.NS.to.ID (ID
//     being the process's bus id): whispers to its clients, kicks of them,
//     states it asked for. The bus knows from presence which process holds
//     each name.
//   - Names: the JetStream key-value bucket chatroom_NS_names holds every
//     name in the hub, ignoring case, with the id of the process that
//     holds it. A name is claimed with the bucket's atomic Create, so of
//     two clients that claim one name at once on two processes, one gets
//     it; a name whose process is gone is taken over with an atomic Update.
//
// A process trusts nothing that arrives: everything is decoded within
// limits (a text longer than [WithMaxLine], a state larger than
// [WithMaxPeerClients] members, a count larger than the bytes that
// follow: the message is dropped), malformed messages are counted
// ([Stats]) and logged at most once a second, and the hub cleans every
// text and name again. But a process cannot tell a peer from anyone else
// allowed to publish on the subjects above: the NATS server's permissions
// must keep the subjects, the stream and the bucket to the chat processes
// alone (docs/nats.md says which, with a tested configuration). Connect
// takes credentials for that: [WithCredsFile], [WithNkeyFile],
// [WithUserInfo], or a user and password in the URL.
//
// When the connection to NATS is lost, each process goes on serving its
// own clients, but nothing said in a room is relayed: its senders are
// told the line was not delivered. Nothing is queued to be sent late. Once
// reconnected, the processes exchange their states, so /who and the join
// and leave notices catch up, each room's lines missed meanwhile are read
// from the stream, and nobody is counted gone for the gap itself. A name
// cannot be claimed during the gap: a client that connects or takes a
// /nick then is told to try again.
//
// The server must be nats-server 2.11 or later, with JetStream.
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
	// for five heartbeats is counted gone (see WithHeartbeat).
	DefaultHeartbeat = time.Second

	// DefaultMaxLine is the longest text, in bytes, a bus takes from its
	// peers in a line, a whisper, a topic or a reason (see WithMaxLine).
	DefaultMaxLine = 16 << 10

	// DefaultMaxPeerClients is the most clients a bus believes one peer
	// has (see WithMaxPeerClients).
	DefaultMaxPeerClients = 100_000

	// DefaultStreamBytes bounds the lines' stream a bus creates (see
	// WithStreamBytes).
	DefaultStreamBytes = 1 << 30
)

const (
	// deadAfter is how many heartbeats a process may miss before its
	// clients are counted gone.
	deadAfter = 5

	// outQueue is how many messages may wait to be published. The hub
	// never waits for the bus: past this, a line is handed back as not
	// delivered, and anything else is dropped, counted, and made up for by
	// a hello (everyone asks for this process's state).
	outQueue = 1 << 14

	// inQueue is how many received messages may wait for the receiver.
	// Past it NATS drops them (a slow consumer): the numbering of presence
	// and the stream's sequences show the gap.
	inQueue = 1 << 16

	// maxPending is how many published lines may wait for the stream's
	// acknowledgement, and ackTimeout how long each may wait.
	maxPending = 4096
	ackTimeout = 5 * time.Second

	// maxPeers is the most other processes a bus keeps track of: messages
	// from more are refused.
	maxPeers = 1024

	// maxFetches is how many reads of the stream run at once, and
	// fetchTimeout bounds each.
	maxFetches   = 4
	fetchTimeout = 10 * time.Second

	// openTimeout bounds Open's work with JetStream, and closeTimeout
	// Close's last messages and the release of names.
	openTimeout  = 10 * time.Second
	closeTimeout = 3 * time.Second
)

// Errors.
var (
	// ErrBadNamespace is returned by New and Connect for a namespace that
	// is not 1 to 64 ASCII letters, digits, '_' or '-' (it names NATS
	// subjects, a stream and a bucket).
	ErrBadNamespace = errors.New("natsbus: a namespace is 1 to 64 letters, digits, '_' or '-'")

	// ErrNotDelivered is the Err of a line handed back to the hub: NATS
	// did not take it, so nobody got it. Its words are what the line's
	// sender is told.
	ErrNotDelivered = errors.New("the servers cannot reach each other now, try again")
)

var namespaceRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// An Option configures a Bus.
type Option func(*config)

type config struct {
	heartbeat      time.Duration
	logger         *slog.Logger
	maxLine        int
	maxPeerClients int
	streamBytes    int64
	natsOpts       []nats.Option // Connect's
	nkeyFile       string        // Connect's
}

// WithHeartbeat sets how often the process says it is alive. A process
// that dies without a word has its clients leave for everyone after five
// heartbeats without one, and at most six: 5 to 6 seconds with the
// default of [DefaultHeartbeat]. New panics if d is not positive.
func WithHeartbeat(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			panic(fmt.Sprintf("natsbus: WithHeartbeat(%v): the heartbeat must be positive", d))
		}
		c.heartbeat = d
	}
}

// WithLogger sets where the bus logs what it could not do: messages it
// dropped, missed or refused, a state it could not send. The default
// discards. New panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			panic("natsbus: WithLogger(nil): the logger must not be nil")
		}
		c.logger = l
	}
}

// WithMaxLine sets the longest text, in bytes, that the bus takes from its
// peers in a line, a whisper, a topic, a reason or an announcement: a
// message with a longer one is malformed. It must be at least the hubs'
// line limit ([chatroom.WithBufferSize]); the default is
// [DefaultMaxLine]. New panics if n is not positive.
func WithMaxLine(n int) Option {
	return func(c *config) {
		if n <= 0 {
			panic(fmt.Sprintf("natsbus: WithMaxLine(%d): the limit must be positive", n))
		}
		c.maxLine = n
	}
}

// WithMaxPeerClients sets the most clients the bus believes one peer has:
// a state with more is refused, and so is a join of one more. The
// default is [DefaultMaxPeerClients]. New panics if n is not positive.
func WithMaxPeerClients(n int) Option {
	return func(c *config) {
		if n <= 0 {
			panic(fmt.Sprintf("natsbus: WithMaxPeerClients(%d): the limit must be positive", n))
		}
		c.maxPeerClients = n
	}
}

// WithStreamBytes bounds the lines' stream, when the bus creates it: past
// n bytes, the oldest lines go, whichever room they were said in (rooms
// come and go, and each keeps its last lines until then). The default is
// [DefaultStreamBytes]; a stream that exists keeps its own bound. New
// panics if n is not positive.
func WithStreamBytes(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			panic(fmt.Sprintf("natsbus: WithStreamBytes(%d): the bound must be positive", n))
		}
		c.streamBytes = n
	}
}

// WithCredsFile has [Connect] authenticate with a NATS credentials file
// (a user JWT and its nkey seed, as nsc writes them). New ignores it.
func WithCredsFile(path string) Option {
	return func(c *config) { c.natsOpts = append(c.natsOpts, nats.UserCredentials(path)) }
}

// WithNkeyFile has [Connect] authenticate with the nkey whose seed is in
// the file at path (a user nkey the server's configuration names). New
// ignores it.
func WithNkeyFile(path string) Option {
	return func(c *config) { c.nkeyFile = path }
}

// WithUserInfo has [Connect] authenticate with a user and password (a
// user and password in the URL do the same). New ignores it.
func WithUserInfo(user, password string) Option {
	return func(c *config) { c.natsOpts = append(c.natsOpts, nats.UserInfo(user, password)) }
}

// WithNATSOptions adds options of nats.go's to those [Connect] connects
// with (TLS: nats.RootCAs, nats.ClientCert; a token: nats.Token). They
// come after Connect's own, so they may replace them. New ignores them.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(c *config) { c.natsOpts = append(c.natsOpts, opts...) }
}

// Bus is a [chatroom.Bus] over NATS for one hub. Make one with [New] or
// [Connect] and hand it to one hub with [chatroom.WithBus]; the hub opens
// and closes it.
type Bus struct {
	nc    *nats.Conn
	owned bool // Connect made nc: Close closes it
	js    jetstream.JetStream
	ns    string
	id    string // this process's name on the bus: random, new for each Bus
	cfg   config
	log   *slog.Logger
	subj  subjects

	names  jetstream.KeyValue             // the names bucket, from Open
	toHub  func(chatroom.BusMessage) bool // the hub's deliver, from Open
	held   []chatroom.BusMessage          // the receiver's: for the hub, not handed over yet (see deliver)
	ctx    context.Context                // ends when Close begins: the stream's reads stop
	cancel context.CancelFunc
	opened time.Time // when Open subscribed; the receiver's clock for names of unknown processes

	in      chan *nats.Msg           // everything received on core NATS, for the receiver
	subs    []*nats.Subscription     // the presence subject and this process's own
	out     chan *item               // to publish, for the publisher
	acks    chan pendingAck          // lines published, waiting for the stream's acknowledgement
	failed  chan chatroom.BusMessage // lines not delivered, for the receiver to hand back
	results chan fetchResult         // the stream's answers, for the receiver
	cmdWake chan struct{}            // cmds has something; buffered, 1
	asked   chan struct{}            // stateAsks has something; buffered, 1
	relWake chan struct{}            // releases has something; buffered, 1
	done    chan struct{}            // closed by Close
	wg      sync.WaitGroup           // the bus's goroutines
	once    sync.Once

	perSubject atomic.Int64 // the stream's MaxMsgsPerSubject as last seen
	streamMu   sync.Mutex   // one update of the stream at a time

	mu        sync.Mutex
	cmds      []command            // Subscribe and Unsubscribe, in order, for the receiver
	peers     map[string]*peer     // the other processes heard from, by id
	where     map[string]string    // which peer holds each name of a peer's client, by nameKey
	stateAsks map[string]bool      // peers that asked for this process's state
	claimed   map[string]uint64    // names this process's clients hold, by key, with their revision (0 while claiming)
	releases  []release            // names to release, for the releaser
	lastState map[string]time.Time // when a state was last sent to each peer (the publisher's)

	malformed *burstLog // messages that could not be read, logged once a second at most
	refusals  *burstLog // messages refused by a limit, logged once a second at most
	failures  *burstLog // lines NATS did not take

	published, dropped, lost, recovered, received, lines atomic.Uint64
}

// subjects are the NATS names of a hub's namespace.
type subjects struct {
	ev     string // presence
	to     string // "chatroom.NS.to.": + a bus id, that process's own
	mine   string // this process's own
	line   string // "chatroom.NS.line.": + a room token, the stream's subjects
	live   string // "chatroom.NS.live.": + a room token, where the stream re-publishes
	stream string // the lines' stream
	bucket string // the names' bucket
	direct string // the stream's direct get API
}

func newSubjects(ns, id string) subjects {
	p := "chatroom." + ns + "."
	return subjects{
		ev:     p + "ev",
		to:     p + "to.",
		mine:   p + "to." + id,
		line:   p + "line.",
		live:   p + "live.",
		stream: "chatroom_" + ns + "_lines",
		bucket: "chatroom_" + ns + "_names",
		direct: "$JS.API.DIRECT.GET.chatroom_" + ns + "_lines",
	}
}

// Stats counts what a Bus did, for logs and tests.
type Stats struct {
	Peers     int    // other processes serving the hub now
	Published uint64 // messages published
	Dropped   uint64 // messages not published: the queue was full, NATS was unreachable, or a whisper's recipient unknown
	Lost      uint64 // presence messages of other processes known to be missed, and lines known to be lost
	Malformed uint64 // messages received that could not be read
	Refused   uint64 // messages received that a limit refused
	Recovered uint64 // lines read from the stream after a gap
	Received  uint64 // messages received on core NATS, of every kind
	Lines     uint64 // lines of rooms received on their live subjects (one message of the stream may carry several)
}

// Connect connects to the NATS server at url (a comma-separated list is
// fine; a user and password may be in it) with the options a bus wants,
// and returns a bus for the hub whose namespace is ns (the demo's -room);
// the bus closes the connection when it closes. The connection
// reconnects forever, every 250ms, queues nothing while disconnected (see
// the package documentation for what that means), uses the inbox prefix
// _INBOX_chatroom_NS (so that a deployment can keep replies to the chat
// processes), and authenticates as [WithCredsFile], [WithNkeyFile] or
// [WithUserInfo] say. It returns an error wrapping
// jetstream.ErrJetStreamNotEnabled if the server has no JetStream. Use
// [New] to bring a connection of your own.
func Connect(url, ns string, opts ...Option) (*Bus, error) {
	if !namespaceRule.MatchString(ns) {
		return nil, fmt.Errorf("%w: %q", ErrBadNamespace, ns)
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	natsOpts := []nats.Option{
		nats.Name("chatroom " + ns),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.NoEcho(),
		nats.CustomInboxPrefix(InboxPrefix(ns)),
	}
	if cfg.nkeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.nkeyFile)
		if err != nil {
			return nil, fmt.Errorf("natsbus: the nkey seed: %w", err)
		}
		natsOpts = append(natsOpts, o)
	}
	natsOpts = append(natsOpts, cfg.natsOpts...)
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("natsbus: connecting to %s: %w", url, err)
	}
	b, err := New(nc, ns, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
	defer cancel()
	if _, err := b.js.AccountInfo(ctx); err != nil {
		nc.Close()
		if errors.Is(err, nats.ErrNoResponders) {
			err = jetstream.ErrJetStreamNotEnabled // nobody answers JetStream's API: the server runs without it
		}
		return nil, fmt.Errorf("natsbus: %s: %w", url, err)
	}
	b.owned = true
	return b, nil
}

// InboxPrefix is the inbox prefix [Connect] gives the connections of
// namespace ns: the chat processes subscribe to InboxPrefix(ns)+".>" for
// the answers of JetStream.
func InboxPrefix(ns string) string { return "_INBOX_chatroom_" + ns }

// New returns a bus for the hub whose namespace is ns over nc, which stays
// the caller's: close it after the hub. nc needs JetStream. For the gap
// behaviour the package documents, connect with nats.ReconnectBufSize(-1)
// (otherwise what is said in a gap may be sent late, up to the buffer's
// size); with nats.NoEcho() the process does not receive its own presence
// messages back. New does nothing on the network: Open creates the
// stream and the bucket if need be.
func New(nc *nats.Conn, ns string, opts ...Option) (*Bus, error) {
	if !namespaceRule.MatchString(ns) {
		return nil, fmt.Errorf("%w: %q", ErrBadNamespace, ns)
	}
	cfg := config{heartbeat: DefaultHeartbeat, logger: slog.New(slog.DiscardHandler),
		maxLine: DefaultMaxLine, maxPeerClients: DefaultMaxPeerClients, streamBytes: DefaultStreamBytes}
	for _, o := range opts {
		o(&cfg)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxPending), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsbus: %w", err)
	}
	var id [idLen / 2]byte
	rand.Read(id[:])
	b := &Bus{
		nc:        nc,
		js:        js,
		ns:        ns,
		id:        hex.EncodeToString(id[:]),
		cfg:       cfg,
		log:       cfg.logger.With("namespace", ns),
		in:        make(chan *nats.Msg, inQueue),
		out:       make(chan *item, outQueue),
		acks:      make(chan pendingAck, maxPending),
		failed:    make(chan chatroom.BusMessage, 1024),
		results:   make(chan fetchResult, maxFetches),
		cmdWake:   make(chan struct{}, 1),
		asked:     make(chan struct{}, 1),
		relWake:   make(chan struct{}, 1),
		done:      make(chan struct{}),
		peers:     make(map[string]*peer),
		where:     make(map[string]string),
		stateAsks: make(map[string]bool),
		claimed:   make(map[string]uint64),
		lastState: make(map[string]time.Time),
	}
	b.subj = newSubjects(ns, b.id)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.malformed = newBurstLog(b.log, "natsbus: dropped malformed messages")
	b.refusals = newBurstLog(b.log, "natsbus: refused messages over a limit")
	b.failures = newBurstLog(b.log, "natsbus: lines not delivered: NATS did not take them")
	return b, nil
}

// ID is this process's name on the bus: [chatroom.ClientInfo] Peer for its
// clients, on the other processes.
func (b *Bus) ID() string { return b.id }

// Stats returns the bus's counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	n := len(b.peers)
	b.mu.Unlock()
	return Stats{Peers: n, Published: b.published.Load(), Dropped: b.dropped.Load(), Lost: b.lost.Load(),
		Malformed: b.malformed.total.Load(), Refused: b.refusals.total.Load(), Recovered: b.recovered.Load(),
		Received: b.received.Load(), Lines: b.lines.Load()}
}

// Open makes sure the names bucket and the lines stream exist, subscribes
// to the hub's presence subject and this process's own, and starts the
// bus's goroutines; the first thing it publishes is a hello, so that the
// other processes send their states. The hub calls it once. If it fails,
// the hub stops and does not call Close: Open releases what it took
// itself (after Connect, the connection too).
func (b *Bus) Open(ctx context.Context, deliver func(chatroom.BusMessage) bool) error {
	if err := b.open(ctx, deliver); err != nil {
		b.unsubscribeAll()
		if b.owned {
			b.nc.Close()
		}
		return err
	}
	b.wg.Add(4)
	go b.publisher()
	go b.acknowledged()
	go b.receiver()
	go b.releaser()
	return nil
}

func (b *Bus) open(ctx context.Context, deliver func(chatroom.BusMessage) bool) error {
	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	b.toHub = deliver
	names, err := b.openBucket(ctx)
	if err != nil {
		return err
	}
	b.names = names
	if err := b.openStream(ctx); err != nil {
		return err
	}
	for _, s := range []string{b.subj.ev, b.subj.mine} {
		sub, err := b.nc.ChanSubscribe(s, b.in)
		if err != nil {
			return fmt.Errorf("natsbus: subscribing to %s: %w", s, err)
		}
		b.subs = append(b.subs, sub)
	}
	if err := b.nc.FlushWithContext(ctx); err != nil { // the server knows the subscriptions before the hello
		return fmt.Errorf("natsbus: subscribing: %w", err)
	}
	b.opened = time.Now()
	return nil
}

func (b *Bus) unsubscribeAll() {
	for _, s := range b.subs {
		s.Unsubscribe()
	}
	b.subs = nil
}

// Publish queues what one of the hub's clients did, to be published in
// order. It never waits: with 16 384 messages queued, a line is handed
// back to the hub as not delivered, and anything else is dropped and
// counted, and made up for by a hello once the queue drains.
func (b *Bus) Publish(m chatroom.BusMessage) {
	it := newItem(m)
	if it == nil {
		return
	}
	select {
	case b.out <- it:
	case <-b.done:
	default:
		b.dropped.Add(1)
		if it.kind == chatroom.BusLine {
			b.fail([]*item{it}, errors.New("the publishing queue is full"))
		}
	}
}

// Subscribe has the receiver subscribe to the room's live subject, read
// its last n lines from the stream, and hand the hub one BusHistory with
// them, then the room's lines said after them, in order. It never waits.
func (b *Bus) Subscribe(room string, n int) {
	b.command(command{room: room, n: max(n, 1), subscribe: true})
}

// Unsubscribe has the receiver drop the room's live subject. It never
// waits.
func (b *Bus) Unsubscribe(room string) {
	b.command(command{room: room})
}

func (b *Bus) command(c command) {
	b.mu.Lock()
	b.cmds = append(b.cmds, c)
	b.mu.Unlock()
	wake(b.cmdWake)
}

// wake signals ch, a buffered channel of one, unless it is signalled
// already.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Close publishes what is queued and a goodbye, so that the other
// processes count this one's clients gone at once, releases the names its
// clients hold, and stops the bus; after [Connect], it closes the
// connection too. It waits at most 3s for NATS. The hub calls it as it
// closes, if it opened the bus; Close may be called again, and should be
// for a bus whose hub never served.
func (b *Bus) Close() error {
	b.once.Do(func() {
		close(b.done)
		b.cancel()
		b.wg.Wait()
		b.unsubscribeAll()
		b.js.CleanupPublisher()
		b.malformed.close()
		b.refusals.close()
		b.failures.close()
		if b.owned {
			b.nc.Close()
		}
	})
	return nil
}

// nameKey is the key of a name in the names bucket: names are unique
// ignoring case, as the hub's are, and keys allow fewer characters than
// names by address have.
func nameKey(name string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(name)))
}

// roomToken is the token of a room's subjects: its name in lower case
// (rooms are unique ignoring case), with '.' written '~', which room
// names do not have. It reports false for what is not a room's name.
func roomToken(room string) (string, bool) {
	room = strings.TrimPrefix(room, "#")
	if len(room) == 0 || len(room) > 32 {
		return "", false
	}
	b := make([]byte, len(room))
	for i := 0; i < len(room); i++ {
		switch c := room[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_', c == '-':
			b[i] = c
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '.':
			b[i] = '~'
		default:
			return "", false
		}
	}
	return string(b), true
}
