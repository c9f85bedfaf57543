package chatroom

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// This file is the client: one connection in a hub, and the methods a
// face's session calls to act for it. Its reader is read.go, its writer
// write.go, its way in accept.go, and the hub goroutine's record of it
// (its seat) state.go.

// A Client is one connection in a hub, as a [Face] sees it. Its methods
// act for the client: they are to be called only from its session's
// methods (on the client's reader, see [Session]), and wait for the hub
// where they must. Each returns the error that says why it did nothing:
// [ErrNotRegistered], [ErrInvalidName], [ErrNameTaken], [ErrNoSuchClient],
// [ErrNotInRoom], [ErrRejected] and so on, or [ErrRoomClosed] once the hub
// is closing.
//
// Three goroutines meet in a client, each owning its part:
//
//   - the reader (read.go: ServeConn's goroutine, or a turn runner in its
//     turn) reads conn, and owns the fields marked as its own;
//   - the hub goroutine owns seat (state.go) and fills the outbox;
//   - the writers (write.go) share the outbox and conn's end under mu.
//
// conn has one writer at a time: the reader, for a refusal, before the
// client is admitted (nobody else knows it yet); the hub goroutine, for
// one non-blocking write in flush, under mu, while no writer goroutine
// runs; or the writer goroutine, while writing is set.
type Client struct {
	hub     *Hub
	conn    net.Conn
	raw     syscall.RawConn // conn's socket, or nil if it is not a plain one (see rawSocket)
	addr    string          // the remote address
	face    Face
	landing *Room // where the text protocol lands it (the room it was served into)

	// The reader's own.
	session Session
	name    string // the client's name: its address until it registers; the hub keeps its own copy in seat
	// user and hostName are set by Register before it asks the hub, and
	// never change once the client is registered: the hub reads them then.
	user     string      // its user name (Registration.User)
	hostName string      // its host, as messages carry it (see hostOf)
	host     netip.Addr  // the remote IP address, if any
	tokens   float64     // WithRateLimit's tokens, as of tokensAt
	tokensAt time.Time   // ...
	said     batch       // lines said and not yet handed to the hub
	lr       *lineReader // frames the client's input; a polled client has one only during a turn
	rare     *rarely     // what few clients need; nil until one of them does (see rarely)

	reg         bool        // registered: the hub knows it
	op          bool        // the auth hook made it an operator
	roster      bool        // it is told who is in each room it enters (Registration.Roster)
	single      bool        // it is always in one room: the text protocol's
	named       bool        // name came from the auth hook: refused if taken, not made unique
	claimed     bool        // name is claimed through the hub's bus: leave releases it
	admitting   bool        // holds a place in Hub.admitting
	firstTurn   bool        // read by the poller, and its first turn is not over: it keeps its place in Hub.admitting (see serve)
	counted     bool        // counted in Hub.hosts: untrackConn closes its account
	unconfirmed bool        // lines were handed to the hub that it may not have relayed yet (see Reply)
	onRunner    bool        // the running turn holds a turn runner's place (poller_linux.go); mayWait gives it up
	deadlineSet bool        // a read deadline is set on conn (restartIdleClock)
	quitting    LeaveReason // Quit was called: why it leaves

	// rooms is the rooms the client is in, as the hub last set them: the
	// reader resolves room names against it. A room it has just been put
	// out of may still be listed: the hub drops what is said there.
	rooms atomic.Pointer[[]*Room]

	// The poller's (poller_linux.go), for a client it reads: polled says
	// whether a turn runs; slot and gen, set once by register, are the
	// client's token; idleAt, the poller clock's reading at which the
	// client has been idle too long, moves on with every line that counts.
	polled atomic.Int32
	slot   int32
	gen    int32
	timer  int32 // the client's place in the poller's heap of idle deadlines, plus 1; 0: none (guarded by the poller's mu)
	idleAt atomic.Int64

	// seat is the hub goroutine's record of this client (state.go); but
	// its form and own, how the client is written to, are the reader's
	// until the client registers (SetForm).
	seat seat

	// mu guards the outbox and the end of the connection. The hub
	// goroutine queues under it and makes its non-blocking writes under
	// it; the reader queues its own replies under it; a writer goroutine
	// takes the whole outbox under it and writes without it, so queuing
	// never waits for the network.
	mu      sync.Mutex
	outbox  *lineQueue  // lines waiting to be written, oldest first; nil or empty when none wait; nil once closed
	view    [][]byte    // or, instead, the lines waiting in a room's list of lines for everyone of one form (see write.go); nil when none
	viewOf  *sharedList // ... the list view is part of
	skip    int         // bytes of the outbox's first line already written; 0 when none wait
	waiting int         // bytes waiting to be written: the view or the outbox, and the writer's batch
	err     error       // the I/O error that ended the connection, if any; set with reason
	writing bool        // a writer goroutine runs; set by startWriter, cleared by the writer as it exits
	final   bool        // the last line is queued: nothing more is taken, and conn closes once the outbox is written
	closed  bool        // conn is closed: nothing more is queued or written
	reason  LeaveReason // why the client leaves; set once, by enqueueFinal or shut

	writers   sync.WaitGroup // counts the writer goroutine while one runs
	runWriter func()         // c.writer, bound once so that starting a writer does not allocate
	closing   sync.WaitGroup // 1 until conn is closed (shut): leave waits on it
}

