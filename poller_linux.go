//go:build linux

package chatroom

import (
	"container/heap"
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// This file is the poller goroutine's: on Linux, the hub waits for the
// input of its quiet TCP and Unix-socket clients in one epoll loop, as the
// select() server it descends from did, instead of with a parked goroutine
// for each. A client has a goroutine only while it has input to deal with
// (a turn, read.go), and the loop also times out the idle ones.
//
// Descriptor numbers are reused as soon as a connection closes, so the
// loop never acts on a number alone:
//
//   - every epoll_ctl runs inside the connection's RawConn.Control, which
//     holds the descriptor open: the number is this connection's while it
//     runs, and after Close it fails instead of reaching a newer one;
//   - an event carries a token, the client's slot and the slot's
//     generation, and an event whose generation is stale (its client left,
//     and the slot may hold another) is dropped;
//   - every read and peek of a turn runs inside RawConn.Control too
//     (socketInput.Read), and reports net.ErrClosed once the connection
//     is closed, never another socket's bytes.
//
// The loop itself parks in the runtime's netpoller: the epoll descriptor is
// readable while events wait in it, so it is read as an *os.File, with
// epoll_wait and no timeout inside RawConn.Read, and no thread sits in
// epoll_wait.
//
// Each client is registered one-shot: an event disarms it until the turn
// that event queued has read everything and arms it again, so there is
// never more than one turn per client. A client is armed level-triggered,
// so input that arrived while it was disarmed fires at once.
//
// Turns are taken by turn runners, a few goroutines that the loop starts
// as input arrives: each takes the queued turns, oldest first, and exits
// when none is left. At most maxRunners of them hold a place at a time, so
// a burst of input from thousands of clients runs on a few goroutines, not
// thousands. A turn reads at most turnReads times (framing.go), so a
// client that never pauses queues again behind the others. A turn about to
// do something that may wait (hand lines to a busy hub, run a filter
// hook, wait out flood control, claim a name, leave) steps out first
// (client.mayWait, stepOut): its runner gives its place to a new one, and
// exits once that turn ends. So the clients behind it wait for nobody,
// the way Go's scheduler hands a thread's processor on when the thread
// enters a system call.

// poller is the hub's epoll loop.
type poller struct {
	hub       *Hub
	epfd      int
	epoll     *os.File        // epfd, for the runtime's poller: the loop waits for it as a goroutine, not a thread
	epollRaw  syscall.RawConn // epoll's
	deadline  time.Time       // the read deadline set on epoll, to move it only when it changes
	wakeR     int             // a pipe's ends: a byte written to wakeW ends epoll_wait
	wakeW     int
	epoch     time.Time // idle deadlines count nanoseconds from here (monotonic)
	closeOnce sync.Once

	maxRunners int // how many turn runners may hold a place at a time: GOMAXPROCS, as the hub starts polling

	mu      sync.Mutex
	slots   []pollSlot // by slot index
	free    []int32    // free slot indexes
	timers  idleTimers // every registered client's idle deadline, soonest first
	waiting int64      // the deadline epoll_wait sleeps until; 0: none
	due     turnQueue  // clients whose turn is due, oldest first
	runners int        // turn runners holding a place
}

// pollSlot holds one registered client, and counts the clients that had
// the slot, so that an event for a former one is known stale.
type pollSlot struct {
	c   *Client
	gen int32
}

// A client's poll state (client.polled): not polled, its reader blocks as
// on any other system; or polled, with a turn running or none.
const (
	pollOff  int32 = iota // not the poller's: ServeConn's blocking reader
	pollBusy              // a turn runs: it alone reads; events wait, disarmed
	pollIdle              // no turn runs: the next event, the idle timeout or a close starts one
)

// wakeToken marks the wake pipe's events.
const wakeToken = -1

// newPoller returns a poller for h, or nil if the system refuses one: the
// hub then reads every client with a goroutine of its own.
func newPoller(h *Hub) *poller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		h.log.Warn("no epoll: every client is read by a goroutine of its own", "err", err)
		return nil
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		h.log.Warn("no pipe for the poller: every client is read by a goroutine of its own", "err", err)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeToken}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, pipe[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		h.log.Warn("no poller: every client is read by a goroutine of its own", "err", err)
		return nil
	}
	// The epoll descriptor is itself readable while events wait in it:
	// handed to the runtime's poller, it lets the loop park as any
	// goroutine does on a socket, instead of holding a thread in
	// epoll_wait, and wakes it where the runtime already waits.
	syscall.SetNonblock(epfd, true)
	epoll := os.NewFile(uintptr(epfd), "epoll")
	raw, err := epoll.SyscallConn()
	if err != nil {
		epoll.Close()
		syscall.Close(pipe[0])
		syscall.Close(pipe[1])
		h.log.Warn("no poller: every client is read by a goroutine of its own", "err", err)
		return nil
	}
	return &poller{
		hub: h, epfd: epfd, epoll: epoll, epollRaw: raw, wakeR: pipe[0], wakeW: pipe[1], epoch: time.Now(),
		maxRunners: runtime.GOMAXPROCS(0),
	}
}

