package chatroom

import (
	"errors"
	"io"
	"os"
	"strconv"
)

// LeaveReason says why a client left a room or the hub, in [Event] and
// [Message]. Everything a departure does is decided by its reason, in the
// table below: nothing else in the package switches on a reason to decide
// an effect.
type LeaveReason uint8

// The reasons a client leaves. [LeaveReason.String] gives their words.
const (
	ReasonNone       LeaveReason = iota // not left (yet)
	ReasonExit                          // "exit": the client sent "exit" or /quit (IRC QUIT)
	ReasonDisconnect                    // "disconnect": the client hung up, or its connection failed
	ReasonIdle                          // "idle timeout": no line that counts within the idle timeout
	ReasonSlow                          // "too slow": its outbox filled, or a write missed its deadline
	ReasonKicked                        // "kicked": Room.Kick, Hub.Kick, or an operator
	ReasonShutdown                      // "shutdown": Shutdown
	ReasonClosed                        // "closed": Close, or Shutdown's context ran out
	ReasonPart                          // "part": it left the room and stays connected (a move, IRC PART)
	ReasonRefused                       // "refused": it was turned away before it joined
)

// leaveEffect is what one reason does to the client that leaves, to the
// others, and to the counters.
type leaveEffect struct {
	name   string // String, in logs and events
	last   []byte // the text protocol's last line for it (text.go), or nil for none
	flush  bool   // what was queued for it is written before its connection closes
	notice string // appended to "<name> left" in the text protocol's notice to the others
	evicts bool   // counts in Stats.Evicted, and is logged as a warning
	kicked bool   // the last line and the notice carry the kick's reason (lineKicked, kickedNotice)
	err    error  // what ServeConn returns; nil: nil, or the connection's error wrapped
}

// leaveEffects is the table of every reason's effects. A hub that ends
// (shutdown, closed) announces no departures: nobody is left to tell.
var leaveEffects = [...]leaveEffect{
	ReasonNone:       {name: ""},
	ReasonExit:       {name: "exit", last: lineBye, flush: true},
	ReasonDisconnect: {name: "disconnect", flush: true}, // a half-closed client still reads what it is owed
	ReasonIdle:       {name: "idle timeout", last: lineIdle, flush: true, err: ErrIdleTimeout},
	ReasonSlow:       {name: "too slow", notice: " (too slow)", evicts: true, err: ErrTooSlow},
	ReasonKicked:     {name: "kicked", flush: true, kicked: true, err: ErrKicked},
	ReasonShutdown:   {name: "shutdown", last: lineShutdown, flush: true, err: ErrRoomClosed},
	ReasonClosed:     {name: "closed", err: ErrRoomClosed},
	ReasonPart:       {name: "part"},
	ReasonRefused:    {name: "refused", flush: true},
}

func (r LeaveReason) effect() leaveEffect {
	if int(r) < len(leaveEffects) {
		return leaveEffects[r]
	}
	return leaveEffect{name: "LeaveReason(" + strconv.Itoa(int(r)) + ")"}
}

// String returns the reason's words: "exit", "disconnect", "idle timeout",
// "too slow", "kicked", "shutdown", "closed", "part" or "refused"; "" for
// ReasonNone.
func (r LeaveReason) String() string { return r.effect().name }

// lastLine and noticeText are the text protocol's last line and notice
// for the reason, with the kick's reason where the effect carries one.
func (e leaveEffect) lastLine(detail string) []byte {
	if e.kicked {
		return lineKicked(detail)
	}
	return e.last
}

func (e leaveEffect) noticeText(detail string) string {
	if e.kicked {
		return kickedNotice(detail)
	}
	return e.notice
}

// reasonForReadError maps the error that stopped a client's reader to the
// reason it leaves: a passed read deadline is the idle timeout, anything
// else a disconnect (an error other than the end of input is kept for
// ServeConn to return).
func reasonForReadError(err error) (LeaveReason, error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonIdle, nil
	case err == io.EOF:
		return ReasonDisconnect, nil
	}
	return ReasonDisconnect, err
}

// reasonForWriteError maps the error that stopped a write to a client to
// the reason it leaves: a passed write deadline means it reads too slowly.
func reasonForWriteError(err error) LeaveReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return ReasonSlow
	}
	return ReasonDisconnect
}
