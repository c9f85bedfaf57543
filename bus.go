package chatroom

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// This file is the hub's side of a bus (WithBus): the interface a bus
// implements, what crosses it, and what the hub goroutine does with what
// its peers did. The state methods here are the hub goroutine's, like
// those in state.go.

// A Bus joins a hub to its peers: hubs in other processes that serve the
// same rooms, so that every client of every one of them is in one hub.
// Package natsbus (module github.com/chatroom-go/chatroom/natsbus) is one,
// over NATS. Attach one with [WithBus].
//
// The hub tells its bus what its own clients do, and the bus tells the
// hub what the peers' clients do. Lines said in a room are ordered by the
// bus: the hub hands them to it (BusLine) and relays them, to its own
// clients too, when the bus hands them back numbered, so that every
// process relays a room's lines in the same order, with the same IDs.
// The hub tells the bus which rooms it has members in (Subscribe,
// Unsubscribe): a room's lines reach only the processes that want them.
// Names are claimed through the bus, so that a name is unique across
// every peer. The hub calls its bus from three kinds of goroutine, and a
// Bus must be safe for that:
//
//   - Open, once, as the hub starts (the first Serve, ServeConn or
//     Broadcast), and Close, once, after the hub goroutine stopped taking
//     requests;
//   - Publish, Subscribe and Unsubscribe, on the hub goroutine, in the
//     order things happened: they must never wait (queue, or drop and
//     count);
//   - Claim and Release, on the goroutine of the client whose name it is:
//     Claim may wait for the network, until ctx ends; Release must not.
type Bus interface {
	// Open starts the bus for the hub. From then until Close, the bus hands
	// the hub what its peers do with deliver, one message at a time, in the
	// order each peer did it; deliver queues the message for the hub
	// goroutine, waits while the hub has 256 messages queued, and reports
	// false once the hub is closing. An error from
	// Open stops the hub: Serve, ServeConn and Broadcast return it,
	// wrapped. ctx ends when the hub begins to close.
	Open(ctx context.Context, deliver func(BusMessage) bool) error

	// Publish hands the bus what one of the hub's own clients did, or a
	// Broadcast. The bus must not keep m.Line beyond publishing it.
	Publish(m BusMessage)

	// Subscribe says the hub has members in the room called room: from
	// now on the bus hands it the room's lines, first a BusHistory with
	// the last at most n lines kept for it, oldest first, then every line
	// said there after those, in order. Each Subscribe is answered by one
	// BusHistory (with Err set if the room's lines cannot be had).
	Subscribe(room string, n int)

	// Unsubscribe says the hub has no members left in the room: the bus
	// stops handing it the room's lines.
	Unsubscribe(room string)

	// Claim reserves name, ignoring case, for a client of this hub, against
	// every client of every peer. It returns an error wrapping
	// [ErrNameTaken] if someone else holds the name, or another error if
	// the bus cannot tell (its connection is down); it must decide
	// atomically, so that of two clients claiming one name at once on two
	// peers, one gets it.
	Claim(ctx context.Context, name string) error

	// Release gives up a name that Claim reserved, once its client has
	// left or taken another name. It must not wait.
	Release(name string)

	// Close ends the bus: the hub has closed, and its peers should count
	// its clients gone. The hub's Shutdown and Close wait for it to
	// return, so it must bound its own work (natsbus: 3s at most).
	Close() error
}

// BusKind is what a [BusMessage] reports.
type BusKind uint8

// The kinds of [BusMessage]: what a client did (the hub publishes them for
// its own clients; the bus delivers them for the peers'), and what the bus
// tells the hub.
const (
	BusJoin     BusKind = iota + 1 // Name entered Room, from Addr, at Time
	BusPart                        // Name left Room and stays connected; Text: its parting words
	BusQuit                        // Name left the hub for Reason; Text: a kick's reason or its parting words
	BusNick                        // Old is now called Name
	BusLine                        // Line was said in Room; delivered, its ID is set, in the room's order; or, with Err, this hub's line the bus could not order
	BusWhisper                     // Line is a whisper to the client named Line.To alone
	BusKick                        // put the client called Name out, for Text: of Room, by By; or of the hub if Room is ""
	BusTopic                       // Name set Room's topic to Text
	BusAnnounce                    // the program announced Text in Room ("" for every room)
	BusHistory                     // delivered only: the answer to Subscribe(Room): Lines, or Err
	BusState                       // delivered only: Members is everyone on Peer now (a peer that missed messages gets this)
	BusGone                        // delivered only: Peer is gone, and every client of its with it
)

