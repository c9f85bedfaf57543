// Command chatbench is the load tool for chatroom. It runs the same
// workloads against a chat room, a redis-server (pub/sub) and a
// nats-server on this machine, side by side, and reports deliveries per
// second, latency, lost and duplicated messages, and each server's own CPU
// time per delivery and memory per idle client, read from /proc.
//
// Usage:
//
//	chatbench [flags] fanout|latency|idle|rooms|ramp|all
//
// Run "chatbench -h" for the workloads and flags.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const usage = `Usage: chatbench [flags] WORKLOAD...

Runs workloads against a chat room (the demo program, cmd/chatroom, built
from this workspace and run as a user runs it, with its flood control off:
-rate 0), redis-server (SUBSCRIBE/PUBLISH) and nats-server (SUB/PUB, echo
off), each started fresh on free 127.0.0.1 ports for every run. The room's
clients speak its text protocol over TCP (server room), or over its
WebSocket (room-ws), the JSON protocol over its WebSocket (room-json: a
say per message, the sender's own lines echoed back and counted), or IRC
(room-irc: NICK, USER, JOIN #lobby, PRIVMSG). A peer that is not installed
is skipped with a note. With -baseline-bin, "baseline" is another build of
the demo (an older commit, say) run the same way, for side-by-side figures.

Workloads:
  fanout   -clients receivers, the first -senders of which each send
           -messages of -size bytes, at most -window in flight per sender,
           once the server is quiet after the joins;
           reports deliveries/s, latency, lost, duplicated, the
           server's CPU time per delivery, and how many deliveries it
           made per write system call
  latency  one sender at -rate messages/s to -clients receivers
  idle     -idle-clients connected clients that say nothing: the server's
           resident memory per client, read 10 s after the last join and
           again -idle-late after it, with nothing done to the server;
           the clients spread evenly over each of -idle-rooms rooms (the
           room: /join room-<i>; Redis: SUBSCRIBE room-<i>; NATS: SUB
           room-<i>; 1: everyone in the default room, no /join), and
           arrive as each of -arrive says
  rooms    quiet rooms: -rooms rooms of -room-clients clients each (the
           room: each client says /join room-<i>, the demo run with
           -max-rooms -rooms+1; Redis: each client SUBSCRIBEs to its room's
           channel and PUBLISHes there, over RESP3; NATS: SUB and PUB on
           the room's subject), each room saying one line of -size bytes
           a second from a member picked at random, the rooms' phases
           spread over the second, for -duration, once the server is
           quiet after the joins; every other member must get each line
           once; reports server CPU per delivery, the server's and the
           load tool's CPU as a share of a core, latency, lost, duplicated
  ramp     fan-out at each of -ramp client counts (-ramp-senders,
           -ramp-messages); writes -csv and plots -plot
  recover  room-json only: a client of the JSON protocol leaves having seen
           a line, another says -recover-lines lines, and the first
           reconnects asking for what came after its line; every line
           must come back once, in order, before "synced". The demo runs
           with -history -recover-lines+1 and an -outbox of twice that at
           least (the hub gives a recovering client at most half its
           outbox). -recover-rounds times in each run; reports the time
           from the dial to "synced", over every reconnection of every run
  all      every workload above, then the ramp

Every figure is the median of -runs runs. Install the peers with
  apt-get install redis-server
  go install github.com/nats-io/nats-server/v2@v2.15.2

Flags:
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chatbench:", err)
			os.Exit(1)
		}
	}
}

