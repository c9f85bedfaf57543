package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// messageConn is a WebSocket as a net.Conn whose lines are WebSocket
// messages, for the JSON face: what the hub writes is cut at each "\n" and
// every line goes out as one text message (without its "\n"), and every
// text message that comes in reads as one line. Unlike websocket.NetConn,
// which streams bytes across messages, it keeps each message whole. In
// stream mode, for the text protocol, it reads the bytes of the messages
// one after the other, as a TCP stream's, and writes what the hub writes
// at once as one message.
//
// Reading: a message reads as its bytes, with any "\r" or "\n" in it made a
// space (in JSON they can only be blanks between tokens), then "\n". A
// binary message closes the connection with StatusUnsupportedData; a
// message longer than the read limit (setReadLimit) with
// StatusMessageTooBig.
//
// Pacing: each message that comes in takes a token of the connection's
// (WithMessageRate), as a line takes one of the hub's flood control: a
// client that sends messages faster is read more slowly, and what its
// messages cost the server to take apart is bounded, however small they
// are. A stream of one-byte messages (which make no line the hub would
// count) is paced like a stream of lines.
//
// Deadlines work as websocket.NetConn's: one that passes while nothing
// reads (writes) makes the next Read (Write) fail; one that passes during
// a Read (Write) closes the connection. Either way the error wraps
// os.ErrDeadlineExceeded, so that the hub tells an idle client from a
// disconnected one and a slow one from a failed write.
//
// The hub reads from one goroutine and writes from one at a time, which is
// all messageConn supports; Close and the deadlines may come from any.
type messageConn struct {
	ws     *websocket.Conn
	raw    *corkConn // the connection under ws, which gathers a Write's messages into one system call; nil in tests
	stream bool      // the text protocol: messages' bytes are a stream, not one line each

	// The reader's own, under rmu.
	rmu       sync.Mutex
	msg       io.Reader // the message being read; nil between messages
	eol       bool      // the message is read: its "\n" is owed
	readCtx   context.Context
	readStop  context.CancelFunc
	readTimer *time.Timer
	readLate  atomic.Bool // the read deadline passed while nothing read
	readCut   atomic.Bool // ... or during a read, which it ended
	rate      float64     // messages a second read, after burst; 0: no limit
	burst     float64
	tokens    float64 // as of tokensAt
	tokensAt  time.Time

	// The writer's own, under wmu.
	wmu        sync.Mutex
	part       []byte // the start of a line a Write did not end
	writeCtx   context.Context
	writeStop  context.CancelFunc
	writeTimer *time.Timer
	writeLate  atomic.Bool
	writeCut   atomic.Bool
}

// newMessageConn wraps ws, reading at most rate messages a second after
// burst (0 and 0: no limit), its messages a stream of bytes if stream; ctx
// bounds the connection's life (the request's).
func newMessageConn(ctx context.Context, ws *websocket.Conn, raw *corkConn, stream bool, rate float64, burst int) *messageConn {
	c := &messageConn{ws: ws, raw: raw, stream: stream, rate: rate, burst: float64(burst), tokens: float64(burst)}
	c.readCtx, c.readStop = context.WithCancel(ctx)
	c.writeCtx, c.writeStop = context.WithCancel(ctx)
	c.readTimer = stoppedTimer(func() { expire(&c.rmu, &c.readLate, &c.readCut, c.readStop) })
	c.writeTimer = stoppedTimer(func() { expire(&c.wmu, &c.writeLate, &c.writeCut, c.writeStop) })
	return c
}

// stoppedTimer returns a timer that calls f when reset and run out.
func stoppedTimer(f func()) *time.Timer {
	t := time.AfterFunc(math.MaxInt64, f)
	t.Stop()
	return t
}

// expire is a deadline passing: with nobody holding mu, the next call
// fails (late); with a call in progress, it is ended (cut), which closes
// the connection.
func expire(mu *sync.Mutex, late, cut *atomic.Bool, stop context.CancelFunc) {
	if mu.TryLock() {
		late.Store(true)
		mu.Unlock()
		return
	}
	cut.Store(true)
	stop()
}

