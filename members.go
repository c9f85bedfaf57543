package chatroom

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the room goroutine's: members and everything in it, and
// each client's seat, are touched by run (room.go) and by nothing else.

// members is the room's state: who is in it, by name, what was said
// lately, and the counters.
type members struct {
	room    *Room
	list    []*client              // everyone in the room; a client's seat.index is its place here
	byName  map[string]*client     // everyone in the room, by foldName of their name
	stats   Stats                  // all but what completeStats adds
	slow    []*client              // clients whose outbox filled during a send, to evict after it
	dirty   []*client              // clients with lines queued since the last flushAll
	shared  [][]byte               // the lines sent to everyone since the last flushAll, which clients with nothing else waiting view instead of queuing (outbox.go)
	out     *socketWriter          // the room's non-blocking writes (see client.flush)
	history [][]byte               // the last say and /me lines, at most opts.history, a ring from next once full
	next    int                    // where the next line goes in a full history
	events  *eventSink             // nil without WithEvents
	bus     Bus                    // nil without WithBus
	remotes map[string]*ClientInfo // the peers' clients, by foldName of their name (bus.go); nil without a bus
}

// seat is the room goroutine's record of one client. It lives in the
// client, for speed, but only this file reads or writes it.
type seat struct {
	index  int       // place in members.list; -1 while not in the room
	dirty  bool      // in members.dirty
	name   string    // the client's name, as the room knows it
	joined time.Time // from the room's clock
}

// Batch sizes, in lines.
const (
	// relayBatch is the most lines a reader hands the room in one request
	// (at most an eighth of the outbox, so one request cannot fill a
	// healthy client's outbox by itself).
	relayBatch = 64
	// flushBatch is how many queued lines make a batch worth writing at
	// once, without waiting for the room to run out of work: beyond it,
	// bigger batches save little, and waiting longer only risks the
	// outbox.
	flushBatch = 256
	// maxShared bounds members.shared while requests keep coming and
	// flushAll does not run: each client's view is flushed at flushBatch
	// lines, but the list is only reused once nobody views it.
	maxShared = 4 * flushBatch
)

func newMembers(r *Room) *members {
	return &members{room: r, byName: make(map[string]*client), out: newSocketWriter(), events: r.events, bus: r.opts.bus}
}

// foldName is the key of a name in byName: names are unique ignoring case.
func foldName(name string) string { return strings.ToLower(name) }

// handle carries out one request. It is the room goroutine's only
// dispatch.
func (m *members) handle(q request) {
	switch q.kind {
	case askJoin:
		m.admit(q.client)
	case askLeave:
		m.depart(q.client, q.reason, "")
	case askRelay:
		m.relay(q.client, q.said, q.action)
	case askNotice:
		m.notice(q.line)
	case askNick:
		m.rename(q.client, q.name)
	case askWho:
		m.who(q.client)
	case askWhisper:
		m.whisper(q.client, q.name, q.text, q.line)
	case askStats:
		q.stats <- m.room.completeStats(m.stats)
	case askClients:
		q.clients <- m.clients()
	case askKick:
		q.done <- m.kick(q.name, q.text)
	case askPeer:
		m.fromPeer(*q.peer)
	}
	m.evictSlow()
}

// emit hands e to the events goroutine, if the room has an observer.
func (m *members) emit(e Event) {
	if m.events != nil {
		m.events.emit(e)
	}
}

