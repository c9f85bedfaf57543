package chatroom

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults for the options of [NewRoom].
const (
	// DefaultBufferSize is the longest message a client may send, in bytes,
	// not counting the line ending.
	DefaultBufferSize = 1024

	// DefaultWriteTimeout bounds one write to a client. A client whose
	// socket does not take a batch of queued lines within it is evicted as
	// too slow.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultOutboxSize is how many messages may wait for one client before
	// it counts as too slow. A healthy reader drains its whole outbox in one
	// write, so the outbox only fills for a client that stopped reading; it
	// is deep enough to absorb a join storm or a burst from every sender at
	// once. It costs nothing while empty: the queue grows on demand and is
	// released when the client goes idle.
	DefaultOutboxSize = 1024

	// DefaultOutboxBytes is how many bytes may wait for one client, lines
	// and replies together, before it counts as too slow: enough for its
	// whole outbox of lines at the default buffer size.
	DefaultOutboxBytes = 1 << 20

	// DefaultMaxClients is no limit.
	DefaultMaxClients = 0

	// DefaultIdleTimeout is never.
	DefaultIdleTimeout = 0

	// DefaultMaxPerHost is how many connections one IP address may have
	// open at once.
	DefaultMaxPerHost = 16

	// DefaultJoinRate and DefaultJoinBurst limit how fast one IP address
	// may open connections: DefaultJoinBurst at once, then
	// DefaultJoinRate a second.
	DefaultJoinRate  = 2.0
	DefaultJoinBurst = 10

	// DefaultRate and DefaultRateBurst limit how fast the room reads one
	// client's lines: DefaultRateBurst at once, then DefaultRate a second.
	// No person typing or pasting a screenful reaches them.
	DefaultRate      = 20.0
	DefaultRateBurst = 50

	// DefaultHostRate and DefaultHostBurst limit how fast the hub reads
	// the lines of all the connections of one address together: twice
	// one client's rate, so that opening more connections buys a flooder
	// nothing, while a household behind one address still talks freely.
	DefaultHostRate  = 40.0
	DefaultHostBurst = 100

	// DefaultHostPrefix4 and DefaultHostPrefix6 are the prefix lengths
	// that make one address for the per-address limits: an IPv4 address,
	// and an IPv6 address's /64, the least a subscriber is given.
	DefaultHostPrefix4 = 32
	DefaultHostPrefix6 = 64

	// DefaultHistory is how many chat lines a newcomer is shown: none.
	DefaultHistory = 0

	// DefaultRoomName is the room a hub's newcomers land in.
	DefaultRoomName = "lobby"

	// DefaultMaxRooms is how many rooms a hub may have open at once.
	DefaultMaxRooms = 1000
)

// An Option configures a [Hub] and its rooms, or a [Room]; pass options
// to [NewHub] or [NewRoom].
type Option func(*options)

// options is the configuration of one hub, fixed once NewHub returns.
type options struct {
	bufferSize   int                                                       // longest accepted line, in bytes, without "\r\n"
	maxClients   int                                                       // admission limit; 0 means none
	idleTimeout  time.Duration                                             // time allowed to complete a line; 0 means forever
	writeTimeout time.Duration                                             // deadline for one batched write; 0 means none
	outboxSize   int                                                       // messages queued per client before eviction
	outboxBytes  int                                                       // bytes queued per client before eviction
	maxPerHost   int                                                       // connections open at once from one IP address; 0 means no limit
	joinRate     float64                                                   // new connections a second from one IP address; 0 (with joinBurst 0) means no limit
	joinBurst    int                                                       // ... and how many at once
	rate         float64                                                   // lines a second read from one client; 0 (with rateBurst 0) means no limit
	rateBurst    int                                                       // ... and how many at once
	hostRate     float64                                                   // lines a second read from one address's connections together; 0 (with hostBurst 0) means no limit
	hostBurst    int                                                       // ... and how many at once
	hostPrefix4  int                                                       // the prefix length of an IPv4 address's account
	hostPrefix6  int                                                       // the prefix length of an IPv6 address's account
	history      int                                                       // chat lines kept for newcomers
	maxRooms     int                                                       // rooms open at once
	defaultRoom  string                                                    // where newcomers land
	auth         func(ctx context.Context, e AuthEvent) (AuthReply, error) // names or refuses a client; nil: named by address
	filter       func(e FilterEvent) (FilterReply, error)                  // rewrites or rejects a line; nil: none
	events       func(Event)                                               // observes the hub; nil: none
	bus          Bus                                                       // joins the hub to its peers; nil: none
	logger       *slog.Logger                                              // never nil
	now          func() time.Time                                          // the clock for timestamps; never nil
}