// setReadLimit bounds each message that comes in to n bytes.
func (c *messageConn) setReadLimit(n int) { c.ws.SetReadLimit(int64(n)) }

// errBinary is the error of a read that met a binary message.
var errBinary = errors.New("web: a binary message on a text protocol")

// Read reads the current message, or the next one, as a line (in stream
// mode, as the stream's next bytes).
func (c *messageConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.readLate.Load() {
		return 0, deadlineError("read")
	}
	for len(p) > 0 {
		if c.eol {
			c.eol = false
			p[0] = '\n'
			return 1, nil
		}
		if c.msg == nil {
			if err := c.pace(); err != nil {
				return 0, err
			}
			typ, r, err := c.ws.Reader(c.readCtx)
			if err != nil {
				return 0, c.readError(err)
			}
			if typ != websocket.MessageText {
				c.ws.Close(websocket.StatusUnsupportedData, "binary messages are not accepted")
				return 0, errBinary
			}
			c.msg = r
		}
		n, err := c.msg.Read(p)
		if !c.stream {
			blank(p[:n])
		}
		if err == io.EOF {
			c.msg = nil
			if c.stream {
				if n > 0 {
					return n, nil
				}
				continue // an empty message: the next one
			}
			c.eol = true
			if n < len(p) {
				p[n] = '\n'
				n++
				c.eol = false
			}
			return n, nil
		}
		if err != nil {
			return n, c.readError(err)
		}
		if n > 0 {
			return n, nil
		}
	}
	return 0, nil
}

// pace takes a token for the next message, waiting for one if there is
// none, until the read deadline or the connection's end.
func (c *messageConn) pace() error {
	if c.rate <= 0 {
		return nil
	}
	now := time.Now()
	if !c.tokensAt.IsZero() {
		c.tokens = min(c.burst, c.tokens+now.Sub(c.tokensAt).Seconds()*c.rate)
	}
	c.tokensAt = now
	if c.tokens >= 1 {
		c.tokens--
		return nil
	}
	wait := time.Duration((1 - c.tokens) / c.rate * float64(time.Second))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		c.tokens, c.tokensAt = 0, time.Now() // the token it waited for is this message's
		return nil
	case <-c.readCtx.Done():
		if c.readCut.Load() {
			return deadlineError("read")
		}
		return io.EOF
	}
}

// blank makes every "\r" and "\n" in b a space.
func blank(b []byte) {
	for i, x := range b {
		if x == '\n' || x == '\r' {
			b[i] = ' '
		}
	}
}

// readError is the error a Read returns for err: the end of input for a
// normal close, a deadline for a read the deadline ended.
func (c *messageConn) readError(err error) error {
	switch {
	case c.readCut.Load():
		return deadlineError("read")
	case websocket.CloseStatus(err) == websocket.StatusNormalClosure, websocket.CloseStatus(err) == websocket.StatusGoingAway:
		return io.EOF
	}
	return err
}

// Write sends each line of p that ends in "\n" as one text message, and
// keeps the rest for the next Write to end; in stream mode, it sends p as
// one message, as it is. Whatever it sends goes to the socket in one
// system call, however many messages: the hub hands a writer a batch of
// lines at once.
func (c *messageConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeLate.Load() {
		return 0, deadlineError("write")
	}
	if c.raw != nil {
		c.raw.cork()
		n, err := c.write(p)
		if werr := c.raw.uncork(); err == nil && werr != nil {
			if errors.Is(werr, os.ErrDeadlineExceeded) {
				werr = deadlineError("write")
			}
			// What was gathered is lost with the connection: none of it
			// counts as written.
			return 0, werr
		}
		return n, err
	}
	return c.write(p)
}

