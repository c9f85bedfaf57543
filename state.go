package chatroom

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"
)

// This file is the hub goroutine's: everything shared in a hub (the rooms,
// who is in each, every name, the counters) and what the hub does with
// each request. Nothing here runs on another goroutine, and nothing here
// waits: outboxes take a line at once or report full (write.go).

// state is what the hub goroutine owns.
type state struct {
	hub        *Hub
	rooms      map[string]*Room    // open rooms, by roomKey of their name
	clients    []*Client           // everyone registered; a client's seat.index is its place here
	byName     map[string]*Client  // everyone registered, by foldName of their name
	looks      map[string]*Client  // everyone registered, by the skeleton of their name
	held       map[string]heldName // names given up lately, by skeleton (see nameGrace)
	expiry     []heldLook          // held's keys in the order their grace ends
	stats      Stats               // the hub's, all but what completeStats adds
	slow       []*Client           // clients whose outbox filled, to evict once the request is done
	dirty      []*Client           // clients with lines queued since the last flushAll
	used       []*sharedList       // the lists with lines since the last flushAll
	out        *socketWriter       // the hub's non-blocking writes (see Client.flush)
	mark       uint64              // counts deliveries, to know a list or a client already reached by one
	scratch    [][]byte            // a welcome and its history, on their way to an outbox
	inboxSpare []BusMessage        // the bus's inbox taken last time, for deliver to fill again (bus.go)
	events     *eventSink          // nil without WithEvents
	bus        Bus                 // nil without WithBus

	remotes   map[string]*remoteClient // the peers' clients, by foldName of their name (bus.go); nil without a bus
	elsewhere map[string]*Room         // rooms only peers have members in, by roomKey

	storms []*Room      // rooms counting their join and leave notices (notices.go)
	tick   *time.Ticker // once a second while there are storms; nil otherwise
}

// seat is the hub goroutine's record of one client. It lives in the
// client, for speed, but only this file reads or writes it.
type seat struct {
	index     int         // place in state.clients; -1 while not registered
	name      string      // the client's name, as the hub knows it
	joined    time.Time   // when it registered, by the hub's clock
	places    []place     // the rooms it is in, in the order it entered them
	got       uint64      // the last hub-wide delivery that reached it (state.mark)
	form      Form        // how it is written to (the reader's until the client registers: see Client.seat)
	own       Form        // how what it does itself is written to it (likewise)
	away      string      // its away message, "" for none
	realName  string      // its real name (Registration.RealName)
	dirty     bool        // in state.dirty
	roster    bool        // it is told who is in each room it enters (Registration.Roster)
	single    bool        // it is always in one room: the text protocol
	op        bool        // an operator of the hub (AuthReply.Operator, Client.SetOperator)
	invisible bool        // IRC's user mode +i (Client.SetInvisible)
	reason    LeaveReason // why it left, once it has
}

// place is a client's membership of one room: the room, the client's
// index in its members, and its standing there.
type place struct {
	room  *Room
	at    int
	op    bool      // an operator of the room
	voice bool      // mode +v
	told  bool      // the room's members were told it joined, or counted it (notices.go)
	pend  int       // 1 + where it is in the room's pending joins, or 0 (notices.go)
	since time.Time // when it entered, by the real clock
}

// Batch sizes, in lines.
const (
	// relayBatch is the most lines a reader hands the hub in one request
	// (at most an eighth of the outbox, so one request cannot fill a
	// healthy client's outbox by itself).
	relayBatch = 64
	// flushBatch is how many queued lines make a batch worth writing at
	// once, without waiting for the hub to run out of work: beyond it,
	// bigger batches save little, and waiting longer only risks the
	// outbox.
	flushBatch = 256
	// maxShared bounds a room's list of lines for one form while requests
	// keep coming and flushAll does not run: each client's view is flushed
	// at flushBatch lines, but the list is only reused once nobody views
	// it.
	maxShared = 4 * flushBatch
)

func newState(h *Hub) *state {
	s := &state{
		hub:    h,
		rooms:  make(map[string]*Room),
		byName: make(map[string]*Client),
		looks:  make(map[string]*Client),
		held:   make(map[string]heldName),
		out:    newSocketWriter(),
		events: h.events,
		bus:    h.opts.bus,
	}
	s.keep(h.lobby)
	return s
}

// A request is what a goroutine outside the hub asks of the hub goroutine,
// which takes requests one at a time, in the order they arrive. Where an
// answer is due, it goes on a buffered channel, so the hub never waits for
// whoever asked.
type request struct {
	kind   requestKind
	client *Client       // the client asking, if any
	room   *Room         // the room concerned, if any
	name   string        // a client's or a room's name
	named  bool          // askRegister: name was asked for (or the auth hook's): refused if taken, not made unique
	text   string        // a reason, a topic, parting words; askRegister: the real name
	msg    *Message      // askWhisper, askAnnounce
	bytes  []byte        // askPost
	on     bool          // askOperator, askInvisible
	lines  []*Message    // askSay: lines said in room, in order
	since  uint64        // askJoin: the last line the client saw
	move   bool          // askJoin: leave every other room
	limit  int           // askMembers
	reason LeaveReason   // askLeave
	form   Form          // askForm
	own    Form          // askForm
	reply  chan<- answer // the answer, for the requests that get one
}

type requestKind uint8

