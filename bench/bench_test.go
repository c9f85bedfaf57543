package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/chatroom-go/chatroom"
)

// TestMain builds the demo program once, as chatbench does, for the tests
// that run the room as a server process.
func TestMain(m *testing.M) {
	bin, cleanup, err := buildRoom()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	paths.room = bin
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		cleanup()
		os.Exit(code)
	}))
}

var paths = serverPaths{redis: findBinary("redis-server", ""), nats: findBinary("nats-server", "")}

// startPeer starts a server of kind as a process, or skips the test with
// the reason if it is not installed.
//
// startServer picks the server's ports by listening on port 0 and closing
// the listener (freePort), so that another process, or its own second pick
// for room-ws, can take a port before the server binds it: it then fails
// with "address already in use". startPeer tries new ports, at most three
// times.
func startPeer(t *testing.T, kind string) *server {
	t.Helper()
	srv, err := startServer(kind, paths, 1024)
	for range 2 {
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), "address already in use") {
			break
		}
		t.Logf("starting %s again: %v", kind, err)
		srv, err = startServer(kind, paths, 1024)
	}
	if errors.Is(err, errMissing) {
		t.Skipf("skipping: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(srv.stop)
	return srv
}

// inProcessRoom serves a room in the test process and returns its address.
func inProcessRoom(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	room := chatroom.NewRoom()
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	t.Cleanup(func() {
		room.Close()
		<-served
	})
	return ln.Addr().String()
}

// TestParsersAgainstRealServers publishes known payloads through each real
// server and checks that every receiver's parser returns exactly them, in
// order, with nothing else, and that a sender hears itself only where the
// protocol says it does.
func TestParsersAgainstRealServers(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"room", "redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			var addr string
			if kind == "room" {
				addr = inProcessRoom(t)
			} else {
				addr = startPeer(t, kind).addr
			}
			p := protocolFor(kind)
			var clients []client
			for range 3 {
				c, err := p.join(addr)
				require.NoError(t, err)
				t.Cleanup(func() { c.conn().Close() })
				clients = append(clients, c)
			}
			pub, err := p.publisher(addr, clients[0])
			require.NoError(t, err)
			if pub != clients[0] {
				t.Cleanup(func() { pub.conn().Close() })
			}

			payloads := [][]byte{
				[]byte("first"),
				bytes.Repeat([]byte("x"), 200),
				[]byte("with spaces and $ * : - signs"),
				encode(nil, 7, 42, 64),
			}
			for _, pl := range payloads {
				require.NoError(t, pub.publish(pl))
			}
			require.NoError(t, pub.flush())

			receivers := clients[1:]
			if p.selfDelivery() {
				receivers = clients
			}
			for i, c := range receivers {
				c.conn().SetReadDeadline(time.Now().Add(10 * time.Second))
				for _, want := range payloads {
					got, err := c.next()
					require.NoError(t, err, "receiver %d", i)
					assert.Equal(t, string(want), string(got), "receiver %d", i)
				}
			}
			if !p.selfDelivery() {
				// The sender hears nothing of its own: a short read times out.
				clients[0].conn().SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				_, err := clients[0].next()
				assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
			}
			s, seq, _, ok := decode(payloads[3])
			assert.True(t, ok)
			assert.Equal(t, [2]int{7, 42}, [2]int{s, seq})
		})
	}
}

// TestFanoutCountsEveryDelivery runs a small fan-out against each server
// process: nothing lost or repeated, and the server's CPU time read.
func TestFanoutCountsEveryDelivery(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"room", "redis", "nats"} {
		t.Run(kind, func(t *testing.T) {
			srv := startPeer(t, kind)
			spec := fanoutSpec{clients: 6, senders: 2, messages: 300, size: 64, window: 16}
			res, err := runFanout(protocolFor(kind), srv, spec, &progress{w: io.Discard, quiet: true})
			require.NoError(t, err)
			per := int64(spec.clients - 1)
			if kind == "redis" {
				per = int64(spec.clients) // subscribers include the sender's own
			}
			assert.Equal(t, int64(spec.senders*spec.messages)*per, res.deliveries)
			assert.Zero(t, res.lost)
			assert.Zero(t, res.dups)
			assert.Positive(t, res.latency.n)
			assert.Positive(t, res.writeCalls, "the server's write system calls, from /proc")
		})
	}
}

func TestIdleMeasuresMemory(t *testing.T) {
	t.Parallel()
	srv := startPeer(t, "room")
	res, err := runIdle(roomProto{label: "room"}, srv, 200, 0, 100*time.Millisecond, &progress{w: io.Discard, quiet: true})
	require.NoError(t, err)
	assert.Positive(t, res.rssPerConn)
	assert.Positive(t, res.rssLatePerConn)
}

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tt.q)
		assert.InDelta(t, float64(tt.want), float64(got), float64(tt.want)/16, "q%v", tt.q)
	}
	assert.Equal(t, time.Millisecond, h.max)
}

func TestRampWritesCSVAndPlot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rs := []result{
		{server: "room", clients: 10, throughput: 1e6, deliveries: 1000, serverCPU: time.Millisecond},
		{server: "room", clients: 100, throughput: 2e6, deliveries: 1000, serverCPU: time.Millisecond, writeCalls: 100},
		{server: "redis", clients: 10, throughput: 5e5, deliveries: 1000, serverCPU: 2 * time.Millisecond},
		{server: "redis", clients: 100, throughput: 7e5, deliveries: 1000, serverCPU: 2 * time.Millisecond},
	}
	csvPath, pngPath := filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.png")
	require.NoError(t, writeCSV(csvPath, rs))
	require.NoError(t, plotRamp(pngPath, rs))
	b, err := os.ReadFile(csvPath)
	require.NoError(t, err)
	assert.Contains(t, string(b), "room,100,2000000,1000,10.0,")
	png, err := os.ReadFile(pngPath)
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "a PNG")
}

func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"-size", "10", "fanout"},
		{"-senders", "0", "fanout"},
		{"-servers", "mysql", "fanout"},
		{"-ramp", "10,x", "ramp"},
		{"nonsense"},
		{},
	} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			assert.Error(t, run(args, io.Discard, io.Discard))
		})
	}
}

// TestFanoutOverWebSocket runs a small fan-out through the demo's
// WebSocket, as browsers connect, with exact delivery counts.
func TestFanoutOverWebSocket(t *testing.T) {
	t.Parallel()
	srv := startPeer(t, "room-ws")
	spec := fanoutSpec{clients: 10, senders: 2, messages: 50, size: 64, window: 16}
	res, err := runFanout(roomWSProto{}, srv, spec, &progress{w: io.Discard, quiet: true})
	require.NoError(t, err)
	assert.Equal(t, int64(2*50*9), res.deliveries)
	assert.Zero(t, res.lost)
	assert.Zero(t, res.dups)
}
