package chatroom_test

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// TestRoomsChurn: many rooms over real sockets (the poller's, on Linux),
// each with a speaker and a listener, while churners move from room to
// room, say a line in each and hang up. Every listener hears its
// speaker's lines once and in order; a churner, once told it is in a
// room, hears lines of that room alone until it moves; nobody is cut off
// as too slow. CHATROOM_LONG_TESTS=1 runs it with 1 000 rooms (as CI
// does), otherwise with 100.
func TestRoomsChurn(t *testing.T) {
	rooms, churners, moves := 100, 20, 10
	if os.Getenv("CHATROOM_LONG_TESTS") != "" {
		rooms, churners, moves = 1000, 100, 20
	}
	const lines = 30 // per speaker
	hub := chatroom.NewHub(chatroom.WithClock(fixedClock), chatroom.WithMaxRooms(rooms+1), noFloodControl)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- hub.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, hub.Close())
		assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
	})
	addr := ln.Addr().String()

	// roomConn is one connection that has moved to a room.
	type roomConn struct {
		conn net.Conn
		in   *bufio.Reader
	}
	enter := func(room string) (roomConn, error) {
		conn, err := net.DialTimeout("tcp", addr, waitLimit)
		if err != nil {
			return roomConn{}, err
		}
		conn.SetDeadline(time.Now().Add(4 * waitLimit))
		in := bufio.NewReader(conn)
		if _, err := fmt.Fprintf(conn, "/join %s\n", room); err != nil {
			return roomConn{}, err
		}
		for { // the welcome, lobby's notices, then the move's answer
			l, err := in.ReadString('\n')
			if err != nil {
				return roomConn{}, err
			}
			if strings.HasPrefix(l, "* you are in "+room+",") {
				return roomConn{conn, in}, nil
			}
		}
	}

	speakers := make([]roomConn, rooms)
	listeners := make([]roomConn, rooms)
	for i := range rooms {
		room := "room" + strconv.Itoa(i)
		listeners[i], err = enter(room)
		require.NoError(t, err)
		t.Cleanup(func() { listeners[i].conn.Close() })
		speakers[i], err = enter(room)
		require.NoError(t, err)
		t.Cleanup(func() { speakers[i].conn.Close() })
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2*rooms+churners)
	for i := range rooms {
		room := "room" + strconv.Itoa(i)
		wg.Go(func() { // the speaker: its lines, then a last one
			w := bufio.NewWriter(speakers[i].conn)
			for n := range lines {
				fmt.Fprintf(w, "%s %d\n", room, n)
			}
			fmt.Fprintf(w, "%s done\n", room)
			if err := w.Flush(); err != nil {
				errs <- err
			}
		})
		wg.Go(func() { // the listener: the speaker's lines in order, and nothing of another room
			next := 0
			for {
				l, err := listeners[i].in.ReadString('\n')
				if err != nil {
					errs <- fmt.Errorf("%s's listener: %w", room, err)
					return
				}
				_, text, ok := strings.Cut(strings.TrimSuffix(l, "\n"), " say: ")
				if !ok {
					continue // a churner arriving or leaving
				}
				r, n, _ := strings.Cut(text, " ")
				if r != room {
					errs <- fmt.Errorf("%s's listener heard %q", room, l)
					return
				}
				if n == "done" {
					if next != lines {
						errs <- fmt.Errorf("%s's listener heard %d lines of %d", room, next, lines)
					}
					return
				}
				if n != strconv.Itoa(next) && !strings.HasPrefix(n, "churn") {
					errs <- fmt.Errorf("%s's listener: %q after line %d", room, l, next-1)
					return
				}
				if !strings.HasPrefix(n, "churn") {
					next++
				}
			}
		})
	}
	for c := range churners {
		wg.Go(func() { // a churner: moves, says a line in each room, hangs up
			rc, err := enter("room" + strconv.Itoa(rand.IntN(rooms)))
			if err != nil {
				errs <- err
				return
			}
			defer rc.conn.Close()
			for range moves {
				room := "room" + strconv.Itoa(rand.IntN(rooms))
				fmt.Fprintf(rc.conn, "/join %s\n", room)
				moved := false
				for !moved {
					l, err := rc.in.ReadString('\n')
					if err != nil {
						errs <- fmt.Errorf("churner %d: %w", c, err)
						return
					}
					moved = strings.HasPrefix(l, "* you are in "+room+",") || strings.HasPrefix(l, "* you are already in "+room)
				}
				fmt.Fprintf(rc.conn, "%s churn%d\n/who\n", room, c)
				for { // until the answer to /who, only lines of this room
					l, err := rc.in.ReadString('\n')
					if err != nil {
						errs <- fmt.Errorf("churner %d: %w", c, err)
						return
					}
					if strings.HasPrefix(l, "* ") && strings.Contains(l, " online: ") {
						break
					}
					if _, text, ok := strings.Cut(l, " say: "); ok && !strings.HasPrefix(text, room+" ") {
						errs <- fmt.Errorf("churner %d in %s heard %q", c, room, l)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Zero(t, hub.Stats().Evicted, "someone was cut off as too slow")
}
