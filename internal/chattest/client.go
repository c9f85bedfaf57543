package chattest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Client is a test's end of one connection to a room: it sends raw text,
// and reads the room's lines one at a time, each within its patience.
//
// By default Line reads the connection itself, in the calling goroutine.
// After Background, a goroutine of its own reads every line as it comes,
// so that the room never finds the client slow, and Line takes them from
// there. Either way one goroutine at a time may read, and one may write.
type Client struct {
	T        testing.TB    // the test it reports to
	Conn     net.Conn      // its connection to the room
	In       *bufio.Reader // what Line reads, unless in the background
	Name     string        // what the room calls the client, as far as the test knows
	Patience time.Duration // how long one read or write may wait; 0 means WaitLimit
	CRLF     bool          // the room ends its lines in "\r\n" (IRC's), not "\n": Line checks that each does, and takes off both

	lines   chan string  // in the background: the lines read, for Line
	readErr error        // in the background: why reading stopped; set before lines is closed
	dropped atomic.Int64 // in the background: lines dropped because lines was full
}

// backgroundLines is how many lines a client reading in the background
// holds for Line: more than any test sends, so that a line is only
// dropped (and counted in Dropped) in a flood of notices nobody waits for.
const backgroundLines = 1 << 16

// NewClient wraps conn, known to the room as name, and closes it when the
// test ends.
func NewClient(t testing.TB, conn net.Conn, name string) *Client {
	t.Helper()
	t.Cleanup(func() { conn.Close() })
	return &Client{T: t, Conn: conn, In: bufio.NewReader(conn), Name: name}
}

// Dial connects to the room at the TCP address addr within WaitLimit. The
// client's name is its local address, as the room calls a TCP client.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, WaitLimit)
	require.NoError(t, err)
	return NewClient(t, conn, conn.LocalAddr().String())
}

// String is the client's name, so that "%s" of a client is its name.
func (c *Client) String() string { return c.Name }

// wait is how long one read or write may wait: Patience, or WaitLimit.
func (c *Client) wait() time.Duration {
	if c.Patience > 0 {
		return c.Patience
	}
	return WaitLimit
}

// Send writes s to the room as it is, raw bytes included.
func (c *Client) Send(s string) {
	c.T.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(c.wait()))
	_, err := io.WriteString(c.Conn, s)
	require.NoError(c.T, err, "%s sending", c.Name)
}

// Sendf writes the formatted text to the room.
func (c *Client) Sendf(format string, args ...any) {
	c.T.Helper()
	c.Send(fmt.Sprintf(format, args...))
}

// Line returns the next line from the room, without its "\n" (its "\r\n"
// with CRLF). It stops the test if none comes within the client's
// patience, or the connection ends first. With CRLF, a line that ends in
// a bare "\n" fails the test, and is returned without it.
func (c *Client) Line() string {
	c.T.Helper()
	l := c.lineBy(time.Now().Add(c.wait()))
	if c.CRLF {
		if !strings.HasSuffix(l, "\r") {
			assert.Fail(c.T, `want the line to end in "\r\n"`, "%s got %q", c.Name, l)
		}
		l = strings.TrimSuffix(l, "\r")
	}
	return l
}

// lineBy reads the next line, without its "\n", by the deadline.
func (c *Client) lineBy(deadline time.Time) string {
	c.T.Helper()
	if c.lines != nil {
		timer := time.NewTimer(time.Until(deadline))
		defer timer.Stop()
		select {
		case l, ok := <-c.lines:
			if !ok {
				require.FailNow(c.T, fmt.Sprintf("%s: the connection ended while waiting for a line: %v", c.Name, c.readErr))
			}
			return l
		case <-timer.C:
			require.FailNow(c.T, fmt.Sprintf("%s: no line by the deadline (patience %v)", c.Name, c.wait()))
		}
	}
	c.Conn.SetReadDeadline(deadline)
	s, err := c.In.ReadString('\n')
	require.NoError(c.T, err, "%s reading a line; got %q so far", c.Name, s)
	return strings.TrimSuffix(s, "\n")
}

