package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/natsbus"
	"github.com/chatroom-go/chatroom/web"
)

const serveUsage = `Usage: chatroom [serve] [flags]

Serves one chat room until SIGINT or SIGTERM, then shuts down gracefully:
every client is told "* server shutting down" and the program exits 0.
Connect with "chatroom join ADDR", nc, telnet or openssl s_client.
"chatroom help" lists every command, "chatroom version" the build.

Flags:
`

// demoHistory is -history's default: enough for a page that reconnects
// after a restart, or a minute away, to get every line it missed in a
// lively room (the engine's default is none).
const demoHistory = 100

// demoKeepAlive is -keepalive's default, Redis's: Go's own (a probe after
// 15 s without traffic, then every 15 s) has every idle client cost a
// probe and its answer every 15 s, and 10 000 clients that arrived
// together are probed together.
const demoKeepAlive = 5 * time.Minute

// listenConfig returns how the demo listens for clients: with TCP
// keep-alive probes after period without traffic, then every period/3,
// the connection dropped after 3 unanswered (as Redis's tcp-keepalive
// does); with none for period 0.
func listenConfig(period time.Duration) *net.ListenConfig {
	if period == 0 {
		return &net.ListenConfig{KeepAlive: -1}
	}
	return &net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: period, Interval: period / 3, Count: 3}}
}

// serveConfig is what serve's flags say.
type serveConfig struct {
	addr           string
	maxClients     int
	buffer         int
	idle           time.Duration
	writeTimeout   time.Duration
	outbox         int
	history        int
	rate           float64
	maxPerHost     int
	joinRate       float64
	tlsCert        string
	tlsKey         string
	grace          time.Duration
	keepAlive      time.Duration
	httpAddr       string
	httpHosts      listFlag
	trustedProxies prefixFlag
	metricsAddr    string
	natsURL        string
	natsCreds      string
	natsNkey       string
	roomName       string
	maxRooms       int
	hostRate       float64
	irc            *ircServer
}

// serveFlags returns serve's flag set, which fills c.
func serveFlags(c *serveConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("chatroom serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:33333", "`address` to listen on (host:port)")
	fs.IntVar(&c.maxClients, "max-clients", chatroom.DefaultMaxClients, "most clients in the room at once; 0 means no limit")
	fs.IntVar(&c.buffer, "buffer", chatroom.DefaultBufferSize, "longest message a client may send, in `bytes`")
	fs.DurationVar(&c.idle, "idle", chatroom.DefaultIdleTimeout, "disconnect a client that sends no line for this long; 0 means never")
	fs.DurationVar(&c.writeTimeout, "write-timeout", chatroom.DefaultWriteTimeout, "evict a client whose socket takes longer than this to accept a write; 0 means never")
	fs.IntVar(&c.outbox, "outbox", chatroom.DefaultOutboxSize, "messages queued per client before it is evicted as too slow")
	fs.IntVar(&c.history, "history", demoHistory, "chat lines a room keeps: a newcomer is shown them, and a page that reconnects gets what it missed from them")
	fs.Float64Var(&c.rate, "rate", chatroom.DefaultRate, fmt.Sprintf("lines a second read from one client, after a burst of %d; a faster client is read more slowly; 0 means no limit", chatroom.DefaultRateBurst))
	fs.IntVar(&c.maxPerHost, "max-per-host", chatroom.DefaultMaxPerHost, "most connections open at once from one IP address, WebSockets included (loopback exempt; with -http an IPv6 address counts by its /64); 0 means no limit")
	fs.Float64Var(&c.joinRate, "join-rate", chatroom.DefaultJoinRate, fmt.Sprintf("new connections a second from one IP address, after a burst of %d (loopback exempt); 0 means no limit", chatroom.DefaultJoinBurst))
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve TLS with this certificate `file` (PEM), on -addr and on -http (HTTPS and WSS); needs -tls-key")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key `file` (PEM) for -tls-cert")
	fs.DurationVar(&c.grace, "grace", 10*time.Second, "on SIGINT or SIGTERM, how long to let clients take their last lines")
	fs.DurationVar(&c.keepAlive, "keepalive", demoKeepAlive, "send a client's connection a TCP keep-alive probe after this long without traffic, then every third of it, and drop it after 3 unanswered (Redis's tcp-keepalive), on -addr, -irc and -http; 0 means no probes")
	fs.StringVar(&c.httpAddr, "http", "", "also serve the web page at / and its WebSocket at /ws on this `address`, in the same room (HTTPS with -tls-cert)")
	fs.Var(&c.httpHosts, "http-host", "with -http, also accept WebSockets for this host `name` (the name users type; a pattern like *.example.com works; repeat, or separate with commas); localhost and the address a request arrives on are always accepted, any other name is refused (421) to defeat DNS rebinding")
	fs.Var(&c.trustedProxies, "trusted-proxy", "with -http, trust X-Forwarded-For from this `network` (a reverse proxy in front: CIDR, or one address; repeat, or separate with commas): the client is then the address the proxy forwarded, for its name and the per-address limits")
	fs.StringVar(&c.metricsAddr, "metrics", "", "serve Prometheus metrics at /metrics on this `address`, in plain HTTP: the room's Stats and the Go runtime's and process's metrics (Go version, descriptors, network counters), and the runtime's profiles at /debug/pprof/, so keep it on an operator's network; off unless given")
	fs.StringVar(&c.natsURL, "nats", "", "serve this process's share of a hub spread over every process with the same NATS server `URL` and -room (nats-server 2.11 or later with JetStream: nats-server -js; a user and password may be in the URL; see docs/nats.md for the permissions to set); exits 1 at start if the server cannot be reached")
	fs.StringVar(&c.natsCreds, "nats-creds", "", "with -nats, authenticate with this NATS credentials `file` (a user JWT and its seed)")
	fs.StringVar(&c.natsNkey, "nats-nkey", "", "with -nats, authenticate with the nkey whose seed is in this `file`")
	fs.StringVar(&c.roomName, "room", "lobby", "with -nats, the `name` of the hub spread over processes (the namespace of its NATS subjects, stream and bucket): 1 to 64 letters, digits, _ or -")
	fs.IntVar(&c.maxRooms, "max-rooms", 100, "most rooms open at once; newcomers land in lobby and move with /join; 1 means lobby alone (no /join)")
	c.irc = addIRCFlags(fs)
	fs.Float64Var(&c.hostRate, "host-rate", chatroom.DefaultHostRate, fmt.Sprintf("lines a second read from all the connections of one IP address together (an IPv6 address counts by its /64), after a burst of %d (loopback exempt); 0 means no limit", chatroom.DefaultHostBurst))
	return fs
}

