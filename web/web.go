// Package web puts browsers in a chat room: [Handler] upgrades an HTTP
// request to a WebSocket (github.com/coder/websocket) and hands the
// connection to a [chatroom.Room], and [Page] serves the page that talks
// to it. Browser users and terminal users are in the same room.
//
// Each WebSocket text message carries protocol bytes exactly as a TCP
// stream does: lines ending in "\n", several to a message if need be, and
// what a browser sends is split into lines the same way. A binary message
// is refused with a close frame (StatusUnsupportedData). The room's line
// limit, rate limit, idle timeout and per-address limits apply as to any
// client.
//
// Before it upgrades a request, a Handler refuses what a hostile page or
// client could use: a Host that is not the server's (DNS rebinding), an
// Origin that is not the page's, and more WebSockets from one address than
// [WithMaxPerHost] allows. [Page] forbids framing and any script, style or
// connection but its own.
//
// A client that asks for the WebSocket subprotocol chatroom.v1.json
// ([Subprotocol]) speaks the JSON protocol instead ([JSONFace]): one JSON
// object per message each way, in as many rooms at once as it likes, with
// recovery of what it missed while it was away. The page uses it, and so
// does package web/client, a Go client for programs and bots.
package web

import (
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/chatroom-go/chatroom"
)

// A Server is what a [Handler] hands its connections to: a
// *chatroom.Hub (browsers land in its default room) or a *chatroom.Room
// (they land in that room).
type Server interface {
	ServeConn(conn net.Conn) error
	ServeConnFace(conn net.Conn, face chatroom.Face) error
}

// Handler is the WebSocket endpoint of a hub or a room. Create one with
// [NewHandler]; it is safe for concurrent use.
type Handler struct {
	srv     Server
	origins []string       // origin patterns accepted besides the request's own host
	hosts   []string       // Host patterns accepted besides localhost and the listener's own address
	proxies []netip.Prefix // addresses whose X-Forwarded-For is trusted
	log     *slog.Logger

	maxPerHost int     // WebSockets open at once per address; 0: no limit
	msgRate    float64 // messages a second read from one WebSocket, after msgBurst; 0: no limit
	msgBurst   int
	mu         sync.Mutex
	open       map[netip.Prefix]int // WebSockets open per address, loopback excepted
}

// An Option configures a [Handler].
type Option func(*Handler)

// WithOriginPatterns accepts WebSocket requests from pages served from
// hosts matching patterns (path.Match syntax, as in
// websocket.AcceptOptions: "example.com", "*.example.com"). Without it only
// a page served from the request's own host may connect: a page elsewhere
// cannot put its visitors' browsers in the room.
func WithOriginPatterns(patterns ...string) Option {
	return func(h *Handler) { h.origins = append(h.origins, patterns...) }
}

// WithAllowedHosts accepts requests whose Host header names one of hosts
// (path.Match patterns, without a port, matched ignoring case:
// "chat.example.com", "*.example.com"), besides the ones always accepted:
// "localhost" and the IP address the request arrived on. Any other Host is
// refused with 421 Misdirected Request before the Origin is looked at: a
// page that a DNS name of its own, rebound to this server's address, puts
// in the browser has that name as its Origin and its Host, and the Origin
// check alone would let it in. Behind a reverse proxy or under a DNS name,
// give the name users type.
func WithAllowedHosts(hosts ...string) Option {
	return func(h *Handler) {
		for _, host := range hosts {
			if _, err := path.Match(host, ""); err != nil {
				panic(fmt.Sprintf("web: WithAllowedHosts(%q): %v", host, err))
			}
			h.hosts = append(h.hosts, strings.TrimSuffix(strings.ToLower(host), "."))
		}
	}
}

// WithMaxPerHost caps the WebSockets open at once from one address at n:
// a request beyond it is refused with 429 Too Many Requests before it is
// upgraded, so that it costs no WebSocket and nothing in the room. The
// address is the client's (see [WithTrustedProxies]); an IPv6 address
// counts by its /64, which one host usually has to itself; loopback
// addresses are exempt, as in the room's own limit
// ([chatroom.WithMaxPerHost]). The default is [chatroom.DefaultMaxPerHost];
// 0 means no limit. NewHandler panics if n is negative.
func WithMaxPerHost(n int) Option {
	return func(h *Handler) {
		if n < 0 {
			panic(fmt.Sprintf("web: WithMaxPerHost(%d): limit must not be negative", n))
		}
		h.maxPerHost = n
	}
}