// admit lets c in, or refuses it if the room is full or its name taken.
// A newcomer gets its welcome, then the history.
func (m *members) admit(c *client) {
	r := m.room
	if max := r.opts.maxClients; max > 0 && len(m.list) >= max {
		m.stats.Refused++
		c.answer <- answerFull
		r.log.Info("refused: room full", "client", c.name, "max_clients", max)
		return
	}
	key := foldName(c.name)
	if m.taken(key) {
		if c.named || m.bus != nil { // through a bus, the reader claimed the name it has
			m.stats.Refused++
			c.answer <- answerTaken
			r.log.Info("refused: name taken", "client", c.addr, "name", c.name)
			return
		}
		c.name = m.freeName(c.name) // the reader reads it once answered
		key = foldName(c.name)
	}
	now := r.opts.now()
	c.seat = seat{index: len(m.list), name: c.name, joined: now}
	m.list = append(m.list, c)
	m.byName[key] = c
	m.stats.Joined++
	m.stats.Clients = len(m.list)

	lines := make([][]byte, 0, 1+len(m.history))
	lines = append(lines, lineWelcome(c.name, m.online()))
	lines = m.appendHistory(lines, r.opts.outboxSize-1)
	m.post(c, lines)
	c.answer <- answerYes // after the welcome: the reader's first reply comes after it
	r.log.Info("joined", "client", c.name, "addr", c.addr, "online", m.online())
	notice := lineJoined(now, c.name)
	m.sendLine(notice, c)
	m.publish(BusMessage{Kind: BusJoin, Name: c.name, Addr: c.addr, Time: now, Line: notice})
	m.emit(Event{Kind: EventJoin, Time: now, Name: c.name, Addr: c.addr})
}

// freeName returns name with the smallest suffix "#2", "#3", ... that
// nobody has: for clients named by an address that is not theirs alone
// (Unix sockets, adapters).
func (m *members) freeName(name string) string {
	for n := 2; ; n++ {
		if try := name + "#" + strconv.Itoa(n); !m.taken(foldName(try)) {
			return try
		}
	}
}

// depart takes c out of the room for reason, ends its connection as the
// reason says (with detail, a kick's reason), and tells the others. A
// client that is no longer a member (it was evicted while its reader was
// still stopping) is ignored.
func (m *members) depart(c *client, reason leaveReason, detail string) {
	if !m.has(c) {
		return
	}
	m.unlist(c, reason)
	e := reason.effect()
	c.end(reason, e.lastLine(detail))
	now := m.room.opts.now()
	notice := lineLeft(now, c.seat.name, e.noticeText(detail))
	m.sendLine(notice, nil)
	m.publish(BusMessage{Kind: BusLeave, Name: c.seat.name, Line: notice})
	m.emit(Event{Kind: EventLeave, Time: now, Name: c.seat.name, Addr: c.addr, Reason: reason.String()})
}

// unlist takes c out of the member list, counts why, and logs it.
func (m *members) unlist(c *client, reason leaveReason) {
	last := len(m.list) - 1
	m.list[c.seat.index] = m.list[last]
	m.list[c.seat.index].seat.index = c.seat.index
	m.list[last] = nil
	m.list = m.list[:last]
	c.seat.index = -1
	delete(m.byName, foldName(c.seat.name))
	m.stats.Left++
	m.stats.Clients = len(m.list)
	log := m.room.log
	if reason.effect().evicts {
		m.stats.Evicted++
		log.Warn("evicted", "client", c.seat.name, "reason", reason.String())
	} else {
		log.Info("left", "client", c.seat.name, "reason", reason.String())
	}
}

func (m *members) has(c *client) bool {
	i := c.seat.index
	return i >= 0 && i < len(m.list) && m.list[i] == c
}

// relay sends lines from a client to everyone else, keeps them in the
// history, and returns their queue to the pool. The lines of a sender that
// was evicted while they were on their way are dropped. action says they
// are /me lines.
func (m *members) relay(from *client, said *lineQueue, action bool) {
	if m.has(from) {
		m.stats.Messages += uint64(len(said.lines))
		m.send(said.lines, from)
		m.remember(said.lines)
		if m.bus != nil {
			m.bus.Publish(BusMessage{Kind: BusSay, Lines: slices.Clone(said.lines)}) // said goes back to the pool
		}
		if m.events != nil {
			m.emitMessages(from, said.lines, action)
		}
	}
	putQueue(said)
}