// rarely is what few of the reader's clients need, kept apart so that
// the others do not carry it: allocated the first time a client needs it
// (Client.rarely), and the reader's own, as the fields of Client it stands
// for.
type rarely struct {
	quitText string // Quit's words
	refusal  error  // why Register refused it, for ServeConn to return once it quits
	renames  bucket // the renames it may make (Nick); zero until its first
	part     []byte // a polled client's part of a line, kept between turns (see lineReader.park)
	skipping bool   // ... and whether it is discarding the rest of a line too long
}

// rarely returns the client's rarely used fields, allocating them the
// first time.
func (c *Client) rarely() *rarely {
	if c.rare == nil {
		c.rare = &rarely{renames: bucket{rate: renameRate, burst: renameBurst, tokens: renameBurst}}
	}
	return c.rare
}

func newClient(h *Hub, conn net.Conn, face Face, landing *Room) *Client {
	addr := conn.RemoteAddr().String()
	c := &Client{
		hub:     h,
		conn:    conn,
		raw:     rawSocket(conn),
		addr:    addr,
		name:    addr,
		face:    face,
		landing: landing,
		seat:    seat{index: -1},
	}
	c.closing.Add(1)
	c.runWriter = c.writer
	return c
}

// Name returns the client's name: its address until it registers.
func (c *Client) Name() string { return c.name }

// Addr returns the client's remote address, as its connection gives it.
func (c *Client) Addr() string { return c.addr }

// Conn returns the client's connection, for what a face needs to know of
// it (a *tls.Conn's state, a WebSocket's request); the hub reads and
// writes it.
func (c *Client) Conn() net.Conn { return c.conn }

// Hub returns the hub the client is in.
func (c *Client) Hub() *Hub { return c.hub }

// Registered reports whether the client has registered.
func (c *Client) Registered() bool { return c.reg }

// Operator reports whether the auth hook made the client an operator,
// who may put others out of rooms ([Client.Kick]).
func (c *Client) Operator() bool { return c.op }

// Limit is the longest text, in bytes, a client may say in one line
// ([WithBufferSize]): longer text is cut to it.
func (c *Client) Limit() int { return c.hub.opts.bufferSize }

// SetForm sets how the client is written to: form for what others do,
// own for what it does itself (its own lines echoed back, the join of a
// room it entered, its new name), nil for nothing. A client starts with
// the form its face's Start set, or none.
func (c *Client) SetForm(form, own Form) error {
	if !c.reg {
		c.seat.form, c.seat.own = form, own // the reader's until the client registers
		return nil
	}
	_, err := c.ask(request{kind: askForm, form: form, own: own})
	return err
}

// Registration is what [Client.Register] asks for.
type Registration struct {
	// Name is the name the client asks for. "" asks for its address,
	// which the hub makes unique, if need be, with a suffix "#2", "#3".
	// With an auth hook ([WithAuth]), the hook's answer names it.
	Name string
	// Password is handed to the auth hook.
	Password string
	// Land puts the client in a room at once, welcomed there: the room it
	// was served into ([Room.Serve]), or the hub's default room.
	Land bool
	// Roster asks that the client be told who is in each room it enters:
	// Message.Members of its KindWelcome and its own KindJoin.
	Roster bool
	// User is the client's user name, shown by faces that show one (IRC's
	// nick!user@host, and WHO): "" for its face's name ("text", "json").
	// It is cleaned, and cut to 32 bytes.
	User string
	// RealName is the client's real name (IRC's USER), reported by
	// [Client.Lookup]: cleaned and cut as a line.
	RealName string
}

