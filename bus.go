package chatroom

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// This file is the room's side of a bus (WithBus): the interface a bus
// implements, what crosses it, and what the room goroutine does with what
// its peers did. The members methods here are the room goroutine's, like
// those in members.go.

// A Bus joins a room to its peers: rooms in other processes that serve the
// same room, so that every client of every one of them is in one room.
// Package natsbus (module github.com/chatroom-go/chatroom/natsbus) is one,
// over NATS. Attach one with [WithBus].
//
// The room tells its bus what its own clients do, formatted once, and the
// bus tells the room what the peers' clients do. Names are claimed through
// the bus, so that a name is unique across every peer. The room calls its
// bus from three kinds of goroutine, and a Bus must be safe for that:
//
//   - Open, once, as the room starts (the first Serve, ServeConn or
//     Broadcast), and Close, once, after the room goroutine stopped taking
//     requests;
//   - Publish, on the room goroutine, in the order things happened: it must
//     never wait (queue, or drop and count);
//   - Claim and Release, on the goroutine of the client whose name it is:
//     Claim may wait for the network, until ctx ends; Release must not.
type Bus interface {
	// Open starts the bus for the room. From then until Close, the bus hands
	// the room what its peers do with deliver, one message at a time, in the
	// order each peer did it; deliver waits until the room has taken the
	// message, and reports false once the room is closing. history is the
	// room's WithHistory: Open returns the room's last say and /me lines,
	// at most history of them, oldest first, to start the room's own
	// history from. An error from Open stops the room: Serve, ServeConn and
	// Broadcast return it, wrapped. ctx ends when the room begins to close.
	Open(ctx context.Context, history int, deliver func(BusMessage) bool) ([][]byte, error)

	// Publish hands the bus what one of the room's own clients did, or a
	// Broadcast: BusJoin, BusLeave, BusNick, BusSay, BusNotice, BusWhisper
	// or BusKick. m.Line and m.Lines are shared with the room's clients:
	// the bus must not modify them.
	Publish(m BusMessage)

	// Claim reserves name, ignoring case, for a client of this room, against
	// every client of every peer. It returns an error wrapping
	// [ErrNameTaken] if someone else holds the name, or another error if
	// the bus cannot tell (its connection is down); it must decide
	// atomically, so that of two clients claiming one name at once on two
	// peers, one gets it.
	Claim(ctx context.Context, name string) error

	// Release gives up a name that Claim reserved, once its client has
	// left or taken another name. It must not wait.
	Release(name string)

	// Close ends the bus: the room has closed, and its peers should count
	// its clients gone. The room's Shutdown and Close wait for it to
	// return, so it must bound its own work (natsbus: 3s at most).
	Close() error
}

// BusKind is what a [BusMessage] reports.
type BusKind uint8

// The kinds of [BusMessage]. Line is the line the room that published the
// message sent its own clients: rooms that receive it send it on
// unchanged, so it is formatted once, where it happened.
const (
	BusJoin    BusKind = iota + 1 // Name joined, from Addr, at Time; Line is the others' notice
	BusLeave                      // Name left; Line is the others' notice
	BusNick                       // Old is now Name; Line is the others' notice
	BusSay                        // Lines are chat and /me lines, in order, kept in the history; received, they may be several peers' clients
	BusNotice                     // Line is a Broadcast notice
	BusWhisper                    // Line is a whisper to the client named Name alone
	BusKick                       // Kick the client named Name, for the reason Text (Room.Kick)
	BusState                      // received only: Members is everyone on Peer now (a peer that missed messages gets this)
	BusGone                       // received only: Peer is gone, and every client of its with it
)

var busKindNames = [...]string{"", "join", "leave", "nick", "say", "notice", "whisper", "kick", "state", "gone"}

// String returns the kind's name: "join", "leave", and so on.
func (k BusKind) String() string {
	if int(k) < len(busKindNames) && k > 0 {
		return busKindNames[k]
	}
	return "BusKind(" + strconv.Itoa(int(k)) + ")"
}

// BusMessage is one thing a client did, as a room tells its bus and as a
// bus tells the room's peers. Which fields are set depends on Kind.
type BusMessage struct {
	Kind    BusKind
	Peer    string       // received only: the peer where it happened, as the bus names it
	Name    string       // the client it concerns (BusWhisper, BusKick: the recipient)
	Old     string       // BusNick: the previous name
	Addr    string       // BusJoin: the client's remote address
	Time    time.Time    // BusJoin: when it joined, by its room's clock
	Text    string       // BusKick: the reason
	Line    []byte       // the formatted line, ending in "\n" (not BusSay, BusKick)
	Lines   [][]byte     // BusSay: the formatted lines
	Members []ClientInfo // BusState: everyone on Peer
}

