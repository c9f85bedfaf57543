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

// An Event is something that happened in the room, as [WithEvents]
// reports it.
type Event struct {
	Kind   EventKind
	Time   time.Time // from the room's clock
	Name   string    // the client's name (after a nick change: the new one)
	Addr   string    // the client's remote address
	Text   string    // EventMessage: the text as relayed (for /me, the action without "/me ")
	To     string    // EventMessage: a whisper's recipient; "" for the room
	Action bool      // EventMessage: a /me line
	Old    string    // EventNick: the previous name
	Reason string    // EventLeave: "exit", "disconnect", "idle timeout", "too slow", "kicked", "shutdown" or "closed"
}

// ClientInfo describes a client in the room, as [Room.Clients] reports it.
type ClientInfo struct {
	Name   string
	Addr   string    // its remote address
	Joined time.Time // from the clock of the room it joined
	Peer   string    // with a bus: the peer room it is in, as the bus names it; "" for this room's own clients
}

// eventBacklog is how many events may wait for a slow observer. Past it,
// events are dropped, never waited for.
const eventBacklog = 10_000

// eventSink hands the room's events to the observer on a goroutine of its
// own, deliver, in the order the room goroutine emitted them.
type eventSink struct {
	observe func(Event)
	events  chan Event    // the backlog; only the room goroutine sends
	dropped atomic.Uint64 // events dropped because the backlog was full
	burst   *burstLog     // logs the drops, once per burst
	done    chan struct{} // closed by deliver as it returns
}

func newEventSink(observe func(Event), burst *burstLog) *eventSink {
	return &eventSink{observe: observe, events: make(chan Event, eventBacklog), burst: burst, done: make(chan struct{})}
}

// emit queues e, or drops and counts it if the backlog is full. Only the
// room goroutine calls it; it never waits.
func (s *eventSink) emit(e Event) {
	select {
	case s.events <- e:
	default:
		s.dropped.Add(1)
		s.burst.event("backlog", eventBacklog)
	}
}

// deliver is the events goroutine: the only caller of the observer. It
// returns once the room goroutine has closed events and every event queued
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