var busKindNames = [...]string{"", "join", "part", "quit", "nick", "line", "whisper", "kick", "topic", "announce",
	"history", "state", "gone"}

// String returns the kind's name: "join", "part", and so on.
func (k BusKind) String() string {
	if int(k) < len(busKindNames) && k > 0 {
		return busKindNames[k]
	}
	return "BusKind(" + strconv.Itoa(int(k)) + ")"
}

// BusMessage is one thing that happened, as a hub tells its bus and as a
// bus tells the hub. Which fields are set depends on Kind. What a bus
// delivers comes from other processes: the hub cleans every text and name
// in it again, and ignores what does not fit.
type BusMessage struct {
	Kind    BusKind
	Peer    string       // delivered: the peer where it happened, as the bus names it
	Room    string       // the room it happened in
	Name    string       // the client it concerns
	Old     string       // BusNick: the previous name
	By      string       // BusKick: the operator, "" for the program
	Addr    string       // BusJoin: the client's remote address
	Time    time.Time    // when it happened, by its hub's clock
	Text    string       // a reason, a topic, parting words, an announcement
	Reason  LeaveReason  // BusQuit: why
	Line    *Message     // BusLine, BusWhisper: what was said
	Lines   []*Message   // BusHistory: the room's last lines, oldest first, IDs set
	Err     error        // BusHistory: why the room's lines cannot be had; BusLine: why the line was not ordered
	Members []ClientInfo // BusState: everyone on Peer, with the rooms each is in
}

// openBus opens the hub's bus, if it has one; then it lets start's callers
// go on. It reports false if the bus did not open: the hub then stops,
// and start returns the bus's error.
func (h *Hub) openBus(s *state) bool {
	defer close(h.opened)
	if h.opts.bus == nil {
		return true
	}
	if err := h.opts.bus.Open(h.ctx, h.deliver); err != nil {
		if h.ctx.Err() == nil { // not just the hub closing while it opened
			h.openErr = fmt.Errorf("chatroom: opening the bus: %w", err)
			h.log.Error("the bus did not open; the hub closes", "err", err)
		}
		h.stop(false)
		return false
	}
	return true
}

// peerInbox is what the bus delivered and the hub goroutine has not taken
// yet. The hub takes all of it with one request (askPeer), so that the
// lines of a busy room reach its members in one write each, as a local
// sender's batch does, not one write per line.
type peerInbox struct {
	mu    sync.Mutex
	msgs  []BusMessage
	asked bool // an askPeer is on its way to the hub goroutine, which will take msgs
}

// maxPeerInbox bounds the inbox: past it, deliver waits for the hub.
const maxPeerInbox = 256

// deliver hands the hub goroutine what happened on a peer; it is the
// function a bus gets from Open. It queues msg in the inbox, and asks the
// hub to take it unless it was asked already; with the inbox full, it asks
// again and waits until the hub takes the request, so that a bus faster
// than the hub is held back.
func (h *Hub) deliver(msg BusMessage) bool {
	in := &h.inbox
	in.mu.Lock()
	in.msgs = append(in.msgs, msg)
	ask := !in.asked || len(in.msgs) >= maxPeerInbox
	in.asked = true
	in.mu.Unlock()
	if !ask {
		return true
	}
	select {
	case h.requests <- request{kind: askPeer}:
		return true
	case <-h.ctx.Done():
		return false
	}
}

