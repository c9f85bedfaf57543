package chatroom

import (
	"bytes"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// This file holds the wire protocol's text: how a received line is cleaned
// and how every line the server sends is spelled. Each line is built once,
// into a byte slice that is then shared by every recipient's outbox.

// lineReader frames a client's input into lines of at most max bytes, not
// counting the "\n" or "\r\n" that ends them. Its buffer is just large
// enough for the longest accepted line, so a longer one is never held
// whole; and it holds the buffer only while it has unread input. Between
// lines it gives the buffer back to a pool shared by the room and, where
// the connection allows, waits for input without one, so that an idle
// client costs no read buffer.
type lineReader struct {
	src      io.Reader
	ready    func() error // blocks until src has input, holding no buffer; nil if src cannot
	pool     *sync.Pool   // of *[]byte, each max+2 long
	max      int
	buf      *[]byte // nil while there is no unread input
	r, w     int     // the unread input is (*buf)[r:w]
	skipping bool    // the rest of a line already reported too long is being discarded
	err      error   // the read error to report once the input before it is used
}

// newLineReader returns a lineReader over src. ready, if not nil, blocks
// until src has input, holding no buffer (see readiness).
func newLineReader(src io.Reader, ready func() error, max int, pool *sync.Pool) *lineReader {
	return &lineReader{src: src, ready: ready, pool: pool, max: max}
}

// newReadBuffers returns a pool of read buffers for lines of at most max
// bytes: room for the longest line plus "\r\n", so that exactly max bytes
// are accepted and anything longer fills the buffer.
func newReadBuffers(max int) *sync.Pool {
	return &sync.Pool{New: func() any {
		b := make([]byte, max+2)
		return &b
	}}
}

// next returns the next line, without its line ending. The slice is valid
// until the next call. tooLong reports instead a line longer than max, as
// soon as it is known to be too long, not at its newline; the rest of it,
// up to its newline, is then discarded as it arrives. A last line that the
// end of input cuts off without a newline counts as a line: the client
// said it, then hung up. err is the read error, io.EOF at the end of input,
// once every line before it has been returned.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	for {
		if lr.buf != nil {
			unread := (*lr.buf)[lr.r:lr.w]
			i := bytes.IndexByte(unread, '\n')
			switch {
			case lr.skipping && i >= 0: // the end of a line already answered
				lr.r += i + 1
				lr.skipping = false
				continue
			case lr.skipping:
				lr.r = lr.w
			case i >= 0:
				lr.r += i + 1
				return lr.frame(unread[:i])
			case len(unread) == len(*lr.buf):
				// max+2 bytes and no newline: too long, whatever comes next.
				lr.skipping = true
				lr.r = lr.w
				return nil, true, nil
			}
		}
		if lr.err != nil {
			if lr.err == io.EOF && lr.r < lr.w {
				tail := (*lr.buf)[lr.r:lr.w]
				lr.r = lr.w
				return lr.frame(tail)
			}
			lr.release()
			return nil, false, lr.err
		}
		if err := lr.fill(); err != nil {
			lr.err = err
		}
	}
}

// buffered reports whether a whole line is already in the buffer, so that
// next returns it without reading.
func (lr *lineReader) buffered() bool {
	return lr.buf != nil && bytes.IndexByte((*lr.buf)[lr.r:lr.w], '\n') >= 0
}

// frame turns the bytes of one line into next's result.
func (lr *lineReader) frame(line []byte) ([]byte, bool, error) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > lr.max {
		return nil, true, nil
	}
	return line, false, nil
}

// fill reads more input after what is unread, first waiting for it without
// a buffer if there is nothing unread.
func (lr *lineReader) fill() error {
	if lr.buf == nil || lr.r == lr.w {
		lr.release()
		if lr.ready != nil {
			if err := lr.ready(); err != nil {
				return err
			}
		}
		lr.buf = lr.pool.Get().(*[]byte)
	} else if lr.r > 0 {
		lr.w = copy(*lr.buf, (*lr.buf)[lr.r:lr.w])
		lr.r = 0
	}
	n, err := lr.src.Read((*lr.buf)[lr.w:])
	lr.w += n
	return err
}

// release gives the buffer back to the pool; nothing unread may be in it.
func (lr *lineReader) release() {
	if lr.buf != nil {
		lr.pool.Put(lr.buf)
		lr.buf, lr.r, lr.w = nil, 0, 0
	}
}

// timeLayout stamps relayed lines and room notices.
const timeLayout = "2006-01-02 15:04:05"

// Lines sent to one client only. They are constant, so they are built once.
var (
	lineBye      = []byte("* bye\n")
	lineIdle     = []byte("* idle timeout\n")
	lineShutdown = []byte("* server shutting down\n")
)