func defaultOptions() options {
	return options{
		bufferSize:   DefaultBufferSize,
		maxClients:   DefaultMaxClients,
		idleTimeout:  DefaultIdleTimeout,
		writeTimeout: DefaultWriteTimeout,
		outboxSize:   DefaultOutboxSize,
		outboxBytes:  DefaultOutboxBytes,
		maxPerHost:   DefaultMaxPerHost,
		joinRate:     DefaultJoinRate,
		joinBurst:    DefaultJoinBurst,
		rate:         DefaultRate,
		rateBurst:    DefaultRateBurst,
		hostRate:     DefaultHostRate,
		hostBurst:    DefaultHostBurst,
		hostPrefix4:  DefaultHostPrefix4,
		hostPrefix6:  DefaultHostPrefix6,
		history:      DefaultHistory,
		maxRooms:     DefaultMaxRooms,
		defaultRoom:  DefaultRoomName,
		logger:       slog.New(slog.DiscardHandler),
		now:          time.Now,
	}
}

// WithBufferSize sets the longest message a client may send, in bytes, not
// counting the newline (or "\r\n"). A longer line is answered with
// "* error: message too long (max n bytes)" and discarded up to its newline;
// the client stays connected. The default is [DefaultBufferSize]. n must be
// positive; NewRoom panics otherwise.
func WithBufferSize(n int) Option {
	return func(o *options) {
		if n <= 0 {
			panic(fmt.Sprintf("chatroom: WithBufferSize(%d): size must be positive", n))
		}
		o.bufferSize = n
	}
}

// WithMaxClients limits how many clients may be in the room at once. A
// client that arrives while the room is full is sent "* room is full (n
// clients)" and disconnected; nobody else notices. 0, the default, means no
// limit. NewRoom panics if n is negative.
func WithMaxClients(n int) Option {
	return func(o *options) {
		if n < 0 {
			panic(fmt.Sprintf("chatroom: WithMaxClients(%d): limit must not be negative", n))
		}
		o.maxClients = n
	}
}

// WithIdleTimeout disconnects a client that says nothing for d: it is sent
// "* idle timeout" and the others see it leave. The clock starts when the
// client joins and restarts only at a line that is relayed: empty lines,
// lines that are empty once cleaned, lines too long, and bytes that never
// end a line do not keep a client in. 0, the default, means never.
// NewRoom panics if d is negative.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			panic(fmt.Sprintf("chatroom: WithIdleTimeout(%v): timeout must not be negative", d))
		}
		o.idleTimeout = d
	}
}

// WithWriteTimeout bounds each write to a client. A client that does not
// accept a write within d is evicted as too slow, and the others see
// "<ts> * <name> left (too slow)". It also bounds how long [Room.Shutdown]
// waits for a client to take its last lines. The default is
// [DefaultWriteTimeout]; 0 means writes never time out, which leaves a
// stuck client to the outbox limit alone. NewRoom panics if d is negative.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			panic(fmt.Sprintf("chatroom: WithWriteTimeout(%v): timeout must not be negative", d))
		}
		o.writeTimeout = d
	}
}

// WithOutboxSize sets how many messages may wait to be written to one
// client. A message that finds the outbox full evicts that client as too
// slow instead of making anybody wait. The default is [DefaultOutboxSize].
// n must be positive; NewRoom panics otherwise.
func WithOutboxSize(n int) Option {
	return func(o *options) {
		if n <= 0 {
			panic(fmt.Sprintf("chatroom: WithOutboxSize(%d): size must be positive", n))
		}
		o.outboxSize = n
	}
}

