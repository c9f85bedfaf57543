package web

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom/internal/chattest"
)

// TestMessagesArePaced: a WebSocket's messages are read at its rate after
// its burst, however small they are: 1 000 messages at 20 a second after
// 50 take exactly (1000-50)/20 = 47.5 s; and a read deadline ends a wait
// for a token.
func TestMessagesArePaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := &messageConn{rate: 20, burst: 50, tokens: 50, readCtx: ctx}
		start := time.Now()
		for range 1000 {
			require.NoError(t, c.pace())
		}
		assert.Equal(t, 47500*time.Millisecond, time.Since(start))

		cancel() // the connection ends while a message waits for its token
		assert.Error(t, c.pace())
	})
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestABatchIsOneWrite: a Write of many lines sends each as its own
// message, all in one write to the socket, in both modes (coder/websocket
// flushes every message; the corkConn under it gathers them, and frames
// the JSON face's lines itself), and a client reads every message whole,
// whatever the form of its length.
func TestABatchIsOneWrite(t *testing.T) {
	t.Parallel()
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			t.Parallel()
			counted := make(chan *countingConn, 1)
			conns := make(chan *messageConn, 1)
			done := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cw := &corkingWriter{ResponseWriter: w}
				ws, err := websocket.Accept(cw, r, nil)
				if !assert.NoError(t, err) {
					return
				}
				cc := &countingConn{Conn: cw.conn.Conn}
				cw.conn.Conn = cc
				counted <- cc
				c := newMessageConn(context.Background(), ws, cw.conn, stream, 0, 0)
				conns <- c
				<-done
				c.Close()
			}))
			defer srv.Close()
			defer close(done)
			ctx, cancel := context.WithTimeout(context.Background(), chattest.WaitLimit)
			defer cancel()
			client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
			require.NoError(t, err)
			defer client.CloseNow()
			client.SetReadLimit(1 << 20)
			cc, c := <-counted, <-conns

			var batch bytes.Buffer
			for i := range 50 {
				fmt.Fprintf(&batch, "line %d\n", i)
			}
			// Lines past each of the frame header's length forms.
			for _, n := range []int{125, 126, 300, 65535, 65536, 70000} {
				fmt.Fprintf(&batch, "%s\n", strings.Repeat("x", n))
			}
			n, err := c.Write(batch.Bytes())
			require.NoError(t, err)
			assert.Equal(t, batch.Len(), n)
			assert.Equal(t, int64(1), cc.writes.Load(), "one write for the batch")

			want := []string{batch.String()} // stream: the batch as one message
			if !stream {
				want = strings.SplitAfter(strings.TrimSuffix(batch.String(), "\n"), "\n")
				for i := range want {
					want[i] = strings.TrimSuffix(want[i], "\n")
				}
			}
			for i, w := range want {
				_, got, err := client.Read(ctx)
				require.NoError(t, err, "message %d", i)
				assert.Equal(t, w, string(got))
			}
		})
	}
}