const (
	askRegister  requestKind = iota + 1 // a client registers (and lands in room, if set)
	askJoin                             // a client enters a room
	askPart                             // a client leaves room
	askSay                              // lines a client said in room
	askWhisper                          // a client whispers msg
	askNick                             // a client takes a new name
	askMembers                          // who is in room
	askRooms                            // every open room
	askLookup                           // describe a client
	askRoomInfo                         // describe room
	askSetTopic                         // a client sets room's topic
	askMode                             // a client changes room's modes
	askOperator                         // a client becomes an operator of the hub, or not
	askInvisible                        // a client's user mode +i
	askPost                             // a reply for a client, after what it handed over before
	askKick                             // Room.Kick, Hub.Kick, or an operator putting someone out of room
	askAway                             // a client's away message
	askForm                             // a client's forms
	askLeave                            // a client's reader has stopped
	askAnnounce                         // Broadcast
	askStats                            // Stats
	askClients                          // Clients
	askOpen                             // Hub.Room
	askFind                             // a room by name
	askPeer                             // what happened on a peer (bus.go)
)

// answer is the hub's answer to a request.
type answer struct {
	err     error
	name    string       // askRegister: the name given
	room    *Room        // askOpen, askFind
	members []Member     // askMembers: sorted, at most the limit
	count   int          // askMembers: how many there are
	rooms   []RoomInfo   // askRooms
	infos   []ClientInfo // askClients
	// The rarer answers are pointed to, so that an answer stays small: a
	// reader waiting for one holds it on its stack and in the channel it
	// comes on.
	info     *ClientInfo // askLookup; nil with err
	roomInfo *RoomInfo   // askRoomInfo; nil with err
	stats    *Stats      // askStats
	wait     chan answer // where the answer comes (Hub.answers)
}

// await takes the answer from where it comes.
func (a *answer) await() { *a = <-a.wait }

// handle carries out one request. It is the hub goroutine's only
// dispatch.
func (s *state) handle(q request) {
	var a answer
	switch q.kind {
	case askRegister:
		if s.park(q, q.room) {
			return
		}
		a.name, a.err = s.register(q.client, q.name, q.named, q.text, q.room)
	case askJoin:
		r, opened, err := s.roomToJoin(q.client, q.name)
		if err == nil && s.park(q, r) {
			return
		}
		if a.err = err; err == nil {
			s.join(q.client, r, q.since, q.move, opened)
		}
	case askPart:
		a.err = s.part(q.client, q.room, q.text)
	case askSay:
		s.say(q.client, q.room, q.lines)
	case askWhisper:
		a.err = s.whisper(q.client, q.msg)
	case askNick:
		a.err = s.rename(q.client, q.name)
	case askMembers:
		a.members, a.count, a.err = s.members(q.room, q.limit)
	case askRooms:
		a.rooms = s.roomList(q.client)
	case askLookup:
		if info, err := s.lookup(q.name); err != nil {
			a.err = err
		} else {
			a.info = &info
		}
	case askRoomInfo:
		if info, err := s.roomInfo(q.client, q.room); err != nil {
			a.err = err
		} else {
			a.roomInfo = &info
		}
	case askSetTopic:
		a.err = s.setTopic(q.client, q.room, q.text)
	case askMode:
		a.err = s.setMode(q.client, q.room, q.text, q.name)
	case askOperator:
		if s.registered(q.client) {
			q.client.seat.op = q.on
		}
	case askInvisible:
		if c := q.client; s.registered(c) && c.seat.invisible != q.on {
			c.seat.invisible = q.on
			if q.on {
				s.stats.Invisible++
			} else {
				s.stats.Invisible--
			}
		}
	case askPost:
		s.post(q.client, [][]byte{q.bytes}) // registered or not; nothing for a closed client
	case askKick:
		a.err = s.kick(q.client, q.room, q.name, q.text)
	case askAway:
		q.client.seat.away = q.text
	case askForm:
		s.setForm(q.client, q.form, q.own)
	case askLeave:
		s.depart(q.client, q.reason, q.text)
	case askAnnounce:
		s.announce(q.room, q.msg)
	case askStats:
		stats := s.statsOf(q.room)
		a.stats = &stats
	case askClients:
		if r := q.room; q.client != nil && r != nil && (r.closed || r.secret && !q.client.in(r)) {
			a.err = ErrNoSuchRoom
		} else {
			a.infos = s.clientList(r)
		}
	case askOpen:
		a.room, a.err = s.open(q.name)
		if a.err == nil {
			s.keep(a.room)
		}
	case askFind:
		if a.room = s.rooms[roomKey(q.name)]; a.room == nil {
			a.err = ErrNoSuchRoom
		}
	case askPeer:
		s.fromInbox()
	}
	if q.reply != nil {
		q.reply <- a
	}
	s.evictSlow()
}

// park keeps q, a request to enter r, until r's lines are had from the
// bus, if the hub has one and they are not yet: it reports whether it
// did. The request is handled again then (see state.history).
func (s *state) park(q request, r *Room) bool {
	if s.bus == nil || r == nil || r.ready || r.closed {
		return false
	}
	s.subscribe(r)
	r.waiting = append(r.waiting, q)
	return true
}

// emit hands e to the events goroutine, if the hub has an observer.
func (s *state) emit(e Event) {
	if s.events != nil {
		s.events.emit(e)
	}
}

// now is the hub's clock.
func (s *state) now() time.Time { return s.hub.opts.now() }