// WithOutboxBytes sets how many bytes may wait to be written to one
// client, lines and replies together: a client whose outbox would pass it
// is evicted as too slow, as one whose outbox has too many lines
// ([WithOutboxSize]). It bounds what a client that asks for big answers
// (IRC's NAMES or WHO of a big room) and never reads can make the hub
// hold. The default is [DefaultOutboxBytes]. n must be positive; NewHub
// panics otherwise.
func WithOutboxBytes(n int) Option {
	return func(o *options) {
		if n <= 0 {
			panic(fmt.Sprintf("chatroom: WithOutboxBytes(%d): size must be positive", n))
		}
		o.outboxBytes = n
	}
}

// WithMaxPerHost limits how many connections one IP address may have open
// at once, joined or on their way in. The one past the limit is sent "* too
// many connections from your address (max n)" and disconnected; nobody
// else notices. The address is the host part of the connection's
// RemoteAddr; loopback addresses, and addresses that are not IP addresses
// (a net.Pipe, an adapter that gives none), are not limited. A reverse
// proxy on the same host should hand the room connections whose RemoteAddr
// is the client's. The default is [DefaultMaxPerHost]; 0 means no limit.
// NewRoom panics if n is negative.
func WithMaxPerHost(n int) Option {
	return func(o *options) {
		if n < 0 {
			panic(fmt.Sprintf("chatroom: WithMaxPerHost(%d): limit must not be negative", n))
		}
		o.maxPerHost = n
	}
}

// WithJoinRate limits how fast one IP address may open connections: burst
// at once, then perSecond a second (a token bucket per address). A
// connection over the rate is sent "* too many connections, try again
// later" and disconnected; nobody else notices, and it does not use up the
// address's allowance. Addresses are counted as for [WithMaxPerHost], and
// the same ones are exempt. The default is [DefaultJoinRate] a second with
// a burst of [DefaultJoinBurst]; (0, 0) means no limit. NewRoom panics if
// either is negative or not finite, or if only one of them is 0.
func WithJoinRate(perSecond float64, burst int) Option {
	return func(o *options) {
		checkRate("WithJoinRate", perSecond, burst)
		o.joinRate, o.joinBurst = perSecond, burst
	}
}

// WithHistory keeps the room's last n chat lines (say and /me lines, never
// whispers, joins or leaves) and sends them to each newcomer right after
// its welcome, unchanged. A newcomer gets at most its outbox size minus
// one of them. The lines are the ones already formatted for the others:
// keeping them costs n shared slices. The default is [DefaultHistory];
// NewRoom panics if n is negative.
func WithHistory(n int) Option {
	return func(o *options) {
		if n < 0 {
			panic(fmt.Sprintf("chatroom: WithHistory(%d): n must not be negative", n))
		}
		o.history = n
	}
}

// WithRateLimit limits how fast the room reads one client's lines: burst
// at once, then perSecond a second. A client that sends faster is read
// more slowly, like an IRC server's fake lag: it waits, the back-pressure
// reaches it through its connection, nothing it sent is dropped, and
// nobody else is slowed. Every line counts, commands and empty lines
// included. On Unix, Serve gives a *net.TCPListener's socket a 16 KiB
// receive buffer for it, which the connections it accepts inherit, so
// that what a client sends beyond its rate waits on the client's side.
// The default is [DefaultRate] a second with a burst of
// [DefaultRateBurst]; (0, 0) turns it off. NewRoom panics if either is
// negative or not finite, or if only one of them is 0.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(o *options) {
		checkRate("WithRateLimit", perSecond, burst)
		o.rate, o.rateBurst = perSecond, burst
	}
}

