package chatroom_test

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// Admission: who gets into the room, and what the others see of it.

func TestRoomFull(t *testing.T) {
	room, addr := startRoom(t, chatroom.WithMaxClients(2))
	a, b := dialPair(t, addr)

	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	refused := &client{t: t, conn: conn, in: bufio.NewReader(conn)}
	refused.expect("* room is full (2 clients)")
	refused.expectClosed()

	// Nobody noticed: the next thing a sees is b's line.
	b.send("still two\n")
	a.expect(ts+" %s say: still two", b)
	s := room.Stats()
	assert.Equal(t, 2, s.Clients)
	assert.Equal(t, uint64(1), s.Refused)

	// A place frees up.
	b.send("exit\n")
	b.expect("* bye")
	a.expect(ts+" * %s left", b)
	c := dial(t, addr, 2)
	a.expect(ts+" * %s joined", c)
}

// TestConnectionStorm dials 1 000 clients at once into a room limited to
// 100: exactly 100 get in, the other 900 are told the room is full, and no
// descriptor is left open afterwards.
func TestConnectionStorm(t *testing.T) {
	const dialers, limit = 1000, 100
	fds := openFDs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom(chatroom.WithMaxClients(limit))
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()

	var mu sync.Mutex
	var admitted []net.Conn
	refused, failed := 0, 0
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", ln.Addr().String(), waitLimit)
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			conn.SetReadDeadline(time.Now().Add(waitLimit))
			in := bufio.NewReader(conn)
			first, _ := in.ReadString('\n')
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.HasPrefix(first, "* welcome "):
				admitted = append(admitted, conn)
				return
			case first == fmt.Sprintf("* room is full (%d clients)\n", limit):
				if _, err := in.ReadByte(); err != nil { // then closed
					refused++
				}
			default:
				failed++
			}
			conn.Close()
		}()
	}
	wg.Wait()
	assert.Equal(t, limit, len(admitted))
	assert.Equal(t, dialers-limit, refused)
	assert.Zero(t, failed)
	s := room.Stats()
	assert.Equal(t, limit, s.Clients)
	assert.Equal(t, uint64(dialers-limit), s.Refused)

	for _, c := range admitted {
		c.Close()
	}
	eventually(t, func() bool { return room.Stats().Clients == 0 }, "everyone left")
	require.NoError(t, room.Close())
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
	eventually(t, func() bool { return openFDs(t) <= fds }, "descriptors back to where they were")
}
