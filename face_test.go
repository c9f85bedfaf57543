package chatroom_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// probeFace is a face for tests of what the hub hands faces: its clients
// register at once under their connection's name, landing in their room,
// told its roster with roster; a line "join ROOM SINCE" joins ROOM, "say
// ROOM TEXT" says TEXT there. Its forms write each message as "KIND ID
// ROOM FROM", with " own" in the own form and the roster, if any, as
// " members=@op,name".
type probeFace struct{ roster bool }

func (probeFace) Name() string        { return "probe" }
func (probeFace) Form() chatroom.Form { return probeForm{} }

func (f probeFace) Start(c *chatroom.Client) chatroom.Session {
	c.SetForm(probeForm{}, probeForm{own: true})
	if err := c.Register(chatroom.Registration{Name: c.Addr(), Land: true, Roster: f.roster}); err != nil {
		c.Quit("")
	}
	return probeSession{c}
}

type probeSession struct{ c *chatroom.Client }

func (s probeSession) TooLong() {}

func (s probeSession) Line(line []byte) {
	word, rest, _ := strings.Cut(string(line), " ")
	arg, text, _ := strings.Cut(rest, " ")
	var err error
	switch word {
	case "join":
		since, _ := strconv.ParseUint(text, 10, 64)
		err = s.c.Join(arg, since)
	case "say":
		err = s.c.Say(arg, text)
	}
	if err != nil {
		s.c.Reply([]byte("error " + err.Error() + "\n"))
	}
}

type probeForm struct{ own bool }

func (f probeForm) Format(m *chatroom.Message) []byte {
	b := fmt.Appendf(nil, "%s %d %s %s", m.Kind, m.ID, m.Room, m.From)
	if f.own {
		b = append(b, " own"...)
	}
	for i, member := range m.Members {
		if i == 0 {
			b = append(b, " members="...)
		} else {
			b = append(b, ',')
		}
		if member.Operator {
			b = append(b, '@')
		}
		b = append(b, member.Name...)
	}
	return append(b, '\n')
}

// probeLine splits a line of probeForm's into its kind, ID and the rest.
func probeLine(t *testing.T, line string) (kind string, id uint64, rest string) {
	t.Helper()
	f := strings.SplitN(line, " ", 3)
	require.Len(t, f, 3, "a probe line: %q", line)
	id, err := strconv.ParseUint(f[1], 10, 64)
	require.NoError(t, err, line)
	return f[0], id, f[2]
}

// TestJoinCarriesTheLastLineID: a client's welcome, and its own join of a
// room, carry the ID of the room's last line; the history that follows is
// no newer; and a client that passes that ID to Join later gets exactly
// the lines said since, whether or not it saw any line there.
func TestJoinCarriesTheLastLineID(t *testing.T) {
	t.Parallel()
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock), chatroom.WithHistory(5), noFloodControl)
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	probe := func(name string) *client {
		local, remote := net.Pipe()
		go hub.ServeConnFace(namedConn{remote, name}, probeFace{})
		t.Cleanup(func() { local.Close() })
		return chattest.NewClient(t, local, name)
	}

	local, remote := net.Pipe()
	go hub.ServeConn(namedConn{remote, "tom"})
	tom := welcome(t, local, "tom", 1)
	tom.Send("one\ntwo\n")
	eventually(t, func() bool { return hub.Stats().Messages == 2 }, "tom's lines are relayed")

	ann := probe("ann")
	kind, welcomeID, rest := probeLine(t, ann.Line())
	require.Equal(t, "welcome", kind)
	assert.Equal(t, "lobby ann", rest)
	var ids []uint64
	for len(ids) < 2 {
		kind, id, _ := probeLine(t, ann.Line())
		require.Equal(t, "say", kind)
		ids = append(ids, id)
	}
	assert.Less(t, ids[0], ids[1])
	assert.Equal(t, ids[1], welcomeID, "the welcome carries the last line's ID")
	tom.Expect(ts + " * ann joined")
	discard(tom, nil)

	// A room with no line yet: the own join carries the ID its first line
	// follows.
	ann.Send("join games 0\n")
	kind, gamesID, rest := probeLine(t, ann.Line())
	require.Equal(t, "join", kind)
	assert.Equal(t, "games ann own", rest)
	ann.Send("say games hello\n")
	kind, helloID, rest := probeLine(t, ann.Line())
	require.Equal(t, "say", kind)
	assert.Equal(t, "games ann own", rest)
	assert.Greater(t, helloID, gamesID)

	// Recovering from the join's ID: the line said since, and no gap.
	bob := probe("bob")
	kind, _, _ = probeLine(t, bob.Line())
	require.Equal(t, "welcome", kind)
	bob.Line() // one
	bob.Line() // two
	bob.Send("join games " + strconv.FormatUint(gamesID, 10) + "\n")
	kind, id, _ := probeLine(t, bob.Line())
	require.Equal(t, "join", kind)
	assert.Equal(t, helloID, id, "the own join carries the last line's ID")
	kind, id, rest = probeLine(t, bob.Line())
	assert.Equal(t, "say", kind)
	assert.Equal(t, helloID, id)
	assert.Equal(t, "games ann", rest)

	// Recovering from the last line seen: nothing more.
	cid := probe("cid")
	for range 3 { // the welcome and lobby's history
		cid.Line()
	}
	cid.Send("join games " + strconv.FormatUint(helloID, 10) + "\n")
	kind, id, _ = probeLine(t, cid.Line())
	require.Equal(t, "join", kind)
	assert.Equal(t, helloID, id)
	cid.Send("say games after\n")
	kind, id, rest = probeLine(t, cid.Line())
	assert.Equal(t, "say", kind)
	assert.Equal(t, helloID+1, id)
	assert.Equal(t, "games cid own", rest, "no history came between the join and the line")
}

