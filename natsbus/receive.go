package natsbus

import (
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/chatroom-go/chatroom"
)

// This file is the receiver goroutine: the only caller of the hub's
// deliver, with bursts of what it held (Bus.deliver, handOver). It reads everything that arrives on core NATS (presence, this
// process's own subject, the live subjects of its rooms), the hub's
// Subscribe and Unsubscribe, the stream's answers and the lines NATS did
// not take, and hands the hub what happened, in order. Once a heartbeat it
// counts silent processes gone and asks again for the states it misses.

// peer is another process, as the receiver knows it.
type peer struct {
	seq   uint64              // the last of its presence messages received, or the state's
	heard time.Time           // when it was last heard from
	asked time.Time           // when its state was last asked for
	want  bool                // its state was asked for and has not come
	names map[string]struct{} // its clients, by nameKey, as far as b.where goes
}

// assembly is a state arriving in parts.
type assembly struct {
	asOf    uint64
	parts   int
	next    int
	members []chatroom.ClientInfo
}

// maxAssemblies bounds the states being received at once.
const maxAssemblies = 16

// receiver is the receiver goroutine's own.
type receiver struct {
	b          *Bus
	rooms      map[string]*roomSub  // the rooms subscribed, by token (rooms.go)
	inflight   int                  // reads of the stream running
	queue      []*roomSub           // rooms waiting for a read
	assembling map[string]*assembly // states arriving, by peer
	reconnects uint64               // the connection's count of reconnections, as last seen
	dropped    int                  // messages NATS dropped on this process's own subject, as last seen
}

func (b *Bus) receiver() {
	defer b.wg.Done()
	r := &receiver{b: b, rooms: make(map[string]*roomSub), assembling: make(map[string]*assembly),
		reconnects: b.nc.Stats().Reconnects}
	defer r.stop()
	tick := time.NewTicker(b.cfg.heartbeat)
	defer tick.Stop()
	second := time.NewTicker(time.Second)
	defer second.Stop()
	for {
		ok := true
		select {
		case m := <-b.in:
			ok = r.receive(m)
		case <-b.cmdWake:
			ok = r.commands()
		case res := <-b.results:
			ok = r.fetched(res)
		case msg := <-b.failed:
			ok = b.deliver(msg)
		case <-tick.C:
			ok = r.watch()
		case <-second.C:
			b.malformed.flush()
			b.refusals.flush()
			b.failures.flush()
		case <-b.done:
			return
		}
		if ok && (len(b.in) == 0 || len(b.held) >= maxHeld) {
			ok = b.handOver()
		}
		if !ok { // the hub is closing
			return
		}
	}
}

// maxHeld is the most messages the receiver holds for the hub before it
// hands them over: the hub's inbox takes 256 before deliver waits.
const maxHeld = 256

// deliver holds msg for the hub, in order; the receiver hands over what
// it holds before it waits for more (when nothing more has arrived from
// NATS), or at maxHeld messages: the hub then takes a burst of lines at
// once, and writes them to each member together. It reports false once
// the hub is closing. The receiver's alone.
func (b *Bus) deliver(msg chatroom.BusMessage) bool {
	b.held = append(b.held, msg)
	return true
}

// handOver hands the hub what the receiver holds. It reports false once
// the hub is closing.
func (b *Bus) handOver() bool {
	for i := range b.held {
		if !b.toHub(b.held[i]) {
			clear(b.held)
			b.held = b.held[:0]
			return false
		}
		b.held[i] = chatroom.BusMessage{}
	}
	b.held = b.held[:0]
	return true
}

// stop drops the rooms' subscriptions.
func (r *receiver) stop() {
	for _, rs := range r.rooms {
		rs.sub.Unsubscribe()
	}
}

// receive deals with one message from core NATS. It reports false once
// the hub is closing.
func (r *receiver) receive(m *nats.Msg) bool {
	b := r.b
	b.received.Add(1)
	switch {
	case m.Subject == b.subj.ev:
		return r.presence(m)
	case m.Subject == b.subj.mine:
		return r.direct(m)
	case strings.HasPrefix(m.Subject, b.subj.live):
		return r.live(m)
	}
	return true
}