// emitMessages reports each relayed line as an EventMessage, its text
// taken from the formatted line: "<ts> <name> say: <text>\n", or
// "<ts> * <name> <text>\n" for an action.
func (m *members) emitMessages(from *client, lines [][]byte, action bool) {
	now := m.room.opts.now()
	prefix := len(timeLayout) + len(" ") + len(from.seat.name) + len(" say: ")
	if action {
		prefix = len(timeLayout) + len(" * ") + len(from.seat.name) + len(" ")
	}
	for _, l := range lines {
		text := ""
		if prefix < len(l) {
			text = string(l[prefix : len(l)-1])
		}
		m.emit(Event{Kind: EventMessage, Time: now, Name: from.seat.name, Addr: from.addr, Text: text, Action: action})
	}
}

// remember keeps lines in the history, the oldest falling out.
func (m *members) remember(lines [][]byte) {
	n := m.room.opts.history
	for _, l := range lines {
		switch {
		case n == 0:
			return
		case len(m.history) < n:
			m.history = append(m.history, l)
		default:
			m.history[m.next] = l
			m.next = (m.next + 1) % n
		}
	}
}

// appendHistory appends the last at most most lines of the history to
// lines, oldest first.
func (m *members) appendHistory(lines [][]byte, most int) [][]byte {
	n := len(m.history)
	for i := max(0, n-most); i < n; i++ {
		lines = append(lines, m.history[(m.next+i)%n])
	}
	return lines
}

// notice sends a Broadcast notice to everyone.
func (m *members) notice(line []byte) {
	m.stats.Messages++
	m.sendLine(line, nil)
	m.publish(BusMessage{Kind: BusNotice, Line: line})
}

// rename gives c the name name, unless someone else has it, ignoring case,
// and answers c's reader either way.
func (m *members) rename(c *client, name string) {
	if !m.has(c) {
		c.answer <- answerNo
		return
	}
	if other := m.byName[foldName(name)]; other != nil && other != c || m.remotes[foldName(name)] != nil {
		c.answer <- answerTaken
		return
	}
	old := c.seat.name
	delete(m.byName, foldName(old))
	m.byName[foldName(name)] = c
	c.seat.name = name
	m.post(c, [][]byte{lineYouAre(name)}) // before the answer: the reader's next reply comes after it
	c.answer <- answerYes
	if name != old {
		now := m.room.opts.now()
		notice := lineRenamed(now, old, name)
		m.sendLine(notice, c)
		m.publish(BusMessage{Kind: BusNick, Old: old, Name: name, Line: notice})
		m.room.log.Info("renamed", "client", old, "name", name)
		m.emit(Event{Kind: EventNick, Time: now, Name: name, Addr: c.addr, Old: old})
	}
}

// names returns everyone's name, sorted ignoring case.
func (m *members) names() []string {
	names := make([]string, 0, m.online())
	for _, c := range m.list {
		names = append(names, c.seat.name)
	}
	for _, r := range m.remotes {
		names = append(names, r.Name)
	}
	slices.SortFunc(names, compareNames)
	return names
}

func compareNames(a, b string) int {
	return cmp.Or(cmp.Compare(foldName(a), foldName(b)), cmp.Compare(a, b))
}

// who answers c's /who, then tells its reader it has (see
// client.askAndWait).
func (m *members) who(c *client) {
	if m.has(c) {
		m.post(c, [][]byte{lineWho(m.names())})
	}
	c.answer <- answerYes
}

// whisper sends line, from's whisper of text, to the client named to
// alone, or tells from there is none; then tells from's reader it has (see
// client.askAndWait).
func (m *members) whisper(from *client, to, text string, line []byte) {
	defer func() { from.answer <- answerYes }()
	if !m.has(from) {
		return
	}
	var name string
	if target := m.byName[foldName(to)]; target != nil {
		m.post(target, [][]byte{line})
		name = target.seat.name
	} else if r := m.remotes[foldName(to)]; r != nil {
		name = r.Name
		m.publish(BusMessage{Kind: BusWhisper, Name: name, Line: line})
	} else {
		m.post(from, [][]byte{lineNoSuchClient(to)})
		return
	}
	m.emit(Event{Kind: EventMessage, Time: m.room.opts.now(), Name: from.seat.name, Addr: from.addr,
		Text: text, To: name})
}