// openBus opens the room's bus, if it has one, and starts the room's
// history from the lines it returns; then it lets start's callers go on.
// It reports false if the bus did not open: the room then stops, and
// start returns the bus's error.
func (r *Room) openBus(m *members) bool {
	defer close(r.opened)
	if r.opts.bus == nil {
		return true
	}
	lines, err := r.opts.bus.Open(r.ctx, r.opts.history, r.deliver)
	if err != nil {
		if r.ctx.Err() == nil { // not just the room closing while it opened
			r.openErr = fmt.Errorf("chatroom: opening the bus: %w", err)
			r.log.Error("the bus did not open; the room closes", "err", err)
		}
		r.stop(false)
		return false
	}
	m.remember(lines)
	return true
}

// deliver hands the room goroutine what a peer's client did; it is the
// function a bus gets from Open.
func (r *Room) deliver(msg BusMessage) bool {
	select {
	case r.requests <- request{kind: askPeer, peer: &msg}:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// closeBus closes the room's bus, if it has one, once the room goroutine
// takes no more requests.
func (r *Room) closeBus() {
	if r.opts.bus == nil {
		return
	}
	if err := r.opts.bus.Close(); err != nil {
		r.log.Warn("closing the bus", "err", err)
	}
}

// publish hands m to the bus, if the room has one.
func (m *members) publish(msg BusMessage) {
	if m.bus != nil {
		m.bus.Publish(msg)
	}
}

// online is how many are in the room, the peers' clients included.
func (m *members) online() int { return len(m.list) + len(m.remotes) }

// taken reports whether name, ignoring case, is a member's, here or on a
// peer.
func (m *members) taken(key string) bool {
	return m.byName[key] != nil || m.remotes[key] != nil
}

// fromPeer carries out what a peer's client did.
func (m *members) fromPeer(msg BusMessage) {
	switch msg.Kind {
	case BusJoin:
		m.addRemote(ClientInfo{Name: msg.Name, Addr: msg.Addr, Joined: msg.Time, Peer: msg.Peer})
		m.sendLine(msg.Line, nil)
	case BusLeave:
		if r := m.remotes[foldName(msg.Name)]; r != nil && r.Peer == msg.Peer {
			delete(m.remotes, foldName(msg.Name))
		}
		m.sendLine(msg.Line, nil)
	case BusNick:
		if r := m.remotes[foldName(msg.Old)]; r != nil && r.Peer == msg.Peer {
			delete(m.remotes, foldName(msg.Old))
			r.Name = msg.Name
			m.remotes[foldName(msg.Name)] = r
		}
		m.sendLine(msg.Line, nil)
	case BusSay:
		m.send(msg.Lines, nil)
		m.remember(msg.Lines)
	case BusNotice:
		m.sendLine(msg.Line, nil)
	case BusWhisper:
		if c := m.byName[foldName(msg.Name)]; c != nil {
			m.post(c, [][]byte{msg.Line})
		}
	case BusKick:
		if c := m.byName[foldName(msg.Name)]; c != nil {
			m.depart(c, reasonKicked, msg.Text)
		}
	case BusState:
		m.syncPeer(msg.Peer, msg.Members)
	case BusGone:
		m.syncPeer(msg.Peer, nil)
	}
}

// addRemote records a peer's client.
func (m *members) addRemote(info ClientInfo) {
	if m.remotes == nil {
		m.remotes = make(map[string]*ClientInfo)
	}
	m.remotes[foldName(info.Name)] = &info
}

// syncPeer makes the room's record of peer's clients members, telling the
// room's own clients who joined and who left since it last knew.
func (m *members) syncPeer(peer string, members []ClientInfo) {
	now := m.room.opts.now()
	keep := make(map[string]bool, len(members))
	for _, info := range members {
		key := foldName(info.Name)
		keep[key] = true
		if r := m.remotes[key]; r != nil && r.Peer == peer {
			continue
		}
		info.Peer = peer
		m.addRemote(info)
		m.sendLine(lineJoined(now, info.Name), nil)
	}
	var gone []string
	for key, r := range m.remotes {
		if r.Peer == peer && !keep[key] {
			gone = append(gone, key)
		}
	}
	slices.Sort(gone) // the same notices, in the same order, on every peer
	for _, key := range gone {
		name := m.remotes[key].Name
		delete(m.remotes, key)
		m.sendLine(lineLeft(now, name, ""), nil)
	}
}
