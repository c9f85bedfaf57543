package chatroom_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
)

// TestNoticeStormIsCounted: 2 000 connections open and close at once (a
// storm: a flood of connections from many addresses, or loopback), and
// 100 arrive to stay. The members are told of 20 arrivals one by one, and
// of the rest as counts once a second; those that came and went saying
// nothing are told neither way. A member that reads nothing meanwhile is
// not cut off, and a line said in the storm reaches everyone once.
func TestNoticeStormIsCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t, chatroom.WithJoinRate(0, 0), chatroom.WithMaxPerHost(0))
		watcher, _ := pipeClient(t, room, "watcher", 1)
		watcher.Patience = time.Minute
		paused, _ := pipeClient(t, room, "paused", 2) // reads nothing until the storm is over
		paused.Patience = time.Minute
		talker, _ := pipeClient(t, room, "talker", 3)
		discard(talker, nil)
		watcher.Expect(ts + " * paused joined")
		watcher.Expect(ts + " * talker joined")

		const brief, stayers = 2000, 100
		for i := range brief {
			local, remote := net.Pipe()
			done := make(chan error, 1)
			go func() { done <- room.ServeConn(namedConn{remote, fmt.Sprintf("brief%d", i)}) }()
			local.Close() // gone at once, having said nothing
			<-done
		}
		for i := range stayers {
			local, remote := net.Pipe()
			go room.ServeConn(namedConn{remote, fmt.Sprintf("stayer%d", i)})
			discard(welcome(t, local, fmt.Sprintf("stayer%d", i), 4+i), nil)
		}
		talker.Send("in the storm\n")
		time.Sleep(3 * time.Second) // past briefStay and a tick

		var told, joined, left, lines int
		heard := false
		for joined < stayers {
			line := watcher.Line()
			lines++
			var j, l int
			if _, err := fmt.Sscanf(line, ts+" * %d joined, %d left", &j, &l); err == nil { // a summary
				joined += j
				left += l
				continue
			}
			switch {
			case line == ts+" talker say: in the storm":
				heard = true
			case strings.HasSuffix(line, " joined"):
				told++
			case strings.HasSuffix(line, " left"):
				left++
			}
		}
		t.Logf("watcher: %d lines for %d arrivals: %d told one by one, %d counted; %d departures told or counted", lines, brief+stayers, told, joined, left)
		assert.True(t, heard, "the line said in the storm")
		assert.LessOrEqual(t, told, 20, "more than 20 arrivals told one by one in a second")
		assert.Equal(t, stayers, joined, "the stayers counted")
		assert.Equal(t, told, left, "whoever was told of an arrival is told of its departure; the brief others, neither")
		assert.LessOrEqual(t, lines, told+left+3, "the storm cost the members a line per arrival")

		// The paused member was not cut off, and hears the line said in the
		// storm.
		paused.WaitFor(ts + " talker say: in the storm")
		assert.Zero(t, room.Stats().Evicted)
		require.Len(t, room.Clients(), stayers+3)
	})
}

// TestSpeakerIsToldToHaveJoined: in a storm, a newcomer whose arrival was
// not told yet is told one by one the moment it speaks, before its line.
func TestSpeakerIsToldToHaveJoined(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t)
		watcher, _ := pipeClient(t, room, "watcher", 1)
		for i := range 30 { // past the 20 told a second
			local, remote := net.Pipe()
			go room.ServeConn(namedConn{remote, fmt.Sprintf("quiet%d", i)})
			discard(welcome(t, local, fmt.Sprintf("quiet%d", i), 2+i), nil)
		}
		local, remote := net.Pipe()
		go room.ServeConn(namedConn{remote, "speaker"})
		speaker := welcome(t, local, "speaker", 32)
		discard(speaker, nil)
		speaker.Send("hello\n")
		for i := range 19 { // the watcher's own arrival was the 20th
			watcher.Expect(ts+" * quiet%d joined", i)
		}
		watcher.Expect(ts + " * speaker joined")
		watcher.Expect(ts + " speaker say: hello")
		time.Sleep(time.Second + time.Millisecond)
		watcher.Expect(ts + " * 11 joined, 0 left") // the others, counted
	})
}
