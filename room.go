package chatroom

import (
	"context"
	"net"
	"strings"
	"time"
)

// This file is a room: the handle a program holds, and the record the hub
// goroutine keeps of who is in it and what was said there.

// A Room is one chat room. [NewRoom] makes a room that is a whole server
// on its own; [Hub.Room] returns one of a hub's rooms. A Room is safe for
// concurrent use. A room made by NewRoom that has served or broadcast runs
// a goroutine until [Room.Shutdown] or [Room.Close].
type Room struct {
	hub  *Hub
	name string // as it was first opened
	key  string // roomKey(name): rooms are unique ignoring case
	own  bool   // made by NewRoom: its hub is its own, and Serve, Shutdown, Close and Stats are the hub's

	// The hub goroutine's (state.go).
	kept      bool          // stays open when empty: the default room, and rooms opened by Hub.Room
	closed    bool          // closed when its last member left: a room of that name opened later is another
	members   []*Client     // a member's index here is in its seat's places
	sorted    []Member      // the members, sorted, once asked for since the last change; nil: not built
	lists     []*sharedList // the lines sent to everyone since the last flushAll, one list per form
	history   history       // the last lines said here
	lastID    uint64        // the ID of the last line said here
	topicText string        // "" for none
	topicBy   string        // who set the topic
	topicAt   time.Time     // when
	topicLock bool          // mode +t: the topic is its operators' to set
	secret    bool          // mode +s: listed only to its members
	opened    time.Time     // when it was opened, by the hub's clock
	stats     Stats         // the room's own: Clients, Joined, Left, Messages
	remote    remoteRoom    // the peers' members, with a bus (bus.go)
	notices   notices       // its join and leave notices (notices.go)

	// With a bus: the hub asked for the room's lines (subscribed), has
	// them (ready), and requests to enter it wait for them (waiting).
	subscribed bool
	ready      bool
	waiting    []request
}

// NewRoom returns a room configured by opts that is a whole server on its
// own: hand it listeners with [Room.Serve] and connections with
// [Room.ServeConn]. See the With functions for each option and its
// default; the options of rooms ([WithMaxRooms], [WithDefaultRoom]) do not
// apply, and the room has no /join or /rooms. It panics, naming the
// option, if an option's value is invalid. No goroutine starts until the
// room serves.
func NewRoom(opts ...Option) *Room {
	h := NewHub(append(opts, func(o *options) { o.maxRooms = 1 })...)
	h.lobby.own = true
	return h.lobby
}

// newRoom returns a room of h called name, kept open when empty if kept.
func newRoom(h *Hub, name string, kept bool) *Room {
	r := &Room{
		hub:     h,
		name:    name,
		key:     roomKey(name),
		kept:    kept,
		history: newHistory(h.opts.history),
		opened:  h.opts.now(),
	}
	if h.opts.bus == nil {
		// So that its IDs go on increasing when it is opened again, or
		// the process restarts: a client recovering from before is told
		// it missed more than the history keeps, not shown lines it
		// has seen. With a bus, the bus numbers the lines.
		r.lastID = uint64(time.Now().UnixMicro())
	}
	return r
}

// Name returns the room's name, as it was first opened.
func (r *Room) Name() string { return r.name }

// Serve accepts connections on ln and serves each with [Room.ServeConn]
// in its own goroutine: as [Hub.Serve], but the newcomers land in this
// room. Serve always returns a non-nil error and closes ln: after Shutdown
// or Close of the room (of its hub) it returns [ErrRoomClosed]; otherwise
// the Accept error that stopped it, wrapped.
func (r *Room) Serve(ln net.Listener) error {
	return r.hub.serveListener(ln, textFace{}, r)
}

// ServeConn serves one connection that the caller has already accepted,
// as [Hub.ServeConn], landing it in this room, and blocks until the client
// has left and its connection is closed.
func (r *Room) ServeConn(conn net.Conn) error {
	return r.hub.serve(conn, textFace{}, r, false)
}

// ServeFace is Serve for clients that speak face's protocol; those that
// land in a room at once land in this one.
func (r *Room) ServeFace(ln net.Listener, face Face) error {
	return r.hub.serveListener(ln, face, r)
}

// ServeConnFace is ServeConn for a client that speaks face's protocol.
func (r *Room) ServeConnFace(conn net.Conn, face Face) error {
	return r.hub.serve(conn, face, r, false)
}

// Hub returns the hub the room is in: for a room made by NewRoom, a hub
// of its own, with this room alone.
func (r *Room) Hub() *Hub { return r.hub }

// Broadcast sends "<ts> * text" to every client in the room. The text is
// cleaned like a client's line; it is queued for every client before
// Broadcast returns, and reaches each of them in order with the other
// messages. It returns [ErrRoomClosed] once Shutdown or Close was called.
func (r *Room) Broadcast(text string) error {
	return r.hub.broadcast(r, text)
}

// Clients returns everyone in the room now, sorted by name ignoring case:
// a snapshot taken by the hub goroutine. With a bus ([WithBus]) it lists
// the peers' clients too, each with its Peer. It returns nil for a room
// that has not served yet or has closed.
func (r *Room) Clients() []ClientInfo {
	return r.hub.clients(r)
}