// listFlag is a flag that may be repeated, each value a comma-separated
// list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// prefixFlag is a repeatable, comma-separated list of networks: CIDR
// prefixes, or single addresses.
type prefixFlag []netip.Prefix

func (p *prefixFlag) String() string {
	s := make([]string, len(*p))
	for i, prefix := range *p {
		s[i] = prefix.String()
	}
	return strings.Join(s, ",")
}

func (p *prefixFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return fmt.Errorf("%q is neither a network (CIDR, as 10.0.0.0/8) nor an address", v)
			}
			prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		*p = append(*p, prefix.Masked())
	}
	return nil
}

// parseServe parses and checks serve's command line.
func parseServe(args []string) (serveConfig, error) {
	var c serveConfig
	fs := serveFlags(&c)
	if err := fs.Parse(args); err != nil {
		return c, flagError(err)
	}
	if fs.NArg() > 0 {
		return c, usageError{fmt.Sprintf("serve: unexpected argument %q (commands: serve, join, help, version)", fs.Arg(0))}
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case c.maxClients < 0:
		return c, usageError{"-max-clients must not be negative"}
	case c.buffer <= 0:
		return c, usageError{"-buffer must be positive"}
	case c.idle < 0:
		return c, usageError{"-idle must not be negative"}
	case c.keepAlive != 0 && c.keepAlive < time.Second:
		return c, usageError{"-keepalive must be 0 or at least 1s"}
	case c.writeTimeout < 0:
		return c, usageError{"-write-timeout must not be negative"}
	case c.outbox <= 0:
		return c, usageError{"-outbox must be positive"}
	case c.history < 0:
		return c, usageError{"-history must not be negative"}
	case c.maxRooms < 1:
		return c, usageError{"-max-rooms must be at least 1"}
	case c.hostRate < 0 || math.IsNaN(c.hostRate) || math.IsInf(c.hostRate, 0):
		return c, usageError{"-host-rate must be a finite number, not negative"}
	case c.rate < 0 || math.IsNaN(c.rate) || math.IsInf(c.rate, 0):
		return c, usageError{"-rate must be a finite number, not negative"}
	case c.maxPerHost < 0:
		return c, usageError{"-max-per-host must not be negative"}
	case c.joinRate < 0 || math.IsNaN(c.joinRate) || math.IsInf(c.joinRate, 0):
		return c, usageError{"-join-rate must be a finite number, not negative"}
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return c, usageError{"-tls-cert and -tls-key go together"}
	case set["room"] && c.natsURL == "":
		return c, usageError{"-room names a hub spread over processes: it needs -nats"}
	case (c.natsCreds != "" || c.natsNkey != "") && c.natsURL == "":
		return c, usageError{"-nats-creds and -nats-nkey are credentials for -nats: they need it"}
	case set["trusted-proxy"] && c.httpAddr == "":
		return c, usageError{"-trusted-proxy is for the web page's requests: it needs -http"}
	case set["http-host"] && c.httpAddr == "":
		return c, usageError{"-http-host is for the web page's requests: it needs -http"}
	}
	if err := c.irc.check(); err != nil {
		return c, err
	}
	return c, nil
}

