// Command chatroom serves a chat room, or joins one from the terminal.
//
// Usage:
//
//	chatroom [serve] [flags]      serve a room (the default)
//	chatroom join [flags] ADDR    join a room: print what arrives, send what you type
//
// Run "chatroom -h" or "chatroom join -h" for the flags.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/natsbus"
	"github.com/chatroom-go/chatroom/web"
)

func main() {
	args := os.Args[1:]
	mode := "serve"
	if len(args) > 0 && (args[0] == "serve" || args[0] == "join") {
		mode, args = args[0], args[1:]
	}
	var err error
	if mode == "join" {
		err = join(args, os.Stdin, os.Stdout)
	} else {
		err = serve(args)
	}
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "chatroom:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "chatroom:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line; it exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const serveUsage = `Usage: chatroom [serve] [flags]

Serves one chat room until SIGINT or SIGTERM, then shuts down gracefully:
every client is told "* server shutting down" and the program exits 0.
Connect with "chatroom join ADDR", nc, telnet or openssl s_client.

Flags:
`

func serve(args []string) error {
	fs := flag.NewFlagSet("chatroom serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), serveUsage)
		fs.PrintDefaults()
	}
	addr := fs.String("addr", "127.0.0.1:33333", "`address` to listen on (host:port)")
	maxClients := fs.Int("max-clients", chatroom.DefaultMaxClients, "most clients in the room at once; 0 means no limit")
	buffer := fs.Int("buffer", chatroom.DefaultBufferSize, "longest message a client may send, in `bytes`")
	idle := fs.Duration("idle", chatroom.DefaultIdleTimeout, "disconnect a client that sends no line for this long; 0 means never")
	writeTimeout := fs.Duration("write-timeout", chatroom.DefaultWriteTimeout, "evict a client whose socket takes longer than this to accept a write; 0 means never")
	outbox := fs.Int("outbox", chatroom.DefaultOutboxSize, "messages queued per client before it is evicted as too slow")
	history := fs.Int("history", chatroom.DefaultHistory, "chat lines a newcomer is shown on arrival")
	rate := fs.Float64("rate", chatroom.DefaultRate, fmt.Sprintf("lines a second read from one client, after a burst of %d; a faster client is read more slowly; 0 means no limit", chatroom.DefaultRateBurst))
	maxPerHost := fs.Int("max-per-host", chatroom.DefaultMaxPerHost, "most connections open at once from one IP address (loopback exempt); 0 means no limit")
	joinRate := fs.Float64("join-rate", chatroom.DefaultJoinRate, fmt.Sprintf("new connections a second from one IP address, after a burst of %d (loopback exempt); 0 means no limit", chatroom.DefaultJoinBurst))
	tlsCert := fs.String("tls-cert", "", "serve TLS with this certificate `file` (PEM); needs -tls-key")
	tlsKey := fs.String("tls-key", "", "private key `file` (PEM) for -tls-cert")
	grace := fs.Duration("grace", 10*time.Second, "on SIGINT or SIGTERM, how long to let clients take their last lines")
	httpAddr := fs.String("http", "", "also serve the web page at /, its WebSocket at /ws and Prometheus metrics at /metrics on this `address`, in the same room")
	natsURL := fs.String("nats", "", "serve this process's share of a room spread over every process with the same NATS server `URL` and -room (the server needs JetStream: nats-server -js)")
	roomName := fs.String("room", "lobby", "with -nats, the `name` of the hub spread over processes (the namespace of its NATS subjects, streams and buckets): 1 to 64 letters, digits, _ or -")
	maxRooms := fs.Int("max-rooms", 100, "most rooms open at once; newcomers land in lobby and move with /join; 1 means lobby alone (no /join)")
	ircSrv := addIRCFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve: unexpected argument %q", fs.Arg(0))}
	}
	switch {
	case *maxClients < 0:
		return usageError{"-max-clients must not be negative"}
	case *buffer <= 0:
		return usageError{"-buffer must be positive"}
	case *idle < 0:
		return usageError{"-idle must not be negative"}
	case *writeTimeout < 0:
		return usageError{"-write-timeout must not be negative"}
	case *outbox <= 0:
		return usageError{"-outbox must be positive"}
	case *history < 0:
		return usageError{"-history must not be negative"}
	case *maxRooms < 1:
		return usageError{"-max-rooms must be at least 1"}
	case *rate < 0 || math.IsNaN(*rate) || math.IsInf(*rate, 0):
		return usageError{"-rate must be a finite number, not negative"}
	case *maxPerHost < 0:
		return usageError{"-max-per-host must not be negative"}
	case *joinRate < 0 || math.IsNaN(*joinRate) || math.IsInf(*joinRate, 0):
		return usageError{"-join-rate must be a finite number, not negative"}
	case (*tlsCert == "") != (*tlsKey == ""):
		return usageError{"-tls-cert and -tls-key go together"}
	}
	if err := ircSrv.check(); err != nil {
		return err
	}
	roomSet := false
	fs.Visit(func(f *flag.Flag) { roomSet = roomSet || f.Name == "room" })
	if roomSet && *natsURL == "" {
		return usageError{"-room names a room spread over processes: it needs -nats"}
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS key pair: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, tlsConfig)
	}
	if err := ircSrv.listen(tlsConfig); err != nil {
		ln.Close()
		return err
	}
	defer ircSrv.close()

	joinBurst := chatroom.DefaultJoinBurst
	if *joinRate == 0 {
		joinBurst = 0
	}
	rateBurst := chatroom.DefaultRateBurst
	if *rate == 0 {
		rateBurst = 0
	}
	opts := []chatroom.Option{
		chatroom.WithHistory(*history),
		chatroom.WithRateLimit(*rate, rateBurst),
		chatroom.WithMaxPerHost(*maxPerHost),
		chatroom.WithJoinRate(*joinRate, joinBurst),
		chatroom.WithMaxClients(*maxClients),
		chatroom.WithBufferSize(*buffer),
		chatroom.WithIdleTimeout(*idle),
		chatroom.WithWriteTimeout(*writeTimeout),
		chatroom.WithOutboxSize(*outbox),
		chatroom.WithMaxRooms(*maxRooms),
		chatroom.WithLogger(logger),
	}
	opts = append(opts, ircSrv.options()...)
	if *natsURL != "" {
		bus, err := natsbus.Connect(*natsURL, *roomName, natsbus.WithLogger(logger))
		if err != nil {
			ln.Close()
			return err
		}
		opts = append(opts, chatroom.WithBus(bus)) // the room closes it
		logger.Info("sharing the room over NATS", "url", *natsURL, "room", *roomName, "peer", bus.ID())
	}
	room := chatroom.NewHub(opts...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var site *http.Server
	siteDone := make(chan error, 1)
	if *httpAddr != "" {
		hln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			ln.Close()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/", web.Page())
		mux.Handle("/ws", web.NewHandler(room, web.WithLogger(logger)))
		mux.Handle("/metrics", metricsHandler(room))
		site = &http.Server{Addr: hln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
		go func() { siteDone <- site.Serve(hln) }()
	}

	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	logger.Info("serving", "addr", ln.Addr().String(), "tls", *tlsCert != "")
	if site != nil {
		logger.Info("serving the web page", "addr", "http://"+site.Addr+"/")
	}
	ircSrv.serve(room, logger)
	defer ircSrv.wait() // its Serve returns once the room is closed

	select {
	case err := <-served: // the listener failed
		room.Close()
		closeSite(site, siteDone)
		return err
	case err := <-siteDone:
		room.Close()
		<-served
		return fmt.Errorf("web: %w", err)
	case err := <-ircSrv.done: // nil without -irc: never ready
		room.Close()
		<-served
		closeSite(site, siteDone)
		return fmt.Errorf("irc: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the usual way
	logger.Info("shutting down", "grace", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := room.Shutdown(sctx); err != nil {
		logger.Warn("shutdown cut short; closed the remaining clients", "err", err)
	}
	<-served
	closeSite(site, siteDone) // the room's WebSocket clients are gone: nothing is left to wait for
	s := room.Stats()
	logger.Info("stopped", "joined", s.Joined, "messages", s.Messages, "delivered", s.Delivered, "evicted", s.Evicted)
	return nil
}

// metricsHandler serves room's Stats, and the Go runtime's and the
// process's metrics, in Prometheus's text format.
func metricsHandler(room interface{ Stats() chatroom.Stats }) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{room}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// closeSite closes the web server, if there is one, and waits for it.
func closeSite(site *http.Server, done <-chan error) {
	if site != nil {
		site.Close()
		<-done
	}
}

const joinUsage = `Usage: chatroom join [flags] ADDR

Joins the room at ADDR (host:port): prints every line that arrives and
sends every line you type. "exit" or the end of input leaves the room.

Flags:
`

func join(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("chatroom join", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), joinUsage)
		fs.PrintDefaults()
	}
	useTLS := fs.Bool("tls", false, "connect with TLS")
	caFile := fs.String("ca", "", "with -tls, trust the certificates in this PEM `file` (for a self-signed server)")
	insecure := fs.Bool("insecure", false, "with -tls, do not verify the server's certificate at all")
	timeout := fs.Duration("timeout", 10*time.Second, "give up connecting after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Accept flags after the address too: "join 127.0.0.1:33333 -tls".
	addr := fs.Arg(0)
	if err := fs.Parse(fs.Args()[min(1, fs.NArg()):]); err != nil {
		return err
	}
	if addr == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{"join: want exactly one address"}
	}
	if (*caFile != "" || *insecure) && !*useTLS {
		return usageError{"join: -ca and -insecure need -tls"}
	}

	dialer := &net.Dialer{Timeout: *timeout}
	var conn net.Conn
	var err error
	if *useTLS {
		cfg := &tls.Config{InsecureSkipVerify: *insecure}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			if err != nil {
				return err
			}
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("join: no certificate in %s", *caFile)
			}
		}
		conn, err = tls.DialWithDialer(dialer, "tcp", addr, cfg)
	} else {
		conn, err = dialer.Dial("tcp", addr)
	}
	if err != nil {
		return err
	}
	defer conn.Close()

	// Everything the room sends goes to stdout until it closes the
	// connection: after "* bye", a shutdown, or an error.
	received := make(chan error, 1)
	go func() {
		_, err := io.Copy(stdout, conn)
		received <- err
	}()
	typed := make(chan error, 1)
	go func() {
		typed <- send(conn, stdin)
	}()

	select {
	case err := <-received:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		return err
	case err := <-typed:
		if err != nil && !errors.Is(err, errWrite) {
			return err
		}
		// End of input or "exit": the room answers "* bye" and closes;
		// wait for that, but not forever. A failed write means the room
		// closed first, and what it said on the way out is still to print.
		select {
		case err := <-received:
			return err
		case <-time.After(*timeout):
			return errors.New("join: the room did not close the connection")
		}
	}
}

// errWrite marks a failed write to the room, as opposed to a failed read of
// the terminal.
var errWrite = errors.New("write to room")

// send copies typed lines to the room until "exit" or the end of input, and
// at the end of input sends "exit" itself, so the room says goodbye and the
// others see the client leave.
func send(conn net.Conn, stdin io.Reader) error {
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64<<10), 1<<20)
	for in.Scan() {
		if _, err := fmt.Fprintf(conn, "%s\n", in.Bytes()); err != nil {
			return fmt.Errorf("%w: %w", errWrite, err)
		}
		if strings.EqualFold(strings.TrimSpace(in.Text()), "exit") {
			return nil
		}
	}
	if err := in.Err(); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "exit\n"); err != nil {
		return fmt.Errorf("%w: %w", errWrite, err)
	}
	return nil
}