// now is the poller's clock, in nanoseconds since its epoch.
func (p *poller) now() int64 { return int64(time.Since(p.epoch)) }

// register gives c a slot and a token, and adds its socket to the epoll
// set, disarmed: the first turn arms it. It starts c's idle clock.
func (p *poller) register(c *Client) error {
	p.mu.Lock()
	var i int32
	if n := len(p.free); n > 0 {
		i = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		i = int32(len(p.slots))
		p.slots = append(p.slots, pollSlot{})
	}
	p.slots[i].c = c
	c.slot, c.gen = i, p.slots[i].gen
	p.mu.Unlock()

	err := p.ctl(c, syscall.EPOLL_CTL_ADD, syscall.EPOLLONESHOT)
	if err != nil {
		p.unregister(c)
		return err
	}
	if d := p.hub.opts.idleTimeout; d > 0 {
		at := p.now() + int64(d)
		c.idleAt.Store(at)
		p.schedule(c, at)
	}
	return nil
}

// unregister frees c's slot, and its idle deadline's place in the heap;
// events still on their way for it are stale.
func (p *poller) unregister(c *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.timer > 0 {
		heap.Remove(&p.timers, int(c.timer-1))
	}
	if s := &p.slots[c.slot]; s.c == c {
		s.c = nil
		s.gen++
		p.free = append(p.free, c.slot)
	}
}

// arm has the loop watch c's socket for input again, once.
func (p *poller) arm(c *Client) error {
	return p.ctl(c, syscall.EPOLL_CTL_MOD, syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLONESHOT)
}

// ctl applies an epoll operation to c's socket, inside Control, which
// holds the descriptor: it fails, rather than reach another socket, once
// the connection is closed.
func (p *poller) ctl(c *Client, op int, events uint32) error {
	var opErr error
	err := c.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{Events: events, Fd: c.slot, Pad: c.gen}
		opErr = epollCtl(p.epfd, op, fd, &ev)
	})
	return errors.Join(err, opErr)
}

// schedule puts c's idle deadline, the clock reading at, in the loop's
// heap. Each client has one entry there, from register until unregister:
// when it comes due, the loop looks at the client's latest deadline
// (client.idleAt, which every line that counts moves) and moves the entry
// there instead, so a busy client costs the heap nothing per line.
func (p *poller) schedule(c *Client, at int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	heap.Push(&p.timers, idleTimer{at: at, c: c})
	if p.waiting == 0 || at < p.waiting {
		p.wake() // epoll_wait sleeps past it
	}
}

