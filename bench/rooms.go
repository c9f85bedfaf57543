package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// roomsSpec describes a run of quiet rooms: rooms rooms of members
// clients each, every room saying lines lines of size bytes, one every
// interval from a member picked at random, the rooms' phases spread at
// random over the interval.
type roomsSpec struct {
	rooms, members, lines, size int
	interval                    time.Duration
	goroutines                  bool // read each client on a goroutine of its own, even where the load tool's poller could
}

// drainLimit is how long the rooms workload waits after its last send for
// the lines still on their way; what has not arrived then is lost.
const drainLimit = 10 * time.Second

// roomsIO reads the clients of the rooms workload and sends their lines.
type roomsIO interface {
	// add starts reading client i; deliver gets each of its messages'
	// payloads, one at a time per client.
	add(i int, c client) error
	// send publishes payload as client i, at once. One goroutine sends.
	send(i int, payload []byte) error
	// close stops reading, closes every client added and waits for its
	// readers; it may be called again.
	close()
}

// newRoomsIO reads the clients of p with the load tool's own poller where
// it can (Linux, a protocol over plain TCP whose framing it knows), and
// otherwise with a goroutine per client.
func newRoomsIO(p protocol, n int, goroutines bool, deadline time.Time, deliver func(i int, payload []byte)) (roomsIO, error) {
	if _, raw := p.(rawProtocol); raw && !goroutines {
		pio, err := newPollIO(n, deliver)
		if err == nil {
			return pio, nil
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			return nil, err
		}
	}
	return &goroutineIO{name: p.name(), clients: make([]client, n), deadline: deadline, deliver: deliver}, nil
}

// goroutineIO reads each client on a goroutine of its own, through its
// protocol's blocking reader, as the other workloads do. Each message
// costs the load tool a read that finds it, a read that finds nothing,
// and a wake-up of the goroutine.
type goroutineIO struct {
	name     string
	clients  []client
	deadline time.Time
	deliver  func(int, []byte)
	readers  sync.WaitGroup
	closed   sync.Once
}

func (g *goroutineIO) add(i int, c client) error {
	g.clients[i] = c
	c.conn().SetDeadline(g.deadline)
	g.readers.Add(1)
	go func() {
		defer g.readers.Done()
		for {
			payload, err := c.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
					fmt.Fprintf(os.Stderr, "%s client %d: %v\n", g.name, i, err)
				}
				return
			}
			g.deliver(i, payload)
		}
	}()
	return nil
}

func (g *goroutineIO) send(i int, payload []byte) error {
	c := g.clients[i]
	if err := c.publish(payload); err != nil {
		return err
	}
	return c.flush()
}

func (g *goroutineIO) close() {
	g.closed.Do(func() {
		closeAll(g.clients)
		g.readers.Wait()
	})
}