// register lets c into the hub under name, or refuses it, and lands it in
// room if room is not nil. It returns the name c has.
func (s *state) register(c *Client, name string, named bool, realName string, room *Room) (string, error) {
	h := s.hub
	if max := h.opts.maxClients; max > 0 && len(s.clients) >= max {
		h.log.Info("refused: the hub is full", "addr", c.addr, "max_clients", max)
		return "", ErrRoomFull
	}
	if s.taken(name, c) {
		if named || s.bus != nil { // through a bus, the reader claimed the name it has
			h.log.Info("refused: name taken", "addr", c.addr, "name", name)
			return "", ErrNameTaken
		}
		name = s.freeName(name)
	}
	c.seat = seat{index: len(s.clients), name: name, joined: s.now(), form: c.seat.form, own: c.seat.own,
		realName: realName, roster: c.roster, single: c.single, op: c.op}
	s.clients = append(s.clients, c)
	s.claim(c)
	s.stats.Joined++
	s.stats.Clients = len(s.clients)
	s.stats.Peak = max(s.stats.Peak, s.stats.Clients)
	if room != nil && !room.closed {
		s.enter(c, room, 0, true, false)
	} else {
		h.log.Info("joined", "client", name, "addr", c.addr, "face", c.face.Name())
	}
	return name, nil
}

// freeName returns name with the smallest suffix "#2", "#3", ... that
// nobody has: for clients named by an address that is not theirs alone
// (Unix sockets, adapters).
func (s *state) freeName(name string) string {
	for n := 2; ; n++ {
		if try := name + "#" + strconv.Itoa(n); !s.taken(try, nil) {
			return try
		}
	}
}

// nameGrace is how long a name someone gave up (it left, or took
// another) is held for the address it came from: nobody else can take it,
// or one that looks like it, meanwhile, and pass for them.
const nameGrace = 10 * time.Second

// heldName is a name given up lately.
type heldName struct {
	until time.Time  // by the real clock
	host  netip.Addr // who may take it back
}

// taken reports whether name, or one that looks like it (see skeleton),
// is someone's other than c's (c may be nil), here or on a peer, or held
// for another address since it was given up.
func (s *state) taken(name string, c *Client) bool {
	key, look := foldName(name), skeleton(name)
	if other := s.byName[key]; other != nil && other != c {
		return true
	}
	if other := s.looks[look]; other != nil && other != c {
		return true
	}
	if s.remoteTaken(key) {
		return true
	}
	if h, ok := s.held[look]; ok {
		if time.Now().After(h.until) {
			delete(s.held, look)
		} else if c == nil || h.host != c.host {
			return true
		}
	}
	return false
}

// claim records c's name as its.
func (s *state) claim(c *Client) {
	s.byName[foldName(c.seat.name)] = c
	s.looks[skeleton(c.seat.name)] = c
}

// unclaim gives up c's name, holding it for c's address for nameGrace if
// it is a name one could ask for: a name made of an address, or made
// unique with a suffix, cannot be taken by anyone, and a storm of brief
// connections holds nothing.
func (s *state) unclaim(c *Client) {
	delete(s.byName, foldName(c.seat.name))
	look := skeleton(c.seat.name)
	if s.looks[look] == c {
		delete(s.looks, look)
	}
	if !validNick(c.seat.name) {
		return
	}
	now := time.Now()
	s.expireHeld(now)
	if _, ok := s.held[look]; !ok && len(s.held) >= maxHeld {
		return
	}
	until := now.Add(nameGrace)
	s.held[look] = heldName{until: until, host: c.host}
	s.expiry = append(s.expiry, heldLook{look, until})
}

// maxHeld bounds the names held: a churn of names cannot grow the hub's
// memory past it; past it, names are simply not held. (Renames cool down,
// so the names one client can give up in a grace are few.)
const maxHeld = 1 << 14

// heldLook is a held name's skeleton, and when the grace it was held for
// ends.
type heldLook struct {
	look  string
	until time.Time
}

// expireHeld forgets the held names whose grace is over, oldest first: each
// name is forgotten once, so the hub's work is one step per name held.
func (s *state) expireHeld(now time.Time) {
	n := 0
	for ; n < len(s.expiry) && now.After(s.expiry[n].until); n++ {
		if h, ok := s.held[s.expiry[n].look]; ok && !now.Before(h.until) {
			delete(s.held, s.expiry[n].look)
		}
	}
	s.expiry = s.expiry[n:]
}

// registered reports whether c is in the hub: it may have been evicted
// while its reader was still asking.
func (s *state) registered(c *Client) bool {
	i := c.seat.index
	return i >= 0 && i < len(s.clients) && s.clients[i] == c
}

// open returns the room called name, opening it if it is not open.
func (s *state) open(name string) (*Room, error) {
	key := roomKey(name)
	if r := s.rooms[key]; r != nil {
		return r, nil
	}
	if max := s.hub.opts.maxRooms; len(s.rooms) >= max {
		return nil, ErrTooManyRooms
	}
	r := s.elsewhere[key] // the peers' members are in it already
	if r != nil {
		delete(s.elsewhere, key)
		r.closed = false
	} else {
		r = newRoom(s.hub, name, false)
	}
	s.rooms[key] = r
	s.stats.Rooms = len(s.rooms)
	s.hub.log.Info("room opened", "room", r.name)
	return r, nil
}

// keep makes r a room that stays open when empty, and opens it if it was
// not.
func (s *state) keep(r *Room) {
	r.kept = true
	if s.rooms[r.key] == nil {
		s.rooms[r.key] = r
		s.stats.Rooms = len(s.rooms)
	}
}

// closeIfEmpty closes r if nobody is in it and it is not kept: its
// history goes with it.
func (s *state) closeIfEmpty(r *Room) {
	if r.kept || r.closed || len(r.members) > 0 || len(r.waiting) > 0 {
		return
	}
	r.closed = true
	delete(s.rooms, r.key)
	s.stats.Rooms = len(s.rooms)
	if r.remoteCount() > 0 { // still open on the peers
		if s.elsewhere == nil {
			s.elsewhere = make(map[string]*Room)
		}
		s.elsewhere[r.key] = r
	}
	s.hub.log.Info("room closed", "room", r.name)
}

