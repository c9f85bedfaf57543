package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// result is what one run of a workload measured.
type result struct {
	server         string
	clients        int
	deliveries     int64         // messages received, all receivers together
	expected       int64         // messages that should have been received
	lost, dups     int64         // expected minus delivered; repeats of a sender's sequence
	elapsed        time.Duration // first send to last delivery
	serverCPU      time.Duration // the server's CPU time over the run
	writeCalls     int64         // the server's write system calls over the run
	latency        histogram     // send to receipt
	rssPerConn     float64       // idle workload: server RSS per client 10 s after the last join, bytes
	rssLatePerConn float64       // idle workload: the same, -idle-late after the last join
	throughput     float64       // deliveries per second
	window         time.Duration // rooms workload: first send to the end of the drain, over which the CPU times were read
	loadCPU        time.Duration // rooms workload: the load tool's own CPU time over window
}

// share is d as a share of one core over r.window.
func (r result) share(d time.Duration) float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(d) / float64(r.window)
}

// perWrite is how many deliveries the server made per write system call:
// its batching, which decides most of its CPU time per delivery.
func (r result) perWrite() float64 {
	if r.writeCalls == 0 {
		return 0
	}
	return float64(r.deliveries) / float64(r.writeCalls)
}

func (r result) cpuPerDelivery() time.Duration {
	if r.deliveries == 0 {
		return 0
	}
	return r.serverCPU / time.Duration(r.deliveries)
}

// fanoutSpec describes a fan-out run: clients receivers, the first senders
// of which also send messages payloads of size bytes each, with at most
// window messages per sender not yet received by everyone.
type fanoutSpec struct {
	clients, senders, messages, size, window int
	rate                                     int // messages per second per sender; 0: as fast as the window allows
}

// payload layout: "<sender> <seq> <unix nanos> " then padding to size.
func encode(buf []byte, sender, seq int, size int) []byte {
	buf = strconv.AppendInt(buf[:0], int64(sender), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, int64(seq), 10)
	buf = append(buf, ' ')
	buf = strconv.AppendInt(buf, time.Now().UnixNano(), 10)
	buf = append(buf, ' ')
	for len(buf) < size {
		buf = append(buf, 'x')
	}
	return buf
}

// decode reads what encode wrote at the start of p: three numbers, each
// of decimal digits followed by a space. It allocates nothing, and takes
// a few nanoseconds: the load tool decodes every delivery.
func decode(p []byte) (sender, seq int, sent int64, ok bool) {
	var f [3]int64
	for i := range f {
		var n uint64
		j := 0
		for ; j < len(p) && p[j] != ' '; j++ {
			d := p[j] - '0'
			if d > 9 || j == 19 { // 19 digits fit in a uint64
				return 0, 0, 0, false
			}
			n = n*10 + uint64(d)
		}
		if j == 0 || j == len(p) || n > math.MaxInt64 {
			return 0, 0, 0, false
		}
		f[i], p = int64(n), p[j+1:]
	}
	return int(f[0]), int(f[1]), f[2], true
}

// burstJoins is how many clients connectAll connects at once when they
// arrive in a burst.
const burstJoins = 16

// connectAll connects n clients through join, workers at a time (1: one
// after the other, each once the one before it is in), reporting
// progress, and calls onJoin with each as soon as it is in. onJoin must
// start reading at once: the room announces every arrival to everyone
// already there, and a client that reads nothing while thousands arrive is
// rightly evicted as too slow.
func connectAll(n, workers int, progress *progress, join func(i int) (client, error), onJoin func(i int, c client)) ([]client, error) {
	clients := make([]client, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := join(i)
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, fmt.Errorf("client %d: %w", i, err))
					mu.Unlock()
					return
				}
				clients[i] = c
				onJoin(i, c)
				progress.add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		closeAll(clients)
		return nil, firstErr
	}
	return clients, nil
}

func closeAll(clients []client) {
	for _, c := range clients {
		if c != nil {
			c.conn().Close()
		}
	}
}