// Register runs the auth hook, if any, names the client and lets it into
// the hub, and, with Land, into its first room. It returns the auth hook's
// error, wrapped, ([ErrNotAllowed] for a hook that panicked, or
// context.DeadlineExceeded for one that did not answer in time),
// [ErrInvalidName] for a name that is not 1 to 32 ASCII letters, digits
// and _-.[], [ErrNameTaken], or [ErrRoomFull] when the hub has its most
// clients ([WithMaxClients]). A client that is refused may try again, or
// [Client.Quit]: ServeConn then returns why it was refused.
func (c *Client) Register(r Registration) error {
	if c.reg {
		return nil
	}
	h := c.hub
	c.flushSaid()
	name := r.Name
	c.named = false
	if h.opts.auth != nil {
		reply, err := c.authenticate(r)
		if err != nil {
			return c.refused(err)
		}
		name, c.op, c.named = reply.Name, reply.Operator, true
	} else if name == "" {
		name = c.addr
	} else {
		if !validNick(name) {
			return ErrInvalidName
		}
		c.named = true
	}
	if h.opts.bus != nil {
		claimed, err := c.claimName(name)
		if err != nil {
			return c.refused(err)
		}
		name = claimed
	}
	c.name, c.roster = name, r.Roster
	c.user, c.hostName = c.userName(r.User), c.hostOf()
	var land *Room
	if r.Land {
		land = c.landing
	}
	a, err := c.ask(request{kind: askRegister, room: land, name: name, named: c.named, text: c.clip(r.RealName)})
	if err != nil {
		c.releaseName()
		return c.refused(err)
	}
	c.reg, c.name = true, a.name
	if !c.firstTurn {
		c.doneAdmitting() // in: it no longer waits
	}
	c.restartIdleClock()
	return nil
}

// maxUser bounds a user name (Registration.User), in bytes.
const maxUser = 32

// userName is the user name the client registers with: user, cleaned
// and cut to maxUser bytes, or its face's name.
func (c *Client) userName(user string) string {
	if user = string(appendClean(nil, []byte(user), maxUser)); user == "" {
		user = c.face.Name()
	}
	return user
}

// hostOf is the client's host, as messages and ClientInfo carry it: the
// IP address it connects from, or its address if it has none (a Unix
// socket, a pipe).
func (c *Client) hostOf() string {
	if c.host.IsValid() {
		return c.host.String()
	}
	return c.addr
}

// refused records err as why the client was turned away, counts the
// refusal, and returns err.
func (c *Client) refused(err error) error {
	c.rarely().refusal = err
	return err
}

// Join puts the client in the room called room (ignoring case and a
// leading "#"), opening it if need be, and stays in its other rooms. It
// is sent what it is owed: the join in its own form, then the room's
// history: with since 0 the last lines a newcomer gets ([WithHistory]);
// otherwise the lines after the one numbered since, or, if the history no
// longer reaches back that far, a [KindGap] message and the last lines.
// It returns [ErrInvalidName], [ErrTooManyRooms] or [ErrAlreadyInRoom].
func (c *Client) Join(room string, since uint64) error {
	name, ok := roomName(room)
	if !ok {
		return ErrInvalidName
	}
	_, err := c.ask(request{kind: askJoin, name: name, since: since})
	return err
}

// Move takes the client out of its rooms and into the room called room:
// the text protocol's /join. Errors as [Client.Join].
func (c *Client) Move(room string) error {
	name, ok := roomName(room)
	if !ok {
		return ErrInvalidName
	}
	_, err := c.ask(request{kind: askJoin, name: name, move: true})
	return err
}

// Part takes the client out of the room called room, with text as its
// parting words. It returns [ErrNotInRoom] if it is not in it.
func (c *Client) Part(room, text string) error {
	r, err := c.inRoom(room)
	if err != nil {
		return err
	}
	_, err = c.ask(request{kind: askPart, room: r, text: cleanString(text)})
	return err
}

