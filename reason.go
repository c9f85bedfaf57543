package chatroom

import (
	"errors"
	"io"
	"os"
)

// leaveReason records why a client left the room. Everything a departure
// does is decided by its reason, in the table below: nothing else in the
// package switches on a reason to decide an effect.
type leaveReason uint8

const (
	reasonNone       leaveReason = iota // not left (yet)
	reasonExit                          // the client sent "exit"
	reasonDisconnect                    // the client hung up, or its connection failed
	reasonIdle                          // no line that counts within the idle timeout
	reasonSlow                          // its outbox filled, or a write missed its deadline
	reasonKicked                        // Room.Kick
	reasonShutdown                      // Room.Shutdown
	reasonClosed                        // Room.Close, or Shutdown's context ran out
)

// leaveEffect is what one reason does to the client that leaves, to the
// others, and to the counters.
type leaveEffect struct {
	name   string // in logs
	last   []byte // the client's last line (text.go), or nil for none
	flush  bool   // what was queued for it is written before its connection closes
	notice string // appended to "<name> left" in the others' notice (text.go)
	evicts bool   // counts in Stats.Evicted, and is logged as a warning
	kicked bool   // the last line and the notice carry the kick's reason (lineKicked, noticeKicked)
	err    error  // what ServeConn returns; nil: nil, or the connection's error wrapped
}

// leaveEffects is the table of every reason's effects. A room that ends
// (shutdown, closed) announces no departures: nobody is left to tell.
var leaveEffects = [...]leaveEffect{
	reasonNone:       {name: "none"},
	reasonExit:       {name: "exit", last: lineBye, flush: true},
	reasonDisconnect: {name: "disconnect", flush: true}, // a half-closed client still reads what it is owed
	reasonIdle:       {name: "idle timeout", last: lineIdle, flush: true, err: ErrIdleTimeout},
	reasonSlow:       {name: "too slow", notice: noticeTooSlow, evicts: true, err: ErrTooSlow},
	reasonKicked:     {name: "kicked", flush: true, kicked: true, err: ErrKicked},
	reasonShutdown:   {name: "shutdown", last: lineShutdown, flush: true, err: ErrRoomClosed},
	reasonClosed:     {name: "closed", err: ErrRoomClosed},
}

func (r leaveReason) effect() leaveEffect { return leaveEffects[r] }

// lastLine and notice are the effect's last line and notice, with the
// kick's reason where the effect carries one.
func (e leaveEffect) lastLine(detail string) []byte {
	if e.kicked {
		return lineKicked(detail)
	}
	return e.last
}

func (e leaveEffect) noticeText(detail string) string {
	if e.kicked {
		return noticeKicked(detail)
	}
	return e.notice
}

func (r leaveReason) String() string { return leaveEffects[r].name }

// reasonForReadError maps the error that stopped a client's reader to the
// reason it leaves: a passed read deadline is the idle timeout, anything
// else a disconnect (an error other than the end of input is kept for
// ServeConn to return).
func reasonForReadError(err error) (leaveReason, error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return reasonIdle, nil
	case err == io.EOF:
		return reasonDisconnect, nil
	}
	return reasonDisconnect, err
}

// reasonForWriteError maps the error that stopped a write to a client to
// the reason it leaves: a passed write deadline means it reads too slowly.
func reasonForWriteError(err error) leaveReason {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return reasonSlow
	}
	return reasonDisconnect
}
