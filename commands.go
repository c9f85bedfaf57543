package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// This file is the reader's (conn.go): what a client's line asks for
// beyond plain chat (commands, /me, whispers, the filter), the auth hook
// it meets before it joins, and the rate at which its lines are read.

// heardText deals with a clean, non-empty line that is a command or goes
// through the filter: see heard.
func (c *client) heardText(text string, said **lineQueue) (leaveReason, bool) {
	switch {
	case strings.HasPrefix(text, "//"):
		return c.say(text[1:], said)
	case !strings.HasPrefix(text, "/"):
		return c.say(text, said)
	}
	word, rest, _ := strings.Cut(text, " ")
	rest = strings.TrimSpace(rest)
	c.restartIdleClock() // a command counts, whatever it does
	switch strings.ToLower(word) {
	case "/quit":
		return c.exit(said)
	case "/nick":
		return c.nick(rest, said)
	case "/who":
		if !c.flushSaid(said) || !c.askAndWait(request{kind: askWho, client: c}) {
			return reasonNone, false
		}
	case "/me":
		return c.me(rest, said)
	case "/msg":
		return c.whisper(rest, said)
	case "/help":
		c.replyOrShut(lineHelp)
	default:
		c.replyOrShut(lineUnknownCommand(word))
	}
	return reasonNone, true
}

// replyOrShut queues line for the client alone; a client whose outbox is
// full is too slow.
func (c *client) replyOrShut(line []byte) {
	if !c.reply(line) {
		c.shut(reasonSlow, nil)
	}
}

// say relays text, through the filter, as a chat line.
func (c *client) say(text string, said **lineQueue) (leaveReason, bool) {
	text, relay, broke := c.pass(text)
	if !relay {
		return notRelayed(broke)
	}
	msg, _ := lineSay(c.room.opts.now(), c.name, []byte(text), c.room.opts.bufferSize)
	return c.addSaid(msg, said)
}

// me relays "* NAME action" to the others, as a request of its own so
// that the room knows it for an action.
func (c *client) me(action string, said **lineQueue) (leaveReason, bool) {
	if action == "" {
		c.replyOrShut(lineUsageMe)
		return reasonNone, true
	}
	action, relay, broke := c.pass(action)
	if !relay {
		return notRelayed(broke)
	}
	if !c.flushSaid(said) {
		return reasonNone, false
	}
	q := getQueue()
	q.lines = append(q.lines, lineMe(c.room.opts.now(), c.name, action))
	if !c.handOverLines(q, true) {
		return reasonNone, false
	}
	return reasonNone, true
}

// whisper sends "/msg NAME TEXT" to NAME alone, through the room, which
// knows who has that name.
func (c *client) whisper(args string, said **lineQueue) (leaveReason, bool) {
	to, text, _ := strings.Cut(args, " ")
	text = strings.TrimSpace(text)
	if to == "" || text == "" {
		c.replyOrShut(lineUsageMsg)
		return reasonNone, true
	}
	text, relay, broke := c.pass(text)
	if !relay {
		return notRelayed(broke)
	}
	if !c.flushSaid(said) {
		return reasonNone, false
	}
	line := lineWhisper(c.room.opts.now(), c.name, text)
	if !c.askAndWait(request{kind: askWhisper, client: c, name: to, text: text, line: line}) {
		return reasonNone, false
	}
	return reasonNone, true
}

// askAndWait asks the room something whose answer the room queues for the
// client itself (/who's list, a whisper's error, a whisper to itself), and
// waits until it has: a reply the reader queues next then comes after it.
// It reports false if the room is closing.
func (c *client) askAndWait(q request) bool {
	_, ok := c.askRoom(q) // the room answers as it takes the request
	return ok
}

// nick asks the room for the name name, and takes it if the room agrees:
// from then on the client's lines carry it.
func (c *client) nick(name string, said **lineQueue) (leaveReason, bool) {
	switch {
	case c.room.opts.auth != nil:
		c.replyOrShut(lineNamesByServer)
		return reasonNone, true
	case !validNick(name):
		c.replyOrShut(lineInvalidNick)
		return reasonNone, true
	}
	if !c.flushSaid(said) {
		return reasonNone, false
	}
	bus := c.room.opts.bus
	claimed := false // name is claimed through the bus, for this rename
	if bus != nil && foldName(name) != foldName(c.name) {
		if line := c.claimNick(name); line != nil {
			c.replyOrShut(line)
			return reasonNone, true
		}
		claimed = true
	}
	a, ok := c.askRoom(request{kind: askNick, client: c, name: name})
	if !ok {
		if claimed {
			bus.Release(name)
		}
		return reasonNone, false
	}
	switch a { // the room answers as it takes the request, after queuing "you are now"
	case answerYes:
		if claimed {
			bus.Release(c.name)
		}
		c.name = name
		return reasonNone, true
	case answerTaken:
		c.replyOrShut(lineNickTaken)
	}
	if claimed {
		bus.Release(name)
	}
	return reasonNone, true
}

// claimNick claims name through the room's bus for a /nick. It returns
// nil if the client has it, or the error line to reply.
func (c *client) claimNick(name string) []byte {
	c.mayWait()
	ctx, cancel := context.WithTimeout(c.room.ctx, c.hookTimeout())
	defer cancel()
	err := c.room.opts.bus.Claim(ctx, name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNameTaken):
		return lineNickTaken
	}
	c.room.log.Warn("the bus could not claim a name", "client", c.name, "name", name, "err", err)
	return lineNamesDown
}