// Expect reads the next line and checks that it is exactly the formatted
// want (format itself when there are no args).
func (c *Client) Expect(format string, args ...any) {
	c.T.Helper()
	want := format
	if len(args) > 0 {
		want = fmt.Sprintf(format, args...)
	}
	assert.Equal(c.T, want, c.Line(), "%s's next line", c.Name)
}

// WaitFor reads lines until one that is exactly want, and returns the
// lines before it. Each line must come within the client's patience: the
// wait goes on while lines keep coming, as they do while the room works
// through a backlog, however long that takes on a busy machine.
func (c *Client) WaitFor(want string) (skipped []string) {
	c.T.Helper()
	for {
		l := c.Line()
		if l == want {
			return skipped
		}
		skipped = append(skipped, l)
	}
}

// WaitUntil reads lines until one that match accepts, and returns it;
// each line must come within the client's patience, as for WaitFor.
func (c *Client) WaitUntil(match func(line string) bool) string {
	c.T.Helper()
	for {
		if l := c.Line(); match(l) {
			return l
		}
	}
}

// WaitForPart reads lines until one that contains part, and returns it.
func (c *Client) WaitForPart(part string) string {
	c.T.Helper()
	return c.WaitUntil(func(l string) bool { return strings.Contains(l, part) })
}

// ExpectClosed checks that the room closes the connection with nothing
// more to read.
func (c *Client) ExpectClosed() {
	c.T.Helper()
	if c.lines != nil {
		timer := time.NewTimer(c.wait())
		defer timer.Stop()
		select {
		case l, ok := <-c.lines:
			if ok {
				assert.Fail(c.T, "want the connection closed", "%s got %q", c.Name, l)
				return
			}
			if !errors.Is(c.readErr, io.EOF) && !errors.Is(c.readErr, net.ErrClosed) && !IsReset(c.readErr) {
				assert.Fail(c.T, "want the connection closed", "%s: %v", c.Name, c.readErr)
			}
		case <-timer.C:
			assert.Fail(c.T, "want the connection closed", "%s: still open after %v", c.Name, c.wait())
		}
		return
	}
	c.Conn.SetReadDeadline(time.Now().Add(c.wait()))
	s, err := c.In.ReadString('\n')
	assert.Empty(c.T, s, "%s: want the connection closed", c.Name)
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !IsReset(err) {
		assert.Fail(c.T, "want the connection closed", "%s: %v", c.Name, err)
	}
}

// IsReset reports whether err is a connection's failure other than a
// timeout: what reading a connection the other end reset returns.
func IsReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// Discard reads and drops whatever comes to the client from now on, in a
// goroutine that ends with the connection, so that the room never finds
// it slow: a client the test does not read from.
func (c *Client) Discard() {
	c.Conn.SetReadDeadline(time.Time{}) // what a read left would stop it
	go io.Copy(io.Discard, c.In)
}

// Background reads every line from now on in a goroutine of its own, as
// fast as the room sends them, for Line and the waits to take; it ends
// with the connection. Lines nobody takes are held up to a bound, then
// dropped and counted (Dropped).
func (c *Client) Background() {
	c.Conn.SetReadDeadline(time.Time{})
	lines := make(chan string, backgroundLines)
	c.lines = lines
	go func() {
		defer close(lines)
		for {
			s, err := c.In.ReadString('\n')
			if err != nil {
				c.readErr = err
				return
			}
			select {
			case lines <- strings.TrimSuffix(s, "\n"):
			default:
				c.dropped.Add(1)
			}
		}
	}()
}

// Dropped is how many lines a client reading in the background dropped
// because nobody took them.
func (c *Client) Dropped() int64 { return c.dropped.Load() }

// OpenFDs counts the open file descriptors of the process pid, or of
// this process for 0, and skips the test where /proc does not tell.
func OpenFDs(t testing.TB, pid int) int {
	t.Helper()
	dir := "/proc/self/fd"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/fd"
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("no %s on this system: %v", dir, err)
	}
	return len(entries)
}