// Kick removes the client named name (ignoring case) from the room's hub:
// it is sent "* kicked: <reason>" ("* kicked" for an empty reason), which
// is written before its connection closes, and the others see "<ts> *
// <name> left (kicked: <reason>)". The reason is cleaned like a chat line.
// Kick returns [ErrNoSuchClient] if nobody in the room has that name, and
// [ErrRoomClosed] once the room has closed. With a bus ([WithBus]), a
// client of a peer is kicked by its own hub, which the bus asks to: Kick
// returns once the request is on its way.
func (r *Room) Kick(name, reason string) error {
	return r.hub.kick(r, name, reason)
}

// Stats returns a snapshot of the room's counters: for a room made by
// NewRoom, its hub's (see [Hub.Stats]); for a room of a hub, Clients,
// Joined, Left and Messages are the room's own, and the rest the hub's.
func (r *Room) Stats() Stats {
	if r.own {
		return r.hub.Stats()
	}
	return r.hub.stats(r)
}

// finalStats puts r's own counters in s, the hub's.
func (r *Room) finalStats(s Stats) Stats {
	s.Clients, s.Joined, s.Left, s.Messages = r.stats.Clients, r.stats.Joined, r.stats.Left, r.stats.Messages
	return s
}

// Shutdown closes a room made by NewRoom gracefully, as [Hub.Shutdown]
// does. A room of a hub closes with its hub: for one, Shutdown does
// nothing and returns [ErrHubRoom].
func (r *Room) Shutdown(ctx context.Context) error {
	if !r.own {
		return ErrHubRoom
	}
	return r.hub.Shutdown(ctx)
}

// Close closes a room made by NewRoom at once, as [Hub.Close] does. A
// room of a hub closes with its hub: for one, Close does nothing and
// returns [ErrHubRoom].
func (r *Room) Close() error {
	if !r.own {
		return ErrHubRoom
	}
	return r.hub.Close()
}

// online is how many are in r, the peers' members included.
func (r *Room) online() int { return len(r.members) + r.remoteCount() }

// info describes r.
func (r *Room) info() RoomInfo {
	return RoomInfo{Name: r.name, Clients: r.online(), Topic: r.topicText, TopicBy: r.topicBy, TopicAt: r.topicAt,
		TopicLocked: r.topicLock, Secret: r.secret, Opened: r.opened}
}

// roomModes is the modes a room's operators may set and unset
// (Client.SetMode): true for a member's mode, which names the member.
var roomModes = map[string]bool{
	"+t": false, "-t": false, "+s": false, "-s": false,
	"+o": true, "-o": true, "+v": true, "-v": true,
}

// roomName returns name without a leading "#", and whether it is a room's
// name: 1 to 32 ASCII letters, digits and _-.
func roomName(name string) (string, bool) {
	name = strings.TrimPrefix(name, "#")
	if len(name) == 0 || len(name) > 32 {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '-', c == '.':
		default:
			return "", false
		}
	}
	return name, true
}

// roomKey is the key of a room's name: rooms are unique ignoring ASCII
// case and a leading "#".
func roomKey(name string) string {
	return strings.ToLower(strings.TrimPrefix(name, "#"))
}

// history is the last lines said in a room: a ring of the last n+1, where
// n is WithHistory's, so that a client that missed lines can be told
// whether it missed more than n (see after).
type history struct {
	lines []*Message // oldest first from next, once full
	next  int        // where the next line goes, once full
	size  int        // n+1
}

func newHistory(n int) history { return history{size: n + 1} }

// add keeps m, the oldest falling out.
func (h *history) add(m *Message) {
	switch {
	case len(h.lines) < h.size:
		h.lines = append(h.lines, m)
	default:
		h.lines[h.next] = m
		h.next = (h.next + 1) % h.size
	}
}

// at returns the i-th oldest line kept.
func (h *history) at(i int) *Message { return h.lines[(h.next+i)%len(h.lines)] }

// after returns where, in the history (h.at), the lines said after the
// one numbered since begin, at most most of them before its end; or, for
// since 0, the last most lines. gap
// reports that the lines after since are more than most, or may be more
// than the history keeps (since is older than every line kept, and lines
// have fallen out), or that since is not a line of this room's at all (it
// was opened again): the lines from first are then the last most.
func (h *history) after(since uint64, most int) (first int, gap bool) {
	n := len(h.lines)
	most = max(0, min(most, h.size-1))
	first = n - min(n, most) // the last most: never the extra line a full ring keeps
	switch {
	case n == 0 || since == 0:
	case since > h.at(n-1).ID: // newer than anything said here: the room was opened again
		gap = true
	case since < h.at(0).ID && n == h.size: // lines may have fallen out after since
		gap = true
	default:
		i := 0
		for i < n && h.at(i).ID <= since {
			i++
		}
		if n-i > most {
			gap = true
		} else {
			first = i
		}
	}
	return first, gap
}
