package chatroom_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
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

// The room's life: Serve, Broadcast, Stats, Shutdown and Close, and the
// options it is made with.

func TestBroadcast(t *testing.T) {
	t.Parallel()
	room, addr := startRoom(t)
	a, b := dialPair(t, addr)

	require.NoError(t, room.Broadcast("maintenance at noon"))
	a.Expect(ts + " * maintenance at noon")
	b.Expect(ts + " * maintenance at noon")

	require.NoError(t, room.Broadcast("two\nlines\x1b"))
	a.Expect(ts + " * twolines")

	require.NoError(t, room.Shutdown(context.Background()))
	assert.ErrorIs(t, room.Broadcast("too late"), chatroom.ErrRoomClosed)
}

func TestShutdown(t *testing.T) {
	// Not parallel: it checks that nothing listens on the room's port
	// afterwards, and another test's listener could take the port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom(chatroom.WithClock(fixedClock))
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	addr := ln.Addr().String()
	a, b := dialPair(t, addr)

	require.NoError(t, room.Shutdown(context.Background()))
	for _, c := range []*client{a, b} {
		c.Expect("* server shutting down")
		c.ExpectClosed()
	}
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "the listener is closed")

	// The room stays closed.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	assert.ErrorIs(t, room.Serve(ln2), chatroom.ErrRoomClosed)
	_, err = ln2.Accept()
	assert.ErrorIs(t, err, net.ErrClosed, "Serve closes the listener it is given")
	local, remote := net.Pipe()
	defer local.Close()
	assert.ErrorIs(t, room.ServeConn(remote), chatroom.ErrRoomClosed)
	assert.NoError(t, room.Shutdown(context.Background()), "a second Shutdown")
	assert.NoError(t, room.Close(), "Close after Shutdown")
	s := room.Stats()
	assert.Equal(t, 0, s.Clients)
	assert.Equal(t, uint64(2), s.Left)
}

// TestShutdownContextExpires shuts a room down while a client never reads
// and writes have no timeout: Shutdown gives up when its context ends,
// closes the client, and still returns only once every goroutine is gone
// (which goleak checks at the end of the package).
// TestShutdownContextExpires: a client that takes nothing holds Shutdown
// until its context ends, exactly, and no longer; then it is closed, and
// the healthy client got its goodbye before that.
func TestShutdownContextExpires(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		room := pipeRoom(t, chatroom.WithWriteTimeout(0))
		ok, _ := pipeClient(t, room, "reader", 1)
		local, remote := net.Pipe()
		defer local.Close()
		served := make(chan error, 1)
		go func() { served <- room.ServeConn(namedConn{remote, "stuck"}) }()
		ok.Expect(ts + " * stuck joined")

		shutdownDone := make(chan struct{})
		go func() {
			defer close(shutdownDone)
			ok.Expect("* server shutting down")
			ok.ExpectClosed()
		}()
		const grace = time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		start := time.Now()
		err := room.Shutdown(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, grace, time.Since(start))
		assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
		<-shutdownDone
	})
}

func TestCloseIsImmediate(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	a := dial(t, ln.Addr().String(), 1)
	require.NoError(t, room.Close())
	a.ExpectClosed()
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
}

// TestShutdownRacesJoinsAndMessages shuts a room down while clients keep
// arriving and talking: Shutdown returns cleanly, every client that got in
// is told the server is shutting down as its last line, and nothing is
// left running (goleak).
func TestShutdownRacesJoinsAndMessages(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	addr := ln.Addr().String()

	const workers = 16
	var admitted, toldShutdown, otherEnd sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := net.DialTimeout("tcp", addr, waitLimit)
				if err != nil {
					return // the listener is closed
				}
				id := fmt.Sprintf("%d/%d", w, i)
				conn.SetDeadline(time.Now().Add(waitLimit))
				in := bufio.NewReader(conn)
				if line, err := in.ReadString('\n'); err != nil || !strings.HasPrefix(line, "* welcome") {
					conn.Close()
					continue
				}
				admitted.Store(id, true)
				go func() { // talk while reading
					for j := range 20 {
						if _, err := fmt.Fprintf(conn, "%s says %d\n", id, j); err != nil {
							return
						}
					}
				}()
				var last string
				for {
					line, err := in.ReadString('\n')
					if err != nil {
						break
					}
					last = line
				}
				conn.Close()
				if last == "* server shutting down\n" {
					toldShutdown.Store(id, true)
				} else {
					otherEnd.Store(id, last)
				}
				// Only shutdown ends a connection here: keep the clients
				// in the room until then.
				return
			}
		}()
	}
	eventually(t, func() bool { return room.Stats().Joined >= workers }, "every worker got in")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	require.NoError(t, room.Shutdown(ctx))
	close(stop)
	wg.Wait()
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)

	count := func(m *sync.Map) (n int) {
		m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	otherEnd.Range(func(id, last any) bool {
		t.Errorf("client %v ended with %q, not the shutdown line", id, last)
		return true
	})
	assert.Equal(t, count(&admitted), count(&toldShutdown))
	assert.Equal(t, uint64(count(&admitted)), room.Stats().Joined)
}