// WithHostRate limits how fast the hub reads the lines of all the
// connections of one address together: burst at once, then perSecond a
// second, shared by them in the order they come, on top of each client's
// own rate ([WithRateLimit]). A flooder gains nothing by opening more
// connections: they are read more slowly, nothing is dropped, and nobody
// else is slowed. Addresses are counted as for [WithMaxPerHost], and the
// same ones (loopback) are exempt. The default is [DefaultHostRate] a
// second with a burst of [DefaultHostBurst]; (0, 0) turns it off. NewHub
// panics if either is negative or not finite, or if only one of them is
// 0.
func WithHostRate(perSecond float64, burst int) Option {
	return func(o *options) {
		checkRate("WithHostRate", perSecond, burst)
		o.hostRate, o.hostBurst = perSecond, burst
	}
}

// WithHostPrefix sets which addresses count as one for the per-address
// limits ([WithMaxPerHost], [WithJoinRate], [WithHostRate]): those in one
// network of v4 bits for IPv4, of v6 bits for IPv6. The defaults,
// [DefaultHostPrefix4] and [DefaultHostPrefix6], count an IPv4 address
// alone and an IPv6 address by its /64, the network one subscriber is
// given. NewHub panics if v4 is not 1 to 32 or v6 not 1 to 128.
func WithHostPrefix(v4, v6 int) Option {
	return func(o *options) {
		if v4 < 1 || v4 > 32 || v6 < 1 || v6 > 128 {
			panic(fmt.Sprintf("chatroom: WithHostPrefix(%d, %d): prefix lengths are 1 to 32 for IPv4 and 1 to 128 for IPv6", v4, v6))
		}
		o.hostPrefix4, o.hostPrefix6 = v4, v6
	}
}

// checkRate panics, naming option, unless perSecond and burst are a token
// bucket's: both finite and positive, or both 0 for none.
func checkRate(option string, perSecond float64, burst int) {
	switch {
	case perSecond < 0 || burst < 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0):
		panic(fmt.Sprintf("chatroom: %s(%v, %d): rate and burst must be finite and not negative", option, perSecond, burst))
	case (perSecond == 0) != (burst == 0):
		panic(fmt.Sprintf("chatroom: %s(%v, %d): rate and burst are both positive, or both 0 for no limit", option, perSecond, burst))
	}
}

// WithAuth names, or refuses, each client before it joins. f runs on the
// client's own goroutine, after a TLS handshake, with the connection and
// what the client asked for (see [AuthEvent]): it may read from the
// connection (a token in the first line: read exactly what you need, the
// rest is the client's chat), look at a *tls.Conn's peer certificates, or
// at what an adapter carries (a WebSocket's request). Its context ends
// when the write timeout passes or the hub begins to close; a client
// whose hook has not returned by then is sent "* error: authentication
// timed out" and closed, and Shutdown waits for f to return, so f must
// honour its context.
//
// The reply's Name is the client's name, cleaned like a chat line; it
// must be unique in the hub, ignoring case, or the client is sent "*
// error: name taken" and closed. An error refuses the client with "*
// error: <the error's text>". A panic is recovered and logged, and refuses
// the client. With an auth hook, /nick is refused: names are set by the
// server. NewHub panics if f is nil.
func WithAuth(f func(ctx context.Context, e AuthEvent) (AuthReply, error)) Option {
	return func(o *options) {
		if f == nil {
			panic("chatroom: WithAuth(nil): hook must not be nil")
		}
		o.auth = f
	}
}

// A FilterEvent is a line about to be relayed, as the filter
// ([WithFilter]) sees it.
type FilterEvent struct {
	Room   string // the room it is said in; "" for a whisper
	Name   string // the sender's name
	Addr   string // the sender's remote address
	Text   string // the text, cleaned (for /me, the action without "/me ")
	Action bool   // a /me line
	To     string // a whisper's recipient, as the sender named it; "" for a room
}

// A FilterReply is the filter's answer for a line it lets through.
type FilterReply struct {
	// Text is the text to relay, cleaned again; "" relays nothing, and
	// tells the sender nothing.
	Text string
}

