package chatroom

// This file is the room goroutine's: members and everything in it, and
// each client's seat, are touched by run (room.go) and by nothing else.

// members is the room's state: who is in it, and the counters.
type members struct {
	room  *Room
	list  []*client     // everyone in the room; a client's seat.index is its place here
	stats Stats         // all but Delivered and Dropped, which the outboxes count
	slow  []*client     // clients whose outbox filled during a send, to evict after it
	dirty []*client     // clients with lines queued since the last flushAll
	out   *socketWriter // the room's non-blocking writes (see client.flush)
}

// seat is the room goroutine's record of one client. It lives in the
// client, for speed, but only this file reads or writes it.
type seat struct {
	index int  // place in members.list; -1 while not in the room
	dirty bool // in members.dirty
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
)

func newMembers(r *Room) *members {
	return &members{room: r, out: newSocketWriter()}
}

// handle carries out one request. It is the room goroutine's only
// dispatch.
func (m *members) handle(q request) {
	switch q.kind {
	case askJoin:
		m.admit(q.client)
	case askLeave:
		m.depart(q.client, q.reason)
	case askRelay:
		m.relay(q.client, q.said)
	case askNotice:
		m.notice(q.line)
	case askStats:
		q.stats <- m.room.completeStats(m.stats)
	}
}

// admit lets c in, or refuses it if the room is full.
func (m *members) admit(c *client) {
	r := m.room
	if max := r.opts.maxClients; max > 0 && len(m.list) >= max {
		m.stats.Refused++
		c.admitted <- false
		r.log.Info("refused: room full", "client", c.name, "max_clients", max)
		return
	}
	c.seat.index = len(m.list)
	m.list = append(m.list, c)
	m.stats.Joined++
	m.stats.Clients = len(m.list)
	c.admitted <- true
	m.post(c, [][]byte{lineWelcome(c.name, len(m.list))})
	r.log.Info("joined", "client", c.name, "online", len(m.list))
	m.sendLine(lineJoined(r.opts.now(), c.name), c)
}

// depart takes c out of the room for reason, ends its connection as the
// reason says, and tells the others. A client that is no longer a member
// (it was evicted while its reader was still stopping) is ignored.
func (m *members) depart(c *client, reason leaveReason) {
	if !m.has(c) {
		return
	}
	m.unlist(c, reason)
	c.end(reason)
	m.sendLine(lineLeft(m.room.opts.now(), c.name, reason.effect().notice), nil)
}

// unlist takes c out of the member list, counts why, and logs it.
func (m *members) unlist(c *client, reason leaveReason) {
	last := len(m.list) - 1
	m.list[c.seat.index] = m.list[last]
	m.list[c.seat.index].seat.index = c.seat.index
	m.list[last] = nil
	m.list = m.list[:last]
	c.seat.index = -1
	m.stats.Left++
	m.stats.Clients = len(m.list)
	log := m.room.log
	if reason.effect().evicts {
		m.stats.Evicted++
		log.Warn("evicted", "client", c.name, "reason", reason.String())
	} else {
		log.Info("left", "client", c.name, "reason", reason.String())
	}
}

func (m *members) has(c *client) bool {
	i := c.seat.index
	return i >= 0 && i < len(m.list) && m.list[i] == c
}

// relay sends lines from a client to everyone else, and returns their
// queue to the pool. The lines of a sender that was evicted while they
// were on their way are dropped.
func (m *members) relay(from *client, said *lineQueue) {
	if m.has(from) {
		m.stats.Messages += uint64(len(said.lines))
		m.send(said.lines, from)
	}
	putQueue(said)
}

// notice sends a Broadcast notice to everyone.
func (m *members) notice(line []byte) {
	m.stats.Messages++
	m.sendLine(line, nil)
}

// sendLine sends one line to every member but except (which may be nil).
func (m *members) sendLine(line []byte, except *client) {
	m.send([][]byte{line}, except)
}

// send queues lines for every member but except (which may be nil), then
// evicts whoever could not take them. Evictions are announced with send in
// turn, which may evict more. If an outbox is more than half full, send
// yields before it returns (see yield): a client that really stopped
// reading fills its outbox all the same and is evicted, and nobody ever
// waits for it.
func (m *members) send(lines [][]byte, except *client) {
	busy := false
	for _, c := range m.list {
		if c != except && m.post(c, lines) > m.room.opts.outboxSize/2 {
			busy = true
		}
	}
	for len(m.slow) > 0 {
		c := m.slow[len(m.slow)-1]
		m.slow = m.slow[:len(m.slow)-1]
		m.depart(c, reasonSlow)
	}
	if busy {
		yield()
	}
}

// post queues lines on c's outbox, to be written by the next flushAll, or
// at once if c's outbox has reached flushBatch lines or half its size. It
// returns how many lines c has waiting; a client that could not take them
// all is put on the list to evict.
func (m *members) post(c *client, lines [][]byte) int {
	n := c.enqueue(lines, false)
	switch {
	case n < 0:
		m.slow = append(m.slow, c)
	case n > m.room.opts.outboxSize/2,
		n >= flushBatch && n-len(lines) < flushBatch: // a batch worth a write already
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
}

// closeAll ends the room for every member: on Shutdown each gets its last
// line, written before its connection closes; on Close the connections
// are closed at once.
func (m *members) closeAll(graceful bool) {
	reason := reasonClosed
	if graceful {
		reason = reasonShutdown
	}
	for len(m.list) > 0 {
		c := m.list[len(m.list)-1]
		m.unlist(c, reason)
		c.end(reason)
	}
}