func TestTwoListenersOneRoom(t *testing.T) {
	t.Parallel()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	unix, err := net.Listen("unix", filepath.Join(t.TempDir(), "room.sock"))
	require.NoError(t, err)
	room := serveOn(t, tcp)
	served := make(chan error, 1)
	go func() { served <- room.Serve(unix) }()

	a := dial(t, tcp.Addr().String(), 1)
	conn, err := net.Dial("unix", unix.Addr().String())
	require.NoError(t, err)
	b := welcome(t, conn, conn.LocalAddr().String(), 2)
	a.Expect(ts+" * %s joined", b)
	b.Send("across listeners\n")
	a.Expect(ts+" %s say: across listeners", b)

	require.NoError(t, room.Close())
	assert.ErrorIs(t, <-served, chatroom.ErrRoomClosed)
}

func TestServeReturnsAcceptErrors(t *testing.T) {
	t.Parallel()
	errPermanent := errors.New("listener broke")
	ln := &flakyListener{
		errs:   []error{tempErr{}, tempErr{}, tempErr{}, errPermanent},
		closed: make(chan struct{}),
	}
	room := chatroom.NewRoom()
	defer room.Close()
	err := room.Serve(ln)
	assert.ErrorIs(t, err, errPermanent)
	assert.NotErrorIs(t, err, chatroom.ErrRoomClosed)
	assert.Equal(t, 4, ln.calls, "three temporary errors retried")
	select {
	case <-ln.closed:
	default:
		t.Error("Serve did not close its listener")
	}
}

// flakyListener fails Accept with errs, one per call, then blocks until
// closed.
type flakyListener struct {
	mu     sync.Mutex
	errs   []error
	calls  int
	closed chan struct{}
	once   sync.Once
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	l.calls++
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	<-l.closed
	return nil, net.ErrClosed
}

func (l *flakyListener) Close() error { l.once.Do(func() { close(l.closed) }); return nil }

func (l *flakyListener) Addr() net.Addr { return nameAddr("flaky") }

type tempErr struct{}

func (tempErr) Error() string { return "temporary accept failure" }

func (tempErr) Timeout() bool { return false }

func (tempErr) Temporary() bool { return true }

// TestStats checks every counter after a scenario whose numbers are known.
func TestStats(t *testing.T) {
	t.Parallel()
	room, addr := startRoom(t, chatroom.WithMaxClients(3))
	a, b := dialPair(t, addr)
	c := dial(t, addr, 3)
	a.Expect(ts+" * %s joined", c)
	b.Expect(ts+" * %s joined", c)

	conn, err := net.Dial("tcp", addr) // refused: full
	require.NoError(t, err)
	chattest.NewClient(t, conn, "").Expect("* room is full (3 clients)")

	a.Send("one\n")
	b.Expect(ts+" %s say: one", a)
	c.Expect(ts+" %s say: one", a)
	require.NoError(t, room.Broadcast("notice"))
	for _, x := range []*client{a, b, c} {
		x.Expect(ts + " * notice")
	}
	c.Send("exit\n")
	c.Expect("* bye")
	a.Expect(ts+" * %s left", c)
	b.Expect(ts+" * %s left", c)

	// Lines written: 3 welcomes, the refusal, 3 joined notices, 2
	// relayed, 3 notices, a bye and 2 left notices.
	want := chatroom.Stats{
		Clients: 2, Joined: 3, Left: 1, Refused: 1,
		Messages: 2, Delivered: 15, Rooms: 1, Peak: 3,
	}
	eventually(t, func() bool { return room.Stats() == want }, "stats settle")
	assert.Equal(t, want, room.Stats())
}

func TestInvalidOptionsPanicNamingTheOption(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opt  chatroom.Option
		name string
	}{
		{chatroom.WithBufferSize(0), "WithBufferSize"},
		{chatroom.WithBufferSize(-1), "WithBufferSize"},
		{chatroom.WithMaxClients(-1), "WithMaxClients"},
		{chatroom.WithIdleTimeout(-time.Second), "WithIdleTimeout"},
		{chatroom.WithWriteTimeout(-time.Second), "WithWriteTimeout"},
		{chatroom.WithOutboxSize(0), "WithOutboxSize"},
		{chatroom.WithLogger(nil), "WithLogger"},
		{chatroom.WithClock(nil), "WithClock"},
		{chatroom.WithMaxPerHost(-1), "WithMaxPerHost"},
		{chatroom.WithJoinRate(-1, 1), "WithJoinRate"},
		{chatroom.WithJoinRate(1, 0), "WithJoinRate"},
		{chatroom.WithJoinRate(0, 1), "WithJoinRate"},
		{chatroom.WithJoinRate(math.Inf(1), 1), "WithJoinRate"},
		{chatroom.WithHistory(-1), "WithHistory"},
		{chatroom.WithRateLimit(-1, 5), "WithRateLimit"},
		{chatroom.WithRateLimit(5, 0), "WithRateLimit"},
		{chatroom.WithRateLimit(0, 5), "WithRateLimit"},
		{chatroom.WithRateLimit(math.NaN(), 5), "WithRateLimit"},
		{chatroom.WithAuth(nil), "WithAuth"},
		{chatroom.WithFilter(nil), "WithFilter"},
		{chatroom.WithEvents(nil), "WithEvents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				msg := fmt.Sprint(recover())
				assert.Contains(t, msg, "chatroom: "+tt.name)
			}()
			chatroom.NewRoom(tt.opt)
			t.Error("NewRoom did not panic")
		})
	}
}