// TestErrorText: the words of the text protocol's refusals, for other
// faces to say.
func TestErrorText(t *testing.T) {
	t.Parallel()
	hub := chatroom.NewHub(chatroom.WithMaxRooms(3), chatroom.WithMaxClients(7))
	tests := []struct {
		err  error
		want string
	}{
		{chatroom.ErrRoomFull, "room is full (7 clients)"},
		{chatroom.ErrTooManyRooms, "too many rooms (max 3)"},
		{fmt.Errorf("chatroom: joining: %w", chatroom.ErrTooManyRooms), "too many rooms (max 3)"},
		{chatroom.ErrNameTaken, "name taken"},
		{fmt.Errorf("chatroom: auth of 1.2.3.4:5: %w", context.DeadlineExceeded), "authentication timed out"},
		{fmt.Errorf("chatroom: auth of 1.2.3.4:5: %w", errors.New("no cookie")), "no cookie"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, hub.ErrorText(tt.err), "%v", tt.err)
	}
}

// TestOpenerIsOperatorInItsOwnRoster: the client that opens a room by
// entering it is its operator, and the roster of its own join says so.
func TestOpenerIsOperatorInItsOwnRoster(t *testing.T) {
	t.Parallel()
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock))
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	probe := func(name string) *client {
		local, remote := net.Pipe()
		go hub.ServeConnFace(namedConn{remote, name}, probeFace{roster: true})
		t.Cleanup(func() { local.Close() })
		return chattest.NewClient(t, local, name)
	}
	ann := probe("ann")
	_, _, rest := probeLine(t, ann.Line())
	assert.Equal(t, "lobby ann members=ann", rest, "the default room has no opener")
	ann.Send("join games 0\n")
	_, _, rest = probeLine(t, ann.Line())
	assert.Equal(t, "games ann own members=@ann", rest)

	bob := probe("bob")
	bob.Line() // welcome
	bob.Send("join games 0\n")
	_, _, rest = probeLine(t, bob.Line())
	assert.Equal(t, "games bob own members=@ann,bob", rest)
}

// TestHistoriesOwedFitTheOutbox: a client that enters many rooms at once,
// each with a full history owed, is given what its outbox can take (half
// of it, with what waits already) and told of a gap for the rest, instead
// of being cut off as too slow.
func TestHistoriesOwedFitTheOutbox(t *testing.T) {
	t.Parallel()
	const rooms, history, outbox = 12, 20, 100
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock), chatroom.WithHistory(history),
		chatroom.WithOutboxSize(outbox), noFloodControl)
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	probe := func(name string) *client {
		local, remote := net.Pipe()
		go hub.ServeConnFace(namedConn{remote, name}, probeFace{})
		t.Cleanup(func() { local.Close() })
		return chattest.NewClient(t, local, name)
	}
	talker := probe("talker")
	talker.Line() // welcome
	for i := range rooms {
		room := fmt.Sprintf("r%d", i)
		talker.Send("join " + room + " 0\n")
		talker.Line() // own join
		for n := range history {
			talker.Send(fmt.Sprintf("say %s line %d\n", room, n))
			talker.Line() // own line
		}
	}

	// A reader that stops reading, then asks for every room from the start.
	reader := probe("reader")
	reader.Line() // welcome
	for i := range rooms {
		reader.Send(fmt.Sprintf("join r%d 1\n", i)) // since line 1: everything but the first line is owed
	}
	gaps, lines := 0, 0
	for joined := 0; joined < rooms; {
		switch kind, _, _ := probeLine(t, reader.Line()); kind {
		case "join":
			joined++
		case "gap":
			gaps++
		case "say":
			lines++
		}
	}
	t.Logf("%d rooms of %d lines owed: %d lines given, %d gaps told", rooms, history, lines, gaps)
	assert.Positive(t, gaps, "not every room's lines fit: a gap is told")
	assert.LessOrEqual(t, lines, outbox)
	assert.Zero(t, hub.Stats().Evicted, "the reader was cut off")
}
