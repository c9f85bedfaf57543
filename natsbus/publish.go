package natsbus

import (
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/chatroom-go/chatroom"
)

// This file is the publisher goroutine: what the hub's clients do goes
// out in the order the hub did it: presence numbered on the presence
// subject, whispers and kicks to the process of the client they concern,
// lines to the stream. It also keeps the list of this process's clients
// and their rooms, exact at its place among the presence messages, which
// it sends as this process's state to whoever asks.

// item is one thing the hub published, copied: the bus keeps nothing of
// the hub's. A line (BusLine) is its kind (said), sender (name), text,
// time and notice flag.
type item struct {
	kind                            chatroom.BusKind
	room, name, old, by, addr, text string
	time                            time.Time
	reason                          chatroom.LeaveReason
	said                            chatroom.MessageKind // BusLine: say or action
	notice                          bool                 // BusLine: a notice
	line                            *chatroom.Message    // BusWhisper: the bus's own copy
}

// newItem copies m, or returns nil for a line or whisper without one.
func newItem(m chatroom.BusMessage) *item {
	it := &item{kind: m.Kind, room: m.Room, name: m.Name, old: m.Old, by: m.By, addr: m.Addr, text: m.Text,
		time: m.Time, reason: m.Reason}
	if m.Kind == chatroom.BusLine || m.Kind == chatroom.BusWhisper {
		l := m.Line
		if l == nil {
			return nil
		}
		if m.Kind == chatroom.BusLine {
			it.said, it.name, it.text, it.time, it.notice = l.Kind, l.From, l.Text, l.Time, l.Notice
			return it
		}
		it.line = &chatroom.Message{Kind: l.Kind, Time: l.Time, Room: m.Room, From: l.From, To: l.To, Text: l.Text, Notice: l.Notice}
	}
	return it
}

// message returns it, a line, as the hub's Message.
func (it *item) message() *chatroom.Message {
	return &chatroom.Message{Kind: it.said, Time: it.time, Room: it.room, From: it.name, Text: it.text, Notice: it.notice}
}

// pendingAck is a message of lines published to the stream, waiting for
// its acknowledgement.
type pendingAck struct {
	f     jetstream.PubAckFuture
	lines []*item
}

// publisher is the publisher goroutine's own.
type publisher struct {
	b          *Bus
	seq        uint64             // the last presence message published
	buf        []byte             // reused for presence messages (nats.go copies what it publishes)
	members    map[string]*member // this process's clients in rooms, by nameKey
	owesHello  bool               // a presence message was not published: everyone should ask for the state
	reconnects uint64             // the connection's count of reconnections, as last seen
	next       *item              // taken from the queue behind a batch of lines, not of it: the next to publish
}

// member is one of this process's clients, as its state lists it.
type member struct {
	info chatroom.ClientInfo
}

// publisher publishes what the hub hands Publish, in order, a heartbeat
// every heartbeat (or a hello after a reconnection, or after a presence
// message was not published), and this process's state to whoever asked.
func (b *Bus) publisher() {
	defer b.wg.Done()
	p := &publisher{b: b, members: make(map[string]*member), reconnects: b.nc.Stats().Reconnects}
	tick := time.NewTicker(b.cfg.heartbeat)
	defer tick.Stop()
	p.presence(&envelope{kind: kindHello})
	for {
		select {
		case it := <-b.out:
			p.take(it)
		case <-b.asked:
			p.states()
		case <-tick.C:
			if n := b.nc.Stats().Reconnects; n != p.reconnects || p.owesHello {
				p.reconnects, p.owesHello = n, false
				p.presence(&envelope{kind: kindHello}) // the others missed ours, and we theirs
			} else {
				p.presence(&envelope{kind: kindHeartbeat})
			}
			p.states() // those put off
		case <-b.done:
			for {
				select {
				case it := <-b.out:
					p.take(it)
					continue
				default:
				}
				break
			}
			p.presence(&envelope{kind: kindBye})
			if err := b.nc.FlushTimeout(closeTimeout); err != nil && b.nc.IsConnected() {
				b.log.Warn("natsbus: the goodbye may not have reached NATS", "err", err)
			}
			return
		}
	}
}