// fromInbox carries out, in order, everything the bus delivered since the
// last time. Lines that follow each other in one room are relayed
// together, as a local sender's batch is: one pass over the room's
// members for all of them.
func (s *state) fromInbox() {
	in := &s.hub.inbox
	in.mu.Lock()
	msgs := in.msgs
	in.msgs, in.asked = s.inboxSpare[:0], false
	in.mu.Unlock()
	var run lineRun
	for i := range msgs {
		if msgs[i].Kind == BusLine && msgs[i].Err == nil {
			s.peerLine(&run, &msgs[i])
		} else {
			s.relayRun(&run)
			s.fromPeer(msgs[i])
		}
		msgs[i] = BusMessage{}
	}
	s.relayRun(&run)
	s.inboxSpare = msgs
}

// lineRun is lines from the bus waiting to be relayed together: said in
// room, one after the other.
type lineRun struct {
	room   *Room
	lines  []*Message
	actors []*Client // the client of this hub who said each line, or nil
	mixed  bool      // actors are not all the same
	last   uint64    // the ID of the last of lines
}

// relayRun relays the lines of run, if it has any, and empties it.
func (s *state) relayRun(run *lineRun) {
	switch {
	case len(run.lines) == 0:
	case !run.mixed:
		s.relay(run.room, run.lines, run.actors[0])
	default:
		s.relayMixed(run)
	}
	*run = lineRun{}
}

// relayMixed is relay for lines said by more than one sender: the
// members who said none of them share the lines, in one pass over the
// room; each sender among this hub's clients gets them in order, its own
// in its own form.
func (s *state) relayMixed(run *lineRun) {
	r := run.room
	for _, m := range run.lines {
		r.lastID = m.ID
		r.history.add(m)
	}
	r.stats.Messages += uint64(len(run.lines))
	mark := s.dedupe()
	for _, c := range run.actors {
		if c != nil {
			c.seat.got = mark // broadcast skips it: it gets its own below
		}
	}
	s.broadcast(r, run.lines, nil, mark)
	var lines [][]byte // each sender's in turn: post copies them
	for i, c := range run.actors {
		if c == nil || slices.Contains(run.actors[:i], c) {
			continue
		}
		lines = lines[:0]
		for j, m := range run.lines {
			form := c.seat.form
			if run.actors[j] == c {
				form = c.seat.own
			}
			if b := m.bytesFor(form, s.hub.format); b != nil {
				lines = append(lines, b)
			}
		}
		s.post(c, lines)
	}
	if s.events != nil {
		for i, m := range run.lines {
			if c := run.actors[i]; c != nil {
				s.emit(Event{Kind: EventMessage, Time: m.Time, Room: r.name, Name: m.From, Addr: c.addr,
					Text: m.Text, Action: m.Kind == KindAction})
			}
		}
	}
}

// peerLine takes msg, a line the bus ordered, into run: cleaned, if the
// hub relays it (its room is ready here and it is newer than the room's
// last line), after relaying what run held if msg is of another room.
func (s *state) peerLine(run *lineRun, msg *BusMessage) {
	name, ok := roomName(msg.Room)
	if !ok {
		return
	}
	r := s.rooms[roomKey(name)]
	if r == nil || !r.ready || !cleanLine(msg.Line, name) {
		return
	}
	last := r.lastID
	if run.room == r {
		last = max(last, run.last)
	}
	if msg.Line.ID <= last {
		return
	}
	actor := s.byName[foldName(msg.Line.From)]
	if actor != nil && !actor.in(r) {
		actor = nil
	}
	if run.room != r {
		s.relayRun(run)
		run.room = r
	}
	if len(run.actors) > 0 && run.actors[0] != actor {
		run.mixed = true
	}
	run.lines = append(run.lines, msg.Line)
	run.actors = append(run.actors, actor)
	run.last = msg.Line.ID
}

// closeBus closes the hub's bus, if it has one, once the hub goroutine
// takes no more requests.
func (h *Hub) closeBus() {
	if h.opts.bus == nil {
		return
	}
	if err := h.opts.bus.Close(); err != nil {
		h.log.Warn("closing the bus", "err", err)
	}
}