// config is the command line.
type config struct {
	servers       []string
	runs          int
	clients       int
	senders       int
	messages      int
	size          int
	window        int
	rate          int
	latencyMsgs   int
	idleClients   []int
	idleLate      time.Duration
	idleRooms     []int
	arrivals      []string
	rooms         int
	roomClients   int
	duration      time.Duration
	goroutines    bool
	recoverLines  int
	recoverRounds int
	ramp          []int
	rampSenders   int
	rampMessages  int
	outbox        int
	csvPath       string
	plotPath      string
	quiet         bool
	paths         serverPaths
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var cfg config
	servers := fs.String("servers", "room,redis,nats", "comma-separated `list` of servers to run against: room, room-ws (the room's text protocol on its WebSocket, as the page used it), room-json (the JSON protocol on its WebSocket, chatroom.v1.json, as the page and web/client use it), room-irc (IRC, on the demo's -irc listener), room-nats1, room-nats2, room-nats3 (one room over 1, 2 or 3 processes and a nats-server with JetStream, clients spread over them), baseline, redis, nats")
	fs.IntVar(&cfg.runs, "runs", 3, "runs per figure; the median is reported")
	fs.IntVar(&cfg.clients, "clients", 100, "fanout and latency: connected clients")
	fs.IntVar(&cfg.senders, "senders", 10, "fanout: how many of the clients send")
	fs.IntVar(&cfg.messages, "messages", 2000, "fanout: messages per sender")
	fs.IntVar(&cfg.size, "size", 64, "message payload in `bytes` (at least 40: it carries sender, sequence and time)")
	fs.IntVar(&cfg.window, "window", 64, "fanout: messages per sender sent but not yet received by everyone")
	fs.IntVar(&cfg.rate, "rate", 500, "latency: messages per second from the one sender")
	fs.IntVar(&cfg.latencyMsgs, "latency-messages", 5000, "latency: messages to send")
	idle := fs.String("idle-clients", "2000,10000", "idle: comma-separated client `counts`")
	fs.DurationVar(&cfg.idleLate, "idle-late", 3*time.Minute, "idle: read memory a second time this long after the last join (0: only at 10 s)")
	idleRooms := fs.String("idle-rooms", "1", "idle: comma-separated room `counts` to spread the clients over (1: everyone in the default room)")
	arrive := fs.String("arrive", "burst", "idle: how the clients arrive, a comma-separated `list` of burst (16 connecting at a time, as before) and serial (one after the other, each once the one before it is in)")
	fs.IntVar(&cfg.rooms, "rooms", 1000, "rooms: how many rooms")
	fs.IntVar(&cfg.roomClients, "room-clients", 10, "rooms: clients in each room (at least 2)")
	fs.DurationVar(&cfg.duration, "duration", 30*time.Second, "rooms: how long the rooms talk, in whole seconds (a line per room per second)")
	fs.BoolVar(&cfg.goroutines, "room-goroutines", false, "rooms: read each client on a goroutine of its own, as the other workloads do, instead of the load tool's epoll loop (Linux), which spares the load tool a read call and a wake-up per line (at 1000x10 against Redis: 22% of a core instead of 29%)")
	ramp := fs.String("ramp", "100,1000,5000,10000", "ramp: comma-separated client `counts`")
	fs.IntVar(&cfg.rampSenders, "ramp-senders", 4, "ramp: senders at each count")
	fs.IntVar(&cfg.rampMessages, "ramp-messages", 500, "ramp: messages per sender at each count")
	fs.IntVar(&cfg.recoverLines, "recover-lines", 1000, "recover: lines missed before each reconnection")
	fs.IntVar(&cfg.recoverRounds, "recover-rounds", 5, "recover: reconnections in each run")
	fs.IntVar(&cfg.outbox, "outbox", 1024, "the room's outbox size (chatroom.WithOutboxSize)")
	fs.StringVar(&cfg.csvPath, "csv", "ramp.csv", "ramp: write the figures to this CSV `file`")
	fs.StringVar(&cfg.plotPath, "plot", "ramp.png", "ramp: plot deliveries/s and CPU per delivery to this PNG `file`")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write the load tool's own CPU profile to this `file` (go tool pprof reads it)")
	redisPath := fs.String("redis-server", "", "path of redis-server (default: found in PATH)")
	natsPath := fs.String("nats-server", "", "path of nats-server (default: found in PATH or $GOPATH/bin)")
	roomBin := fs.String("room-bin", "", "path of the room's demo `binary` (default: go build ./cmd/chatroom of this workspace)")
	baselineBin := fs.String("baseline-bin", "", "path of another build of the demo `binary`, run as server \"baseline\" (add it to -servers)")
	baselineArgs := fs.String("baseline-args", "", "space-separated `flags` for the baseline beside -addr, -outbox and (for rooms, and idle in more than one room) -max-rooms (the room gets -rate 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.servers = strings.Split(*servers, ",")
	var err error
	if cfg.idleClients, err = parseCounts(*idle); err != nil {
		return fmt.Errorf("-idle-clients: %w", err)
	}
	if cfg.ramp, err = parseCounts(*ramp); err != nil {
		return fmt.Errorf("-ramp: %w", err)
	}
	if cfg.idleRooms, err = parseCounts(*idleRooms); err != nil {
		return fmt.Errorf("-idle-rooms: %w", err)
	}
	for _, a := range strings.Split(*arrive, ",") {
		if a = strings.TrimSpace(a); a != "burst" && a != "serial" {
			return fmt.Errorf("-arrive: %q is neither burst nor serial", a)
		}
		cfg.arrivals = append(cfg.arrivals, a)
	}
	switch {
	case cfg.size < 40:
		return errors.New("-size must be at least 40")
	case cfg.senders < 1 || cfg.senders > cfg.clients:
		return errors.New("-senders must be between 1 and -clients")
	case cfg.runs < 1:
		return errors.New("-runs must be at least 1")
	case cfg.rooms < 1:
		return errors.New("-rooms must be at least 1")
	case cfg.roomClients < 2:
		return errors.New("-room-clients must be at least 2: a line needs someone to hear it")
	case cfg.duration < roomInterval:
		return errors.New("-duration must be at least 1s")
	case cfg.recoverLines < 1 || cfg.recoverRounds < 1:
		return errors.New("-recover-lines and -recover-rounds must be at least 1")
	case fs.NArg() == 0:
		fs.Usage()
		return errors.New("name a workload")
	}
	for _, s := range cfg.servers {
		if protocolFor(s) == nil {
			return fmt.Errorf("-servers: unknown server %q", s)
		}
		if s == "baseline" && *baselineBin == "" {
			return errors.New("-servers: baseline needs -baseline-bin")
		}
	}
	cfg.paths = serverPaths{redis: findBinary("redis-server", *redisPath), nats: findBinary("nats-server", *natsPath),
		room: *roomBin, baseline: *baselineBin, baselineArgs: strings.Fields(*baselineArgs)}
	if cfg.paths.room == "" && slices.ContainsFunc(cfg.servers, func(s string) bool { return strings.HasPrefix(s, "room") }) {
		bin, cleanup, err := buildRoom()
		if err != nil {
			return err
		}
		defer cleanup()
		cfg.paths.room = bin
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}

	b := &bench{cfg: cfg, out: stdout, progress: &progress{w: stderr, quiet: cfg.quiet}}
	for _, w := range fs.Args() {
		var err error
		switch w {
		case "fanout":
			err = b.fanout()
		case "latency":
			err = b.latency()
		case "idle":
			err = b.idle()
		case "rooms":
			err = b.rooms()
		case "ramp":
			err = b.ramp()
		case "recover":
			err = b.recoverTable()
		case "all":
			err = errors.Join(b.fanout(), b.latency(), b.idle(), b.rooms(), b.recoverTable(), b.ramp())
		default:
			return fmt.Errorf("unknown workload %q", w)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive count", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func protocolFor(name string) protocol {
	switch name {
	case "room", "baseline":
		return roomProto{label: name}
	case "room-ws":
		return roomWSProto{}
	case "room-json":
		return jsonProto{}
	case "room-irc":
		return ircProto{}
	case "redis":
		return redisProto{}
	case "nats":
		return natsProto{}
	}
	if natsRooms(name) > 0 {
		return roomProto{label: name}
	}
	return nil
}

type bench struct {
	cfg      config
	out      io.Writer
	progress *progress
}

// medianRuns runs f cfg.runs times, on a fresh server each time (the room
// with -max-rooms maxRooms, unless 0), and returns the figures of median.
func (b *bench) medianRuns(kind string, maxRooms int, f func(protocol, *server) (result, error)) (result, error) {
	var rs []result
	for range b.cfg.runs {
		srv, err := startServer(kind, b.cfg.paths, serverOpts{outbox: b.cfg.outbox, maxRooms: maxRooms})
		if err != nil {
			return result{}, err
		}
		r, err := f(protocolFor(kind), srv)
		srv.stop()
		if err != nil {
			return result{}, fmt.Errorf("%s: %w", kind, err)
		}
		rs = append(rs, r)
	}
	return median(rs), nil
}

// median takes each figure's median across runs, independently, except
// latency (the histogram of the run with the median p99) and losses and
// repeats (the worst run's: one lossy run is worth reporting).
func median(rs []result) result {
	m := rs[0]
	pick := func(get func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = get(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	m.throughput = pick(func(r result) float64 { return r.throughput })
	m.serverCPU = time.Duration(pick(func(r result) float64 { return float64(r.serverCPU) }))
	m.writeCalls = int64(pick(func(r result) float64 { return float64(r.writeCalls) }))
	m.deliveries = int64(pick(func(r result) float64 { return float64(r.deliveries) }))
	m.rssPerConn = pick(func(r result) float64 { return r.rssPerConn })
	m.rssLatePerConn = pick(func(r result) float64 { return r.rssLatePerConn })
	m.window = time.Duration(pick(func(r result) float64 { return float64(r.window) }))
	m.loadCPU = time.Duration(pick(func(r result) float64 { return float64(r.loadCPU) }))
	// Latency: the run with the median p99 stands for all.
	slices.SortFunc(rs, func(a, b result) int { return int(a.latency.quantile(0.99) - b.latency.quantile(0.99)) })
	m.latency = rs[len(rs)/2].latency
	for _, r := range rs {
		m.lost = max(m.lost, r.lost)
		m.dups = max(m.dups, r.dups)
	}
	return m
}

func (b *bench) skip(kind string, err error) bool {
	b.progress.end()
	if errors.Is(err, errMissing) {
		fmt.Fprintf(b.out, "| %s | skipped: %v |\n", kind, err)
		return true
	}
	return false
}

func (b *bench) fanoutTable(title string, spec fanoutSpec) ([]result, error) {
	fmt.Fprintf(b.out, "\n### %s\n\n", title)
	fmt.Fprintln(b.out, "| server | deliveries/s | server CPU per delivery | vs redis | deliveries per write call | p50 | p99 | max | lost | duplicated |")
	fmt.Fprintln(b.out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var out []result
	var redisCPU time.Duration
	for _, kind := range b.cfg.servers {
		r, err := b.medianRuns(kind, 0, func(p protocol, s *server) (result, error) { return runFanout(p, s, spec, b.progress) })
		if b.skip(kind, err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if kind == "redis" {
			redisCPU = r.cpuPerDelivery()
		}
		out = append(out, r)
	}
	b.progress.end()
	for _, r := range out {
		ratio := "–"
		if redisCPU > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(r.cpuPerDelivery())/float64(redisCPU))
		}
		fmt.Fprintf(b.out, "| %s | %.0f | %.3f µs | %s | %.1f | %v | %v | %v | %d | %d |\n", r.server, r.throughput,
			float64(r.cpuPerDelivery())/1e3, ratio, r.perWrite(), round(r.latency.quantile(0.5)), round(r.latency.quantile(0.99)),
			round(r.latency.max), r.lost, r.dups)
	}
	return out, nil
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func (b *bench) fanout() error {
	c := b.cfg
	_, err := b.fanoutTable(fmt.Sprintf("fanout: %d clients, %d senders x %d messages of %d bytes, window %d (median of %d)",
		c.clients, c.senders, c.messages, c.size, c.window, c.runs),
		fanoutSpec{clients: c.clients, senders: c.senders, messages: c.messages, size: c.size, window: c.window})
	return err
}

func (b *bench) latency() error {
	c := b.cfg
	_, err := b.fanoutTable(fmt.Sprintf("latency: 1 sender at %d msg/s to %d receivers, %d messages (median of %d)",
		c.rate, c.clients, c.latencyMsgs, c.runs),
		fanoutSpec{clients: c.clients, senders: 1, messages: c.latencyMsgs, size: c.size, window: c.latencyMsgs, rate: c.rate})
	return err
}

func (b *bench) idle() error {
	late := "–"
	if b.cfg.idleLate > 0 {
		late = b.cfg.idleLate.String()
	}
	fmt.Fprintf(b.out, "\n### idle: server resident memory per connected client, 10 s and %s after the last join (median of %d)\n\n", late, b.cfg.runs)
	fmt.Fprintf(b.out, "| server | clients | rooms | arrival | RSS per client at 10 s | at %s |\n", late)
	fmt.Fprintln(b.out, "| --- | --- | --- | --- | --- | --- |")
	for _, n := range b.cfg.idleClients {
		for _, rooms := range b.cfg.idleRooms {
			rooms = min(rooms, n)
			maxRooms := 0 // one room: the demo's defaults, no /join
			if rooms > 1 {
				maxRooms = rooms + 1 // and the default room, where newcomers land
			}
			for _, arrival := range b.cfg.arrivals {
				spec := idleSpec{clients: n, rooms: rooms, serial: arrival == "serial"}
				for _, kind := range b.cfg.servers {
					r, err := b.medianRuns(kind, maxRooms, func(p protocol, s *server) (result, error) {
						return runIdle(p, s, spec, idleFirstReading, b.cfg.idleLate, b.progress)
					})
					if b.skip(kind, err) {
						continue
					}
					if err != nil {
						return err
					}
					b.progress.end()
					lateFigure := "–"
					if b.cfg.idleLate > 0 {
						lateFigure = fmt.Sprintf("%.1f KiB", r.rssLatePerConn/1024)
					}
					fmt.Fprintf(b.out, "| %s | %d | %d | %s | %.1f KiB | %s |\n", kind, n, rooms, arrival, r.rssPerConn/1024, lateFigure)
				}
			}
		}
	}
	return nil
}

// roomInterval is how often each room of the rooms workload says a line.
const roomInterval = time.Second

// rooms runs the quiet rooms workload against every server and prints a
// table of the medians.
func (b *bench) rooms() error {
	c := b.cfg
	spec := roomsSpec{rooms: c.rooms, members: c.roomClients, lines: int(c.duration / roomInterval), size: c.size,
		interval: roomInterval, goroutines: c.goroutines}
	fmt.Fprintf(b.out, "\n### rooms: %d rooms x %d clients, a line of %d bytes a second in each room for %v (median of %d)\n\n",
		spec.rooms, spec.members, spec.size, time.Duration(spec.lines)*roomInterval, c.runs)
	fmt.Fprintln(b.out, "| server | deliveries | server CPU per delivery | vs redis | server CPU | load tool CPU | deliveries per write call | p50 | p99 | max | lost | duplicated |")
	fmt.Fprintln(b.out, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	var out []result
	var redisCPU time.Duration
	for _, kind := range c.servers {
		r, err := b.medianRuns(kind, spec.rooms+1, func(p protocol, s *server) (result, error) { return runRooms(p, s, spec, b.progress) })
		if b.skip(kind, err) {
			continue
		}
		if err != nil {
			return err
		}
		if kind == "redis" {
			redisCPU = r.cpuPerDelivery()
		}
		out = append(out, r)
	}
	b.progress.end()
	for _, r := range out {
		ratio := "–"
		if redisCPU > 0 {
			ratio = fmt.Sprintf("%.2fx", float64(r.cpuPerDelivery())/float64(redisCPU))
		}
		fmt.Fprintf(b.out, "| %s | %d | %.2f µs | %s | %.1f%% | %.1f%% | %.1f | %v | %v | %v | %d | %d |\n", r.server, r.deliveries,
			float64(r.cpuPerDelivery())/1e3, ratio, 100*r.share(r.serverCPU), 100*r.share(r.loadCPU), r.perWrite(),
			round(r.latency.quantile(0.5)), round(r.latency.quantile(0.99)), round(r.latency.max), r.lost, r.dups)
	}
	return nil
}

func (b *bench) ramp() error {
	c := b.cfg
	var all []result
	for _, n := range c.ramp {
		rs, err := b.fanoutTable(fmt.Sprintf("ramp: %d clients, %d senders x %d messages (median of %d)", n, c.rampSenders, c.rampMessages, c.runs),
			fanoutSpec{clients: n, senders: min(c.rampSenders, n), messages: c.rampMessages, size: c.size, window: c.window})
		if err != nil {
			return err
		}
		all = append(all, rs...)
	}
	if err := writeCSV(c.csvPath, all); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "\nwrote %s\n", c.csvPath)
	if err := plotRamp(c.plotPath, all); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "wrote %s\n", c.plotPath)
	return nil
}

func writeCSV(path string, rs []result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"server", "clients", "deliveries_per_s", "cpu_ns_per_delivery", "deliveries_per_write", "p50_us", "p99_us", "max_us", "lost", "duplicated"})
	for _, r := range rs {
		w.Write([]string{r.server, strconv.Itoa(r.clients), fmt.Sprintf("%.0f", r.throughput),
			strconv.FormatInt(int64(r.cpuPerDelivery()), 10),
			strconv.FormatFloat(r.perWrite(), 'f', 1, 64),
			strconv.FormatInt(r.latency.quantile(0.5).Microseconds(), 10),
			strconv.FormatInt(r.latency.quantile(0.99).Microseconds(), 10),
			strconv.FormatInt(r.latency.max.Microseconds(), 10),
			strconv.FormatInt(r.lost, 10), strconv.FormatInt(r.dups, 10)})
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}

// progress prints a line to stderr, at most once a second, for long steps.
type progress struct {
	w       io.Writer
	quiet   bool
	label   string
	total   int64
	done    atomic.Int64
	began   time.Time
	mu      sync.Mutex // serializes printing
	printed bool       // a progress line is on the screen, unfinished
}

func (p *progress) start(label string, total int64) {
	p.end()
	p.label, p.total, p.began = label, total, time.Now()
	p.done.Store(0)
}

// end finishes the current progress line, if one was printed.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprintln(p.w)
		p.printed = false
	}
}

func (p *progress) add(n int64) {
	if p.done.Add(n)%1000 == 0 {
		p.print(p.done.Load())
	}
}

func (p *progress) print(done int64) {
	if p.quiet || time.Since(p.began) < time.Second {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.total == 0 {
		fmt.Fprintf(p.w, "\r%s: %v   ", p.label, time.Since(p.began).Round(time.Second))
	} else {
		fmt.Fprintf(p.w, "\r%s: %d/%d (%.0f%%) after %v   ", p.label, done, p.total,
			100*float64(done)/float64(max(p.total, 1)), time.Since(p.began).Round(time.Second))
	}
	p.printed = true
}

// follow prints counter's progress every second until the returned stop
// is called.
func (p *progress) follow(counter *atomic.Int64) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				p.print(counter.Load())
				p.end()
				return
			case <-tick.C:
				p.print(counter.Load())
			}
		}
	}()
	return func() { close(done); <-stopped }
}
