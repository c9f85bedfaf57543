package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// pollIO reads the rooms workload's clients with one epoll loop of the
// load tool's own instead of a goroutine each: each message costs it one
// read call and its share of an epoll_wait, where a goroutine's reader
// makes a second read that finds nothing, parks, and is woken through the
// runtime's poller. Each client's socket is taken from Go's runtime once
// it has joined (its descriptor duplicated, the net.Conn closed), then
// read and written with plain system calls, its frames split by the
// protocol's rawClient.
type pollIO struct {
	epfd    int
	clients []atomic.Pointer[polled] // by client index: stored before its socket is watched
	deliver func(int, []byte)
	stop    chan struct{}
	done    chan struct{} // closed when the loop has returned
	out     []byte        // the frame being sent; the sender's alone
	closed  sync.Once
}

// polled is one client's socket and what has been read from it and not
// yet framed: buf[start:end]. Only the loop touches it once watched.
type polled struct {
	fd         int
	raw        rawClient // its framing
	buf        []byte
	start, end int
	gone       bool // no longer watched: closed by the server, or not the protocol's bytes
}

// pollBuffer is each client's first read buffer; it doubles for a frame
// that does not fit, up to maxFrame.
const (
	pollBuffer = 4 << 10
	maxFrame   = 1 << 20
)

func newPollIO(n int, deliver func(int, []byte)) (roomsIO, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	p := &pollIO{epfd: epfd, clients: make([]atomic.Pointer[polled], n), deliver: deliver,
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// add takes c's socket: a duplicate of its descriptor (close-on-exec: the
// workloads start servers), what c's reader had buffered (frames in it are
// delivered at once), and then the net.Conn is closed, which leaves the
// socket open through the duplicate.
func (p *pollIO) add(i int, c client) error {
	raw, ok := c.(rawClient)
	tcp, isTCP := c.conn().(*net.TCPConn)
	if !ok || !isTCP {
		c.conn().Close()
		return errors.New("not a TCP client whose framing the load tool knows")
	}
	sc, err := tcp.SyscallConn()
	if err != nil {
		tcp.Close()
		return err
	}
	fd := -1
	var dupErr error
	if err := sc.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", errno)
			return
		}
		fd = int(r)
	}); err != nil || dupErr != nil {
		tcp.Close()
		return errors.Join(err, dupErr)
	}
	left := raw.buffered()
	pc := &polled{fd: fd, raw: raw, buf: make([]byte, max(pollBuffer, 2*len(left)))}
	pc.end = copy(pc.buf, left)
	tcp.Close() // the socket stays open through fd, still non-blocking: the flag is the open file's
	if err := p.frames(i, pc); err != nil {
		syscall.Close(fd)
		return err
	}
	p.clients[i].Store(pc)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// loop waits for readable sockets and reads each once per readiness
// (level-triggered: what is left is reported again), until stop; it looks
// at stop at least every 100 ms.
func (p *pollIO) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		n, err := syscall.EpollWait(p.epfd, events, 100)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			fmt.Fprintf(os.Stderr, "load tool: epoll_wait: %v\n", err)
			return
		}
		for _, ev := range events[:n] {
			p.read(int(ev.Fd))
		}
	}
}

// read reads client i's socket once and delivers the whole frames read.
func (p *pollIO) read(i int) {
	pc := p.clients[i].Load()
	if pc == nil || pc.gone {
		return
	}
	if pc.end == len(pc.buf) { // room for more: move the part frame down, or grow
		if pc.start > 0 {
			pc.end = copy(pc.buf, pc.buf[pc.start:pc.end])
			pc.start = 0
		} else if len(pc.buf) < maxFrame {
			pc.buf = append(pc.buf, make([]byte, len(pc.buf))...)
		} else {
			p.drop(i, pc, fmt.Errorf("a frame longer than %d bytes", maxFrame))
			return
		}
	}
	n, err := syscall.Read(pc.fd, pc.buf[pc.end:])
	switch {
	case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
		return
	case err != nil:
		p.drop(i, pc, err)
		return
	case n == 0:
		p.drop(i, pc, errors.New("closed by the server"))
		return
	}
	pc.end += n
	if err := p.frames(i, pc); err != nil {
		p.drop(i, pc, err)
	}
}

// frames delivers the whole frames in pc's buffer and answers what asks
// for an answer.
func (p *pollIO) frames(i int, pc *polled) error {
	for pc.start < pc.end {
		payload, n, reply, err := pc.raw.frame(pc.buf[pc.start:pc.end])
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if payload != nil {
			p.deliver(i, payload)
		}
		if reply != nil {
			if err := writeAll(pc.fd, reply); err != nil {
				return err
			}
		}
		pc.start += n
	}
	if pc.start == pc.end {
		pc.start, pc.end = 0, 0
	}
	return nil
}

// drop stops watching client i after err, and says so: its losses show
// in the figures.
func (p *pollIO) drop(i int, pc *polled, err error) {
	pc.gone = true
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, pc.fd, nil)
	fmt.Fprintf(os.Stderr, "client %d: %v\n", i, err)
}

func (p *pollIO) send(i int, payload []byte) error {
	pc := p.clients[i].Load()
	if pc == nil {
		return errors.New("not connected")
	}
	p.out = pc.raw.appendPublish(p.out[:0], payload)
	return writeAll(pc.fd, p.out)
}

// writeAll writes b to the non-blocking socket fd in one call: a line or
// two a second never fill a socket's buffer, so a short write means the
// server has stopped reading.
func writeAll(fd int, b []byte) error {
	for {
		n, err := syscall.Write(fd, b)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("write: %w", err)
		case n < len(b):
			return fmt.Errorf("write: %d of %d bytes taken: the server is not reading", n, len(b))
		}
		return nil
	}
}

func (p *pollIO) close() {
	p.closed.Do(func() {
		close(p.stop)
		<-p.done
		for i := range p.clients {
			if pc := p.clients[i].Load(); pc != nil {
				syscall.Close(pc.fd)
			}
		}
		syscall.Close(p.epfd)
	})
}
