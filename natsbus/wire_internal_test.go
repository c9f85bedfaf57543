package natsbus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	joined := time.Date(2026, 11, 29, 9, 30, 0, 123, time.UTC)
	line := []byte("2026-11-29 09:30:00 alice say: hi\n")
	for _, e := range []envelope{
		{kind: kind(chatroom.BusJoin), msg: chatroom.BusMessage{Name: "alice", Addr: "127.0.0.1:5000", Time: joined, Line: line}},
		{kind: kind(chatroom.BusLeave), msg: chatroom.BusMessage{Name: "alice", Line: line}},
		{kind: kind(chatroom.BusNick), msg: chatroom.BusMessage{Old: "alice", Name: "ann", Line: line}},
		{kind: kind(chatroom.BusSay), msg: chatroom.BusMessage{Line: line}},
		{kind: kind(chatroom.BusNotice), msg: chatroom.BusMessage{Line: line}},
		{kind: kind(chatroom.BusWhisper), msg: chatroom.BusMessage{Name: "bob", Line: line}},
		{kind: kind(chatroom.BusKick), msg: chatroom.BusMessage{Name: "bob", Text: "enough"}},
		{kind: kindHeartbeat},
		{kind: kindBye},
		{kind: kindSync, target: "0123456789abcdef"},
		{kind: kindState, ask: true, members: []chatroom.ClientInfo{{Name: "alice", Addr: "a", Joined: joined}, {Name: "bob", Addr: "b", Joined: joined}}},
		{kind: kindState, members: []chatroom.ClientInfo{}},
	} {
		t.Run(e.kindName(), func(t *testing.T) {
			e.from, e.seq = "fedcba9876543210", 1<<40
			e.msg.Kind = chatroom.BusKind(e.kind)
			got, err := decode(e.encode(nil))
			require.NoError(t, err)
			if !e.msg.Time.IsZero() {
				assert.True(t, e.msg.Time.Equal(got.msg.Time))
				got.msg.Time = e.msg.Time
			}
			for i := range e.members {
				assert.True(t, e.members[i].Joined.Equal(got.members[i].Joined))
				got.members[i].Joined = e.members[i].Joined
			}
			assert.Equal(t, &e, got)
		})
	}
}

func (e *envelope) kindName() string {
	switch e.kind {
	case kindHeartbeat:
		return "heartbeat"
	case kindState:
		return "state"
	case kindSync:
		return "sync"
	case kindBye:
		return "bye"
	}
	return chatroom.BusKind(e.kind).String()
}

// FuzzDecode: whatever arrives on the room's subjects, decode returns an
// envelope or an error, never panics, and what it returns encodes to bytes
// that decode to the same envelope.
func FuzzDecode(f *testing.F) {
	f.Add((&envelope{kind: kind(chatroom.BusSay), from: "x", seq: 3, msg: chatroom.BusMessage{Line: []byte("l\n")}}).encode(nil))
	f.Add((&envelope{kind: kindState, from: "x", seq: 1, members: []chatroom.ClientInfo{{Name: "a"}}}).encode(nil))
	f.Add([]byte{wireVersion, byte(kindState), 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decode(data)
		if err != nil {
			return
		}
		again, err := decode(e.encode(nil))
		require.NoError(t, err)
		assert.Equal(t, e, again)
	})
}