// WithTrustedProxies trusts the X-Forwarded-For header of requests that
// come from these networks (a reverse proxy in front of the handler): the
// client's address is then the last address in the header that is not a
// trusted proxy, and the room names the client, and counts its per-address
// limits, by it. Without it the header is ignored and the client's address
// is the request's RemoteAddr.
func WithTrustedProxies(networks ...netip.Prefix) Option {
	return func(h *Handler) { h.proxies = append(h.proxies, networks...) }
}

// WithMessageRate limits how fast each WebSocket's messages are read:
// burst at once, then perSecond a second. A client that sends messages
// faster is read more slowly, as the hub's flood control reads lines
// ([chatroom.WithRateLimit]): nothing is dropped, and what its messages
// cost the server is bounded however small they are (a stream of
// one-byte messages, which make no line, is paced like a stream of
// lines). The default is the hub's own default rate,
// [chatroom.DefaultRate] a second after [chatroom.DefaultRateBurst]; give
// the hub's rate here when it has another. (0, 0) turns it off.
// NewHandler panics if either is negative, or if only one of them is 0.
func WithMessageRate(perSecond float64, burst int) Option {
	return func(h *Handler) {
		if perSecond < 0 || burst < 0 || (perSecond == 0) != (burst == 0) {
			panic(fmt.Sprintf("web: WithMessageRate(%v, %d): rate and burst are both positive, or both 0 for no limit", perSecond, burst))
		}
		h.msgRate, h.msgBurst = perSecond, burst
	}
}

// WithLogger logs refused upgrades and why each WebSocket client's
// connection ended, at debug level. The default discards. NewHandler panics
// if l is nil.
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) {
		if l == nil {
			panic("web: WithLogger(nil): logger must not be nil")
		}
		h.log = l
	}
}

// NewHandler returns the WebSocket endpoint of srv, a *chatroom.Hub or a
// *chatroom.Room.
func NewHandler(srv Server, opts ...Option) *Handler {
	h := &Handler{srv: srv, log: slog.New(slog.DiscardHandler),
		maxPerHost: chatroom.DefaultMaxPerHost, open: make(map[netip.Prefix]int),
		msgRate: chatroom.DefaultRate, msgBurst: chatroom.DefaultRateBurst}
	for _, opt := range opts {
		opt(h)
	}
	return h
}

// ServeHTTP upgrades the request to a WebSocket and serves the connection
// until the client leaves: with the JSON protocol ([JSONFace]) if the
// client asks for [Subprotocol], with the text protocol (the server's
// ServeConn) otherwise. It refuses, without upgrading, a Host it does not
// serve (421, see [WithAllowedHosts]), an address with [WithMaxPerHost]
// WebSockets open already (429), and a cross-origin request (403) unless
// [WithOriginPatterns] allows it.
//
// The net.Conn the room gets implements Request() *http.Request, so that a
// [chatroom.WithAuth] hook can read the request (a cookie, a token):
//
//	if r, ok := conn.(interface{ Request() *http.Request }); ok { ... }
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hostAllowed(r) {
		h.log.Debug("websocket refused: unknown host", "remote", r.RemoteAddr, "host", r.Host)
		http.Error(w, fmt.Sprintf("unknown host %q: not one this server accepts WebSockets for", r.Host), http.StatusMisdirectedRequest)
		return
	}
	remote := h.clientAddr(r)
	release, ok := h.admit(remote)
	if !ok {
		h.log.Debug("websocket refused: too many from one address", "client", remote.String(), "max", h.maxPerHost)
		http.Error(w, fmt.Sprintf("too many connections from your address (max %d)", h.maxPerHost), http.StatusTooManyRequests)
		return
	}
	defer release()
	cw := &corkingWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		OriginPatterns:  h.origins,
		Subprotocols:    []string{Subprotocol},
		CompressionMode: websocket.CompressionDisabled, // messageConn frames lines itself
	})
	if err != nil {
		h.log.Debug("websocket refused", "remote", r.RemoteAddr, "err", err)
		return // Accept has answered the request
	}
	c := &Conn{remote: remote, req: r}
	if ws.Subprotocol() == Subprotocol {
		c.Conn = newMessageConn(r.Context(), ws, cw.conn, false, h.msgRate, h.msgBurst)
		err = h.srv.ServeConnFace(c, JSONFace{})
	} else {
		c.Conn = newMessageConn(r.Context(), ws, cw.conn, true, h.msgRate, h.msgBurst)
		err = h.srv.ServeConn(c)
	}
	if err != nil {
		h.log.Debug("websocket client left", "client", c.remote.String(), "err", err)
	}
}

