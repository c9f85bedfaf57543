package chatroom

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"github.com/chatroom-go/chatroom/internal/chattest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdvance checks the bookkeeping of a write that ends part way through
// a batch: how many lines it completed, and where the next one resumes.
func TestAdvance(t *testing.T) {
	t.Parallel()
	lines := [][]byte{[]byte("abc\n"), []byte("de\n"), []byte("fghij\n")} // 4 + 3 + 6 bytes
	tests := []struct {
		name       string
		skip, n    int
		whole, off int
	}{
		{"nothing written", 0, 0, 0, 0},
		{"into the first line", 0, 2, 0, 2},
		{"the first line exactly", 0, 4, 1, 0},
		{"into the second line", 0, 5, 1, 1},
		{"into the last line", 0, 9, 2, 2},
		{"everything", 0, 13, 3, 0},
		{"resuming, nothing written", 2, 0, 0, 2},
		{"resuming, into the first line", 1, 2, 0, 3},
		{"resuming, the first line's rest", 1, 3, 1, 0},
		{"resuming, everything", 3, 10, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			whole, off := advance(lines, tt.skip, tt.n)
			assert.Equal(t, tt.whole, whole, "lines completed")
			assert.Equal(t, tt.off, off, "offset into the next line")
			// What is left to write is exactly what appendLines joins
			// from that point on.
			all := appendLines(nil, lines, 0)
			rest := appendLines(nil, lines[whole:], off)
			assert.Equal(t, string(all[tt.skip+tt.n:]), string(rest))
		})
	}
}

// TestViewsKeepEachClientsOrder drives the hub's side of two clients'
// outboxes by hand, as the hub goroutine does: lines for everyone in a
// room are viewed in the room's list for their form, not queued, until
// something else is queued for the client (a reply, a line for it alone,
// lines from another room); whatever comes in between, each client gets
// its lines in the order they were queued, and after flushAll nobody
// holds a view or a queue, and every list is empty for the next round.
func TestViewsKeepEachClientsOrder(t *testing.T) {
	t.Parallel()
	line := func(s string) []byte { return []byte(s + "\n") }
	say := func(s *state, r *Room, text string, actor *Client) {
		s.broadcast(r, []*Message{{Kind: KindAnnounce, Text: text}}, actor, 0)
	}
	tests := []struct {
		name  string
		steps func(s *state, lobby, other *Room, a, b *Client)
		want  string // what a reads
	}{
		{"lines for everyone", func(s *state, lobby, _ *Room, a, b *Client) {
			say(s, lobby, "1", nil)
			s.broadcast(lobby, []*Message{{Kind: KindAnnounce, Text: "2"}, {Kind: KindAnnounce, Text: "3"}}, b, 0)
		}, "1\n2\n3\n"},
		{"a reply of its reader's in between", func(s *state, lobby, _ *Room, a, b *Client) {
			say(s, lobby, "1", nil)
			a.Reply(line("reply"))
			say(s, lobby, "2", nil)
		}, "1\nreply\n2\n"},
		{"a line for it alone in between", func(s *state, lobby, _ *Room, a, b *Client) {
			say(s, lobby, "1", nil)
			s.post(a, [][]byte{line("alone")})
			say(s, lobby, "2", nil)
		}, "1\nalone\n2\n"},
		{"left out of a line in between", func(s *state, lobby, _ *Room, a, b *Client) {
			say(s, lobby, "1", nil)
			say(s, lobby, "own", a) // its own form writes nothing
			say(s, lobby, "2", nil)
		}, "1\n2\n"},
		{"a line of another room in between", func(s *state, lobby, other *Room, a, b *Client) {
			say(s, lobby, "1", nil)
			say(s, other, "elsewhere", nil)
			say(s, lobby, "2", nil)
		}, "1\nelsewhere\n2\n"},
		{"a flush in between", func(s *state, lobby, _ *Room, a, b *Client) {
			say(s, lobby, "1", nil)
			s.flushAll()
			say(s, lobby, "2", b)
		}, "1\n2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHub()
			defer h.Close()
			s := newState(h)
			other, err := s.open("other")
			require.NoError(t, err)
			var reads [2]*bufio.Reader
			var clients [2]*Client
			for i, name := range []string{"a", "b"} {
				server, remote := tcpPair(t)
				c := newClient(h, server, textFace{}, h.lobby)
				c.seat = seat{index: i, name: name, form: rawForm{}}
				s.clients = append(s.clients, c)
				for _, r := range []*Room{h.lobby, other} {
					if r == other && name == "b" {
						continue // a alone is in the other room
					}
					c.seat.places = append(c.seat.places, place{room: r, at: len(r.members)})
					r.members = append(r.members, c)
				}
				clients[i] = c
				reads[i] = bufio.NewReader(remote)
				remote.SetReadDeadline(time.Now().Add(chattest.WaitLimit))
			}
			a, b := clients[0], clients[1]

			tt.steps(s, h.lobby, other, a, b)
			s.flushAll()

			got := make([]byte, len(tt.want))
			_, err = io.ReadFull(reads[0], got)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			for _, r := range []*Room{h.lobby, other} {
				for _, l := range r.lists {
					assert.Empty(t, l.lines, "a list after flushAll")
				}
			}
			for _, c := range clients {
				c.writers.Wait()
				c.mu.Lock()
				assert.Nil(t, c.view, "%s's view", c.seat.name)
				assert.Nil(t, c.outbox, "%s's queue", c.seat.name)
				c.mu.Unlock()
				c.shut(ReasonClosed, nil)
			}
		})
	}
}

// rawForm writes a message's text as a line, and nothing else.
type rawForm struct{}

func (rawForm) Format(m *Message) []byte { return []byte(m.Text + "\n") }

// tcpPair returns both ends of a fresh TCP connection on 127.0.0.1, closed
// when the test ends.
func tcpPair(t *testing.T) (server, remote net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	remote, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { remote.Close() })
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	return server, remote
}

// serveTCP serves room on a fresh 127.0.0.1 port until the test ends, and
// returns its address; Close then makes Serve return.
func serveTCP(t *testing.T, room *Room) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, room.Close())
		<-served
	})
	return ln.Addr().String()
}
