package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// This file is a client's way in and out of the hub, on its reader: its
// place among those being admitted, its address's limits, a TLS
// handshake, the auth hook, and leaving.

// handshakeTimeout bounds a TLS handshake, the auth hook and a face's
// registration when the hub has no write timeout.
const handshakeTimeout = DefaultWriteTimeout

// admit lets the client in as far as its face: it waits for a place among
// those being admitted, checks its address's limits, completes a TLS
// handshake, if any, and starts its face's session, which may register it.
// It returns the error ServeConn returns for a client that does not get
// that far, having closed its connection.
func (c *Client) admit() error {
	h := c.hub
	if !c.admitting && !h.waitAdmitting() {
		c.shut(ReasonClosed, nil)
		return ErrRoomClosed
	}
	c.admitting = true
	c.seat.form = c.face.Form()

	c.host = hostOf(c.conn)
	if refusal := h.hosts.open(c.host, time.Now()); refusal != "" {
		h.refusedEarly.Add(1)
		h.hostRefusals.event("addr", c.addr, "reason", refusal)
		c.refuse(refusal)
		return ErrTooManyFromHost
	}
	c.counted = true

	if err := c.handshake(); err != nil {
		defer c.doneAdmitting() // once the connection is closed
		if h.ctx.Err() != nil { // the hub is closing: that ended it
			c.shut(ReasonClosed, nil)
			return ErrRoomClosed
		}
		c.shut(ReasonDisconnect, err)
		h.handshakeFailures.event("addr", c.addr, "err", err)
		return fmt.Errorf("chatroom: handshake with %s: %w", c.addr, err)
	}
	c.startSession()
	return nil
}

// startSession starts the client's session with its face, recovering a
// face that panics: the client is then disconnected.
func (c *Client) startSession() {
	defer func() {
		if p := recover(); p != nil {
			c.hub.log.Error("face panicked; disconnecting the client", "face", c.face.Name(), "addr", c.addr, "panic", fmt.Sprint(p))
			c.shut(ReasonDisconnect, fmt.Errorf("chatroom: face %s panicked: %v", c.face.Name(), p))
		}
	}()
	c.session = c.face.Start(c)
}

// handshake completes a TLS handshake, if conn is TLS, before the client is
// admitted, so that a client that never finishes it holds no place in the
// hub and cannot stall its own writer forever. The handshake ends when the
// write timeout passes or the hub begins to close: a connection that has
// not joined is not a member, and Shutdown does not wait for it.
func (c *Client) handshake() error {
	hs, ok := c.conn.(handshaker)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.hub.ctx, c.hookTimeout())
	defer cancel()
	return hs.HandshakeContext(ctx)
}

// A handshaker is a connection with a handshake to complete before any
// byte is read or written: a *tls.Conn.
type handshaker interface {
	HandshakeContext(context.Context) error
}

// doneAdmitting gives up the client's place among those being admitted, if
// it holds one.
func (c *Client) doneAdmitting() {
	if c.admitting {
		c.admitting = false
		<-c.hub.admitting
	}
}

// hookTimeout is how long a hook that gets a context (the TLS handshake,
// the auth hook) and a face's registration may take: the write timeout, or
// handshakeTimeout without one.
func (c *Client) hookTimeout() time.Duration {
	if d := c.hub.opts.writeTimeout; d > 0 {
		return d
	}
	return handshakeTimeout
}

// refuse writes the last line of a client refused for words before its
// session started, in its face's form, within the write timeout, and
// closes its connection. A TLS connection is closed without a line: the
// line would need the handshake first, which costs the server the
// handshake's CPU and, with a client that never sends its ClientHello,
// would hold one of the places of those being admitted for the whole
// write timeout.
func (c *Client) refuse(words string) {
	defer c.doneAdmitting() // once the connection is closed: a place counts a descriptor
	if _, ok := c.conn.(handshaker); ok {
		c.shut(ReasonClosed, nil)
		return
	}
	if b := c.hub.format(c.seat.form, &Message{Kind: KindBye, Reason: ReasonRefused, Text: words}); b != nil {
		if d := c.hub.opts.writeTimeout; d > 0 {
			c.conn.SetWriteDeadline(time.Now().Add(d))
		}
		c.conn.Write(b)
	}
	c.shut(ReasonClosed, nil)
}