// roomToJoin returns the room called name for c to enter, opening it if
// need be (opened).
func (s *state) roomToJoin(c *Client, name string) (r *Room, opened bool, err error) {
	if !s.registered(c) {
		return nil, false, ErrNotRegistered
	}
	r = s.rooms[roomKey(name)]
	if r != nil && c.in(r) {
		return nil, false, ErrAlreadyInRoom
	}
	if r == nil {
		r, err = s.open(name)
		return r, err == nil && r.online() == 0, err
	}
	return r, false, nil
}

// join puts c in r (see Client.Join and Client.Move); the client that
// opened a room by entering it is its operator.
func (s *state) join(c *Client, r *Room, since uint64, move, opened bool) {
	if move {
		for len(c.seat.places) > 0 {
			s.leaveRoom(c, c.seat.places[0].room, &Message{Kind: KindPart, Time: s.now(), From: c.seat.name, User: c.user, Host: c.hostName}, ReasonPart)
		}
	}
	s.enter(c, r, since, false, opened)
}

// in reports whether c is in r.
func (c *Client) in(r *Room) bool {
	return c.placeIn(r) >= 0
}

// placeIn returns the index of r in c's places, or -1.
func (c *Client) placeIn(r *Room) int {
	for i, p := range c.seat.places {
		if p.room == r {
			return i
		}
	}
	return -1
}

// enter puts c in r, as an operator of it if op: the others there are
// told, c is told in its own form (welcomed, on arrival) and sent the
// history (see Client.Join for since).
func (s *state) enter(c *Client, r *Room, since uint64, arrival, op bool) {
	now := s.now()
	joined := &Message{Kind: KindJoin, Time: now, Room: r.name, From: c.seat.name, User: c.user, Host: c.hostName, Addr: c.addr}
	told := s.tellJoin(r, joined) // before c is a member: c is told in its own form

	c.seat.places = append(c.seat.places, place{room: r, at: len(r.members), op: op, told: told, since: time.Now()})
	r.members = append(r.members, c)
	r.sorted = nil
	r.stats.Joined++
	r.stats.Clients = len(r.members)
	c.publishRooms()
	if !told {
		s.pend(c, r)
	}

	own := *joined
	own.forms = formCache{}
	own.ID = r.lastID // where the history that follows ends, and a later recovery starts
	own.Count = r.online()
	own.Topic = r.topicText
	if c.seat.roster {
		own.Members = s.roster(r)
	}
	form := c.seat.own
	if arrival {
		own.Kind, form = KindWelcome, c.seat.form
	}
	lines := s.scratch[:0]
	if b := s.hub.format(form, &own); b != nil {
		lines = append(lines, b)
	}
	lines = s.appendHistory(lines, c, r, since)
	s.post(c, lines) // copies them
	clear(lines)
	s.scratch = lines[:0]
	s.hub.log.Info("joined", "client", c.seat.name, "room", r.name, "addr", c.addr, "online", r.online())
	s.publish(BusMessage{Kind: BusJoin, Room: r.name, Name: c.seat.name, Addr: c.addr, Time: now})
	s.emit(Event{Kind: EventJoin, Time: now, Room: r.name, Name: c.seat.name, Addr: c.addr})
}

// appendHistory appends to lines, in c's form, what c is owed of r's
// history: the last lines a newcomer gets with since 0; otherwise what c
// missed after the line numbered since (see Client.Join).
//
// What c is owed takes at most half its outbox, with what waits for it
// already: a client that enters many rooms at once, each with its history
// owed, is given what it can take, and told of a gap (KindGap) for the
// rest, rather than cut off as too slow.
func (s *state) appendHistory(lines [][]byte, c *Client, r *Room, since uint64) [][]byte {
	most := min(s.hub.opts.history, s.hub.opts.outboxSize/2-c.queuedLines()-len(lines))
	first, gap := r.history.after(since, most)
	lines = slices.Grow(lines, 1+len(r.history.lines)-first)
	if gap {
		g := &Message{Kind: KindGap, Time: s.now(), Room: r.name, Since: since}
		if b := s.hub.format(c.seat.form, g); b != nil {
			lines = append(lines, b)
		}
	}
	for i := first; i < len(r.history.lines); i++ {
		if b := r.history.at(i).bytesFor(c.seat.form, s.hub.format); b != nil {
			lines = append(lines, b)
		}
	}
	return lines
}

// part takes c out of r, with text as its parting words.
func (s *state) part(c *Client, r *Room, text string) error {
	if !s.registered(c) || !c.in(r) {
		return ErrNotInRoom
	}
	s.leaveRoom(c, r, &Message{Kind: KindPart, Time: s.now(), From: c.seat.name, User: c.user, Host: c.hostName, Text: text}, ReasonPart)
	return nil
}

// leaveRoom takes c out of r, and tells r's members, and c in its own
// form, with m (a KindPart or KindKick, its Room set here). reason is for
// the event.
func (s *state) leaveRoom(c *Client, r *Room, m *Message, reason LeaveReason) {
	told := c.seat.places[c.placeIn(r)].told
	s.unseat(c, r)
	m.Room = r.name
	if m.Kind == KindKick {
		s.broadcast(r, []*Message{m}, nil, 0) // an operator's act: told, whatever the storm
	} else {
		s.tellLeave(r, m, told, 0)
	}
	form := c.seat.own
	if m.Kind == KindKick {
		form = c.seat.form // the one put out did not do it
	}
	if b := s.hub.format(form, m); b != nil {
		s.post(c, [][]byte{b})
	}
	s.hub.log.Info("left", "client", c.seat.name, "room", r.name, "reason", reason.String())
	s.publish(BusMessage{Kind: BusPart, Room: r.name, Name: c.seat.name, Text: m.Text, Time: m.Time})
	s.emit(Event{Kind: EventLeave, Time: m.Time, Room: r.name, Name: c.seat.name, Addr: c.addr, Reason: reason})
	s.closeIfEmpty(r)
}

