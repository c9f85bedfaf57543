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
// A client that asks for the WebSocket subprotocol chatroom.v1.json
// ([Subprotocol]) speaks the JSON protocol instead ([JSONFace]): one JSON
// object per message each way, in as many rooms at once as it likes, with
// recovery of what it missed while it was away. The page uses it, and so
// does package web/client, a Go client for programs and bots.
package web

import (
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

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
	proxies []netip.Prefix // addresses whose X-Forwarded-For is trusted
	log     *slog.Logger
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

// WithTrustedProxies trusts the X-Forwarded-For header of requests that
// come from these networks (a reverse proxy in front of the handler): the
// client's address is then the last address in the header that is not a
// trusted proxy, and the room names the client, and counts its per-address
// limits, by it. Without it the header is ignored and the client's address
// is the request's RemoteAddr.
func WithTrustedProxies(networks ...netip.Prefix) Option {
	return func(h *Handler) { h.proxies = append(h.proxies, networks...) }
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
	h := &Handler{srv: srv, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(h)
	}
	return h
}

// ServeHTTP upgrades the request to a WebSocket, refusing a cross-origin
// request (403) unless WithOriginPatterns allows it, and serves the
// connection until the client leaves: with the JSON protocol ([JSONFace])
// if the client asks for [Subprotocol], with the text protocol (the
// server's ServeConn) otherwise.
//
// The net.Conn the room gets implements Request() *http.Request, so that a
// [chatroom.WithAuth] hook can read the request (a cookie, a token):
//
//	if r, ok := conn.(interface{ Request() *http.Request }); ok { ... }
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.origins, Subprotocols: []string{Subprotocol}})
	if err != nil {
		h.log.Debug("websocket refused", "remote", r.RemoteAddr, "err", err)
		return // Accept has answered the request
	}
	c := &Conn{remote: h.clientAddr(r), req: r}
	if ws.Subprotocol() == Subprotocol {
		c.Conn = newMessageConn(r.Context(), ws)
		err = h.srv.ServeConnFace(c, JSONFace{})
	} else {
		c.Conn = websocket.NetConn(r.Context(), ws, websocket.MessageText)
		err = h.srv.ServeConn(c)
	}
	if err != nil {
		h.log.Debug("websocket client left", "client", c.remote.String(), "err", err)
	}
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

// Page serves the chat page: plain HTML, CSS and JavaScript, no build step.
// It connects to "ws" relative to its own address, so mount it at "/" with
// the [Handler] at "/ws". Every line from the room is shown as text, never
// as HTML.
func Page() http.Handler {
	sub, err := fs.Sub(page, "page")
	if err != nil {
		panic(err) // the embedded directory is part of the package
	}
	return http.FileServerFS(sub)
}
