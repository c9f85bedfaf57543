package natsbus

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

const testID = "fedcba9876543210"

func TestEnvelopeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 9, 30, 0, 123, time.UTC)
	say := &chatroom.Message{Kind: chatroom.KindSay, Time: at, Room: "Games.2", From: "alice", Text: "hi"}
	me := &chatroom.Message{Kind: chatroom.KindAction, Time: at, Room: "lobby", From: "bob", Text: "waves", Notice: true}
	psst := &chatroom.Message{Kind: chatroom.KindWhisper, Time: at, From: "carol", To: "alice", Text: "psst"}
	for _, e := range []envelope{
		{kind: kindJoin, seq: 1, msg: chatroom.BusMessage{Room: "lobby", Name: "alice", Addr: "127.0.0.1:5000", Time: at}},
		{kind: kindPart, seq: 2, msg: chatroom.BusMessage{Room: "lobby", Name: "alice", Text: "bye all", Time: at}},
		{kind: kindQuit, seq: 3, msg: chatroom.BusMessage{Name: "alice", Reason: chatroom.ReasonKicked, Text: "enough", Time: at}},
		{kind: kindNick, seq: 4, msg: chatroom.BusMessage{Old: "alice", Name: "ann", Time: at}},
		{kind: kindTopic, seq: 5, msg: chatroom.BusMessage{Room: "lobby", Name: "ann", Text: "rules", Time: at}},
		{kind: kindAnnounce, seq: 6, msg: chatroom.BusMessage{Text: "maintenance at noon", Time: at}},
		{kind: kindHeartbeat, seq: 1 << 40},
		{kind: kindHello, seq: 1},
		{kind: kindBye, seq: 9},
		{kind: kindSync},
		{kind: kindWhisper, msg: chatroom.BusMessage{Line: psst, Time: at}},
		{kind: kindKick, msg: chatroom.BusMessage{Room: "lobby", Name: "bob", By: "ann", Text: "flooding"}},
		{kind: kindLine, msg: chatroom.BusMessage{Room: "Games.2", Line: say, Time: at}},
		{kind: kindLine, msg: chatroom.BusMessage{Room: "lobby", Line: me, Time: at}},
		{kind: kindLines, msg: chatroom.BusMessage{Room: "lobby"}, lines: []*chatroom.Message{
			me, {Kind: chatroom.KindSay, Time: at.Add(time.Second), Room: "lobby", From: "carol", Text: "and me"},
		}},
		{kind: kindState, seq: 7, part: 1, parts: 3, members: []chatroom.ClientInfo{
			{Name: "alice", Addr: "a", Joined: at, Rooms: []string{"lobby", "games"}},
			{Name: "bob", Addr: "b", Joined: at, Rooms: []string{"games"}},
			{Name: "idle", Addr: "c"},
		}},
		{kind: kindState, parts: 1, members: []chatroom.ClientInfo{}},
	} {
		t.Run(e.kind.String(), func(t *testing.T) {
			e.from = testID
			got, err := decode(e.encode(nil), DefaultMaxLine)
			require.NoError(t, err)
			assert.Equal(t, &e, got)
		})
	}
}

// TestDecodeRefuses: what does not fit the format or its limits is
// malformed, however it lies.
func TestDecodeRefuses(t *testing.T) {
	good := func(e envelope) []byte {
		e.from = testID
		return e.encode(nil)
	}
	lying := []byte{wireVersion, byte(kindState)}
	lying = appendString(lying, testID)
	lying = append(lying, 1, 0, 0, 1) // seq, time, part 0 of 1
	lying = binary.AppendUvarint(lying, 0)
	lying = binary.AppendUvarint(lying, 1<<40) // members: 2^40 of them, in no bytes
	for name, data := range map[string][]byte{
		"empty":                 nil,
		"another version":       append([]byte{1}, good(envelope{kind: kindHeartbeat})[1:]...),
		"unknown kind":          append([]byte{wireVersion, byte(kindLimit)}, good(envelope{kind: kindHeartbeat})[2:]...),
		"bad id":                (&envelope{kind: kindHeartbeat, from: "not an id!!!!!!!"}).encode(nil),
		"upper-case id":         (&envelope{kind: kindHeartbeat, from: strings.ToUpper(testID)}).encode(nil),
		"trailing bytes":        append(good(envelope{kind: kindHeartbeat}), 0),
		"truncated":             good(envelope{kind: kindJoin, msg: chatroom.BusMessage{Room: "lobby", Name: "alice"}})[:20],
		"text too long":         good(envelope{kind: kindTopic, msg: chatroom.BusMessage{Room: "lobby", Name: "a", Text: strings.Repeat("x", DefaultMaxLine+1)}}),
		"name too long":         good(envelope{kind: kindJoin, msg: chatroom.BusMessage{Room: "lobby", Name: strings.Repeat("a", maxIdent+1)}}),
		"unknown reason":        good(envelope{kind: kindQuit, msg: chatroom.BusMessage{Name: "a", Reason: chatroom.ReasonRefused + 1}}),
		"a join as a line":      good(envelope{kind: kindLine, msg: chatroom.BusMessage{Room: "lobby", Line: &chatroom.Message{Kind: chatroom.KindJoin, From: "a", Text: "x"}}}),
		"a state that lies":     lying,
		"a part past the parts": good(envelope{kind: kindState, part: 2, parts: 2, members: []chatroom.ClientInfo{}}),
		"one line as lines":     good(envelope{kind: kindLines, msg: chatroom.BusMessage{Room: "lobby"}, lines: manyLines(1)}),
		"too many lines":        good(envelope{kind: kindLines, msg: chatroom.BusMessage{Room: "lobby"}, lines: manyLines(maxBatchLines + 1)}),
		"a join among lines": good(envelope{kind: kindLines, msg: chatroom.BusMessage{Room: "lobby"},
			lines: append(manyLines(2), &chatroom.Message{Kind: chatroom.KindJoin, From: "a", Text: "x"})}),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decode(data, DefaultMaxLine)
			assert.ErrorIs(t, err, errBadEnvelope)
		})
	}
}