// presence deals with a message on the presence subject.
func (r *receiver) presence(m *nats.Msg) bool {
	b := r.b
	e, err := decode(m.Data, b.cfg.maxLine)
	if err != nil || !e.kind.presence() {
		b.malformed.note(m.Subject)
		return true
	}
	if e.from == b.id {
		return true // our own, echoed
	}
	now := time.Now()
	b.mu.Lock()
	p := b.peers[e.from]
	isNew := p == nil
	switch {
	case isNew && e.kind == kindBye:
		b.mu.Unlock()
		return true
	case isNew && len(b.peers) >= maxPeers:
		b.mu.Unlock()
		b.refusals.note("more than 1 024 processes")
		return true
	case isNew:
		p = &peer{names: make(map[string]struct{})}
		b.peers[e.from] = p
	case e.seq <= p.seq:
		b.mu.Unlock()
		return true // had it, or the state that covers it
	case e.seq > p.seq+1:
		b.lost.Add(e.seq - p.seq - 1)
	}
	missed := isNew || e.seq != p.seq+1
	p.seq, p.heard = e.seq, now
	if e.kind == kindHello {
		b.stateAsks[e.from] = true // it is new, or reconnected: it needs ours
		wake(b.asked)
	}
	if missed || e.kind == kindHello {
		r.ask(e.from, p, now)
	}
	ok := r.track(e, p)
	b.mu.Unlock()
	if !ok {
		b.refusals.note("a peer's client over the limit")
		return true
	}
	msg := e.msg
	msg.Peer = e.from
	switch e.kind {
	case kindJoin:
		msg.Kind = chatroom.BusJoin
	case kindPart:
		msg.Kind = chatroom.BusPart
	case kindQuit:
		msg.Kind = chatroom.BusQuit
	case kindNick:
		msg.Kind = chatroom.BusNick
	case kindTopic:
		msg.Kind = chatroom.BusTopic
	case kindAnnounce:
		msg.Kind = chatroom.BusAnnounce
	case kindBye:
		delete(r.assembling, e.from)
		return b.deliver(chatroom.BusMessage{Kind: chatroom.BusGone, Peer: e.from})
	default: // heartbeat, hello
		return true
	}
	return b.deliver(msg)
}

// track keeps b.where up to date with e, a presence message of p's; it
// reports false for a join of a client over the limit of a peer's
// clients. The caller holds b.mu.
func (r *receiver) track(e *envelope, p *peer) bool {
	b := r.b
	switch e.kind {
	case kindJoin:
		key := nameKey(e.msg.Name)
		if _, ok := p.names[key]; !ok {
			if len(p.names) >= b.cfg.maxPeerClients {
				return false
			}
			if holder := b.where[key]; holder == "" || holder == e.from {
				b.where[key] = e.from
				p.names[key] = struct{}{}
			}
		}
	case kindQuit:
		r.forget(e.from, p, nameKey(e.msg.Name))
	case kindNick:
		old := nameKey(e.msg.Old)
		if _, ok := p.names[old]; ok {
			r.forget(e.from, p, old)
			key := nameKey(e.msg.Name)
			if holder := b.where[key]; holder == "" {
				b.where[key] = e.from
				p.names[key] = struct{}{}
			}
		}
	case kindBye:
		r.drop(e.from, p)
	}
	return true
}

// forget takes the name whose key is key off p's clients. The caller holds
// b.mu.
func (r *receiver) forget(id string, p *peer, key string) {
	delete(p.names, key)
	if r.b.where[key] == id {
		delete(r.b.where, key)
	}
}

// drop forgets the peer id and its clients. The caller holds b.mu.
func (r *receiver) drop(id string, p *peer) {
	for key := range p.names {
		if r.b.where[key] == id {
			delete(r.b.where, key)
		}
	}
	delete(r.b.peers, id)
}

// ask asks the peer id for its state, unless it was asked within half a
// heartbeat (the watcher asks again if it does not come). The caller holds
// b.mu.
func (r *receiver) ask(id string, p *peer, now time.Time) {
	b := r.b
	p.want = true
	if now.Sub(p.asked) < b.cfg.heartbeat/2 {
		return
	}
	p.asked = now
	e := &envelope{kind: kindSync, from: b.id}
	if err := b.nc.Publish(b.subj.to+id, e.encode(nil)); err != nil {
		b.dropped.Add(1)
		return
	}
	b.published.Add(1)
}