// write is Write, with wmu held.
func (c *messageConn) write(p []byte) (int, error) {
	if c.stream {
		if err := c.ws.Write(c.writeCtx, websocket.MessageText, p); err != nil {
			if c.writeCut.Load() {
				err = deadlineError("write")
			}
			return 0, err
		}
		return len(p), nil
	}
	written := 0
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.part = append(c.part, p...)
			return written + len(p), nil
		}
		line := p[:i]
		if len(c.part) > 0 {
			c.part = append(c.part, line...)
			line = c.part
		}
		if len(line) > 0 && c.raw != nil {
			c.raw.frame(line)
		} else if len(line) > 0 {
			if err := c.ws.Write(c.writeCtx, websocket.MessageText, line); err != nil {
				if c.writeCut.Load() {
					err = deadlineError("write")
				}
				return written, err
			}
		}
		c.part = c.part[:0]
		written += i + 1
		p = p[i+1:]
	}
	return written, nil
}

// Close closes the connection at once, without the closing handshake,
// which could wait for the peer: the hub closes connections from its own
// goroutine, which must never wait. A client is told why it leaves in the
// last message before (the JSON face's "bye").
func (c *messageConn) Close() error {
	c.readTimer.Stop()
	c.writeTimer.Stop()
	c.readStop()
	c.writeStop()
	return c.ws.CloseNow()
}

// LocalAddr and RemoteAddr are placeholders: the Handler's Conn gives the
// client's address.
func (c *messageConn) LocalAddr() net.Addr  { return stringAddr("websocket") }
func (c *messageConn) RemoteAddr() net.Addr { return stringAddr("websocket") }

// SetDeadline sets both deadlines.
func (c *messageConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	c.SetWriteDeadline(t)
	return nil
}

// SetReadDeadline sets the read deadline; the zero time clears it.
func (c *messageConn) SetReadDeadline(t time.Time) error {
	c.readLate.Store(false)
	arm(c.readTimer, t)
	return nil
}

// SetWriteDeadline sets the write deadline; the zero time clears it.
func (c *messageConn) SetWriteDeadline(t time.Time) error {
	c.writeLate.Store(false)
	arm(c.writeTimer, t)
	if c.raw != nil {
		c.raw.SetWriteDeadline(t) // for what a Write gathered, written after ws is done with it
	}
	return nil
}

// corkConn is the connection under a server's WebSocket. While corked, what
// the WebSocket writes (coder/websocket flushes every message, and a pong
// or a close frame may come between them) is gathered; uncork writes it
// all in one system call. Uncorked, it writes through.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
}

// frame gathers payload as one text message, in one final, unmasked text
// frame, as a server sends it (RFC 6455, section 5.2): a message per line
// through coder/websocket's Write costs a lock with a context, a context
// watch and a flush each, which was half the server's CPU in a fan-out to
// JSON clients. Frames gathered here and what coder/websocket writes
// (control frames, each in one Write) never interleave: both go through
// c.mu. The WebSocket must not use compression (Handler accepts none). c
// must be corked.
func (c *corkConn) frame(payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	const finText = 0x81
	switch n := len(payload); {
	case n < 126:
		c.buf = append(c.buf, finText, byte(n))
	case n <= 0xFFFF:
		c.buf = append(c.buf, finText, 126, byte(n>>8), byte(n))
	default:
		c.buf = binary.BigEndian.AppendUint64(append(c.buf, finText, 127), uint64(n))
	}
	c.buf = append(c.buf, payload...)
}

// maxCorkBuffer is the largest gathering buffer a corkConn keeps between
// writes; a larger one, from a long batch, goes back to the heap.
const maxCorkBuffer = 64 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was gathered since cork, and writes through again.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > maxCorkBuffer {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}

// corkingWriter hands websocket.Accept the request's connection as a
// corkConn when it hijacks it.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("web: the ResponseWriter cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn}
	brw.Writer.Reset(w.conn) // empty: the response's headers are flushed before a hijack
	return w.conn, brw, nil
}

// arm sets timer to run out at t, or stops it for the zero time.
func arm(timer *time.Timer, t time.Time) {
	if t.IsZero() {
		timer.Stop()
		return
	}
	timer.Reset(max(time.Until(t), 1))
}

// deadlineError is the error of a read or write past its deadline.
func deadlineError(op string) error {
	return fmt.Errorf("web: websocket %s: %w", op, os.ErrDeadlineExceeded)
}
