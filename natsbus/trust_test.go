package natsbus_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/chatroom-go/chatroom/natsbus"
)

// intruder is a bus id nobody has.
const intruder = "0123456789abcdef"

// TestPermissions: with the server configuration of docs/nats.md
// (testdata/nats-server.conf), the chat processes, one with a user and
// password and one with an nkey, serve the hub, and a bare client (no
// credentials) can neither read their lines, whispers, presence or
// history, nor put anything into them; nor may a chat user publish on a
// live subject.
func TestPermissions(t *testing.T) {
	opts, err := server.ProcessConfigFile("testdata/nats-server.conf")
	require.NoError(t, err)
	ns := startNATSWith(t, *opts)

	connectBus := func(opt natsbus.Option) *process {
		bus, err := natsbus.Connect(ns.url(), "lobby", opt, natsbus.WithHeartbeat(heartbeat), natsbus.WithLogger(testLogger(t)))
		require.NoError(t, err)
		return serveHub(t, bus, chatroom.WithHistory(5))
	}
	a := connectBus(natsbus.WithUserInfo("chat", "chat-secret"))
	b := connectBus(natsbus.WithNkeyFile("testdata/chat.nk"))

	_, err = natsbus.Connect(ns.url(), "lobby", natsbus.WithUserInfo("chat", "wrong"))
	assert.ErrorContains(t, err, "Authorization Violation", "a wrong password")

	// The bare client listens to everything it may, its inboxes included.
	bare := connect(t, ns.url())
	heard := make(chan *nats.Msg, 1024)
	for _, s := range []string{">", "_INBOX.>", "_INBOX_chatroom_lobby.>", "$KV.>", "$JS.>"} {
		_, err := bare.ChanSubscribe(s, heard)
		require.NoError(t, err, s)
	}
	require.NoError(t, bare.Flush())

	alice := join(t, a, "alice")
	bob := join(t, b, "bob")
	allSee(t, []string{"alice", "bob"}, a, b)
	alice.Send("secret line\n")
	bob.WaitFor(ts + " alice say: secret line")
	bob.Send("/msg alice secret whisper\n")
	alice.WaitFor(ts + " bob whispers: secret whisper")
	newcomer := dial(t, b) // reads the history from the stream
	newcomer.Expect(ts + " alice say: secret line")
	newcomer.Conn.Close()
	allSee(t, []string{"alice", "bob"}, a, b)

	// It injects: a line into the stream, a join of mallory, a whisper to
	// A, a name in the bucket, a forged line on a live subject.
	forged := []struct{ subject string }{
		{"chatroom.lobby.line.lobby"}, {"chatroom.lobby.ev"}, {"chatroom.lobby.to." + a.bus.ID()},
		{"chatroom.lobby.live.lobby"}, {"$KV.chatroom_lobby_names.bWFsbG9yeQ"},
	}
	payloads := map[string][]byte{
		"chatroom.lobby.line.lobby": natsbus.Forge(intruder, 0, chatroom.BusMessage{Kind: chatroom.BusLine, Room: "lobby",
			Line: &chatroom.Message{Kind: chatroom.KindSay, From: "alice", Text: "forged line", Time: chattest.Time}}),
		"chatroom.lobby.ev": natsbus.Forge(intruder, 1, chatroom.BusMessage{Kind: chatroom.BusJoin, Room: "lobby", Name: "mallory"}),
		"chatroom.lobby.to." + a.bus.ID(): natsbus.Forge(intruder, 0, chatroom.BusMessage{Kind: chatroom.BusWhisper,
			Line: &chatroom.Message{Kind: chatroom.KindWhisper, From: "bob", To: "alice", Text: "forged whisper", Time: chattest.Time}}),
	}
	for _, f := range forged {
		msg := nats.NewMsg(f.subject)
		msg.Data = payloads[f.subject]
		if msg.Data == nil {
			msg.Data = []byte("forged")
		}
		msg.Header.Set("Nats-Stream", "chatroom_lobby_lines")
		msg.Header.Set("Nats-Subject", "chatroom.lobby.line.lobby")
		msg.Header.Set("Nats-Sequence", "1000000")
		msg.Header.Set("Nats-Last-Sequence", "0")
		require.NoError(t, bare.PublishMsg(msg))
	}
	require.NoError(t, bare.Flush())

	// A chat user may not publish on a live subject either.
	violations := make(chan error, 4)
	chat, err := nats.Connect(ns.url(), nats.UserInfo("chat", "chat-secret"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	require.NoError(t, err)
	defer chat.Close()
	require.NoError(t, chat.Publish("chatroom.lobby.live.lobby", []byte("forged")))
	select {
	case err := <-violations:
		assert.ErrorContains(t, err, "Permissions Violation for Publish to \"chatroom.lobby.live.lobby\"")
	case <-time.After(chattest.WaitLimit):
		t.Fatal("the chat user published on a live subject")
	}

	// Nothing of it reached the hub: a last line of alice's comes next,
	// and the stream's history has the real lines only.
	alice.Send("last line\n")
	for _, l := range bob.WaitFor(ts + " alice say: last line") {
		assert.NotContains(t, l, "forged")
		assert.NotContains(t, l, "mallory")
	}
	alice.Send("/who\n")
	alice.WaitFor("* 2 online: alice, bob")
	allSee(t, []string{"alice", "bob"}, a, b)
	late := dial(t, a)
	late.Expect(ts + " alice say: secret line")
	late.Expect(ts + " alice say: last line")

	// And the bare client heard none of it: its own forgeries only.
	for {
		select {
		case m := <-heard:
			assert.Contains(t, []string{"chatroom.lobby.line.lobby", "chatroom.lobby.ev", "chatroom.lobby.to." + a.bus.ID(),
				"chatroom.lobby.live.lobby", "$KV.chatroom_lobby_names.bWFsbG9yeQ"}, m.Subject, "the bare client heard %q", m.Data)
			assert.NotContains(t, string(m.Data), "secret")
			continue
		default:
		}
		break
	}
	for _, p := range []*process{a, b} {
		assert.Zero(t, p.bus.Stats().Malformed, "a forgery reached a bus")
	}
}

// countingHandler counts the log records with a message.
type countingHandler struct {
	msg   string
	count *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.count.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestUntrustedTraffic: without the permissions, on a server where anyone
// may publish on the hub's subjects, a bus still takes nothing beyond its
// limits: a flood of junk is counted and logged once a second, costs the
// chat nothing, a forged line on a live subject that the stream does not
// have is dropped (it does not stop the real ones), and a state or joins
// over the limit of a peer's clients are refused; what a forged peer
// says is cleaned by the hub.
func TestUntrustedTraffic(t *testing.T) {
	ns := startNATS(t)
	var logged atomic.Int64
	quiet := slog.New(countingHandler{msg: "natsbus: dropped malformed messages", count: &logged})
	a := startProcessWith(t, ns.url(), []natsbus.Option{natsbus.WithLogger(quiet), natsbus.WithMaxPeerClients(100)},
		chatroom.WithHistory(2))
	b := startProcess(t, ns.url(), chatroom.WithHistory(2))
	alice := join(t, a, "alice")
	bob := join(t, b, "bob")
	allSee(t, []string{"alice", "bob"}, a, b)
	alice.Send("first\n")
	bob.WaitFor(ts + " alice say: first")

	// A flood of junk, on every subject A listens to.
	bare := connect(t, ns.url())
	start := time.Now()
	const junk = 20_000
	for i := range junk {
		subject := []string{"chatroom.lobby.ev", "chatroom.lobby.to." + a.bus.ID(), "chatroom.lobby.live.lobby"}[i%3]
		require.NoError(t, bare.Publish(subject, []byte(fmt.Sprintf("junk %d", i))))
	}
	require.NoError(t, bare.Flush())
	chattest.Eventually(t, func() bool { return a.bus.Stats().Malformed >= junk }, "A counted %d malformed of %d",
		a.bus.Stats().Malformed, junk)
	elapsed := time.Since(start)
	assert.LessOrEqual(t, logged.Load(), int64(elapsed/time.Second)+2, "log lines for %d malformed messages in %v", junk, elapsed)
	alice.Send("through the flood\n")
	bob.Expect(ts + " alice say: through the flood")

	// A forged line on A's live subject, far ahead of the stream: A reads
	// the stream, finds no such line, and drops it; the real lines go on.
	forged := nats.NewMsg("chatroom.lobby.live.lobby")
	forged.Header.Set("Nats-Stream", "chatroom_lobby_lines")
	forged.Header.Set("Nats-Subject", "chatroom.lobby.line.lobby")
	forged.Header.Set("Nats-Sequence", "1000000000000")
	forged.Header.Set("Nats-Last-Sequence", "999999999999")
	forged.Data = natsbus.Forge(intruder, 0, chatroom.BusMessage{Kind: chatroom.BusLine, Room: "lobby",
		Line: &chatroom.Message{Kind: chatroom.KindSay, From: "bob", Text: "you are hacked", Time: chattest.Time}})
	require.NoError(t, bare.PublishMsg(forged))
	require.NoError(t, bare.Flush())
	chattest.Eventually(t, func() bool { return a.bus.Stats().Refused >= 1 }, "the forged line was not refused")
	bob.Send("real\n")
	for _, l := range alice.WaitFor(ts + " bob say: real") {
		assert.NotContains(t, l, "hacked")
	}

	// A state over the limit is refused; joins over it too.
	var members []chatroom.ClientInfo
	for i := range 101 {
		members = append(members, chatroom.ClientInfo{Name: fmt.Sprintf("fake%d", i), Rooms: []string{"lobby"}})
	}
	refused := a.bus.Stats().Refused
	require.NoError(t, bare.Publish("chatroom.lobby.to."+a.bus.ID(), natsbus.ForgeState(intruder, 0, members)))
	chattest.Eventually(t, func() bool { return a.bus.Stats().Refused > refused }, "the state was not refused")
	for i := range 110 {
		require.NoError(t, bare.Publish("chatroom.lobby.ev", natsbus.Forge(intruder, uint64(i+1),
			chatroom.BusMessage{Kind: chatroom.BusJoin, Room: "lobby", Name: fmt.Sprintf("fake%d", i)})))
	}
	// A forged peer's whisper is cleaned by the hub: no escape sequence
	// reaches alice's terminal.
	require.NoError(t, bare.Publish("chatroom.lobby.to."+a.bus.ID(), natsbus.Forge(intruder, 0, chatroom.BusMessage{
		Kind: chatroom.BusWhisper, Line: &chatroom.Message{Kind: chatroom.KindWhisper, From: "mallory", To: "alice",
			Text: "\x1b]0;pwned\x07hi\nforged second line", Time: chattest.Time}})))
	alice.WaitFor(ts + " mallory whispers: ]0;pwnedhiforged second line")
	chattest.Eventually(t, func() bool { return len(a.hub.Clients()) == 2+100 }, "A lists %d clients, not 102", len(a.hub.Clients()))
	assert.GreaterOrEqual(t, a.bus.Stats().Refused, refused+10, "the joins over the limit")

	// The intruder is no process: it goes silent, and its clients go.
	chattest.Eventually(t, func() bool { return len(a.hub.Clients()) == 2 }, "the intruder's clients stayed")
}