// pass runs text through the filter and deals with what comes out: a
// rejected line is answered, an empty one dropped. It returns the text to
// relay and whether to relay it; broke reports that the filter panicked,
// which closed the client (see notRelayed).
func (c *client) pass(text string) (out string, relay, broke bool) {
	out, ok, broke := c.filtered(text)
	switch {
	case broke:
		return "", false, true
	case !ok:
		c.replyOrShut(lineRejected)
		return "", false, false
	}
	return out, out != "", false
}

// notRelayed is what heard reports for a line pass did not relay: the
// reader goes on, unless the filter broke and the client is gone.
func notRelayed(broke bool) (leaveReason, bool) {
	if broke {
		return reasonDisconnect, false
	}
	return reasonNone, true
}

// filtered runs the room's filter, if any, on text, and returns the text
// to relay, cleaned again, and whether to relay it. A filter that panics
// is logged and costs the client its connection: filtered then reports
// broke, having closed the client.
func (c *client) filtered(text string) (out string, ok, broke bool) {
	f := c.room.opts.filter
	if f == nil {
		return text, true, false
	}
	c.mayWait()
	defer func() {
		if p := recover(); p != nil {
			c.room.log.Error("filter panicked; disconnecting the client", "client", c.name, "panic", fmt.Sprint(p))
			c.shut(reasonDisconnect, fmt.Errorf("chatroom: filter panicked: %v", p))
			out, ok, broke = "", false, true
		}
	}()
	out, ok = f(c.name, text)
	if !ok {
		return "", false, false
	}
	return cleanString(out), true, false
}

// rateLimitedReadBuffer is the kernel's receive buffer for a TCP client
// under flood control: small (the kernel's own default grows to megabytes),
// so that what a client sends beyond its rate waits on its side, and its
// writes block, instead of piling up in the room's socket to be read at
// the rate long after it stopped. 16 KiB is over a thousand short lines.
const rateLimitedReadBuffer = 16 << 10

// limitReadBuffer caps the client's kernel receive buffer, for flood
// control (see rateLimitedReadBuffer).
func (c *client) limitReadBuffer() {
	if tc, ok := c.conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(rateLimitedReadBuffer)
	}
}

// throttle takes one of the client's rate tokens for a line, waiting for
// one if there is none: meanwhile the reader reads nothing, and the
// client's own connection holds it back (the kernel's buffers fill, then
// its writes wait). What it said before is handed over first, so it does
// not wait too. It reports false if the room closes meanwhile.
func (c *client) throttle(said **lineQueue) bool {
	o := &c.room.opts
	now := time.Now()
	c.tokens = min(float64(o.rateBurst), c.tokens+now.Sub(c.tokensAt).Seconds()*o.rate)
	c.tokensAt = now
	if c.tokens >= 1 {
		c.tokens--
		return true
	}
	if !c.flushSaid(said) {
		return false
	}
	c.mayWait()
	t := time.NewTimer(time.Duration((1 - c.tokens) / o.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.room.ctx.Done():
		return false
	}
	c.tokens, c.tokensAt = 0, time.Now() // the token it waited for is this line's
	return true
}

// errHookPanicked marks an auth hook that panicked.
var errHookPanicked = errors.New("chatroom: auth hook panicked")

// authenticate runs the auth hook and names the client, or refuses it
// with the hook's error, closing its connection. The hook's context ends
// at the write timeout or when the room begins to close; the connection's
// read deadline is set to the same moment, so a hook that reads from it
// is bounded too, and is lifted again afterwards.
func (c *client) authenticate() error {
	r := c.room
	ctx, cancel := context.WithTimeout(r.ctx, c.hookTimeout())
	defer cancel()
	deadline, _ := ctx.Deadline()
	c.conn.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Now()) })
	name, err := c.callAuth(ctx)
	stop()
	c.conn.SetReadDeadline(time.Time{})

	if r.ctx.Err() != nil {
		c.shut(reasonClosed, nil)
		return ErrRoomClosed
	}
	// Timed out: the context ended, or the read deadline set to its end
	// passed (the hook may see that first).
	timedOut := ctx.Err() != nil || !time.Now().Before(deadline)
	if err != nil || timedOut {
		r.refusedEarly.Add(1)
	}
	switch {
	case errors.Is(err, errHookPanicked):
		c.refuse(lineAuthFailed)
		return fmt.Errorf("chatroom: auth of %s: %w", c.addr, err)
	case timedOut:
		c.refuse(lineAuthTimeout)
		return fmt.Errorf("chatroom: auth of %s: %w", c.addr, context.DeadlineExceeded)
	case err != nil:
		c.refuse(lineAuthError(cleanString(err.Error())))
		return fmt.Errorf("chatroom: auth of %s: %w", c.addr, err)
	}
	name = cleanString(name)
	if name == "" {
		r.refusedEarly.Add(1)
		c.refuse(lineAuthFailed)
		return fmt.Errorf("chatroom: auth of %s: the hook gave no name", c.addr)
	}
	c.name, c.named = name, true
	return nil
}

// callAuth calls the auth hook, turning a panic into errHookPanicked.
func (c *client) callAuth(ctx context.Context) (name string, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.room.log.Error("auth hook panicked; refusing the client", "client", c.addr, "panic", fmt.Sprint(p))
			name, err = "", errHookPanicked
		}
	}()
	return c.room.opts.auth(ctx, c.conn)
}