// TestAppendLines: the publisher's encoding of its lines is encode's.
func TestAppendLines(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 0, 0, 7, time.UTC)
	items := []*item{
		{kind: chatroom.BusLine, room: "Games.2", said: chatroom.KindSay, name: "alice", text: "hi", time: at},
		{kind: chatroom.BusLine, room: "Games.2", said: chatroom.KindAction, name: "bob", text: "waves", time: at.Add(time.Second), notice: true},
		{kind: chatroom.BusLine, room: "Games.2", said: chatroom.KindSay, name: "carol", time: at.Add(2 * time.Second)},
	}
	for n := 1; n <= len(items); n++ {
		e := envelope{kind: kindLine, from: testID, msg: chatroom.BusMessage{Room: "Games.2", Line: items[0].message()}}
		if n > 1 {
			e.kind, e.msg.Line = kindLines, nil
			for _, it := range items[:n] {
				e.lines = append(e.lines, it.message())
			}
		}
		assert.Equal(t, e.encode(nil), appendLines(nil, testID, "Games.2", items[:n]), "%d lines", n)
	}
}

// manyLines returns n lines said in lobby.
func manyLines(n int) []*chatroom.Message {
	lines := make([]*chatroom.Message, n)
	for i := range lines {
		lines[i] = &chatroom.Message{Kind: chatroom.KindSay, Room: "lobby", From: "a", Text: "x"}
	}
	return lines
}

func TestRoomToken(t *testing.T) {
	for room, want := range map[string]string{
		"lobby": "lobby", "Games.2": "games~2", "#a_b-c": "a_b-c", "GAMES.2": "games~2",
	} {
		got, ok := roomToken(room)
		assert.True(t, ok, room)
		assert.Equal(t, want, got, room)
	}
	for _, room := range []string{"", "a b", "a*", "a>", "x~y", strings.Repeat("a", 33)} {
		_, ok := roomToken(room)
		assert.False(t, ok, "%q is not a room's name", room)
	}
}

// FuzzDecode: whatever arrives on the hub's subjects, decode returns an
// envelope or an error, never panics, and what it returns encodes to
// bytes that decode to the same envelope.
func FuzzDecode(f *testing.F) {
	at := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	f.Add((&envelope{kind: kindLine, from: testID, msg: chatroom.BusMessage{Room: "lobby",
		Line: &chatroom.Message{Kind: chatroom.KindSay, From: "a", Text: "hi", Time: at}}}).encode(nil))
	f.Add((&envelope{kind: kindLines, from: testID, msg: chatroom.BusMessage{Room: "lobby"}, lines: manyLines(3)}).encode(nil))
	f.Add((&envelope{kind: kindState, from: testID, seq: 1, parts: 1,
		members: []chatroom.ClientInfo{{Name: "a", Rooms: []string{"lobby"}}}}).encode(nil))
	f.Add((&envelope{kind: kindQuit, from: testID, seq: 2, msg: chatroom.BusMessage{Name: "a", Reason: chatroom.ReasonExit}}).encode(nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decode(data, 256)
		if err != nil {
			return
		}
		again, err := decode(e.encode(nil), 256)
		require.NoError(t, err)
		assert.Equal(t, e, again)
	})
}