// wake ends the loop's epoll_wait; the hub's end calls it (Hub.stop),
// before it waits for the hub's goroutines and closes the poller.
func (p *poller) wake() {
	syscall.Write(p.wakeW, []byte{0}) // a full pipe wakes it as well
}

// run is the poller goroutine. It waits for input on every armed client,
// queues a turn for each that has some, for the turn runners, and times
// out the idle ones, until the hub begins to close (Hub.stop wakes it);
// closing clients start their last turns themselves (client.shut).
func (p *poller) run() {
	events := make([]syscall.EpollEvent, 256)
	for p.hub.ctx.Err() == nil {
		n, err := p.wait(events)
		if err != nil {
			p.hub.log.Error("epoll_wait failed; the poller stops", "err", err)
			return
		}
		p.dispatch(events[:n])
		p.expire()
	}
}

// dispatch queues the turns of the clients the events name, and starts
// the runners to take them.
func (p *poller) dispatch(events []syscall.EpollEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range events {
		if ev.Fd == wakeToken {
			p.drainWake()
			continue
		}
		if c := p.client(ev.Fd, ev.Pad); c != nil && c.polled.CompareAndSwap(pollIdle, pollBusy) {
			p.due.push(c)
		}
	}
	p.startRunners()
}

// client returns the client the token (slot, gen) names, or nil if it is
// stale. p.mu is held.
func (p *poller) client(slot, gen int32) *Client {
	if slot < 0 || int(slot) >= len(p.slots) || p.slots[slot].gen != gen {
		return nil
	}
	return p.slots[slot].c
}

// startRunners starts a turn runner for each ready turn, while fewer than
// maxRunners hold a place. p.mu is held.
func (p *poller) startRunners() {
	for n := p.due.len(); n > 0 && p.runners < p.maxRunners; n-- {
		p.runners++
		p.hub.wg.Go(p.runTurns)
	}
}

// runTurns is a turn runner: it takes the ready clients' turns, one at a
// time, until none is left or a turn steps out.
func (p *poller) runTurns() {
	for c := p.nextTurn(true); c != nil; c = p.nextTurn(c.turn()) {
	}
}

// nextTurn returns the next ready client, its turn now the runner's
// (client.onRunner), or nil when the runner is to exit: held reports
// whether its last turn kept its place, and a runner that finds no turn
// ready gives its place up.
func (p *poller) nextTurn(held bool) *Client {
	if !held {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.due.pop()
	if c == nil {
		p.runners--
		return nil
	}
	c.onRunner = true
	return c
}

// stepOut gives up a runner's place for a turn about to do something that
// may wait: a new runner takes the ready turns meanwhile, and the turn's
// own runner exits once it ends.
func (p *poller) stepOut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runners--
	p.startRunners()
}

// drainWake empties the wake pipe.
func (p *poller) drainWake() {
	var b [64]byte
	for {
		if n, _ := syscall.Read(p.wakeR, b[:]); n < len(b) {
			return
		}
	}
}

// wait takes the events waiting in the epoll set, at most len(events),
// waiting for some until the soonest idle deadline. It takes them without
// blocking (epoll_wait with no timeout), and waits in between for the
// epoll descriptor to be readable, through the runtime's poller, with the
// deadline as the descriptor's read deadline. It returns 0 events at the
// deadline.
func (p *poller) wait(events []syscall.EpollEvent) (int, error) {
	if d := p.nextDeadline(); !d.Equal(p.deadline) {
		p.deadline = d
		p.epoll.SetReadDeadline(d)
	}
	n := 0
	var waitErr error
	err := p.epollRaw.Read(func(fd uintptr) bool {
		n, waitErr = epollPoll(fd, events)
		switch {
		case waitErr == syscall.EINTR:
			n, waitErr = 0, nil
			return false
		case waitErr != nil:
			n = 0
			return true
		}
		return n > 0 // none yet: the runtime waits for the descriptor
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return n, errors.Join(err, waitErr)
}

// nextDeadline is the soonest idle deadline, or the zero time for none.
func (p *poller) nextDeadline() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.timers) == 0 {
		p.waiting = 0
		return time.Time{}
	}
	p.waiting = p.timers[0].at
	return p.epoch.Add(time.Duration(p.waiting))
}