// clients lists everyone, sorted by name ignoring case.
func (m *members) clients() []ClientInfo {
	infos := make([]ClientInfo, 0, m.online())
	for _, c := range m.list {
		infos = append(infos, ClientInfo{Name: c.seat.name, Addr: c.addr, Joined: c.seat.joined})
	}
	for _, r := range m.remotes {
		infos = append(infos, *r)
	}
	slices.SortFunc(infos, func(a, b ClientInfo) int { return compareNames(a.Name, b.Name) })
	return infos
}

// kick removes the client named name, telling it why.
func (m *members) kick(name, reason string) error {
	c := m.byName[foldName(name)]
	if c == nil {
		if r := m.remotes[foldName(name)]; r != nil {
			m.publish(BusMessage{Kind: BusKick, Name: r.Name, Text: reason})
			return nil
		}
		return ErrNoSuchClient
	}
	m.depart(c, reasonKicked, reason)
	return nil
}

// sendLine sends one line to every member but except (which may be nil).
func (m *members) sendLine(line []byte, except *client) {
	m.send([][]byte{line}, except)
}

// send queues lines for every member but except (which may be nil), once,
// in the room's shared list that clients with nothing else waiting view
// (client.share), then evicts whoever could not take them. If an outbox is
// more than half full, send yields before it returns (see yield): a client
// that really stopped reading fills its outbox all the same and is
// evicted, and nobody ever waits for it.
func (m *members) send(lines [][]byte, except *client) {
	if except != nil {
		except.unshareLines() // its view must end where the others' go on
	}
	from := len(m.shared)
	m.shared = append(m.shared, lines...)
	busy := false
	for _, c := range m.list {
		if c != except && m.queued(c, c.share(m.shared, from), len(lines)) > m.room.opts.outboxSize/2 {
			busy = true
		}
	}
	m.evictSlow() // before any flushAll: an evicted client's view becomes its last queue
	if len(m.shared) >= maxShared {
		m.flushAll()
	}
	if busy {
		yield()
	}
}

// evictSlow evicts the clients whose outbox could not take what was
// posted. Evictions are announced with send in turn, which may evict more.
func (m *members) evictSlow() {
	for len(m.slow) > 0 {
		c := m.slow[len(m.slow)-1]
		m.slow = m.slow[:len(m.slow)-1]
		m.depart(c, reasonSlow, "")
	}
}

// post queues lines on c's outbox, to be written by the next flushAll, or
// at once if c's outbox has reached flushBatch lines or half its size. It
// returns how many lines c has waiting; a client that could not take them
// all is put on the list to evict.
func (m *members) post(c *client, lines [][]byte) int {
	return m.queued(c, c.enqueue(lines, false), len(lines))
}

// queued schedules c's write, now that added lines were queued for it and
// n are waiting (see post), and returns n.
func (m *members) queued(c *client, n, added int) int {
	switch {
	case n < 0:
		m.slow = append(m.slow, c)
	case n > m.room.opts.outboxSize/2,
		n >= flushBatch && n-added < flushBatch: // a batch worth a write already
		c.flush(m.out)
	case n > 0 && !c.seat.dirty:
		c.seat.dirty = true
		m.dirty = append(m.dirty, c)
	}
	return n
}

// flushAll writes, or has written, what every client was queued since the
// last call.
func (m *members) flushAll() {
	for i, c := range m.dirty {
		c.seat.dirty = false
		c.flush(m.out)
		m.dirty[i] = nil
	}
	m.dirty = m.dirty[:0]
	// Every view was in dirty, and flush ended each: nobody reads the
	// list now.
	clear(m.shared)
	m.shared = m.shared[:0]
}

// closeAll ends the room for every member: on Shutdown each gets its last
// line, written before its connection closes; on Close the connections
// are closed at once.
func (m *members) closeAll(graceful bool) {
	reason := reasonClosed
	if graceful {
		reason = reasonShutdown
	}
	now := m.room.opts.now()
	for len(m.list) > 0 {
		c := m.list[len(m.list)-1]
		m.unlist(c, reason)
		c.end(reason, reason.effect().last)
		m.emit(Event{Kind: EventLeave, Time: now, Name: c.seat.name, Addr: c.addr, Reason: reason.String()})
	}
}