// Say says text in room: the others there get it, each in their form, and
// the client gets it in its own form. The text is cleaned (docs/protocol.md)
// and cut to [Client.Limit] bytes; it passes through the filter
// ([WithFilter]), which may change or reject it. Lines are handed to the
// hub in batches: Say returns before the others get it.
func (c *Client) Say(room, text string) error {
	return c.sayKind(room, text, KindSay, false)
}

// Act says that the client does text in room: /me, CTCP ACTION. As
// [Client.Say] otherwise.
func (c *Client) Act(room, text string) error {
	return c.sayKind(room, text, KindAction, false)
}

// Notice says text in room as an IRC NOTICE: the same as Say for every
// face but IRC, where it asks for no automatic reply.
func (c *Client) Notice(room, text string) error {
	return c.sayKind(room, text, KindSay, true)
}

func (c *Client) sayKind(room, text string, kind MessageKind, notice bool) error {
	if !c.reg {
		return ErrNotRegistered
	}
	r, err := c.inRoom(room)
	if err != nil {
		return err
	}
	return c.sayIn(r, c.clip(text), kind, notice)
}

// sayIn says text, clean and cut, in r: through the filter, then to the
// hub with the next hand-over. An action that would read as a notice is
// refused (ErrReadsAsNotice).
func (c *Client) sayIn(r *Room, text string, kind MessageKind, notice bool) error {
	if text == "" {
		return nil
	}
	action := kind == KindAction
	if action && readsAsNotice(text) {
		return ErrReadsAsNotice
	}
	if c.hub.opts.filter != nil {
		var err error
		text, err = c.filter(FilterEvent{Room: r.name, Name: c.name, Addr: c.addr, Text: text, Action: action})
		if err != nil || text == "" {
			return err
		}
		if action && readsAsNotice(text) {
			return ErrReadsAsNotice
		}
	}
	m := &Message{Kind: kind, Time: c.hub.opts.now(), Room: r.name, From: c.name, User: c.user, Host: c.hostName, Text: text, Notice: notice}
	if c.single { // most who hear a text client speak the text protocol: its line is formatted here, not on the hub goroutine
		m.forms.first = formatted{textForm{}, textForm{}.Format(m)}
	}
	c.sayMessage(r, m)
	return nil
}

// clip cleans text and cuts it to the limit.
func (c *Client) clip(text string) string {
	return string(appendClean(nil, []byte(text), c.hub.opts.bufferSize))
}

// sayMessage adds m, a line said in r, to what the client said since the
// last hand-over; a line in another room hands those over first. Handing
// them over restarts the idle clock: saying something counts.
func (c *Client) sayMessage(r *Room, m *Message) {
	if c.said.room != r {
		c.flushSaid()
		c.said.room = r
	}
	c.said.lines = append(c.said.lines, m)
}

// Whisper sends text to the client named to alone (a NOTICE with
// notice), and to this client in its own form. It returns
// [ErrNoSuchClient] if nobody has that name.
func (c *Client) Whisper(to, text string, notice bool) error {
	if !c.reg {
		return ErrNotRegistered
	}
	text = c.clip(text)
	if text == "" {
		return nil
	}
	text, err := c.filter(FilterEvent{Name: c.name, Addr: c.addr, Text: text, To: to})
	if err != nil || text == "" {
		return err
	}
	m := &Message{Kind: KindWhisper, Time: c.hub.opts.now(), From: c.name, User: c.user, Host: c.hostName, To: to, Text: text, Notice: notice}
	_, err = c.ask(request{kind: askWhisper, msg: m})
	return err
}

// Nick renames the client, hub-wide: everyone who shares a room with it is
// told, and the client in its own form. It returns [ErrInvalidName],
// [ErrNameTaken] (for a name someone has, one that looks like it, or one
// given up lately: see docs/protocol.md), [ErrSlowDown] past 5 renames in
// a row, then one in 10s (a refused rename does not count), or
// [ErrNotAllowed] under an auth hook: names are set by the server.
func (c *Client) Nick(name string) error {
	switch {
	case !c.reg:
		return ErrNotRegistered
	case c.hub.opts.auth != nil:
		return ErrNotAllowed
	case !validNick(name):
		return ErrInvalidName
	case !c.rarely().renames.has(time.Now()):
		return ErrSlowDown
	}
	c.flushSaid()
	bus := c.hub.opts.bus
	claimed := false // name is claimed through the bus, for this rename
	if bus != nil && foldName(name) != foldName(c.name) {
		if err := c.claimNick(name); err != nil {
			return err
		}
		claimed = true
	}
	_, err := c.ask(request{kind: askNick, name: name})
	switch {
	case err != nil:
		if claimed {
			bus.Release(name)
		}
		return err
	case claimed:
		bus.Release(c.name)
	}
	c.rare.renames.take()
	c.name = name
	return nil
}