// publish hands msg to the bus, if the hub has one.
func (s *state) publish(msg BusMessage) {
	if s.bus != nil {
		s.bus.Publish(msg)
	}
}

// remoteClient is a peer's client, as the hub knows it.
type remoteClient struct {
	info  ClientInfo
	rooms []*Room // the rooms it is in
}

// remoteRoom is a room's members on the peers.
type remoteRoom struct {
	members map[string]*remoteClient // by foldName of their name
}

// remoteCount is how many of r's members are on peers.
func (r *Room) remoteCount() int { return len(r.remote.members) }

// appendRemoteMembers appends r's members on peers.
func (r *Room) appendRemoteMembers(members []Member) []Member {
	for _, rc := range r.remote.members {
		members = append(members, Member{Name: rc.info.Name})
	}
	return members
}

// remoteTaken reports whether a peer's client has the name whose key is
// key.
func (s *state) remoteTaken(key string) bool {
	return s.remotes[key] != nil
}

// remoteInfo describes a peer's client called name.
func (s *state) remoteInfo(name string) (ClientInfo, bool) {
	rc := s.remotes[foldName(name)]
	if rc == nil {
		return ClientInfo{}, false
	}
	return rc.describe(), true
}

// describe returns rc's info with the rooms it is in now.
func (rc *remoteClient) describe() ClientInfo {
	info := rc.info
	info.Rooms = make([]string, len(rc.rooms))
	for i, r := range rc.rooms {
		info.Rooms[i] = r.name
	}
	return info
}

// appendRemoteInfos appends the peers' clients in r, or every peer's
// client if r is nil.
func (s *state) appendRemoteInfos(infos []ClientInfo, r *Room) []ClientInfo {
	if r != nil {
		for _, rc := range r.remote.members {
			infos = append(infos, rc.describe())
		}
		return infos
	}
	for _, rc := range s.remotes {
		infos = append(infos, rc.describe())
	}
	return infos
}

// appendRemoteRooms appends the rooms that only peers have members in: a
// room with members here is listed already, with its peers' members
// counted.
func (s *state) appendRemoteRooms(rooms []RoomInfo) []RoomInfo {
	for _, r := range s.elsewhere {
		rooms = append(rooms, r.info())
	}
	return rooms
}

// whisperRemote hands m, a whisper, to the bus for the peer whose client
// it names, and returns that client's name.
func (s *state) whisperRemote(m *Message) (string, bool) {
	rc := s.remotes[foldName(m.To)]
	if rc == nil {
		return "", false
	}
	m.To = rc.info.Name
	s.publish(BusMessage{Kind: BusWhisper, Name: rc.info.Name, Line: m, Time: m.Time})
	return rc.info.Name, true
}

// kickRemote asks the peer of the client called name to put it out: of
// the hub if r is nil, or of r. It reports false if no peer's client has
// that name (in r).
func (s *state) kickRemote(r *Room, name, reason string) bool {
	rc := s.remotes[foldName(name)]
	if rc == nil || r != nil && r.remote.members[foldName(name)] == nil {
		return false
	}
	room := ""
	if r != nil {
		room = r.name
	}
	s.publish(BusMessage{Kind: BusKick, Room: room, Name: rc.info.Name, Text: reason})
	return true
}

// publishLines hands lines said in r to the bus, which orders them and
// hands them back (see relay).
func (s *state) publishLines(r *Room, lines []*Message) {
	for _, m := range lines {
		s.bus.Publish(BusMessage{Kind: BusLine, Room: r.name, Name: m.From, Line: m, Time: m.Time})
	}
}

// subscribe tells the bus the hub wants r's lines, once.
func (s *state) subscribe(r *Room) {
	if s.bus != nil && !r.subscribed {
		r.subscribed, r.ready = true, false
		s.bus.Subscribe(r.name, s.hub.opts.history+1)
	}
}

// unsubscribe tells the bus the hub no longer wants r's lines.
func (s *state) unsubscribe(r *Room) {
	if s.bus != nil && r.subscribed && len(r.members) == 0 {
		r.subscribed, r.ready = false, false
		s.bus.Unsubscribe(r.name)
	}
}

