package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/coder/websocket"
)

// The three protocols the load tool speaks. Each is a few lines of framing,
// written here rather than taken from a client library: the tool must
// control every byte and allocate nothing per message, so that what it
// measures is the server, and a library's reconnects, pings and buffering
// would hide exactly the behaviour under test.

// subject is the Redis channel and NATS subject every client uses.
const subject = "room"

// A protocol connects clients to one kind of server.
type protocol interface {
	name() string
	// join connects a receiving client and returns once the server will
	// deliver to it.
	join(addr string) (client, error)
	// publisher returns the connection that self sends on: self, where
	// the protocol lets one connection both send and receive, or a second
	// connection for Redis, whose subscribers cannot publish.
	publisher(addr string, self client) (client, error)
	// selfDelivery reports whether a sender receives its own messages:
	// Redis delivers to every subscriber; the room never echoes, and NATS
	// is told not to (echo off).
	selfDelivery() bool
}

// client is one connection. next returns the payload of the next message,
// valid until the following call, skipping anything else; publish buffers a
// message until flush. One goroutine may call next while another publishes.
type client interface {
	next() ([]byte, error)
	publish(payload []byte) error
	flush() error
	conn() net.Conn
}

func dial(addr string) (net.Conn, *bufio.Reader, *bufio.Writer, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, nil, err
	}
	return c, bufio.NewReaderSize(c, 32<<10), bufio.NewWriterSize(c, 32<<10), nil
}

// ---- the room's own line protocol ----

// roomProto speaks the room's protocol; label names the build under test
// ("room", or "baseline" for an older build beside it).
type roomProto struct{ label string }

func (p roomProto) name() string     { return p.label }
func (roomProto) selfDelivery() bool { return false }

type roomConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func (rc *roomConn) conn() net.Conn { return rc.c }

func (roomProto) join(addr string) (client, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("room: no welcome: %w", err)
	}
	if !bytes.HasPrefix(line, []byte("* welcome ")) {
		c.Close()
		return nil, fmt.Errorf("room: refused: %q", line)
	}
	return &roomConn{c, r, w}, nil
}

func (roomProto) publisher(_ string, self client) (client, error) { return self, nil }

var say = []byte(" say: ")

// next returns the text of the next chat line, skipping notices.
func (rc *roomConn) next() ([]byte, error) {
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if i := bytes.Index(line, say); i >= 0 {
			return line[i+len(say) : len(line)-1], nil
		}
	}
}

func (rc *roomConn) publish(payload []byte) error {
	rc.w.Write(payload)
	return rc.w.WriteByte('\n')
}

func (rc *roomConn) flush() error { return rc.w.Flush() }

// ---- the room's protocol over a WebSocket, as a browser speaks it ----

// roomWSProto speaks the room's protocol over the demo's WebSocket at /ws:
// the same lines, in text messages, one message per flush.
type roomWSProto struct{}

func (roomWSProto) name() string       { return "room-ws" }
func (roomWSProto) selfDelivery() bool { return false }

func (roomWSProto) join(addr string) (client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, err
	}
	c := websocket.NetConn(context.Background(), ws, websocket.MessageText)
	r, w := bufio.NewReaderSize(c, 32<<10), bufio.NewWriterSize(c, 32<<10)
	line, err := r.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(line, []byte("* welcome ")) {
		c.Close()
		return nil, fmt.Errorf("room-ws: no welcome: %q, %v", line, err)
	}
	return &roomConn{c, r, w}, nil
}

func (roomWSProto) publisher(_ string, self client) (client, error) { return self, nil }

// ---- Redis pub/sub (RESP) ----

type redisProto struct{}

func (redisProto) name() string       { return "redis" }
func (redisProto) selfDelivery() bool { return true }

type redisConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	head []byte   // the fixed start of a PUBLISH command
	buf  []byte   // the message being read; the reader's alone
	num  [20]byte // scratch for a length being written; the publisher's alone
}

func (rc *redisConn) conn() net.Conn { return rc.c }

func (redisProto) join(addr string) (client, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	rc := &redisConn{c: c, r: r, w: w}
	fmt.Fprintf(w, "*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n", len(subject), subject)
	if err := w.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	// The confirmation: *3, "subscribe", the channel, :1.
	kind, err := rc.readArray()
	if err != nil || kind != "subscribe" {
		c.Close()
		return nil, fmt.Errorf("redis: subscribe: %q %v", kind, err)
	}
	return rc, nil
}

func (redisProto) publisher(addr string, _ client) (client, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	rc := &redisConn{c: c, r: r, w: w,
		head: fmt.Appendf(nil, "*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%s\r\n", len(subject), subject)}
	go rc.drainReplies()
	return rc, nil
}

// drainReplies reads the ":<receivers>" reply to each PUBLISH.
func (rc *redisConn) drainReplies() {
	for {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return
		}
		if len(line) > 0 && line[0] == '-' {
			panic(fmt.Sprintf("redis: PUBLISH failed: %s", line))
		}
	}
}

func (rc *redisConn) publish(payload []byte) error {
	rc.w.Write(rc.head)
	rc.w.WriteByte('$')
	rc.w.Write(strconv.AppendInt(rc.num[:0], int64(len(payload)), 10))
	rc.w.WriteString("\r\n")
	rc.w.Write(payload)
	_, err := rc.w.WriteString("\r\n")
	return err
}