// busyRetry is how soon the loop looks again at a client whose deadline
// passed while a turn was running.
const busyRetry = 50 * time.Millisecond

// expire ends every client whose idle deadline has passed. A deadline
// that moved (the client said something) takes its new place in the heap;
// a client in the middle of a turn is looked at again shortly.
func (p *poller) expire() {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.timers) > 0 && p.timers[0].at <= now {
		c := p.timers[0].c
		switch at := c.idleAt.Load(); {
		case at > now:
			p.timers[0].at = at
			heap.Fix(&p.timers, 0)
		case c.polled.CompareAndSwap(pollIdle, pollBusy):
			heap.Pop(&p.timers) // the client ends: unregister finds no entry
			p.hub.wg.Go(c.idle)
		default:
			p.timers[0].at = now + int64(busyRetry)
			heap.Fix(&p.timers, 0)
		}
	}
}

// close releases the poller's descriptors, once no goroutine of the hub
// runs. Only the first call closes them: a number closed twice may by then
// be someone else's.
func (p *poller) close() {
	p.closeOnce.Do(func() {
		p.epoll.Close()
		syscall.Close(p.wakeR)
		syscall.Close(p.wakeW)
	})
}

// idleTimer is a client's idle deadline, as scheduled.
type idleTimer struct {
	at int64
	c  *Client
}

// idleTimers is a min-heap of deadlines (container/heap), each client's
// place in it kept in client.timer, so that a client that leaves takes its
// entry with it at once, whatever its deadline.
type idleTimers []idleTimer

func (h idleTimers) Len() int           { return len(h) }
func (h idleTimers) Less(i, j int) bool { return h[i].at < h[j].at }

func (h idleTimers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].c.timer, h[j].c.timer = int32(i+1), int32(j+1)
}

func (h *idleTimers) Push(x any) {
	t := x.(idleTimer)
	t.c.timer = int32(len(*h) + 1)
	*h = append(*h, t)
}

func (h *idleTimers) Pop() any {
	old := *h
	t := old[len(old)-1]
	t.c.timer = 0
	old[len(old)-1] = idleTimer{}
	*h = old[:len(old)-1]
	return t
}

// turnQueue is the poller's list of clients whose turn is due, oldest
// first: a slice taken from the front, reused once empty.
type turnQueue struct {
	clients []*Client
	head    int
}

func (q *turnQueue) len() int { return len(q.clients) - q.head }

// push adds c as the newest; the space before the oldest is reused
// before the slice grows.
func (q *turnQueue) push(c *Client) {
	if q.head > 0 && len(q.clients) == cap(q.clients) {
		n := copy(q.clients, q.clients[q.head:])
		clear(q.clients[n:])
		q.clients, q.head = q.clients[:n], 0
	}
	q.clients = append(q.clients, c)
}

// pop returns the oldest client, or nil if there is none.
func (q *turnQueue) pop() *Client {
	if q.head == len(q.clients) {
		return nil
	}
	c := q.clients[q.head]
	q.clients[q.head] = nil
	q.head++
	if q.head == len(q.clients) {
		q.clients, q.head = q.clients[:0], 0
	}
	return c
}

// The loop's epoll calls never wait, and are raw, as sys_linux.go explains
// for the sockets'.

// epollPoll takes the events waiting in the epoll set epfd, at most
// len(events), without waiting for any.
func epollPoll(epfd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, epfd,
		uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0) // no timeout, no signal mask
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// epollCtl applies op to the descriptor fd in the epoll set epfd.
func epollCtl(epfd, op int, fd uintptr, ev *syscall.EpollEvent) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), fd,
		uintptr(unsafe.Pointer(ev)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
