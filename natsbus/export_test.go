package natsbus

import "github.com/chatroom-go/chatroom"

// Forge returns the bytes a bus with the id from would publish for msg: a
// presence message numbered seq (BusJoin, BusQuit...), a line (BusLine),
// or a whisper (BusWhisper). The tests forge what a peer, or an intruder,
// could send.
func Forge(from string, seq uint64, msg chatroom.BusMessage) []byte {
	e := &envelope{from: from, seq: seq, msg: msg}
	switch msg.Kind {
	case chatroom.BusLine:
		e.kind = kindLine
	case chatroom.BusWhisper:
		e.kind = kindWhisper
	default:
		e.kind = presenceKinds[msg.Kind]
	}
	return e.encode(nil)
}

// ForgeState returns the bytes of a state with members, in one part, as
// of seq.
func ForgeState(from string, seq uint64, members []chatroom.ClientInfo) []byte {
	return (&envelope{kind: kindState, from: from, seq: seq, parts: 1, members: members}).encode(nil)
}
