package chatroom_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// What one address can cost everyone else: its connections share one
// budget of lines (WithHostRate), and an IPv6 address is its /64
// (WithHostPrefix). Over net.Pipe, with addresses given by namedConn; the
// same limits over real sockets from non-loopback addresses are in the
// demo's hostile tests.

// TestHostRateIsSharedByAnAddress: 8 connections of one address flood 100
// lines each. Alone, each would be read at its own rate (20 a second
// after 50); together they get the address's 40 a second after 100, so
// the 800 lines take (800-100)/40 = 17.5 s of fake time. Every line
// arrives; a client of another address talks at once meanwhile.
func TestHostRateIsSharedByAnAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const conns, lines = 8, 100
		room := pipeRoom(t)
		listener, _ := pipeClient(t, room, "listener", 1)
		listener.Patience = time.Hour
		local, remote := net.Pipe()
		go room.ServeConn(namedConn{remote, "198.51.100.9:1"})
		other := welcome(t, local, "198.51.100.9:1", 2)
		listener.Expect(ts + " * 198.51.100.9:1 joined")
		discard(other, nil)
		var flooders []*client
		for i := range conns {
			name := fmt.Sprintf("192.0.2.7:%d", 1000+i)
			local, remote := net.Pipe()
			go room.ServeConn(namedConn{remote, name})
			flooders = append(flooders, welcome(t, local, name, 3+i))
			listener.Expect(ts+" * %s joined", name)
			discard(flooders[i], nil)
		}

		start := time.Now()
		var wg sync.WaitGroup
		for i, f := range flooders {
			wg.Go(func() {
				var b strings.Builder
				for n := range lines {
					fmt.Fprintf(&b, "flood %d %d\n", i, n)
				}
				f.Conn.SetWriteDeadline(time.Now().Add(time.Hour))
				f.Conn.Write([]byte(b.String()))
			})
		}
		go func() {
			time.Sleep(5 * time.Second)
			other.Send("meanwhile\n")
		}()
		heard, heardOther := 0, time.Duration(0)
		for heard < conns*lines || heardOther == 0 {
			line := listener.Line()
			if line == ts+" 198.51.100.9:1 say: meanwhile" {
				heardOther = time.Since(start)
				continue
			}
			require.Contains(t, line, " say: flood ")
			heard++
		}
		took := time.Since(start)
		wg.Wait()
		assert.Equal(t, 5*time.Second, heardOther, "the other address waited for the flood")
		want := time.Duration(float64(conns*lines-chatroom.DefaultHostBurst) / chatroom.DefaultHostRate * float64(time.Second))
		assert.InDelta(t, want.Seconds(), took.Seconds(), 0.5, "the address's lines took %v", took)
	})
}

// TestIPv6CountsByItsNetwork: connections from one /64 share one account:
// the 17th is refused, however many addresses of the network they use; a
// connection from another /64 is not.
func TestIPv6CountsByItsNetwork(t *testing.T) {
	room := pipeRoom(t, chatroom.WithJoinRate(0, 0))
	for i := range chatroom.DefaultMaxPerHost {
		name := fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1)
		local, remote := net.Pipe()
		go room.ServeConn(namedConn{remote, name})
		discard(welcome(t, local, name, i+1), nil)
	}
	local, remote := net.Pipe()
	defer local.Close()
	done := make(chan error, 1)
	go func() { done <- room.ServeConn(namedConn{remote, "[2001:db8:1:2:ffff::1]:1"}) }()
	c := chattest.NewClient(t, local, "")
	c.Expect("* too many connections from your address (max 16)")
	assert.ErrorIs(t, <-done, chatroom.ErrTooManyFromHost)

	local, remote = net.Pipe()
	go room.ServeConn(namedConn{remote, "[2001:db8:1:3::1]:1"})
	welcome(t, local, "[2001:db8:1:3::1]:1", chatroom.DefaultMaxPerHost+1)

	// With WithHostPrefix(32, 128), every IPv6 address is its own.
	room2 := pipeRoom(t, chatroom.WithJoinRate(0, 0), chatroom.WithHostPrefix(32, 128), chatroom.WithMaxPerHost(1))
	for i := range 3 {
		name := fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1)
		local, remote := net.Pipe()
		go room2.ServeConn(namedConn{remote, name})
		discard(welcome(t, local, name, i+1), nil)
	}
}