// unseat takes c out of r's members, and r out of c's places, without a
// word to anyone.
func (s *state) unseat(c *Client, r *Room) {
	i := c.placeIn(r)
	r.unpend(c, i)
	at := c.seat.places[i].at
	c.seat.places = slices.Delete(c.seat.places, i, i+1)
	last := len(r.members) - 1
	if moved := r.members[last]; moved != c {
		r.members[at] = moved
		moved.seat.places[moved.placeIn(r)].at = at
	}
	r.members[last] = nil
	r.members = r.members[:last]
	r.sorted = nil
	r.stats.Left++
	r.stats.Clients = len(r.members)
	c.unshareFrom(r)
	c.publishRooms()
	if len(r.members) == 0 {
		s.unsubscribe(r)
	}
}

// publishRooms tells c's reader the rooms c is in now.
func (c *Client) publishRooms() {
	rooms := make([]*Room, len(c.seat.places))
	for i, p := range c.seat.places {
		rooms[i] = p.room
	}
	c.rooms.Store(&rooms)
}

// say relays lines c said in r to everyone there, numbered and kept in
// r's history. The lines of a sender that is no longer in r (it was put
// out, or evicted, while they were on their way) are dropped.
func (s *state) say(c *Client, r *Room, lines []*Message) {
	if !s.registered(c) || !c.in(r) {
		return
	}
	s.stats.Messages += uint64(len(lines))
	if !c.seat.places[c.placeIn(r)].told { // its arrival was counted in a storm, not told (notices.go)
		s.tellSpeaker(c, r)
	}
	if s.bus != nil {
		s.publishLines(r, lines) // relayed once the bus hands them back, in order
		return
	}
	s.relay(r, lines, c)
}

// relay relays lines said in r (numbered already, with a bus) to everyone
// there, keeping them in its history; actor, if not nil, is the one of
// this hub's clients who said them, who gets them in its own form.
func (s *state) relay(r *Room, lines []*Message, actor *Client) {
	for _, m := range lines {
		if s.bus == nil {
			r.lastID++
			m.ID = r.lastID
		} else {
			r.lastID = m.ID
		}
		r.history.add(m)
	}
	n := uint64(len(lines))
	r.stats.Messages += n
	if actor != nil && !actor.in(r) {
		actor = nil
	}
	s.broadcast(r, lines, actor, 0)
	if s.events != nil && actor != nil {
		for _, m := range lines {
			s.emit(Event{Kind: EventMessage, Time: m.Time, Room: r.name, Name: m.From, Addr: actor.addr,
				Text: m.Text, Action: m.Kind == KindAction})
		}
	}
}

// whisper sends m to the client it names alone, and to its sender in its
// own form.
func (s *state) whisper(c *Client, m *Message) error {
	if !s.registered(c) {
		return ErrNotRegistered
	}
	if to := s.byName[foldName(m.To)]; to != nil {
		m.To = to.seat.name
		if b := m.bytesFor(to.seat.form, s.hub.format); b != nil {
			s.post(to, [][]byte{b})
		}
	} else if name, ok := s.whisperRemote(m); ok {
		m.To = name
	} else {
		return ErrNoSuchClient
	}
	if b := s.hub.format(c.seat.own, m); b != nil {
		s.post(c, [][]byte{b})
	}
	s.emit(Event{Kind: EventMessage, Time: m.Time, Name: c.seat.name, Addr: c.addr, Text: m.Text, To: m.To})
	return nil
}

// rename gives c the name name, unless someone else has it, ignoring case;
// everyone who shares a room with c is told, and c in its own form.
func (s *state) rename(c *Client, name string) error {
	if !s.registered(c) {
		return ErrNotRegistered
	}
	if s.taken(name, c) {
		return ErrNameTaken
	}
	old := c.seat.name
	s.unclaim(c)
	c.seat.name = name
	s.claim(c)
	now := s.now()
	m := &Message{Kind: KindNick, Time: now, From: name, User: c.user, Host: c.hostName, Old: old, Rooms: c.roomNames()}
	for _, p := range c.seat.places {
		p.room.sorted = nil
	}
	if name != old {
		mark := s.dedupe()
		c.seat.got = mark
		for _, p := range c.seat.places {
			s.broadcast(p.room, []*Message{m}, nil, mark)
		}
		s.publish(BusMessage{Kind: BusNick, Old: old, Name: name, Time: now})
		s.hub.log.Info("renamed", "client", old, "name", name)
		for _, p := range c.seat.places {
			s.emit(Event{Kind: EventNick, Time: now, Room: p.room.name, Name: name, Addr: c.addr, Old: old})
		}
	}
	if b := s.hub.format(c.seat.own, m); b != nil {
		s.post(c, [][]byte{b})
	}
	return nil
}

// roomNames lists the names of the rooms c is in.
func (c *Client) roomNames() []string {
	names := make([]string, len(c.seat.places))
	for i, p := range c.seat.places {
		names[i] = p.room.name
	}
	return names
}

