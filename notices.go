package chatroom

import "time"

// This file is the hub goroutine's rule for join and leave notices, so
// that a storm of arrivals and departures (a flood of connections that
// open and close, from many addresses) costs the members of a room a line
// a second, not one per connection, and cannot get a reading member cut
// off as too slow:
//
//   - a room tells its members of noticesPerSecond joins and leaves a
//     second one by one; past that, in the same second, it counts them,
//     and tells the count once a second (KindSummary: "532 joined, 530
//     left");
//   - a client whose join was counted, not told, and that leaves within
//     briefStay having said nothing, is told neither way, nor counted;
//   - whoever was told that a client joined (or counted it) is told when it
//     leaves (or counts it);
//   - a client that speaks is told to have joined first, one by one,
//     storm or not: chat lines, /me and whispers are never coalesced or
//     dropped.
//
// Kicks and renames are told one by one: a kick is an operator's, and
// renames have their own cooldown (Client.Nick).

// noticesPerSecond is how many join and leave notices a room sends one by
// one a second before it counts them instead.
const noticesPerSecond = 20

// briefStay is how long a client whose join was not told may stay, saying
// nothing, and leave untold.
const briefStay = time.Second

// notices is a room's account of its join and leave notices.
type notices struct {
	start   time.Time // when the current second began, by the real clock
	sent    int       // notices sent one by one in it
	joined  int       // joins counted since the last summary
	left    int       // leaves counted since the last summary
	pending []*Client // members whose join was neither told nor counted yet (place.pend says where each is)
	storm   bool      // in state.storms: counted or pending notices wait for the next tick
}

// mayTell reports whether r may send one more join or leave notice one by
// one now, and counts it if so.
func (s *state) mayTell(r *Room) bool {
	n := &r.notices
	now := time.Now()
	if now.Sub(n.start) >= time.Second {
		n.start, n.sent = now, 0
	}
	if n.sent < noticesPerSecond {
		n.sent++
		return true
	}
	s.storming(r)
	return false
}

// storming puts r among the rooms the next tick looks at, and starts the
// ticks.
func (s *state) storming(r *Room) {
	if r.notices.storm {
		return
	}
	r.notices.storm = true
	s.storms = append(s.storms, r)
	if s.tick == nil {
		s.tick = time.NewTicker(time.Second)
	}
}

// tellJoin tells r's members that m.From, who is not a member yet,
// joined, or leaves it to later (see the rules above): it reports
// whether it told them.
func (s *state) tellJoin(r *Room, m *Message) bool {
	if !s.mayTell(r) {
		return false
	}
	s.broadcast(r, []*Message{m}, nil, 0)
	return true
}

// tellLeave tells r's members with m (a part or a quit) that a member
// whose join was told (told) left, or counts it, or, if its join was
// never told, tells nothing. With dedupe, m is one hub-wide delivery (see
// broadcast).
func (s *state) tellLeave(r *Room, m *Message, told bool, dedupe uint64) {
	switch {
	case !told:
	case s.mayTell(r):
		s.broadcast(r, []*Message{m}, nil, dedupe)
	default:
		r.notices.left++
	}
}

// pend records that c, now a member of r, was not told to have joined.
func (s *state) pend(c *Client, r *Room) {
	r.notices.pending = append(r.notices.pending, c)
	c.seat.places[c.placeIn(r)].pend = len(r.notices.pending)
	s.storming(r)
}

// unpend takes c, whose place in r is c.seat.places[i], off r's pending
// joins, if it is there: the last one takes its slot, so that leaving
// costs no search, and holds nothing of c.
func (r *Room) unpend(c *Client, i int) {
	p := &c.seat.places[i]
	if p.pend == 0 {
		return
	}
	list := r.notices.pending
	last := list[len(list)-1]
	list[p.pend-1] = last
	last.seat.places[last.placeIn(r)].pend = p.pend
	list[len(list)-1] = nil
	r.notices.pending = list[:len(list)-1]
	p.pend = 0
}

// tellSpeaker tells r's members that c joined, one by one: c is about to
// speak there, and they were not told yet.
func (s *state) tellSpeaker(c *Client, r *Room) {
	i := c.placeIn(r)
	c.seat.places[i].told = true
	r.unpend(c, i)
	r.notices.sent++
	m := &Message{Kind: KindJoin, Time: s.now(), Room: r.name, From: c.seat.name, Addr: c.addr}
	mark := s.dedupe()
	c.seat.got = mark // not to c itself, which knows
	s.broadcast(r, []*Message{m}, nil, mark)
}

// ticked is the once-a-second work of the storms: in each storming room,
// the pending joins older than briefStay are counted, and the counts told
// in one summary. A room with nothing pending and nothing counted is
// calm again; with no storm left, the ticks stop.
func (s *state) ticked() {
	now := time.Now()
	storms := s.storms[:0]
	for _, r := range s.storms {
		n := &r.notices
		keep := n.pending[:0]
		for _, c := range n.pending {
			p := &c.seat.places[c.placeIn(r)]
			if now.Sub(p.since) >= briefStay {
				p.told, p.pend = true, 0
				n.joined++
			} else {
				keep = append(keep, c)
				p.pend = len(keep)
			}
		}
		clear(n.pending[len(keep):])
		n.pending = keep
		if n.joined > 0 || n.left > 0 {
			if !r.closed {
				s.broadcast(r, []*Message{{Kind: KindSummary, Time: s.now(), Room: r.name, Joined: n.joined, Left: n.left}}, nil, 0)
			}
			n.joined, n.left = 0, 0
		}
		if len(n.pending) > 0 {
			storms = append(storms, r)
		} else {
			n.storm = false
		}
	}
	clear(s.storms[len(storms):])
	s.storms = storms
	if len(s.storms) == 0 {
		s.tick.Stop()
		s.tick = nil
	}
}