// take publishes it and whatever it takes from the queue behind it, in
// order: lines said in one room one after the other, already queued, go
// to the stream together (see lineBatch).
func (p *publisher) take(it *item) {
	for it != nil {
		if it.kind == chatroom.BusLine {
			p.b.publishLines(p.lineBatch(it))
		} else {
			p.apply(it)
		}
		it, p.next = p.next, nil
	}
}

// maxBatchBytes bounds the names and texts of the lines published in one
// message: a batch ends before the line that would cross it.
const maxBatchBytes = 64 << 10

// lineBatch returns first, a line, and the lines queued behind it said in
// the same room, without waiting for more: at most maxBatchLines, and
// maxBatchBytes of text or half the server's largest message, whichever
// is less (a first line longer than that goes alone). The first item it
// took that is not of the batch is left in p.next.
func (p *publisher) lineBatch(first *item) []*item {
	b := p.b
	batch := []*item{first}
	budget := min(maxBatchBytes, int(b.nc.MaxPayload()/2))
	size := len(first.name) + len(first.text)
	for len(batch) < maxBatchLines && size < budget {
		select {
		case it := <-b.out:
			n := len(it.name) + len(it.text)
			if it.kind != chatroom.BusLine || it.room != first.room || size+n > budget {
				p.next = it
				return batch
			}
			batch = append(batch, it)
			size += n
		default:
			return batch
		}
	}
	return batch
}

// apply publishes it, anything but a line, and keeps this process's state
// up to date.
func (p *publisher) apply(it *item) {
	switch it.kind {
	case chatroom.BusWhisper, chatroom.BusKick:
		p.direct(it)
		return
	case chatroom.BusJoin:
		key := nameKey(it.name)
		m := p.members[key]
		if m == nil {
			m = &member{info: chatroom.ClientInfo{Name: it.name, Addr: it.addr, Joined: it.time}}
			p.members[key] = m
		}
		if !slices.Contains(m.info.Rooms, it.room) {
			m.info.Rooms = append(m.info.Rooms, it.room)
		}
	case chatroom.BusPart:
		if m := p.members[nameKey(it.name)]; m != nil {
			if i := slices.Index(m.info.Rooms, it.room); i >= 0 {
				m.info.Rooms = slices.Delete(m.info.Rooms, i, i+1)
			}
			if len(m.info.Rooms) == 0 {
				delete(p.members, nameKey(it.name))
			}
		}
	case chatroom.BusQuit:
		delete(p.members, nameKey(it.name))
	case chatroom.BusNick:
		if m := p.members[nameKey(it.old)]; m != nil {
			delete(p.members, nameKey(it.old))
			m.info.Name = it.name
			p.members[nameKey(it.name)] = m
		}
	case chatroom.BusTopic, chatroom.BusAnnounce:
	default:
		return
	}
	p.presence(&envelope{kind: presenceKinds[it.kind], msg: chatroom.BusMessage{Room: it.room, Name: it.name,
		Old: it.old, Addr: it.addr, Text: it.text, Time: it.time, Reason: it.reason}})
}

// presenceKinds is the envelope kind of each presence BusKind.
var presenceKinds = map[chatroom.BusKind]kind{
	chatroom.BusJoin: kindJoin, chatroom.BusPart: kindPart, chatroom.BusQuit: kindQuit, chatroom.BusNick: kindNick,
	chatroom.BusTopic: kindTopic, chatroom.BusAnnounce: kindAnnounce,
}

// presence publishes e on the presence subject, numbering it. A message
// NATS refuses (the connection is down) takes no number; the hello that
// follows has everyone ask for this process's state.
func (p *publisher) presence(e *envelope) {
	b := p.b
	e.from, e.seq = b.id, p.seq+1
	p.buf = e.encode(p.buf[:0])
	if err := b.nc.Publish(b.subj.ev, p.buf); err != nil {
		b.dropped.Add(1)
		p.owesHello = e.kind != kindBye
		return
	}
	p.seq++
	b.published.Add(1)
}