// members returns r's members, sorted, at most limit of them (all for
// limit <= 0), and how many there are.
func (s *state) members(r *Room, limit int) ([]Member, int, error) {
	if r.closed {
		return nil, 0, ErrNoSuchRoom
	}
	all := s.roster(r)
	if limit > 0 && len(all) > limit {
		all = all[:limit:limit]
	}
	return all, r.online(), nil
}

// roster returns r's members, the peers' included, sorted by name
// ignoring case: built once after each change, then shared (never
// modified).
func (s *state) roster(r *Room) []Member {
	if r.sorted == nil {
		all := make([]Member, 0, r.online())
		for _, c := range r.members {
			p := c.seat.places[c.placeIn(r)]
			all = append(all, Member{Name: c.seat.name, Operator: p.op, Voiced: p.voice})
		}
		all = r.appendRemoteMembers(all)
		slices.SortFunc(all, func(a, b Member) int { return compareNames(a.Name, b.Name) })
		r.sorted = all
	}
	return r.sorted
}

func compareNames(a, b string) int {
	return cmp.Or(compareFolded(a, b), cmp.Compare(a, b))
}

// compareFolded compares a and b ignoring ASCII case, without allocating.
func compareFolded(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := lowerASCII(a[i]), lowerASCII(b[i])
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func lowerASCII(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + 'a' - 'A'
	}
	return b
}

// roomList lists every open room, sorted by name ignoring case: for a
// client (c not nil), the secret ones only if it is in them.
func (s *state) roomList(c *Client) []RoomInfo {
	rooms := make([]RoomInfo, 0, len(s.rooms))
	for _, r := range s.rooms {
		if !r.secret || c == nil || c.in(r) {
			rooms = append(rooms, r.info())
		}
	}
	rooms = s.appendRemoteRooms(rooms)
	sortRooms(rooms)
	return rooms
}

// lookup describes the client called name.
func (s *state) lookup(name string) (ClientInfo, error) {
	if c := s.byName[foldName(name)]; c != nil {
		return c.info(), nil
	}
	if info, ok := s.remoteInfo(name); ok {
		return info, nil
	}
	return ClientInfo{}, ErrNoSuchClient
}

// info describes c.
func (c *Client) info() ClientInfo {
	return ClientInfo{Name: c.seat.name, Addr: c.addr, Joined: c.seat.joined, Rooms: c.roomNames(),
		Away: c.seat.away, Face: c.face.Name(), Operator: c.seat.op, Invisible: c.seat.invisible,
		User: c.user, Host: c.hostName, RealName: c.seat.realName}
}

// roomInfo describes r for c.
func (s *state) roomInfo(c *Client, r *Room) (RoomInfo, error) {
	if r.closed || r.secret && !c.in(r) {
		return RoomInfo{}, ErrNoSuchRoom
	}
	return r.info(), nil
}

// operates reports whether c may do what r's operators may.
func (c *Client) operates(r *Room) bool {
	if c.seat.op {
		return true
	}
	i := c.placeIn(r)
	return i >= 0 && c.seat.places[i].op
}

// setTopic sets r's topic, and tells its members, c in its own form.
func (s *state) setTopic(c *Client, r *Room, text string) error {
	switch {
	case !s.registered(c) || !c.in(r):
		return ErrNotInRoom
	case r.topicLock && !c.operates(r):
		return ErrNotAllowed
	}
	now := s.now()
	r.topicText, r.topicBy, r.topicAt = text, c.seat.name, now
	m := &Message{Kind: KindTopic, Time: now, Room: r.name, By: c.seat.name, User: c.user, Host: c.hostName, Text: text}
	s.broadcast(r, []*Message{m}, c, 0)
	s.publish(BusMessage{Kind: BusTopic, Room: r.name, Name: c.seat.name, Text: text, Time: now})
	return nil
}

// setMode changes r's mode, as c, an operator of it, asks (see
// Client.SetMode), and tells its members.
func (s *state) setMode(c *Client, r *Room, mode, name string) error {
	switch {
	case !s.registered(c) || !c.in(r):
		return ErrNotInRoom
	case !c.operates(r):
		return ErrNotAllowed
	}
	m := &Message{Kind: KindMode, Time: s.now(), Room: r.name, By: c.seat.name, User: c.user, Host: c.hostName, Text: mode}
	on := mode[0] == '+'
	switch mode[1] {
	case 't':
		r.topicLock = on
	case 's':
		r.secret = on
	default: // a member's mode
		target := s.byName[foldName(name)]
		if target == nil || !target.in(r) {
			return ErrNoSuchClient
		}
		p := &target.seat.places[target.placeIn(r)]
		if mode[1] == 'o' {
			p.op = on
		} else {
			p.voice = on
		}
		r.sorted = nil
		m.From = target.seat.name
	}
	s.broadcast(r, []*Message{m}, c, 0)
	return nil
}

// kick puts the client called name out: of the hub (by the program: by is
// nil; a client that is always in one room), or of r (by an operator of
// it).
func (s *state) kick(by *Client, r *Room, name, reason string) error {
	if by != nil && (!s.registered(by) || !by.in(r)) {
		return ErrNotInRoom
	}
	if by != nil && !by.operates(r) {
		return ErrNotAllowed
	}
	c := s.byName[foldName(name)]
	if c == nil {
		if s.kickRemote(r, name, reason) {
			return nil
		}
		return ErrNoSuchClient
	}
	if r != nil && !c.in(r) {
		return ErrNoSuchClient
	}
	if by == nil || c.seat.single {
		s.depart(c, ReasonKicked, reason)
		return nil
	}
	s.leaveRoom(c, r, &Message{Kind: KindKick, Time: s.now(), From: c.seat.name, By: by.seat.name, User: by.user, Host: by.hostName, Text: reason}, ReasonKicked)
	return nil
}