// serve runs the room that args describe until SIGINT or SIGTERM.
func serve(args []string) error {
	c, err := parseServe(args)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var tlsConfig *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return fmt.Errorf("loading TLS key pair: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	lc := listenConfig(c.keepAlive)
	ln, err := lc.Listen(context.Background(), "tcp", c.addr)
	if err != nil {
		return err
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
	}
	if err := c.irc.listen(lc, tlsConfig); err != nil {
		ln.Close()
		return err
	}
	defer c.irc.close()

	joinBurst := chatroom.DefaultJoinBurst
	if c.joinRate == 0 {
		joinBurst = 0
	}
	rateBurst := chatroom.DefaultRateBurst
	if c.rate == 0 {
		rateBurst = 0
	}
	hostBurst := chatroom.DefaultHostBurst
	if c.hostRate == 0 {
		hostBurst = 0
	}
	opts := []chatroom.Option{
		chatroom.WithHistory(c.history),
		chatroom.WithRateLimit(c.rate, rateBurst),
		chatroom.WithMaxPerHost(c.maxPerHost),
		chatroom.WithJoinRate(c.joinRate, joinBurst),
		chatroom.WithMaxClients(c.maxClients),
		chatroom.WithBufferSize(c.buffer),
		chatroom.WithIdleTimeout(c.idle),
		chatroom.WithWriteTimeout(c.writeTimeout),
		chatroom.WithOutboxSize(c.outbox),
		chatroom.WithMaxRooms(c.maxRooms),
		chatroom.WithHostRate(c.hostRate, hostBurst),
		chatroom.WithLogger(logger),
	}
	opts = append(opts, c.irc.options()...)
	if c.natsURL != "" {
		busOpts := []natsbus.Option{natsbus.WithLogger(logger)}
		if c.natsCreds != "" {
			busOpts = append(busOpts, natsbus.WithCredsFile(c.natsCreds))
		}
		if c.natsNkey != "" {
			busOpts = append(busOpts, natsbus.WithNkeyFile(c.natsNkey))
		}
		bus, err := natsbus.Connect(c.natsURL, c.roomName, busOpts...)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-nats: %w; the room needs a NATS server with JetStream at that URL (nats-server -js), or leave -nats out", err)
		}
		opts = append(opts, chatroom.WithBus(bus)) // the hub closes it
		logger.Info("sharing the hub over NATS", "url", c.natsURL, "room", c.roomName, "peer", bus.ID())
	}
	room := chatroom.NewHub(opts...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The web page and the metrics, each on an HTTP server of its own.
	var sites []*site
	siteFailed := make(chan error, 2)
	closeSites := func() {
		for _, s := range sites {
			s.close()
		}
	}
	if c.httpAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/", web.Page())
		mux.Handle("/ws", web.NewHandler(room,
			web.WithLogger(logger),
			web.WithMaxPerHost(c.maxPerHost),
			web.WithAllowedHosts(c.httpHosts...),
			web.WithTrustedProxies(c.trustedProxies...),
			web.WithMessageRate(c.rate, rateBurst), // a message is paced as a line
		))
		var siteTLS *tls.Config
		if tlsConfig != nil {
			// HTTP/1.1 only: a WebSocket takes over its connection, which
			// HTTP/2 has no way to hand over.
			siteTLS = &tls.Config{Certificates: tlsConfig.Certificates, NextProtos: []string{"http/1.1"}}
		}
		limits := siteLimits
		limits.keepAlive = c.keepAlive // its WebSockets are clients as those on -addr are
		s, err := startSite("web page", c.httpAddr, "/", mux, siteTLS, limits, logger, siteFailed)
		if err != nil {
			room.Close()
			ln.Close()
			return err
		}
		sites = append(sites, s)
	}
	if c.metricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(room))
		// The runtime's profiles, for an operator to see where the time and
		// the memory go: as private as the metrics.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s, err := startSite("metrics", c.metricsAddr, "/metrics", mux, nil, siteLimits, logger, siteFailed)
		if err != nil {
			closeSites()
			room.Close()
			ln.Close()
			return err
		}
		sites = append(sites, s)
	}

	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "tls", tlsConfig != nil)
	for _, s := range sites {
		logger.Info("serving the "+s.name, "addr", s.url)
	}
	c.irc.serve(room, logger)
	defer c.irc.wait() // its Serve returns once the hub is closed

	select {
	case err := <-served: // the listener failed
		room.Close()
		closeSites()
		return err
	case err := <-siteFailed:
		room.Close()
		<-served
		closeSites()
		return err
	case err := <-c.irc.done: // nil without -irc: never ready
		room.Close()
		<-served
		closeSites()
		return fmt.Errorf("irc: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the usual way
	logger.Info("shutting down", "grace", c.grace)
	sctx, cancel := context.WithTimeout(context.Background(), c.grace)
	defer cancel()
	if err := room.Shutdown(sctx); err != nil {
		logger.Warn("shutdown cut short; closed the remaining clients", "err", err)
	}
	<-served
	closeSites() // the room's WebSocket clients are gone: nothing is left to wait for
	s := room.Stats()
	logger.Info("stopped", "joined", s.Joined, "messages", s.Messages, "delivered", s.Delivered, "evicted", s.Evicted)
	return nil
}