// fromPeer carries out what happened on a peer, or what the bus says.
// Everything in it is cleaned again: a peer is trusted with nothing.
func (s *state) fromPeer(msg BusMessage) {
	msg.Name, msg.Old, msg.By = cleanName(msg.Name), cleanName(msg.Old), cleanName(msg.By)
	msg.Text, msg.Addr = cleanString(msg.Text), cleanString(msg.Addr)
	var r *Room
	if msg.Room != "" {
		name, ok := roomName(msg.Room)
		if !ok {
			return
		}
		r = s.rooms[roomKey(name)]
		msg.Room = name
	}
	switch msg.Kind {
	case BusHistory:
		s.history(r, msg)
	case BusLine: // not ordered: one ordered goes through peerLine
		if msg.Err != nil {
			s.lineLost(msg)
		}
	case BusJoin:
		s.remoteJoin(msg, r)
	case BusPart:
		s.remotePart(msg, r)
	case BusQuit:
		s.remoteQuit(msg.Name, msg.Peer, msg.Reason, msg.Text)
	case BusNick:
		s.remoteNick(msg)
	case BusWhisper:
		if cleanLine(msg.Line, "") {
			if c := s.byName[foldName(msg.Line.To)]; c != nil {
				if b := msg.Line.bytesFor(c.seat.form, s.hub.format); b != nil {
					s.post(c, [][]byte{b})
				}
			}
		}
	case BusKick:
		if c := s.byName[foldName(msg.Name)]; c != nil {
			if r == nil || c.single {
				s.depart(c, ReasonKicked, msg.Text)
			} else if c.in(r) {
				s.leaveRoom(c, r, &Message{Kind: KindKick, Time: s.now(), From: c.seat.name, By: msg.By, Text: msg.Text}, ReasonKicked)
			}
		}
	case BusTopic:
		if r != nil {
			r.topicText, r.topicBy, r.topicAt = msg.Text, msg.Name, msg.Time
			s.broadcast(r, []*Message{{Kind: KindTopic, Time: msg.Time, Room: r.name, By: msg.Name, Text: msg.Text}}, nil, 0)
		}
	case BusAnnounce:
		m := &Message{Kind: KindAnnounce, Time: msg.Time, Text: msg.Text}
		if msg.Room == "" {
			s.announceHere(nil, m)
		} else if r != nil {
			s.announceHere(r, m)
		}
	case BusState:
		s.syncPeer(msg.Peer, msg.Members)
	case BusGone:
		s.syncPeer(msg.Peer, nil)
	}
}

// lineLost tells the client of this hub that said msg.Line that the bus
// could not order it: nobody got it.
func (s *state) lineLost(msg BusMessage) {
	if msg.Line == nil {
		return
	}
	if c := s.byName[foldName(msg.Line.From)]; c != nil {
		m := &Message{Kind: KindError, Time: s.now(), Room: msg.Room, Text: "your line was not delivered: " + msg.Err.Error()}
		if b := s.hub.format(c.seat.form, m); b != nil {
			s.post(c, [][]byte{b})
		}
	}
}

// cleanName cleans a name that came from a peer: what is not a name of
// either kind (a nick, or an address) is cleaned to what can be shown.
func cleanName(name string) string {
	if len(name) > 64 {
		name = name[:64]
	}
	return cleanPeer(name)
}

// cleanPeer is cleanString, without a copy of s when s is clean already:
// printable ASCII with single spaces between words, as almost every text
// that crosses a bus is, having been cleaned by the hub where it was said.
func cleanPeer(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < ' ' || c >= 0x7f || c == ' ' && (i == 0 || i == len(s)-1 || s[i-1] == ' ') {
			return cleanString(s)
		}
	}
	return s
}