func (rc *redisConn) flush() error { return rc.w.Flush() }

// next returns the payload of the next "message" push.
func (rc *redisConn) next() ([]byte, error) {
	for {
		kind, err := rc.readArray()
		if err != nil {
			return nil, err
		}
		if kind == "message" {
			return rc.buf, nil
		}
	}
}

// readArray reads one pushed array and returns its first element; for a
// message, rc.buf holds the payload after it.
func (rc *redisConn) readArray() (string, error) {
	n, err := rc.readHeader('*')
	if err != nil {
		return "", err
	}
	var kind string
	for i := range n {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		switch line[0] {
		case ':':
			continue
		case '$':
			size, err := strconv.Atoi(string(trimCRLF(line[1:])))
			if err != nil {
				return "", err
			}
			if cap(rc.buf) < size+2 {
				rc.buf = make([]byte, size+2)
			}
			rc.buf = rc.buf[:size+2]
			if _, err := io.ReadFull(rc.r, rc.buf); err != nil {
				return "", err
			}
			rc.buf = rc.buf[:size]
			if i == 0 {
				if bytes.Equal(rc.buf, []byte("message")) {
					kind = "message" // a constant: no allocation per message
				} else {
					kind = string(rc.buf)
				}
			}
		default:
			return "", fmt.Errorf("redis: unexpected %q", line)
		}
	}
	return kind, nil
}

func (rc *redisConn) readHeader(want byte) (int, error) {
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || line[0] != want {
		return 0, fmt.Errorf("redis: unexpected %q", line)
	}
	return strconv.Atoi(string(trimCRLF(line[1:])))
}

// ---- NATS ----

type natsProto struct{}

func (natsProto) name() string       { return "nats" }
func (natsProto) selfDelivery() bool { return false }

type natsConn struct {
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	buf  []byte   // the message being read; the reader's alone
	num  [20]byte // scratch for a length being written; the publisher's alone
	head []byte
}

func (nc *natsConn) conn() net.Conn { return nc.c }

// connect says CONNECT (echo off, so a publisher never hears itself),
// subscribes if sub, and waits for the PONG that proves the server
// has processed both.
func (natsProto) connect(addr string, sub bool) (*natsConn, error) {
	c, r, w, err := dial(addr)
	if err != nil {
		return nil, err
	}
	nc := &natsConn{c: c, r: r, w: w, head: []byte("PUB " + subject + " ")}
	if line, err := r.ReadSlice('\n'); err != nil || !bytes.HasPrefix(line, []byte("INFO ")) {
		c.Close()
		return nil, fmt.Errorf("nats: no INFO: %q %v", line, err)
	}
	w.WriteString(`CONNECT {"verbose":false,"pedantic":false,"echo":false,"protocol":1}` + "\r\n")
	if sub {
		w.WriteString("SUB " + subject + " 1\r\n")
	}
	w.WriteString("PING\r\n")
	if err := w.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if bytes.HasPrefix(line, []byte("PONG")) {
			return nc, nil
		}
		if bytes.HasPrefix(line, []byte("-ERR")) {
			c.Close()
			return nil, fmt.Errorf("nats: %s", trimCRLF(line))
		}
	}
}

func (p natsProto) join(addr string) (client, error) { return p.connect(addr, true) }

func (natsProto) publisher(_ string, self client) (client, error) { return self, nil }

func (nc *natsConn) publish(payload []byte) error {
	nc.w.Write(nc.head)
	nc.w.Write(strconv.AppendInt(nc.num[:0], int64(len(payload)), 10))
	nc.w.WriteString("\r\n")
	nc.w.Write(payload)
	_, err := nc.w.WriteString("\r\n")
	return err
}

func (nc *natsConn) flush() error { return nc.w.Flush() }

// next returns the payload of the next MSG, answering PINGs.
func (nc *natsConn) next() ([]byte, error) {
	for {
		line, err := nc.r.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		switch {
		case bytes.HasPrefix(line, []byte("MSG ")):
			// MSG <subject> <sid> [reply-to] <size>
			line = trimCRLF(line)
			size, err := strconv.Atoi(string(line[bytes.LastIndexByte(line, ' ')+1:]))
			if err != nil {
				return nil, err
			}
			if cap(nc.buf) < size+2 {
				nc.buf = make([]byte, size+2)
			}
			nc.buf = nc.buf[:size+2]
			if _, err := io.ReadFull(nc.r, nc.buf); err != nil {
				return nil, err
			}
			return nc.buf[:size], nil
		case bytes.HasPrefix(line, []byte("PING")):
			// Written straight to the socket, beside the publisher's
			// buffered writes: a PONG could split a PUB in two. The server
			// pings every two minutes, longer than any run here.
			nc.c.Write([]byte("PONG\r\n"))
		case bytes.HasPrefix(line, []byte("-ERR")):
			return nil, errors.New("nats: " + string(trimCRLF(line)))
		}
	}
}

func trimCRLF(b []byte) []byte {
	return bytes.TrimRight(b, "\r\n")
}