func lineTooLong(max int) []byte {
	return []byte("* error: message too long (max " + strconv.Itoa(max) + " bytes)\n")
}

func lineRoomFull(max int) []byte {
	return []byte("* room is full (" + strconv.Itoa(max) + " clients)\n")
}

func lineTooManyFromHost(max int) []byte {
	return []byte("* too many connections from your address (max " + strconv.Itoa(max) + ")\n")
}

var lineJoinTooFast = []byte("* too many connections, try again later\n")

func lineWelcome(name string, online int) []byte {
	return []byte("* welcome " + name + ", " + strconv.Itoa(online) + " online\n")
}

// lineJoined is the notice the others get when name joins.
func lineJoined(now time.Time, name string) []byte {
	return lineNotice(now, name+" joined")
}

// noticeTooSlow follows "<name> left" when the room evicted the client.
const noticeTooSlow = " (too slow)"

// lineLeft is the notice the others get when name leaves; notice, from
// the reason's effects (reason.go), follows "left".
func lineLeft(now time.Time, name, notice string) []byte {
	return lineNotice(now, name+" left"+notice)
}

// lineSay formats "<ts> <name> say: <text>\n" in one allocation, where
// text is raw cleaned by appendClean, and returns the line and the text
// within it.
func lineSay(now time.Time, name string, raw []byte, max int) (line, text []byte) {
	b := make([]byte, 0, len(timeLayout)+1+len(name)+len(" say: ")+len(raw)+1)
	b = now.AppendFormat(b, timeLayout)
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, " say: "...)
	start := len(b)
	b = appendClean(b, raw, max)
	end := len(b)
	b = append(b, '\n')
	return b, b[start:end]
}

// lineNotice formats a room notice, "<ts> * <text>\n". text must already
// be clean.
func lineNotice(now time.Time, text string) []byte {
	b := make([]byte, 0, len(timeLayout)+len(" * ")+len(text)+1)
	b = now.AppendFormat(b, timeLayout)
	b = append(b, " * "...)
	b = append(b, text...)
	return append(b, '\n')
}

// appendClean appends src to dst with everything removed that could break
// the framing or drive a terminal, and returns the extended slice:
//
//   - invalid UTF-8 bytes become U+FFFD;
//   - control runes are dropped: C0 except tab, DEL, and C1;
//   - the bidirectional controls are dropped (U+061C, U+200E, U+200F,
//     U+202A–U+202E, U+2066–U+2069): they reorder a line on screen and let
//     one client forge what another seems to say;
//   - the line and paragraph separators U+2028 and U+2029 are dropped: a
//     receiver that splits lines the Unicode way would see a forged line;
//   - the invisible U+200B, U+2060 and U+FEFF are dropped: they make one
//     word look like another ("ex\u200bit" like "exit"). U+200C and U+200D
//     stay, since scripts and emoji need them.
//
// The result holds at most max bytes: a replacement character is three
// bytes where the invalid byte was one, so a line that grows past max is cut
// at the last whole rune that fits.
func appendClean(dst, src []byte, max int) []byte {
	start := len(dst)
	// Fast path: printable ASCII and tabs pass through unchanged.
	i := 0
	for i < len(src) {
		c := src[i]
		if c < 0x20 && c != '\t' || c >= 0x7f {
			break
		}
		i++
	}
	if i > max {
		i = max
	}
	dst = append(dst, src[:i]...)
	if i == max {
		return dst
	}
	for i < len(src) {
		r, size := utf8.DecodeRune(src[i:])
		i += size
		if dropRune(r) {
			continue
		}
		if len(dst)-start+utf8.RuneLen(r) > max {
			break
		}
		dst = utf8.AppendRune(dst, r)
	}
	return dst
}

// dropRune reports whether r is removed from relayed text. utf8.RuneError
// is kept: it is what an invalid byte decodes to, and it is harmless.
func dropRune(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\t'
	case r >= 0x7f && r <= 0x9f: // DEL and C1
		return true
	case r < 0x061c:
		return false // the fast way out for most scripts
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	}
	switch r {
	case 0x061c, 0x200e, 0x200f: // ALM, LRM, RLM
		return true
	case 0x2028, 0x2029: // line and paragraph separators
		return true
	case 0x200b, 0x2060, 0xfeff: // zero width space, word joiner, zero width no-break space
		return true
	}
	return false
}

// isExit reports whether a clean line is the exit command: "exit" in any
// case, with surrounding spaces and tabs ignored.
func isExit(line []byte) bool {
	for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
		line = line[1:]
	}
	for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
		line = line[:len(line)-1]
	}
	if len(line) != 4 {
		return false
	}
	for i, c := range []byte("exit") {
		if line[i]|0x20 != c {
			return false
		}
	}
	return true
}