// An AuthEvent is what the auth hook ([WithAuth]) is asked about: a
// client about to register.
type AuthEvent struct {
	// Conn is the client's connection. The hook may read from it (a token
	// in the first line of the text protocol: read exactly what you need,
	// the rest is the client's chat), look at a *tls.Conn's peer
	// certificates, or at what an adapter carries (a WebSocket's
	// request).
	Conn net.Conn
	// Face is the protocol the client speaks: "text", "json", "irc".
	Face string
	// Name is the name the client asks for ("" for none: the text
	// protocol has no way to ask).
	Name string
	// Password is what the client gave as a password (IRC's PASS), or "".
	Password string
}

// An AuthReply is the auth hook's answer for a client it lets in.
type AuthReply struct {
	// Name is the client's name: required, cleaned like a chat line, and
	// unique in the hub ignoring case.
	Name string
	// Operator lets the client put others out of rooms (IRC's KICK,
	// [Client.Kick]).
	Operator bool
}

// errHookPanicked marks an auth hook that panicked.
var errHookPanicked = errors.New("chatroom: auth hook panicked")

// authenticate runs the auth hook for r and returns its answer, or its
// error (context.DeadlineExceeded for a hook that did not answer in time).
// The hook's context ends at the write timeout or when the hub begins to
// close; the connection's read deadline is set to the same moment, so a
// hook that reads from it is bounded too, and is lifted again afterwards.
func (c *Client) authenticate(r Registration) (AuthReply, error) {
	h := c.hub
	c.mayWait()
	ctx, cancel := context.WithTimeout(h.ctx, c.hookTimeout())
	defer cancel()
	deadline, _ := ctx.Deadline()
	c.conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Now()) })
	reply, err := c.callAuth(ctx, AuthEvent{Conn: c.conn, Face: c.face.Name(), Name: r.Name, Password: r.Password})
	stop()
	c.conn.SetReadDeadline(time.Time{})
	c.restartIdleClock() // the deadline above replaced the idle one

	if h.ctx.Err() != nil {
		return AuthReply{}, ErrRoomClosed
	}
	// Timed out: the context ended, or the read deadline set to its end
	// passed (the hook may see that first).
	timedOut := ctx.Err() != nil || !time.Now().Before(deadline)
	switch {
	case errors.Is(err, errHookPanicked):
		return AuthReply{}, fmt.Errorf("chatroom: auth of %s: %w", c.addr, err)
	case timedOut:
		return AuthReply{}, fmt.Errorf("chatroom: auth of %s: %w", c.addr, context.DeadlineExceeded)
	case err != nil:
		return AuthReply{}, fmt.Errorf("chatroom: auth of %s: %w", c.addr, err)
	}
	reply.Name = cleanString(reply.Name)
	if reply.Name == "" {
		return AuthReply{}, fmt.Errorf("chatroom: auth of %s: %w", c.addr, errNoName)
	}
	return reply, nil
}

// errNoName is an auth hook that answered without a name.
var errNoName = errors.New("the auth hook gave no name")

// callAuth calls the auth hook, turning a panic into errHookPanicked.
func (c *Client) callAuth(ctx context.Context, e AuthEvent) (reply AuthReply, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.hub.log.Error("auth hook panicked; refusing the client", "addr", c.addr, "panic", fmt.Sprint(p))
			reply, err = AuthReply{}, errHookPanicked
		}
	}()
	return c.hub.opts.auth(ctx, e)
}

// leave takes the client out of the hub once its reader has stopped for
// reason (ReasonNone if the hub is ending it; err if its connection
// broke), waits until its connection is closed, and returns the error
// ServeConn reports for it.
func (c *Client) leave(reason LeaveReason, err error) error {
	if err != nil {
		c.shut(ReasonDisconnect, err) // a broken connection: nothing more can reach it
	}
	switch {
	case reason == ReasonNone:
	case c.reg:
		q := request{kind: askLeave, client: c, reason: reason}
		if c.rare != nil {
			q.text = c.rare.quitText
		}
		c.hub.ask(q)
	default: // never in the hub: write what was queued for it, then close
		c.end(reason, nil)
	}
	c.closing.Wait()
	c.doneAdmitting() // a client refused before it was in held its place until its connection closed, within the write timeout
	c.releaseName()

	if !c.reg && c.rare != nil && c.rare.refusal != nil {
		c.hub.refusedEarly.Add(1)
		return c.rare.refusal
	}
	c.mu.Lock()
	reason, err = c.reason, c.err
	c.mu.Unlock()
	if e := reason.effect(); e.err != nil {
		return e.err
	}
	if err != nil {
		return fmt.Errorf("chatroom: client %s: %w", c.name, err)
	}
	return nil
}