// cleanLine cleans m, a line from a peer said in room (for a whisper,
// ""), and reports whether it is one the hub relays.
func cleanLine(m *Message, room string) bool {
	if m == nil || m.Kind != KindSay && m.Kind != KindAction && m.Kind != KindWhisper {
		return false
	}
	m.Room, m.From, m.To = room, cleanName(m.From), cleanName(m.To)
	m.Text = cleanPeer(m.Text)
	m.forms = formCache{}
	return m.From != "" && m.Text != ""
}

// history takes the answer to a Subscribe: the room's last lines, which
// start its history; the clients waiting to enter it then do.
func (s *state) history(r *Room, msg BusMessage) {
	if r == nil || !r.subscribed || r.ready {
		return // unsubscribed since: a later answer is on its way
	}
	if msg.Err != nil {
		s.hub.log.Warn("the bus could not start a room", "room", r.name, "err", msg.Err)
		r.subscribed = false
		for _, w := range r.waiting {
			w.reply <- answer{err: fmt.Errorf("chatroom: room %s: %w", r.name, errRoomDown)}
		}
		r.waiting = nil
		s.closeIfEmpty(r)
		return
	}
	r.ready = true
	r.history, r.lastID = newHistory(s.hub.opts.history), 0
	for _, m := range msg.Lines {
		if cleanLine(m, r.name) && m.ID > r.lastID {
			r.lastID = m.ID
			r.history.add(m)
		}
	}
	waiting := r.waiting
	r.waiting = nil
	for _, w := range waiting {
		s.handle(w)
	}
}

// errRoomDown says the bus cannot reach a room's lines.
var errRoomDown = fmt.Errorf("the room cannot be reached now, try again later")

// remoteRoomFor returns the room called name for a peer's member, making
// a record of it, in s.elsewhere, if this hub has no room of that name.
func (s *state) remoteRoomFor(name string) *Room {
	key := roomKey(name)
	if r := s.rooms[key]; r != nil {
		return r
	}
	r := s.elsewhere[key]
	if r == nil {
		r = newRoom(s.hub, name, false)
		if s.elsewhere == nil {
			s.elsewhere = make(map[string]*Room)
		}
		s.elsewhere[key] = r
	}
	return r
}

// remoteJoin records that a peer's client entered a room, and tells the
// room's members here.
func (s *state) remoteJoin(msg BusMessage, r *Room) {
	if msg.Name == "" || msg.Room == "" {
		return
	}
	key := foldName(msg.Name)
	rc := s.remotes[key]
	if rc == nil {
		if s.byName[key] != nil {
			return // ours: a peer cannot take it
		}
		rc = &remoteClient{info: ClientInfo{Name: msg.Name, Addr: msg.Addr, Joined: msg.Time, Peer: msg.Peer}}
		if s.remotes == nil {
			s.remotes = make(map[string]*remoteClient)
		}
		s.remotes[key] = rc
	} else if rc.info.Peer != msg.Peer {
		return
	}
	if r == nil {
		r = s.remoteRoomFor(msg.Room)
	}
	if slices.Contains(rc.rooms, r) {
		return
	}
	rc.rooms = append(rc.rooms, r)
	if r.remote.members == nil {
		r.remote.members = make(map[string]*remoteClient)
	}
	r.remote.members[key] = rc
	r.sorted = nil
	if len(r.members) > 0 {
		if s.mayTell(r) {
			s.broadcast(r, []*Message{{Kind: KindJoin, Time: msg.Time, Room: r.name, From: rc.info.Name, Addr: rc.info.Addr}}, nil, 0)
		} else {
			r.notices.joined++
		}
	}
}

// remotePart records that a peer's client left a room.
func (s *state) remotePart(msg BusMessage, r *Room) {
	rc := s.remotes[foldName(msg.Name)]
	if rc == nil || rc.info.Peer != msg.Peer {
		return
	}
	if r == nil {
		r = s.elsewhere[roomKey(msg.Room)]
	}
	if r == nil || !s.dropRemote(rc, r) {
		return
	}
	if len(r.members) > 0 {
		s.tellLeave(r, &Message{Kind: KindPart, Time: msg.Time, Room: r.name, From: rc.info.Name, Text: msg.Text}, true, 0)
	}
}