// Members returns the room's members, sorted by name ignoring case, at
// most limit of them (all for limit <= 0), and how many there are.
func (c *Client) Members(room string, limit int) (members []Member, count int, err error) {
	r, err := c.knownRoom(room)
	if err != nil {
		return nil, 0, err
	}
	a, err := c.ask(request{kind: askMembers, room: r, limit: limit})
	return a.members, a.count, err
}

// Rooms lists every open room, as [Hub.Rooms] does, but a secret one
// (mode +s) only if the client is in it.
func (c *Client) Rooms() []RoomInfo {
	a, _ := c.ask(request{kind: askRooms})
	return a.rooms
}

// Lookup describes the client called name: [ErrNoSuchClient] if nobody
// has that name.
func (c *Client) Lookup(name string) (ClientInfo, error) {
	a, err := c.ask(request{kind: askLookup, name: name})
	if err != nil {
		return ClientInfo{}, err
	}
	return *a.info, nil
}

// Clients describes everyone in the room called room, or in the hub for
// room "", sorted by name ignoring case, as [Room.Clients] and
// [Hub.Clients] do. It returns [ErrNoSuchRoom] for a room that is not
// open, or a secret one the client is not in.
func (c *Client) Clients(room string) ([]ClientInfo, error) {
	var r *Room
	if room != "" {
		var err error
		if r, err = c.knownRoom(room); err != nil {
			return nil, err
		}
	}
	a, err := c.ask(request{kind: askClients, room: r})
	return a.infos, err
}

// Stats returns the hub's counters, as [Hub.Stats] does (IRC's LUSERS).
func (c *Client) Stats() Stats {
	c.mayWait()
	return c.hub.Stats()
}

// Room describes the room called name, its topic and modes included. It
// returns [ErrNoSuchRoom] for a room that is not open, or a secret one the
// client is not in.
func (c *Client) Room(name string) (RoomInfo, error) {
	r, err := c.knownRoom(name)
	if err != nil {
		return RoomInfo{}, err
	}
	a, err := c.ask(request{kind: askRoomInfo, room: r})
	if err != nil {
		return RoomInfo{}, err
	}
	return *a.roomInfo, nil
}

// SetTopic sets the topic of a room the client is in; its members are
// told, the client in its own form. The text is cleaned and cut as a line
// is. A room whose topic is locked (mode +t) takes it from its operators
// alone ([ErrNotAllowed]).
func (c *Client) SetTopic(room, text string) error {
	r, err := c.inRoom(room)
	if err != nil {
		return err
	}
	_, err = c.ask(request{kind: askSetTopic, room: r, text: c.clip(text)})
	return err
}

// Kick puts the client called name out of room, for reason: a client
// that can be in no room (IRC, the structured protocol) stays connected;
// a client of the text protocol, which is always in one, is disconnected,
// as by [Room.Kick]. Only an operator of the room, or of the hub, may kick
// ([ErrNotAllowed]); [ErrNoSuchClient] if nobody of that name is in it.
func (c *Client) Kick(room, name, reason string) error {
	r, err := c.inRoom(room)
	if err != nil {
		return err
	}
	_, err = c.ask(request{kind: askKick, room: r, name: name, text: cleanString(reason)})
	return err
}

// SetMode changes a room's modes, as an operator of it ([ErrNotAllowed]
// otherwise): "+t" locks its topic to its operators, "+s" hides it from
// the room lists of those not in it, "+o" makes the member called name an
// operator of it, "+v" marks the member (IRC's voice, which changes
// nothing else); "-" undoes each. The members are told (KindMode), the
// client in its own form. It returns [ErrUnknownMode] for another mode,
// and [ErrNoSuchClient] if nobody of that name is in the room.
func (c *Client) SetMode(room, mode, name string) error {
	if _, ok := roomModes[mode]; !ok {
		return ErrUnknownMode
	}
	r, err := c.inRoom(room)
	if err != nil {
		return err
	}
	_, err = c.ask(request{kind: askMode, room: r, text: mode, name: name})
	return err
}