// direct publishes a whisper or a kick to the process whose client it
// names, and to it alone.
func (p *publisher) direct(it *item) {
	b := p.b
	b.mu.Lock()
	target := b.where[nameKey(it.name)]
	b.mu.Unlock()
	if target == "" {
		b.dropped.Add(1)
		b.log.Debug("natsbus: no process known for a whisper or kick", "name", it.name)
		return
	}
	e := &envelope{from: b.id, msg: chatroom.BusMessage{Room: it.room, Name: it.name, By: it.by, Text: it.text, Time: it.time}}
	if it.kind == chatroom.BusWhisper {
		e.kind, e.msg.Line = kindWhisper, it.line
	} else {
		e.kind = kindKick
	}
	p.buf = e.encode(p.buf[:0])
	if err := b.nc.Publish(b.subj.to+target, p.buf); err != nil {
		b.dropped.Add(1)
		return
	}
	b.published.Add(1)
}

// publishLines publishes lines said in one room, in order, to the stream
// in one message, and has the acknowledgement watched: lines the stream
// does not take are handed back to the hub. Retries are off: lines
// retried later could pass their senders' next.
func (b *Bus) publishLines(lines []*item) {
	first := lines[0]
	token, ok := roomToken(first.room)
	if !ok {
		b.fail(lines, errors.New("not a room's name"))
		return
	}
	msg := &nats.Msg{Subject: b.subj.line + token, Data: appendLines(nil, b.id, first.room, lines)}
	f, err := b.js.PublishMsgAsync(msg, jetstream.WithExpectStream(b.subj.stream), jetstream.WithRetryAttempts(0))
	if err != nil {
		b.fail(lines, err)
		return
	}
	b.published.Add(uint64(len(lines)))
	select {
	case b.acks <- pendingAck{f, lines}:
	case <-b.done:
	}
}

// acknowledged is the goroutine that watches the stream's acknowledgements,
// in the order the lines were published.
func (b *Bus) acknowledged() {
	defer b.wg.Done()
	for {
		select {
		case a := <-b.acks:
			select {
			case <-a.f.Ok():
			case err := <-a.f.Err():
				b.fail(a.lines, err)
			case <-b.done:
				return
			}
		case <-b.done:
			return
		}
	}
}

// fail hands lines back to the hub as not delivered, through the
// receiver, and logs why (at most once a second).
func (b *Bus) fail(lines []*item, err error) {
	b.failures.note(err.Error())
	for _, it := range lines {
		msg := chatroom.BusMessage{Kind: chatroom.BusLine, Room: it.room, Name: it.name, Line: it.message(), Err: ErrNotDelivered}
		select {
		case b.failed <- msg:
		default: // 1 024 waiting already: its sender is not told
		}
	}
}

// states sends this process's state to the peers that asked for it, each
// at most once per half heartbeat: an ask sooner waits for the next tick.
func (p *publisher) states() {
	b := p.b
	now := time.Now()
	var targets []string
	b.mu.Lock()
	for id := range b.stateAsks {
		if now.Sub(b.lastState[id]) >= b.cfg.heartbeat/2 {
			targets = append(targets, id)
			b.lastState[id] = now
			delete(b.stateAsks, id)
		}
	}
	for id, at := range b.lastState {
		if now.Sub(at) > deadAfter*b.cfg.heartbeat {
			delete(b.lastState, id)
		}
	}
	b.mu.Unlock()
	for _, id := range targets {
		p.sendState(id)
	}
}

// sendState sends this process's state to the peer id, in parts that
// each fit in a NATS message, as of the last presence message published.
func (p *publisher) sendState(id string) {
	b := p.b
	budget := int(min(256<<10, b.nc.MaxPayload()/2))
	var parts [][]chatroom.ClientInfo
	var cur []chatroom.ClientInfo
	size := 0
	for _, m := range p.members {
		n := len(m.info.Name) + len(m.info.Addr) + 16
		for _, r := range m.info.Rooms {
			n += len(r) + 4
		}
		if size+n > budget && len(cur) > 0 {
			parts = append(parts, cur)
			cur, size = nil, 0
		}
		cur = append(cur, m.info)
		size += n
	}
	parts = append(parts, cur)
	for i, members := range parts {
		e := &envelope{kind: kindState, from: b.id, seq: p.seq, part: i, parts: len(parts), members: members}
		p.buf = e.encode(p.buf[:0])
		if err := b.nc.Publish(b.subj.to+id, p.buf); err != nil {
			b.dropped.Add(1)
			b.log.Debug("natsbus: a state was not sent", "peer", id, "err", err)
			return
		}
		b.published.Add(1)
	}
}