// runFanout runs one fan-out against srv and returns what it measured.
func runFanout(p protocol, srv *server, spec fanoutSpec, progress *progress) (result, error) {
	res := result{server: p.name(), clients: spec.clients}

	// Who should get what: every client hears every sender, except that a
	// sender does not hear itself unless the server echoes.
	hears := func(receiver, sender int) bool { return receiver != sender || p.selfDelivery() }
	audience := make([]int64, spec.senders) // receivers per sender
	for s := range audience {
		for r := range spec.clients {
			if hears(r, s) {
				audience[s]++
				res.expected += int64(spec.messages)
			}
		}
	}

	// Flow control: slots[s][seq%window] counts receivers of seq; the
	// sender reuses a slot only once everyone has the message in it.
	window := max(spec.window, 1)
	slots := make([][]atomic.Int64, spec.senders)
	wake := make([]chan struct{}, spec.senders)
	for s := range slots {
		slots[s] = make([]atomic.Int64, window)
		wake[s] = make(chan struct{}, 1)
	}

	var delivered, dups atomic.Int64
	hists := make([]histogram, spec.clients)
	var lastDelivery atomic.Int64
	var readers sync.WaitGroup
	// Connecting 10 000 clients to a room takes a minute or two (50 million
	// arrival notices); the run itself gets a minute more than its pace.
	deadline := time.Now().Add(time.Duration(spec.messages)*time.Millisecond*10 + 5*time.Minute)
	startReader := func(r int, c client) {
		want := 0
		for s := range spec.senders {
			if hears(r, s) {
				want += spec.messages
			}
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			c.conn().SetReadDeadline(deadline)
			nextSeq := make([]int, spec.senders)
			for got := 0; got < want; {
				payload, err := c.next()
				if err != nil {
					if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
						fmt.Fprintf(os.Stderr, "%s receiver %d: %v\n", p.name(), r, err)
					}
					return
				}
				s, seq, sent, ok := decode(payload)
				if !ok || s < 0 || s >= spec.senders {
					continue
				}
				now := time.Now().UnixNano()
				hists[r].record(time.Duration(now - sent))
				if seq < nextSeq[s] { // a gap (seq above next) shows as a loss at the end
					dups.Add(1)
					continue
				}
				nextSeq[s] = seq + 1
				got++
				delivered.Add(1)
				lastDelivery.Store(now)
				if slots[s][seq%window].Add(1) == audience[s] {
					select {
					case wake[s] <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	progress.start(fmt.Sprintf("%s: connecting %d clients", p.name(), spec.clients), int64(spec.clients))
	join := func(i int) (client, error) { return p.join(srv.addrFor(i), "") }
	clients, err := connectAll(spec.clients, burstJoins, progress, join, startReader)
	if err != nil {
		return res, err
	}
	defer closeAll(clients)
	pubs := make([]client, spec.senders)
	for s := range pubs {
		if pubs[s], err = p.publisher(srv.addr, clients[s]); err != nil {
			return res, err
		}
		if pubs[s] != clients[s] {
			defer pubs[s].conn().Close()
		}
	}

	// The room announces each arrival to everyone there: measure the
	// messages, not what is left of that.
	if err := waitQuiet(srv, progress, spec.clients); err != nil {
		return res, err
	}
	cpu0, err := srv.cpu()
	if err != nil {
		return res, err
	}
	writes0, err := srv.writeCalls()
	if err != nil {
		return res, err
	}
	progress.start(fmt.Sprintf("%s: %d clients, %d senders x %d messages", p.name(), spec.clients, spec.senders, spec.messages), res.expected)
	stopProgress := progress.follow(&delivered)
	start := time.Now()
	var senders sync.WaitGroup
	for s, pub := range pubs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			buf := make([]byte, 0, spec.size)
			var tick *time.Ticker
			if spec.rate > 0 {
				tick = time.NewTicker(time.Second / time.Duration(spec.rate))
				defer tick.Stop()
			}
			pub.conn().SetWriteDeadline(deadline)
			for seq := range spec.messages {
				slot := &slots[s][seq%window]
				if seq >= window {
					for slot.Load() < audience[s] {
						if err := pub.flush(); err != nil {
							return
						}
						select {
						case <-wake[s]:
						case <-time.After(time.Until(deadline)):
							return
						}
					}
					slot.Store(0)
				}
				if tick != nil {
					<-tick.C
				}
				if err := pub.publish(encode(buf, s, seq, spec.size)); err != nil {
					return
				}
				if tick != nil || seq%16 == 15 {
					if err := pub.flush(); err != nil {
						return
					}
				}
			}
			pub.flush()
		}()
	}
	senders.Wait()
	readers.Wait()
	stopProgress()
	cpu1, err := srv.cpu()
	if err != nil {
		return res, err
	}
	writes1, err := srv.writeCalls()
	if err != nil {
		return res, err
	}
	res.writeCalls = writes1 - writes0

	res.deliveries = delivered.Load()
	res.lost = res.expected - res.deliveries // gaps and missing tails alike
	res.dups = dups.Load()
	res.elapsed = time.Unix(0, lastDelivery.Load()).Sub(start)
	res.serverCPU = cpu1 - cpu0
	for i := range hists {
		res.latency.merge(&hists[i])
	}
	if res.elapsed > 0 {
		res.throughput = float64(res.deliveries) / res.elapsed.Seconds()
	}
	return res, nil
}

// waitQuiet waits until the server has nothing left to send: fewer than
// quietWrites write calls in a second, at most 5 minutes. The room
// announces each arrival to everyone already there, so 10 000 arrivals are
// 50 million lines to send after the last join. (Write calls, not CPU: an
// idle Redis with 1 000 clients uses 5% of a core on its own timers.)
func waitQuiet(srv *server, progress *progress, clients int) error {
	progress.start(fmt.Sprintf("%s: waiting for %d clients to go quiet", srv.kind, clients), 0)
	for end := time.Now().Add(5 * time.Minute); time.Now().Before(end); {
		before, err := srv.writeCalls()
		if err != nil {
			return err
		}
		time.Sleep(time.Second)
		after, err := srv.writeCalls()
		if err != nil {
			return err
		}
		if after-before < quietWrites {
			return nil
		}
	}
	return nil
}

// quietWrites is how many write calls in a second still count as quiet:
// a bus's heartbeats, a server's own bookkeeping.
const quietWrites = 100

// idleFirstReading is when the idle workload first reads the server's
// memory, counted from the last join.
const idleFirstReading = 10 * time.Second

// idleSpec describes an idle run: clients spread evenly over rooms (client
// i in room i mod rooms; with 1 room, everyone in the default room, as
// before rooms existed), arriving in a burst or one after the other.
type idleSpec struct {
	clients, rooms int
	serial         bool // each client connects once the one before it is in
}

// runIdle connects spec's clients that then stay silent, and reads how
// much resident memory the server gained per client first after the last
// join, once it has gone quiet, and again late after it (unless late is
// 0). Nothing is done to the server in between: the figures are what its
// user would see.
func runIdle(p protocol, srv *server, spec idleSpec, first, late time.Duration, progress *progress) (result, error) {
	n := spec.clients
	res := result{server: p.name(), clients: n}
	base, err := srv.rss()
	if err != nil {
		return res, err
	}
	baseFDs, err := srv.descriptors()
	if err != nil {
		return res, err
	}
	progress.start(fmt.Sprintf("%s: connecting %d idle clients", p.name(), n), int64(n))
	// Each client keeps reading, as a live one does, and counts if its
	// connection ends before the load tool closes it: the server cut it
	// off (EOF), or it failed (reset, or timed out). A figure over
	// clients that are gone means nothing: a client that leaves costs the
	// server the notices to everyone left, and the figure still divides
	// by n.
	var cutOff, failed atomic.Int64
	var firstFailure atomic.Pointer[error]
	drain := func(_ int, c client) {
		go func() {
			for {
				_, err := c.next()
				switch {
				case err == nil:
					continue
				case errors.Is(err, net.ErrClosed): // the load tool's own close, after the readings
				case errors.Is(err, io.EOF):
					cutOff.Add(1)
				default:
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, &err)
				}
				return
			}
		}()
	}
	join := func(i int) (client, error) {
		if spec.rooms <= 1 {
			return p.join(srv.addrFor(i), "")
		}
		return p.join(srv.addrFor(i), roomName(i%spec.rooms))
	}
	workers := burstJoins
	if spec.serial {
		workers = 1
	}
	clients, err := connectAll(n, workers, progress, join, drain)
	if err != nil {
		return res, err
	}
	defer closeAll(clients)
	lastJoin := time.Now()
	// The first reading is taken once the server is quiet, or first after
	// the last join if that is later.
	if err := waitQuiet(srv, progress, n); err != nil {
		return res, err
	}
	read := func(at time.Duration) (float64, error) {
		if wait := time.Until(lastJoin.Add(at)); wait > 0 {
			progress.start(fmt.Sprintf("%s: reading memory %v after the last join", p.name(), at), 0)
			time.Sleep(wait)
		}
		rss, err := srv.rss()
		if err != nil {
			return 0, err
		}
		// A connection the server dropped, and whose end its client has
		// not heard of (the kernel's reset lost, as the keep-alive probes
		// before it were), shows in its descriptors. (A server without a
		// process of its own, the tests' fake, has none to count.)
		fds, err := srv.descriptors()
		if err != nil {
			return 0, err
		}
		if held := fds - baseFDs; len(srv.cmds) > 0 && held < n {
			return 0, fmt.Errorf("%v after the last join the server holds %d descriptors more than before the joins, for %d idle clients: it lost some", at, held, n)
		}
		return float64(rss-base) / float64(n), nil
	}
	if res.rssPerConn, err = read(first); err != nil {
		return res, err
	}
	if late > 0 {
		if res.rssLatePerConn, err = read(late); err != nil {
			return res, err
		}
	}
	if k := cutOff.Load(); k > 0 {
		return res, fmt.Errorf("the server cut off %d of %d idle clients", k, n)
	}
	if k := failed.Load(); k > 0 {
		return res, fmt.Errorf("%d of %d idle clients lost their connection (the first: %w)", k, n, *firstFailure.Load())
	}
	return res, nil
}

// histogram is a log-linear latency histogram: 16 buckets per power of
// two, so every figure is within 1/16 of the truth. Recording allocates
// nothing and takes no lock: each receiver has its own.
type histogram struct {
	counts [64 * 16]int64
	n      int64
	max    time.Duration
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func bucket(v uint64) int {
	if v < 16 {
		return int(v)
	}
	e := bits.Len64(v) - 5 // the top five bits pick exponent and sub-bucket
	return (e+1)*16 + int(v>>uint(e)&15)
}

// bucketValue is the upper end of bucket i.
func bucketValue(i int) time.Duration {
	if i < 16 {
		return time.Duration(i)
	}
	e := i/16 - 1
	return time.Duration(uint64(16+i%16+1)<<uint(e) - 1)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n-1)) + 1
	var seen int64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			return min(bucketValue(i), h.max)
		}
	}
	return h.max
}