// SetOperator makes the client an operator of the hub, or not: it may
// then do in every room what a room's operators may. Faces call it for a
// login of their protocol's (IRC's OPER); the auth hook can make a
// client one from the start ([AuthReply]).
func (c *Client) SetOperator(on bool) error {
	_, err := c.ask(request{kind: askOperator, on: on})
	if err == nil {
		c.op = on
	}
	return err
}

// SetInvisible marks the client invisible, or not (IRC's user mode +i),
// for [Client.Lookup] to report; the hub itself changes nothing for it.
func (c *Client) SetInvisible(on bool) error {
	_, err := c.ask(request{kind: askInvisible, on: on})
	return err
}

// SetAway marks the client away, with text as its message ("" for back),
// for [Client.Lookup] to report.
func (c *Client) SetAway(text string) error {
	_, err := c.ask(request{kind: askAway, text: c.clip(text)})
	return err
}

// Reply queues b for this client alone, after everything queued for it
// before, and after what the lines it said before make others receive:
// a reply to the client's next line (IRC's PONG) never reaches it before
// its last line reaches the others. A client whose outbox is full is
// evicted as too slow.
func (c *Client) Reply(b []byte) {
	if len(c.said.lines) > 0 || c.unconfirmed {
		// The hub may not have relayed those lines yet: the reply goes
		// through it, after them.
		if c.flushSaid() {
			c.mayWait()
			c.hub.ask(request{kind: askPost, client: c, bytes: b})
		}
		return
	}
	if c.enqueue([][]byte{b}, true) < 0 {
		c.shut(ReasonSlow, nil)
	}
}

// Quit ends the client once the current line is dealt with: it leaves the
// hub (the others in its rooms see it go, with text as its parting words)
// and is sent its last line, in its form, before its connection closes.
func (c *Client) Quit(text string) {
	c.quitting = ReasonExit
	if text = cleanString(text); text != "" || c.rare != nil {
		c.rarely().quitText = text
	}
}

// Touch counts as activity for the idle timeout ([WithIdleTimeout]):
// saying and doing anything through the hub does too.
func (c *Client) Touch() { c.restartIdleClock() }

// inRoom returns the room called name that the client is in.
func (c *Client) inRoom(name string) (*Room, error) {
	if !c.reg {
		return nil, ErrNotRegistered
	}
	key := roomKey(name)
	if rooms := c.rooms.Load(); rooms != nil {
		for _, r := range *rooms {
			if r.key == key {
				return r, nil
			}
		}
	}
	return nil, ErrNotInRoom
}

// knownRoom returns the room called name, which the client may be in or
// not.
func (c *Client) knownRoom(name string) (*Room, error) {
	if r, err := c.inRoom(name); err == nil {
		return r, nil
	}
	n, ok := roomName(name)
	if !ok {
		return nil, ErrNoSuchRoom
	}
	a, err := c.ask(request{kind: askFind, name: n})
	return a.room, err
}

// batch is what a client said since its last hand-over: lines in one
// room, in order.
type batch struct {
	room  *Room
	lines []*Message
}

// flushSaid hands over what the client said so far, so that what it does
// next comes after it. It reports false if the hub is closing.
func (c *Client) flushSaid() bool {
	if len(c.said.lines) == 0 {
		return true
	}
	q := request{kind: askSay, client: c, room: c.said.room, lines: c.said.lines}
	c.said = batch{}
	c.unconfirmed = true
	c.restartIdleClock()
	select {
	case c.hub.requests <- q: // the hub was waiting for it
		return true
	default:
	}
	c.mayWait()
	return c.hub.ask(q)
}

