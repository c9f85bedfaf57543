package chatroom_test

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// This file tests what a face learns of clients: the user name, host and
// real name given at registration, in ClientInfo and in the messages of
// what they do, Client.Clients, and the Peak and Invisible counters.

// identityFace registers each client at once as its connection's name,
// with the user name "u-NAME" and the real name "Real NAME", and runs a
// few commands: "join ROOM", "say ROOM TEXT", "mode ROOM MODE",
// "invisible", "clients ROOM" (ROOM "-" for the hub).
type identityFace struct{}

func (identityFace) Name() string        { return "identity" }
func (identityFace) Form() chatroom.Form { return identityForm{} }
func (identityFace) Start(c *chatroom.Client) chatroom.Session {
	name := c.Addr()
	c.SetForm(identityForm{}, nil)
	if err := c.Register(chatroom.Registration{Name: name, User: "u-" + name, RealName: "Real " + name}); err != nil {
		c.Reply([]byte("refused: " + err.Error() + "\n"))
		c.Quit("")
	}
	return identitySession{c}
}

type identitySession struct{ c *chatroom.Client }

func (s identitySession) TooLong() {}

func (s identitySession) Line(line []byte) {
	word, rest, _ := strings.Cut(string(line), " ")
	arg, text, _ := strings.Cut(rest, " ")
	var err error
	switch word {
	case "join":
		err = s.c.Join(arg, 0)
	case "say":
		err = s.c.Say(arg, text)
	case "mode":
		err = s.c.SetMode(arg, text, "")
	case "invisible":
		err = s.c.SetInvisible(true)
	case "stats":
		st := s.c.Stats()
		s.c.Reply([]byte(fmt.Sprintf("stats: %d clients, peak %d, %d invisible\n", st.Clients, st.Peak, st.Invisible)))
	case "clients":
		if arg == "-" {
			arg = ""
		}
		var infos []chatroom.ClientInfo
		infos, err = s.c.Clients(arg)
		var b strings.Builder
		b.WriteString("clients:")
		for _, i := range infos {
			b.WriteString(" " + i.Name + "=" + i.User + "@" + i.Host + "/" + i.RealName + "/" + i.Face)
		}
		if err == nil {
			s.c.Reply([]byte(b.String() + "\n"))
		}
	}
	if err != nil {
		s.c.Reply([]byte("error: " + err.Error() + "\n"))
	}
}

// identityForm writes "KIND FROM USER@HOST TEXT" for what others do.
type identityForm struct{}

func (identityForm) Format(m *chatroom.Message) []byte {
	who := m.From
	if m.Kind == chatroom.KindMode {
		who = m.By
	}
	return []byte(m.Kind.String() + " " + who + " " + m.User + "@" + m.Host + " " + m.Text + "\n")
}

// identityClient connects to room over a pipe, named name, with the
// identity face.
func identityClient(t *testing.T, room *chatroom.Room, name string) *client {
	t.Helper()
	local, remote := net.Pipe()
	go room.ServeConnFace(namedConn{remote, name}, identityFace{})
	t.Cleanup(func() { local.Close() })
	return chattest.NewClient(t, local, name)
}

func TestIdentityInMessagesAndClientInfo(t *testing.T) {
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock))
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	room, err := hub.Room("lobby")
	require.NoError(t, err)

	alice := identityClient(t, room, "alice")
	alice.Send("join games\n")
	alice.Send("clients games\n")
	alice.Expect("clients: alice=u-alice@alice/Real alice/identity")
	bob := identityClient(t, room, "bob")
	bob.Send("join games\n")
	alice.Expect("join bob u-bob@bob ")
	bob.Send("say games hi\n")
	alice.Expect("say bob u-bob@bob hi")
	alice.Send("mode games +t\n")
	bob.Expect("mode alice u-alice@alice +t")

	// A text client has its face's name as its user name, and its
	// address as its host when that is no IP address.
	carol, _ := pipeClient(t, room, "carol", 1)
	carol.Send("/join games\n")
	carol.Expect("* you are in games, 3 online")
	alice.Expect("join carol text@carol ")
	carol.Send("hello\n")
	alice.Expect("say carol text@carol hello")
	bob.Expect("join carol text@carol ")
	bob.Expect("say carol text@carol hello")

	alice.Send("clients games\n")
	alice.Expect("clients: alice=u-alice@alice/Real alice/identity bob=u-bob@bob/Real bob/identity carol=text@carol//text")
	info, err := clientInfo(hub, "bob")
	require.NoError(t, err)
	assert.Equal(t, "u-bob", info.User)
	assert.Equal(t, "Real bob", info.RealName)

	// A secret room is described to its members alone.
	alice.Send("mode games +s\n")
	bob.Expect("mode alice u-alice@alice +s")
	dave := identityClient(t, room, "dave")
	dave.Send("clients games\n")
	dave.Expect("error: %s", chatroom.ErrNoSuchRoom)
	dave.Send("clients nowhere\n")
	dave.Expect("error: %s", chatroom.ErrNoSuchRoom)
	dave.Send("clients -\n")
	dave.Expect("clients: alice=u-alice@alice/Real alice/identity bob=u-bob@bob/Real bob/identity carol=text@carol//text dave=u-dave@dave/Real dave/identity")
}

func TestPeakAndInvisible(t *testing.T) {
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock))
	t.Cleanup(func() { assert.NoError(t, hub.Close()) })
	room, err := hub.Room("lobby")
	require.NoError(t, err)

	alice := identityClient(t, room, "alice")
	bob := identityClient(t, room, "bob")
	alice.Send("invisible\n")
	alice.Send("invisible\n") // twice counts once
	bob.Send("invisible\n")
	bob.Send("clients -\n") // answered once its invisible is done
	bob.Expect("clients: alice=u-alice@alice/Real alice/identity bob=u-bob@bob/Real bob/identity")
	alice.Send("stats\n")
	alice.Expect("stats: 2 clients, peak 2, 2 invisible")
	s := hub.Stats()
	assert.Equal(t, 2, s.Peak)
	assert.Equal(t, 2, s.Clients)

	bob.Conn.Close()
	eventually(t, func() bool { return hub.Stats().Clients == 1 }, "bob left")
	s = hub.Stats()
	assert.Equal(t, 2, s.Peak, "the peak stays")
	assert.Equal(t, 1, s.Invisible, "bob no longer counts")
}

// clientInfo describes the client called name, through Hub.Clients.
func clientInfo(hub *chatroom.Hub, name string) (chatroom.ClientInfo, error) {
	for _, info := range hub.Clients() {
		if info.Name == name {
			return info, nil
		}
	}
	return chatroom.ClientInfo{}, chatroom.ErrNoSuchClient
}
