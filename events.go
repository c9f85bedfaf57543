package chatroom

import (
	"fmt"
	"sync/atomic"
	"time"
)

// EventKind says what an [Event] is about.
type EventKind int

const (
	EventJoin    EventKind = iota + 1 // a client joined
	EventLeave                        // a client left; Event.Reason says why
	EventMessage                      // a chat line, a /me line or a whisper, after the filter
	EventNick                         // a client took a new name
)

// String returns "join", "leave", "message" or "nick".
func (k EventKind) String() string {
	switch k {
	case EventJoin:
		return "join"
	case EventLeave:
		return "leave"
	case EventMessage:
		return "message"
	case EventNick:
		return "nick"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// An Event is something that happened in a hub, as [WithEvents] reports
// it. A client that leaves the hub from several rooms at once is one
// EventLeave per room.
type Event struct {
	Kind   EventKind
	Time   time.Time   // from the hub's clock
	Room   string      // the room it happened in; "" for a whisper, and for a client that left the hub from no room
	Name   string      // the client's name (after a nick change: the new one)
	Addr   string      // the client's remote address
	Text   string      // EventMessage: the text as relayed (for /me, the action without "/me ")
	To     string      // EventMessage: a whisper's recipient; "" for the room
	Action bool        // EventMessage: a /me line
	Old    string      // EventNick: the previous name
	Reason LeaveReason // EventLeave: why; its String gives "exit", "disconnect", "idle timeout", "too slow", "kicked", "shutdown", "closed" or "part"
}

// ClientInfo describes a client, as [Room.Clients], [Hub.Clients] and
// [Client.Lookup] report it.
type ClientInfo struct {
	Name      string
	Addr      string    // its remote address
	Joined    time.Time // when it arrived, by the clock of the hub it arrived in
	Peer      string    // with a bus: the peer it is on, as the bus names it; "" for this hub's own clients
	Rooms     []string  // the rooms it is in
	Away      string    // its away message, "" for none
	Face      string    // the protocol it speaks: "text", "json", "irc"
	Operator  bool      // an operator of the hub (see AuthReply, Client.SetOperator)
	Invisible bool      // it asked to be invisible (IRC's user mode +i)
	User      string    // its user name (see Registration.User)
	Host      string    // its host: the IP address it connects from, or its address if it has none
	RealName  string    // its real name (see Registration.RealName), "" for none
}

// eventBacklog is how many events may wait for a slow observer. Past it,
// events are dropped, never waited for.
const eventBacklog = 10_000

// eventSink hands the hub's events to the observer on a goroutine of its
// own, deliver, in the order the hub goroutine emitted them.
type eventSink struct {
	observe func(Event)
	events  chan Event    // the backlog; only the hub goroutine sends
	dropped atomic.Uint64 // events dropped because the backlog was full
	burst   *burstLog     // logs the drops, once per burst
	done    chan struct{} // closed by deliver as it returns
}

func newEventSink(observe func(Event), burst *burstLog) *eventSink {
	return &eventSink{observe: observe, events: make(chan Event, eventBacklog), burst: burst, done: make(chan struct{})}
}

// emit queues e, or drops and counts it if the backlog is full. Only the
// hub goroutine calls it; it never waits.
func (s *eventSink) emit(e Event) {
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
		s.burst.event("backlog", eventBacklog)
	}
}

// deliver is the events goroutine: the only caller of the observer. It
// returns once the hub goroutine has closed events and every event queued
// was delivered.
func (s *eventSink) deliver(log func(msg string, args ...any)) {
	defer close(s.done)
	for e := range s.events {
		func() {
			defer func() {
				if p := recover(); p != nil {
					log("events observer panicked", "event", e.Kind.String(), "panic", fmt.Sprint(p))
				}
			}()
			s.observe(e)
		}()
	}
}