// ask flushes what the client said, then asks the hub q, a request it
// answers, and waits for the answer. It returns the answer's error, or
// ErrRoomClosed if the hub is closing. The answer's channel exists only
// while the reader asks: a quiet client holds none.
func (c *Client) ask(q request) (answer, error) {
	if !c.flushSaid() {
		return answer{}, ErrRoomClosed
	}
	c.mayWait()
	ch := make(chan answer, 1)
	q.client, q.reply = c, ch
	if !c.hub.ask(q) {
		return answer{}, ErrRoomClosed
	}
	c.restartIdleClock()
	a := <-ch
	c.unconfirmed = false // the hub has dealt with everything the client handed it
	return a, a.err
}

// filter runs the hub's filter, if any, on e, and returns the text to
// relay, cleaned again, or [ErrRejected]. A filter that panics is logged
// and costs the client its connection: filter then returns ErrRejected,
// having closed the client.
func (c *Client) filter(e FilterEvent) (text string, err error) {
	f := c.hub.opts.filter
	if f == nil {
		return e.Text, nil
	}
	c.mayWait()
	defer func() {
		if p := recover(); p != nil {
			c.hub.log.Error("filter panicked; disconnecting the client", "client", c.name, "panic", fmt.Sprint(p))
			c.shut(ReasonDisconnect, fmt.Errorf("chatroom: filter panicked: %v", p))
			text, err = "", ErrRejected
		}
	}()
	reply, ferr := f(e)
	if ferr != nil {
		c.hub.log.Debug("filter rejected a line", "client", c.name, "err", ferr)
		return "", ErrRejected
	}
	return c.clip(reply.Text), nil
}

// claimName claims name through the hub's bus, before the client asks to
// register. A name by address that someone else holds gets the first free
// suffix, "#2", "#3", and so on, as the hub gives one without a bus; a name
// the client asked for, or the auth hook's, is refused. It returns the
// name claimed.
func (c *Client) claimName(name string) (string, error) {
	h := c.hub
	c.mayWait()
	ctx, cancel := context.WithTimeout(h.ctx, c.hookTimeout())
	defer cancel()
	try := name
	for n := 2; ; n++ {
		err := h.opts.bus.Claim(ctx, try)
		switch {
		case err == nil:
			c.claimed = true
			return try, nil
		case h.ctx.Err() != nil:
			return "", ErrRoomClosed
		case !errors.Is(err, ErrNameTaken):
			h.log.Warn("the bus could not claim a name", "addr", c.addr, "name", try, "err", err)
			return "", fmt.Errorf("chatroom: claiming %q: %w (%w)", try, err, errNamesDown)
		case c.named || n > maxNameSuffix:
			return "", ErrNameTaken
		}
		try = name + "#" + fmt.Sprint(n)
	}
}

// errNamesDown says the bus cannot tell whether a name is free.
var errNamesDown = errors.New("names cannot be checked now, try again later")

// maxNameSuffix bounds the suffixes claimName tries.
const maxNameSuffix = 100

// claimNick claims name through the hub's bus for a rename.
func (c *Client) claimNick(name string) error {
	c.mayWait()
	ctx, cancel := context.WithTimeout(c.hub.ctx, c.hookTimeout())
	defer cancel()
	err := c.hub.opts.bus.Claim(ctx, name)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNameTaken):
		return ErrNameTaken
	}
	c.hub.log.Warn("the bus could not claim a name", "client", c.name, "name", name, "err", err)
	return fmt.Errorf("chatroom: claiming %q: %w (%w)", name, err, errNamesDown)
}

// releaseName gives up the client's name through the bus, if it claimed
// it.
func (c *Client) releaseName() {
	if c.claimed {
		c.claimed = false
		c.hub.opts.bus.Release(c.name)
	}
}

// foldName is the key of a client's name: names are unique ignoring
// ASCII case.
func foldName(name string) string { return strings.ToLower(name) }

// A client may rename renameBurst times in a row, then once every
// 1/renameRate seconds: a rename reaches everyone who shares a room with
// it, so a client renaming without pause would cost them all far more
// than it sends.
const (
	renameBurst = 5
	renameRate  = 0.1
)

// bucket is a token bucket: burst tokens at most, rate more a second.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// has brings the bucket up to date at now, and reports whether it has a
// token.
func (b *bucket) has(now time.Time) bool {
	if !b.at.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.at).Seconds()*b.rate)
	}
	b.at = now
	return b.tokens >= 1
}

// take takes a token that has reported there is.
func (b *bucket) take() { b.tokens-- }