// direct deals with a message on this process's own subject.
func (r *receiver) direct(m *nats.Msg) bool {
	b := r.b
	e, err := decode(m.Data, b.cfg.maxLine)
	if err != nil || e.kind.presence() || e.kind == kindLine {
		b.malformed.note(m.Subject)
		return true
	}
	if e.from == b.id {
		return true
	}
	b.mu.Lock()
	if p := b.peers[e.from]; p != nil {
		p.heard = time.Now()
	}
	b.mu.Unlock()
	switch e.kind {
	case kindSync:
		b.mu.Lock()
		if len(b.stateAsks) < maxPeers {
			b.stateAsks[e.from] = true
		}
		b.mu.Unlock()
		wake(b.asked)
	case kindState:
		return r.statePart(e)
	case kindWhisper:
		return b.deliver(chatroom.BusMessage{Kind: chatroom.BusWhisper, Peer: e.from, Name: e.msg.Line.To,
			Line: e.msg.Line, Time: e.msg.Time})
	case kindKick:
		msg := e.msg
		msg.Kind, msg.Peer = chatroom.BusKick, e.from
		return b.deliver(msg)
	}
	return true
}

// statePart takes one part of a peer's state; once it has them all, it
// hands the hub the peer's whole state.
func (r *receiver) statePart(e *envelope) bool {
	b := r.b
	a := r.assembling[e.from]
	switch {
	case e.part == 0 && a == nil && len(r.assembling) >= maxAssemblies:
		b.refusals.note("too many states at once")
		return true
	case e.part == 0:
		a = &assembly{asOf: e.seq, parts: e.parts}
		r.assembling[e.from] = a
	case a == nil || a.asOf != e.seq || a.parts != e.parts || a.next != e.part:
		delete(r.assembling, e.from)
		b.malformed.note("a state's parts out of order")
		return true
	}
	if len(a.members)+len(e.members) > b.cfg.maxPeerClients {
		delete(r.assembling, e.from)
		b.refusals.note("a state over the limit of a peer's clients")
		return true
	}
	a.members = append(a.members, e.members...)
	if a.next++; a.next < a.parts {
		return true
	}
	delete(r.assembling, e.from)

	b.mu.Lock()
	p := b.peers[e.from]
	switch {
	case p == nil && len(b.peers) >= maxPeers:
		b.mu.Unlock()
		b.refusals.note("more than 1 024 processes")
		return true
	case p == nil:
		p = &peer{}
		b.peers[e.from] = p
	case a.asOf < p.seq:
		b.mu.Unlock()
		return true // older than what was heard since
	}
	p.seq, p.heard, p.want = a.asOf, time.Now(), false
	for key := range p.names {
		if b.where[key] == e.from {
			delete(b.where, key)
		}
	}
	p.names = make(map[string]struct{}, len(a.members))
	for _, c := range a.members {
		key := nameKey(c.Name)
		if holder := b.where[key]; holder == "" || holder == e.from {
			b.where[key] = e.from
			p.names[key] = struct{}{}
		}
	}
	b.mu.Unlock()
	return b.deliver(chatroom.BusMessage{Kind: chatroom.BusState, Peer: e.from, Members: a.members})
}

// watch runs once a heartbeat: it counts gone the processes silent for
// deadAfter heartbeats (none while this process is cut off from NATS: it
// cannot hear anyone), asks again for the states that did not come, and
// has every room's missed lines read from the stream after a
// reconnection, or a room's after NATS dropped some of its lines.
func (r *receiver) watch() bool {
	b := r.b
	now := time.Now()
	var gone []string
	b.mu.Lock()
	connected := b.nc.IsConnected()
	for id, p := range b.peers {
		switch {
		case !connected:
			p.heard = now
		case now.Sub(p.heard) > deadAfter*b.cfg.heartbeat:
			r.drop(id, p)
			gone = append(gone, id)
		case p.want && now.Sub(p.asked) >= 2*b.cfg.heartbeat:
			r.ask(id, p, now)
		}
	}
	b.mu.Unlock()
	slices.Sort(gone)
	for _, id := range gone {
		delete(r.assembling, id)
		b.log.Info("natsbus: a process went silent; its clients are gone", "peer", id)
		if !b.deliver(chatroom.BusMessage{Kind: chatroom.BusGone, Peer: id}) {
			return false
		}
	}
	if len(b.subs) > 1 {
		if n, err := b.subs[1].Dropped(); err == nil && n > r.dropped {
			b.lost.Add(uint64(n - r.dropped)) // whispers, kicks or states: the states are asked for again
			r.dropped = n
		}
	}
	reconnected := false
	if n := b.nc.Stats().Reconnects; n != r.reconnects {
		r.reconnects, reconnected = n, true
	}
	for _, rs := range r.rooms {
		n, err := rs.sub.Dropped()
		if err == nil && n > rs.dropped || reconnected {
			if err == nil {
				rs.dropped = n
			}
			if !rs.fetching {
				r.fetch(rs, false)
			}
		}
	}
	return true
}
