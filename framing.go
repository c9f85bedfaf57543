package chatroom

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// This file is how a client's input is cut into lines: the reader's
// (read.go) alone.

// lineReader frames a client's input into lines of at most max bytes, not
// counting the "\n" or "\r\n" that ends them. Its buffer is just large
// enough for the longest accepted line, so a longer one is never held
// whole; and it holds the buffer only while a read is under way or a whole
// line is unread. Where the connection is a plain socket (in is not nil),
// it waits for input without a buffer, so that an idle client costs none,
// and a client that sent part of a line and went quiet costs what it sent,
// kept in a slice of that size, not a whole buffer.
type lineReader struct {
	src      io.Reader
	in       *socketInput // src's socket, to wait on without a buffer; nil if src is not one
	pool     *bufferPool
	max      int
	buf      *[]byte // nil while there is no unread input
	r, w     int     // the unread input is (*buf)[r:w]
	skipping bool    // the rest of a line already reported too long is being discarded
	err      error   // the read error to report once the input before it is used
	part     []byte  // part of a line, kept while its buffer is back in the pool (see park)

	// nonblocking: next returns errWouldBlock when it would wait for
	// input (a polled client's turn, read.go), or when it has read
	// turnReads times (its turn's share: the socket is polled again, behind
	// the others); then, with part of a line unread, it keeps the part
	// parked until the next call.
	nonblocking bool
	reads       int // reads so far, in nonblocking mode
}

// turnReads is how many reads a polled client's turn makes at most: a
// client that sends without pause waits for its next turn behind the
// others, as on a busy select() server, instead of keeping a turn runner
// (poller_linux.go) to itself.
const turnReads = 16

// lineReaders lends polled clients a lineReader, with its socket input,
// for one turn each (client.turn): between turns a quiet client holds
// neither.
var lineReaders = sync.Pool{New: func() any {
	return &lineReader{in: readiness(nil), nonblocking: true}
}}

// errWouldBlock is what next returns, in nonblocking mode, when the socket
// has nothing more for now.
var errWouldBlock = errors.New("chatroom: no input for now")

// newLineReader returns a lineReader over src; in, if not nil, is src's
// socket (see readiness).
func newLineReader(src io.Reader, in *socketInput, max int, pool *bufferPool) *lineReader {
	return &lineReader{src: src, in: in, pool: pool, max: max}
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
		if err := lr.fill(); err == errWouldBlock {
			return nil, false, err
		} else if err != nil {
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

// fill reads more input after what is unread. With nothing unread, it
// first waits for input without a buffer; with part of a line unread and
// nothing more arrived, it parks that part first (see park).
func (lr *lineReader) fill() error {
	switch {
	case lr.part != nil: // parked by the last call, in nonblocking mode
		if err := lr.wait(); err != nil {
			return err
		}
		lr.unpark()
	case lr.buf == nil || lr.r == lr.w:
		lr.release()
		if lr.in != nil {
			if err := lr.wait(); err != nil {
				return err
			}
		}
		lr.buf = lr.pool.get()
	default:
		if lr.in != nil {
			ready, err := lr.in.ready()
			if err != nil {
				return err
			}
			if !ready || lr.spent() {
				lr.park()
				if err := lr.wait(); err != nil {
					return err
				}
				lr.unpark()
			}
		}
		if lr.r > 0 {
			lr.w = copy(*lr.buf, (*lr.buf)[lr.r:lr.w])
			lr.r = 0
		}
	}
	n, err := lr.src.Read((*lr.buf)[lr.w:])
	lr.w += n
	lr.reads++
	if err == errWouldBlock { // a polled socket that had nothing after all
		if lr.r < lr.w {
			lr.park()
		} else {
			lr.release()
		}
	}
	return err
}

// spent reports whether, in nonblocking mode, the reader has had its
// turn's share of reads.
func (lr *lineReader) spent() bool {
	return lr.nonblocking && lr.reads >= turnReads
}

// wait waits until the socket has input; in nonblocking mode it returns
// errWouldBlock instead if it has none now.
func (lr *lineReader) wait() error {
	if !lr.nonblocking {
		return lr.in.await()
	}
	if lr.spent() {
		return errWouldBlock
	}
	ready, err := lr.in.ready()
	switch {
	case err != nil:
		return err
	case !ready:
		return errWouldBlock
	}
	return nil
}

// park keeps the part of a line that has arrived in a slice of its own
// size, and gives the buffer back while the reader waits for more input;
// unpark takes a buffer again with the part at its start.
func (lr *lineReader) park() {
	lr.part = bytes.Clone((*lr.buf)[lr.r:lr.w])
	lr.pool.put(lr.buf)
	lr.buf, lr.r, lr.w = nil, 0, 0
	lr.pool.parked.Add(1)
}

func (lr *lineReader) unpark() {
	lr.pool.parked.Add(-1)
	lr.buf = lr.pool.get()
	lr.r, lr.w = 0, copy(*lr.buf, lr.part)
	lr.part = nil
}

// release gives the buffer back to the pool, and drops a parked part;
// nothing unread may be in the buffer.
func (lr *lineReader) release() {
	if lr.buf != nil {
		lr.pool.put(lr.buf)
		lr.buf, lr.r, lr.w = nil, 0, 0
	}
	if lr.part != nil {
		lr.part = nil
		lr.pool.parked.Add(-1)
	}
}

// bufferPools holds a hub's bufferPools, one for each line limit its
// faces have.
type bufferPools struct {
	mu    sync.Mutex
	pools map[int]*bufferPool
}

// pool returns the pool of buffers for lines of at most max bytes.
func (ps *bufferPools) pool(max int) *bufferPool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p := ps.pools[max]
	if p == nil {
		if ps.pools == nil {
			ps.pools = make(map[int]*bufferPool)
		}
		p = newBufferPool(max)
		ps.pools[max] = p
	}
	return p
}

// bufferPool lends read buffers of max+2 bytes: room for the longest line
// plus "\r\n", so that exactly max bytes are accepted and anything longer
// fills the buffer. The readers of one line limit share one.
type bufferPool struct {
	pool   sync.Pool
	lent   atomic.Int64 // buffers lent now
	parked atomic.Int64 // readers waiting with part of a line parked (see lineReader.park)
}

func newBufferPool(max int) *bufferPool {
	p := new(bufferPool)
	p.pool.New = func() any {
		b := make([]byte, max+2)
		return &b
	}
	return p
}

func (p *bufferPool) get() *[]byte {
	p.lent.Add(1)
	return p.pool.Get().(*[]byte)
}

func (p *bufferPool) put(b *[]byte) {
	p.lent.Add(-1)
	p.pool.Put(b)
}