// WithFilter rewrites or rejects each line before it is relayed: a chat
// line, a /me line or a whisper. f returns the text to relay, or an error
// to reject the line, which the sender is told ("* error: message
// rejected") and nobody else sees; the error is logged at debug level. f
// runs on the sender's own goroutine, so a slow filter slows that sender
// alone; a panic is recovered and logged, and disconnects the sender.
// NewHub panics if f is nil.
func WithFilter(f func(e FilterEvent) (FilterReply, error)) Option {
	return func(o *options) {
		if f == nil {
			panic("chatroom: WithFilter(nil): filter must not be nil")
		}
		o.filter = f
	}
}

// WithDefaultRoom names the room a hub's newcomers land in, which stays
// open, empty or not, as long as the hub. The default is
// [DefaultRoomName]. NewHub panics if name is not 1 to 32 ASCII letters,
// digits and _-. (a leading "#" is ignored).
func WithDefaultRoom(name string) Option {
	return func(o *options) {
		n, ok := roomName(name)
		if !ok {
			panic(fmt.Sprintf("chatroom: WithDefaultRoom(%q): a room's name is 1 to 32 ASCII letters, digits and _-.", name))
		}
		o.defaultRoom = n
	}
}

// WithMaxRooms limits how many rooms a hub has open at once, the default
// room included: /join of a room that is not open is refused past it ("*
// error: too many rooms (max n)"). 1 means the default room alone: then
// there is no /join or /rooms. The default is [DefaultMaxRooms]. NewHub
// panics if n is less than 1.
func WithMaxRooms(n int) Option {
	return func(o *options) {
		if n < 1 {
			panic(fmt.Sprintf("chatroom: WithMaxRooms(%d): a hub has at least one room", n))
		}
		o.maxRooms = n
	}
}

// WithBus makes the hub one of several, in as many processes, that serve
// one hub through b (see [Bus]; package natsbus is one over NATS). Every
// client of every peer is then in the room: it sees their lines and
// notices, /who and [Room.Clients] list them, /msg and [Room.Kick] reach
// them, names are unique across every peer, and with [WithHistory] the
// history is the whole room's. What is still this room's own: the client
// limit ([WithMaxClients]) and the per-address limits count its own
// clients; Stats counts what happened here (Stats.Clients: its own
// clients; Stats.Messages: its own clients' lines and its own notices),
// and WithEvents reports what its own clients do. NewRoom panics if b is
// nil.
func WithBus(b Bus) Option {
	return func(o *options) {
		if b == nil {
			panic("chatroom: WithBus(nil): the bus must not be nil")
		}
		o.bus = b
	}
}

// WithEvents calls f with every event of the room (joins, leaves with
// their reason, messages after the filter, whispers included, renames), in
// the order the room saw them, on a goroutine of its own. The room never
// waits for f: events wait in a backlog of 10 000, and when f falls that
// far behind, the room drops events, counts them in Stats.EventsDropped,
// and logs once per burst. Shutdown and Close hand f what is queued and
// wait for it to return. A panic in f is recovered and logged; f goes on
// with the next event. NewRoom panics if f is nil.
func WithEvents(f func(Event)) Option {
	return func(o *options) {
		if f == nil {
			panic("chatroom: WithEvents(nil): observer must not be nil")
		}
		o.events = f
	}
}

// WithLogger sends the room's structured logs (joins, leaves with their
// reason, evictions, refusals, failed TLS handshakes, accept errors) to l.
// The default discards them. The room never waits for l's handler: records
// go to it from a goroutine of the room's, through a backlog of 1024; when
// the handler falls that far behind, records are dropped, and their count
// is logged once it catches up. Shutdown and Close wait for the handler to
// take what was queued. NewRoom panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			panic("chatroom: WithLogger(nil): logger must not be nil")
		}
		o.logger = l
	}
}

// WithClock sets the clock that stamps messages. The default is time.Now;
// a fixed clock makes output reproducible in tests and examples. Deadlines
// always use the real time. NewRoom panics if now is nil.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now == nil {
			panic("chatroom: WithClock(nil): clock must not be nil")
		}
		o.now = now
	}
}