// setForm gives c new forms. Lines already queued keep the old ones.
func (s *state) setForm(c *Client, form, own Form) {
	c.unshareLines()
	c.seat.form, c.seat.own = form, own
}

// depart takes c out of the hub for reason (with text, a kick's reason or
// parting words), ends its connection as the reason says, and tells
// everyone who shared a room with it. A client that is no longer
// registered (it was evicted while its reader was still stopping) is
// ignored.
func (s *state) depart(c *Client, reason LeaveReason, text string) {
	if !s.registered(c) {
		return
	}
	now := s.now()
	e := reason.effect()
	m := &Message{Kind: KindQuit, Time: now, From: c.seat.name, User: c.user, Host: c.hostName, Reason: reason, Text: text, Rooms: c.roomNames()}
	rooms := make([]*Room, 0, len(c.seat.places))
	told := make([]bool, 0, len(c.seat.places))
	for len(c.seat.places) > 0 {
		p := c.seat.places[0]
		s.unseat(c, p.room)
		rooms, told = append(rooms, p.room), append(told, p.told)
	}
	s.unlist(c, reason)
	var last []byte
	if e.flush {
		last = s.hub.format(c.seat.form, &Message{Kind: KindBye, Time: now, Reason: reason, Text: text})
	}
	c.end(reason, last)
	mark := s.dedupe()
	for i, r := range rooms {
		s.tellLeave(r, m, told[i], mark)
	}
	s.publish(BusMessage{Kind: BusQuit, Name: c.seat.name, Reason: reason, Text: text})
	for _, r := range rooms {
		s.emit(Event{Kind: EventLeave, Time: now, Room: r.name, Name: c.seat.name, Addr: c.addr, Reason: reason})
		s.closeIfEmpty(r)
	}
	if len(rooms) == 0 {
		s.emit(Event{Kind: EventLeave, Time: now, Name: c.seat.name, Addr: c.addr, Reason: reason})
	}
}

// unlist takes c out of the hub's list of clients, counts why, and logs
// it.
func (s *state) unlist(c *Client, reason LeaveReason) {
	last := len(s.clients) - 1
	s.clients[c.seat.index] = s.clients[last]
	s.clients[c.seat.index].seat.index = c.seat.index
	s.clients[last] = nil
	s.clients = s.clients[:last]
	c.seat.index = -1
	c.seat.reason = reason
	s.unclaim(c)
	s.stats.Left++
	s.stats.Clients = len(s.clients)
	if c.seat.invisible {
		s.stats.Invisible--
	}
	log := s.hub.log
	if reason.effect().evicts {
		s.stats.Evicted++
		log.Warn("evicted", "client", c.seat.name, "reason", reason.String())
	} else {
		log.Info("left", "client", c.seat.name, "reason", reason.String())
	}
}

// announce sends m, a Broadcast notice, to r's members, or to everyone
// in the hub if r is nil.
func (s *state) announce(r *Room, m *Message) {
	s.stats.Messages++
	room := ""
	if r != nil {
		room = r.name
	}
	s.announceHere(r, m)
	s.publish(BusMessage{Kind: BusAnnounce, Room: room, Text: m.Text, Time: m.Time})
}

// announceHere sends m, a notice, to this hub's clients in r, or to every
// one of them if r is nil.
func (s *state) announceHere(r *Room, m *Message) {
	if r != nil {
		if !r.closed {
			m.Room = r.name
			r.stats.Messages++
			s.broadcast(r, []*Message{m}, nil, 0)
		}
		return
	}
	mark := s.dedupe()
	for _, r := range s.rooms {
		s.broadcast(r, []*Message{m}, nil, mark)
	}
	for _, c := range s.clients {
		if c.seat.got != mark { // in no room
			if b := m.bytesFor(c.seat.form, s.hub.format); b != nil {
				s.post(c, [][]byte{b})
			}
		}
	}
}

// statsOf returns the hub's counters, with r's own if r is not nil.
func (s *state) statsOf(r *Room) Stats {
	st := s.stats
	if r != nil && !r.own {
		st = r.finalStats(st)
	}
	return s.hub.completeStats(st)
}

// clientList lists r's members, or everyone in the hub if r is nil,
// sorted by name ignoring case.
func (s *state) clientList(r *Room) []ClientInfo {
	list := s.clients
	if r != nil {
		list = r.members
	}
	infos := make([]ClientInfo, 0, len(list))
	for _, c := range list {
		infos = append(infos, c.info())
	}
	infos = s.appendRemoteInfos(infos, r)
	slices.SortFunc(infos, func(a, b ClientInfo) int { return compareNames(a.Name, b.Name) })
	return infos
}

// broadcast queues lines for every member of r, each in its form, once
// per form, in r's list of lines for that form that members with nothing
// else waiting view (Client.share); actor, if not nil, gets them in its own
// form instead. With dedupe (a mark of the hub-wide delivery the lines
// are part of), a member that delivery reached already, through another
// room, is skipped, and the ones reached now are marked. Whoever could not
// take the lines is evicted once the request is done. If an outbox is more
// than half full, broadcast yields before it returns (see yield): a client
// that really stopped reading fills its outbox all the same and is evicted,
// and nobody ever waits for it.
func (s *state) broadcast(r *Room, lines []*Message, actor *Client, dedupe uint64) {
	s.mark++
	mark := s.mark
	if actor != nil {
		s.postOwn(actor, r, lines)
	}
	busy := false
	for _, c := range r.members {
		if c == actor {
			continue
		}
		if dedupe != 0 {
			if c.seat.got == dedupe {
				c.unshareFrom(r) // its view must end where the others' go on
				continue
			}
			c.seat.got = dedupe
		}
		list := s.listFor(r, c.seat.form, lines, mark)
		if list == nil { // its form writes none of these lines
			c.unshareFrom(r)
			continue
		}
		if s.queued(c, c.share(list), len(list.lines)-list.from) > s.hub.opts.outboxSize/2 {
			busy = true
		}
	}
	for _, l := range r.lists {
		if len(l.lines) >= maxShared {
			s.flushAll()
			break
		}
	}
	if busy {
		yield()
	}
}