// dropRemote takes rc out of r, and reports whether it was in it.
func (s *state) dropRemote(rc *remoteClient, r *Room) bool {
	i := slices.Index(rc.rooms, r)
	if i < 0 {
		return false
	}
	rc.rooms = slices.Delete(rc.rooms, i, i+1)
	delete(r.remote.members, foldName(rc.info.Name))
	r.sorted = nil
	if r.remoteCount() == 0 && len(r.members) == 0 {
		if s.elsewhere[r.key] == r {
			delete(s.elsewhere, r.key)
		} else {
			s.closeIfEmpty(r)
		}
	}
	return true
}

// remoteQuit records that a peer's client left the hub, and tells those
// who shared a room with it.
func (s *state) remoteQuit(name, peer string, reason LeaveReason, text string) {
	rc := s.remotes[foldName(name)]
	if rc == nil || rc.info.Peer != peer {
		return
	}
	delete(s.remotes, foldName(name))
	m := &Message{Kind: KindQuit, Time: s.now(), From: rc.info.Name, Reason: reason, Text: text}
	for _, r := range rc.rooms {
		m.Rooms = append(m.Rooms, r.name)
	}
	mark := s.dedupe()
	for len(rc.rooms) > 0 {
		r := rc.rooms[0]
		s.dropRemote(rc, r)
		if len(r.members) > 0 {
			s.tellLeave(r, m, true, mark)
		}
	}
}

// remoteNick records that a peer's client took a new name, and tells
// those who share a room with it.
func (s *state) remoteNick(msg BusMessage) {
	rc := s.remotes[foldName(msg.Old)]
	newKey := foldName(msg.Name)
	if rc == nil || rc.info.Peer != msg.Peer || msg.Name == "" || s.byName[newKey] != nil {
		return
	}
	delete(s.remotes, foldName(msg.Old))
	rc.info.Name = msg.Name
	s.remotes[newKey] = rc
	m := &Message{Kind: KindNick, Time: msg.Time, From: msg.Name, Old: msg.Old}
	for _, r := range rc.rooms {
		delete(r.remote.members, foldName(msg.Old))
		r.remote.members[newKey] = rc
		r.sorted = nil
		m.Rooms = append(m.Rooms, r.name)
	}
	mark := s.dedupe()
	for _, r := range rc.rooms {
		s.broadcast(r, []*Message{m}, nil, mark)
	}
}

// syncPeer makes the hub's record of peer's clients members, telling the
// hub's own clients who joined and who left since it last knew.
func (s *state) syncPeer(peer string, members []ClientInfo) {
	now := s.now()
	keep := make(map[string]bool, len(members))
	for _, info := range members {
		name := cleanName(info.Name)
		key := foldName(name)
		if name == "" || s.byName[key] != nil {
			continue
		}
		keep[key] = true
		rc := s.remotes[key]
		if rc != nil && rc.info.Peer != peer {
			continue
		}
		rooms := make(map[string]bool, len(info.Rooms))
		for _, room := range info.Rooms {
			if n, ok := roomName(room); ok {
				rooms[roomKey(n)] = true
				s.remoteJoin(BusMessage{Kind: BusJoin, Peer: peer, Room: n, Name: name,
					Addr: cleanString(info.Addr), Time: info.Joined}, s.rooms[roomKey(n)])
			}
		}
		if rc = s.remotes[key]; rc != nil {
			for _, r := range slices.Clone(rc.rooms) {
				if !rooms[r.key] {
					s.remotePart(BusMessage{Kind: BusPart, Peer: peer, Room: r.name, Name: name, Time: now}, s.rooms[r.key])
				}
			}
		}
	}
	var gone []string
	for key, rc := range s.remotes {
		if rc.info.Peer == peer && !keep[key] {
			gone = append(gone, rc.info.Name)
		}
	}
	slices.Sort(gone) // the same notices, in the same order, on every peer
	for _, name := range gone {
		s.remoteQuit(name, peer, ReasonDisconnect, "")
	}
}