// hostAllowed reports whether r's Host is one this handler serves:
// localhost, the IP address r arrived on, or one of WithAllowedHosts.
func (h *Handler) hostAllowed(r *http.Request) bool {
	host := r.Host
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	host = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")), ".")
	if host == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if lap, err := netip.ParseAddrPort(la.String()); err == nil && lap.Addr().Unmap().WithZone("") == a.Unmap().WithZone("") {
				return true
			}
		}
	}
	for _, pattern := range h.hosts {
		if ok, _ := path.Match(pattern, host); ok {
			return true
		}
	}
	return false
}

// admit counts a WebSocket from addr against WithMaxPerHost, or refuses
// it. release, which the caller must call once the WebSocket is over,
// counts it out again.
func (h *Handler) admit(addr net.Addr) (release func(), ok bool) {
	key, limited := hostKey(addr)
	if !limited || h.maxPerHost == 0 {
		return func() {}, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open[key] >= h.maxPerHost {
		return nil, false
	}
	h.open[key]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.open[key]--; h.open[key] == 0 {
			delete(h.open, key) // the map holds only addresses with something open
		}
	}, true
}

// hostKey returns the network that addr's per-address limit counts by:
// the IPv4 address itself, or an IPv6 address's /64. limited is false for
// loopback addresses, which are exempt, and for an address that is not IP.
func hostKey(addr net.Addr) (key netip.Prefix, limited bool) {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}, false
	}
	a := ap.Addr().Unmap().WithZone("")
	if a.IsLoopback() {
		return netip.Prefix{}, false
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	key, err = a.Prefix(bits)
	return key, err == nil
}

// Conn is a browser's connection as the room sees it: the WebSocket as a
// net.Conn, with the client's address and its HTTP request.
type Conn struct {
	net.Conn
	remote net.Addr
	req    *http.Request
}

// RemoteAddr is the client's address: the request's, or the one its
// trusted proxy forwarded (see [WithTrustedProxies]).
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Request is the HTTP request the WebSocket was opened with.
func (c *Conn) Request() *http.Request { return c.req }

// clientAddr returns the client's address: RemoteAddr, or the last
// X-Forwarded-For address that is not a trusted proxy when the request
// comes from one.
func (h *Handler) clientAddr(r *http.Request) net.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return stringAddr(r.RemoteAddr)
	}
	if !h.trusted(ap.Addr()) {
		return net.TCPAddrFromAddrPort(ap)
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing before it
		}
		if !h.trusted(a) {
			return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a.Unmap(), 0))
		}
	}
	return net.TCPAddrFromAddrPort(ap)
}

func (h *Handler) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range h.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// stringAddr is an address that is only a string.
type stringAddr string

func (a stringAddr) Network() string { return "websocket" }
func (a stringAddr) String() string  { return string(a) }

//go:embed page
var page embed.FS

// pageSecurityPolicy is the Content-Security-Policy of every response Page
// sends.
const pageSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Page serves the chat page: plain HTML, CSS and JavaScript, no build step.
// It connects to "ws" relative to its own address, so mount it at "/" with
// the [Handler] at "/ws". Every line from the room is shown as text, never
// as HTML. Every response carries a Content-Security-Policy under which
// the page's script, style and WebSocket come from its own origin only,
// nothing inline runs and no other site may frame it (frame-ancestors
// 'none'), X-Frame-Options DENY for browsers that predate frame-ancestors,
// X-Content-Type-Options nosniff and Referrer-Policy no-referrer.
func Page() http.Handler {
	sub, err := fs.Sub(page, "page")
	if err != nil {
		panic(err) // the embedded directory is part of the package
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := w.Header()
		header.Set("Content-Security-Policy", pageSecurityPolicy)
		header.Set("X-Frame-Options", "DENY")
		header.Set("X-Content-Type-Options", "nosniff")
		header.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(w, r)
	})
}