// dedupe returns a new mark for a delivery that spans rooms: broadcast
// reaches each client once with it.
func (s *state) dedupe() uint64 {
	s.mark++
	return s.mark
}

// postOwn queues lines for actor, who said them in r, in its own form.
func (s *state) postOwn(actor *Client, r *Room, lines []*Message) {
	actor.unshareFrom(r) // its view must end where the others' go on
	var own [][]byte
	for _, m := range lines {
		if b := m.bytesFor(actor.seat.own, s.hub.format); b != nil {
			own = append(own, b)
		}
	}
	if len(own) > 0 {
		s.post(actor, own)
	}
}

// listFor returns r's list of lines for form, with lines appended in
// form as the delivery mark's, once: the first member of that form adds
// them, the others find them there. It returns nil if form writes none of
// them.
func (s *state) listFor(r *Room, form Form, lines []*Message, mark uint64) *sharedList {
	var l *sharedList
	for _, x := range r.lists {
		if x.form == form {
			l = x
			break
		}
	}
	if l == nil {
		l = &sharedList{form: form}
		r.lists = append(r.lists, l)
	}
	if l.mark != mark {
		l.mark, l.from = mark, len(l.lines)
		for _, m := range lines {
			if b := m.bytesFor(form, s.hub.format); b != nil {
				l.lines = append(l.lines, b)
			}
		}
		if len(l.lines) > l.from && !l.used {
			l.used = true
			s.used = append(s.used, l)
		}
	}
	if len(l.lines) == l.from {
		return nil
	}
	return l
}

// evictSlow evicts the clients whose outbox could not take what was
// posted. Evictions are announced with broadcast in turn, which may evict
// more.
func (s *state) evictSlow() {
	for len(s.slow) > 0 {
		c := s.slow[len(s.slow)-1]
		s.slow = s.slow[:len(s.slow)-1]
		s.depart(c, ReasonSlow, "")
	}
}

// post queues lines on c's outbox, to be written by the next flushAll, or
// at once if c's outbox has reached flushBatch lines or half its size. It
// returns how many lines c has waiting; a client that could not take them
// all is put on the list to evict.
func (s *state) post(c *Client, lines [][]byte) int {
	if len(lines) == 0 {
		return 0
	}
	return s.queued(c, c.enqueue(lines, false), len(lines))
}

// queued schedules c's write, now that added lines were queued for it and
// n are waiting (see post), and returns n.
func (s *state) queued(c *Client, n, added int) int {
	switch {
	case n < 0:
		s.slow = append(s.slow, c)
	case n > s.hub.opts.outboxSize/2,
		n >= flushBatch && n-added < flushBatch: // a batch worth a write already
		c.flush(s.out)
	case n > 0 && !c.seat.dirty:
		c.seat.dirty = true
		s.dirty = append(s.dirty, c)
	}
	return n
}

// flushAll writes, or has written, what every client was queued since the
// last call.
func (s *state) flushAll() {
	for i, c := range s.dirty {
		c.seat.dirty = false
		c.flush(s.out)
		s.dirty[i] = nil
	}
	s.dirty = s.dirty[:0]
	// Every view was in dirty, and flush ended each: nobody reads the
	// lists now.
	for i, l := range s.used {
		clear(l.lines)
		l.lines, l.from, l.used = l.lines[:0], 0, false
		s.used[i] = nil
	}
	s.used = s.used[:0]
}

// closeAll ends the hub for every client: on Shutdown each gets its last
// line, written before its connection closes; on Close the connections
// are closed at once.
func (s *state) closeAll(graceful bool) {
	reason := ReasonClosed
	if graceful {
		reason = ReasonShutdown
	}
	now := s.now()
	for len(s.clients) > 0 {
		c := s.clients[len(s.clients)-1]
		for len(c.seat.places) > 0 {
			r := c.seat.places[0].room
			s.unseat(c, r)
			s.emit(Event{Kind: EventLeave, Time: now, Room: r.name, Name: c.seat.name, Addr: c.addr, Reason: reason})
		}
		s.unlist(c, reason)
		var last []byte
		if reason.effect().flush {
			last = s.hub.format(c.seat.form, &Message{Kind: KindBye, Time: now, Reason: reason})
		}
		c.end(reason, last)
	}
}

// format returns m as form writes it, or nil: for a nil form, or a form
// that panics, which is logged.
func (h *Hub) format(form Form, m *Message) (b []byte) {
	if form == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.Error("a form panicked; the message is not sent in it", "kind", m.Kind.String(), "panic", fmt.Sprint(p))
			b = nil
		}
	}()
	return form.Format(m)
}

// unshareFrom turns c's view into a queue of its own if it views one of
// r's lists: lines are about to be added there that are not for c.
func (c *Client) unshareFrom(r *Room) {
	c.mu.Lock()
	if c.viewOf != nil && slices.Contains(r.lists, c.viewOf) {
		c.unshare()
	}
	c.mu.Unlock()
}