// runRooms runs quiet rooms against srv and returns what it measured.
// Client i is member i/rooms of room i mod rooms, joined with p.member.
// Every other member of a room must get each of its lines once; a sender
// never counts its own (Redis echoes it; the room and NATS must not, and
// an echo from them counts as a duplicate). A line that reaches a client
// of another room fails the run.
func runRooms(p protocol, srv *server, spec roomsSpec, progress *progress) (result, error) {
	n := spec.rooms * spec.members
	res := result{server: p.name(), clients: n,
		expected: int64(spec.rooms) * int64(spec.lines) * int64(spec.members-1)}
	// One histogram per room, shared by its members' readers: a room
	// hears a line a second, so its lock is never contended for long.
	type roomHist struct {
		mu sync.Mutex
		h  histogram
	}
	hists := make([]roomHist, spec.rooms)
	nextSeq := make([]int32, n*spec.members) // client i's next sequence from member m of its room: nextSeq[i*members+m]
	var delivered, dups, strays atomic.Int64
	var lastDelivery atomic.Int64
	deliver := func(i int, payload []byte) {
		s, seq, sent, ok := decode(payload)
		room := i % spec.rooms
		switch {
		case !ok || s < 0 || s >= n:
			return // not one of the workload's lines
		case s%spec.rooms != room:
			strays.Add(1)
			return
		case s == i:
			if !p.selfDelivery() {
				dups.Add(1)
			}
			return
		}
		now := time.Now().UnixNano()
		next := &nextSeq[i*spec.members+s/spec.rooms]
		if int32(seq) < *next { // a gap shows as a loss at the end
			dups.Add(1)
			return
		}
		*next = int32(seq) + 1
		h := &hists[room]
		h.mu.Lock()
		h.h.record(time.Duration(now - sent))
		h.mu.Unlock()
		delivered.Add(1)
		lastDelivery.Store(now)
	}
	runEnd := time.Now().Add(5*time.Minute + time.Duration(spec.lines)*spec.interval + drainLimit)
	rio, err := newRoomsIO(p, n, spec.goroutines, runEnd, deliver)
	if err != nil {
		return res, err
	}
	defer rio.close()
	var addErr error
	var addMu sync.Mutex
	progress.start(fmt.Sprintf("%s: connecting %d clients to %d rooms", p.name(), n, spec.rooms), int64(n))
	join := func(i int) (client, error) { return p.member(srv.addrFor(i), roomName(i%spec.rooms)) }
	if _, err := connectAll(n, burstJoins, progress, join, func(i int, c client) {
		if err := rio.add(i, c); err != nil {
			addMu.Lock()
			addErr = errors.Join(addErr, fmt.Errorf("client %d: %w", i, err))
			addMu.Unlock()
		}
	}); err != nil {
		return res, err
	}
	if addErr != nil {
		return res, addErr
	}
	if err := waitQuiet(srv, progress, n); err != nil {
		return res, err
	}

	// Each room says its k-th line at start + k*interval + its phase; the
	// rooms take turns in the order of their phases, from one goroutine.
	phase := make([]time.Duration, spec.rooms)
	order := make([]int, spec.rooms)
	for r := range phase {
		phase[r] = rand.N(spec.interval)
		order[r] = r
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(phase[a], phase[b]) })
	seqs := make([]int, n)
	buf := make([]byte, 0, spec.size)

	cpu0, err := srv.cpu()
	if err != nil {
		return res, err
	}
	writes0, err := srv.writeCalls()
	if err != nil {
		return res, err
	}
	load0, err := processCPU(os.Getpid())
	if err != nil {
		return res, err
	}
	progress.start(fmt.Sprintf("%s: %d rooms x %d clients, %d lines each", p.name(), spec.rooms, spec.members, spec.lines), res.expected)
	stopProgress := progress.follow(&delivered)
	start := time.Now()
	for k := range spec.lines {
		for _, r := range order {
			if wait := time.Until(start.Add(time.Duration(k)*spec.interval + phase[r])); wait > 0 {
				time.Sleep(wait)
			}
			s := rand.IntN(spec.members)*spec.rooms + r
			if err := rio.send(s, encode(buf, s, seqs[s], spec.size)); err != nil {
				stopProgress()
				return res, fmt.Errorf("client %d: %w", s, err)
			}
			seqs[s]++
		}
	}
	for end := time.Now().Add(drainLimit); delivered.Load() < res.expected && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	res.window = time.Since(start)
	stopProgress()
	cpu1, err := srv.cpu()
	if err != nil {
		return res, err
	}
	writes1, err := srv.writeCalls()
	if err != nil {
		return res, err
	}
	load1, err := processCPU(os.Getpid())
	if err != nil {
		return res, err
	}
	rio.close() // the readers stop: what they counted is final

	res.serverCPU = cpu1 - cpu0
	res.writeCalls = writes1 - writes0
	res.loadCPU = load1 - load0
	res.deliveries = delivered.Load()
	res.lost = res.expected - res.deliveries
	res.dups = dups.Load()
	res.elapsed = time.Unix(0, lastDelivery.Load()).Sub(start)
	for i := range hists {
		res.latency.merge(&hists[i].h)
	}
	if res.elapsed > 0 {
		res.throughput = float64(res.deliveries) / res.elapsed.Seconds()
	}
	if k := strays.Load(); k > 0 {
		return res, fmt.Errorf("%d lines reached a client outside their room", k)
	}
	return res, nil
}
