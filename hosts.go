package chatroom

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// hosts keeps an account per remote address, for WithMaxPerHost,
// WithJoinRate and WithHostRate. An address is an IPv4 address, or an
// IPv6 address's network of the prefix WithHostPrefix sets (its /64 by
// default: one subscriber's allocation, 2^64 addresses). Readers consult it
// in ServeConn before their client asks the hub for a place, so that a
// refusal costs the hub goroutine nothing, and for each line under the
// per-address rate; it has a lock of its own, held only for a map lookup.
type hosts struct {
	max       int     // connections open at once per address; 0: no limit
	rate      float64 // new connections a second per address; 0: no rate limit
	burst     float64 // the bucket's size
	lineRate  float64 // lines a second per address, all its connections together; 0: no limit
	lineBurst float64 // the bucket's size
	v4, v6    int     // the prefix lengths that make an address's account

	mu      sync.Mutex
	m       map[netip.Addr]*host // by the account's address: the masked prefix
	sweepAt int                  // sweep m when it grows past this
}

// host is one address's account.
type host struct {
	open    int       // connections open from it, admitted or on their way in
	tokens  float64   // join-rate tokens, as of at
	at      time.Time // when tokens was last brought up to date
	lines   float64   // line tokens, as of linesAt; below 0 when lines wait for their turn
	linesAt time.Time
}

func newHosts(o options) *hosts {
	return &hosts{max: o.maxPerHost, rate: o.joinRate, burst: float64(o.joinBurst),
		lineRate: o.hostRate, lineBurst: float64(o.hostBurst), v4: o.hostPrefix4, v6: o.hostPrefix6,
		m: make(map[netip.Addr]*host), sweepAt: 1024}
}

// limited reports whether connections from addr are counted at all.
func (h *hosts) limited(addr netip.Addr) bool {
	return (h.max > 0 || h.rate > 0 || h.lineRate > 0) && addr.IsValid() && !addr.IsLoopback()
}

// account returns the address whose account addr's connections share: addr
// masked to its prefix.
func (h *hosts) account(addr netip.Addr) netip.Addr {
	bits := h.v4
	if addr.Is6() {
		bits = h.v6
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return addr
	}
	return p.Addr()
}

// lineWait takes a line token of addr's account at now, and returns how
// long the line must wait for it: 0 at once. The token is the line's
// whoever comes next: lines from one address's connections take their
// turns in the order they asked.
func (h *hosts) lineWait(addr netip.Addr, now time.Time) time.Duration {
	if h.lineRate <= 0 || !h.limited(addr) {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.m[h.account(addr)]
	if a == nil {
		return 0 // not counted: it was never let in
	}
	if a.linesAt.IsZero() {
		a.lines = h.lineBurst
	} else {
		a.lines = min(h.lineBurst, a.lines+now.Sub(a.linesAt).Seconds()*h.lineRate)
	}
	a.linesAt = now
	a.lines--
	if a.lines >= 0 {
		return 0
	}
	return time.Duration(-a.lines / h.lineRate * float64(time.Second))
}

// open counts a new connection from addr at now, or refuses it: it returns
// the words to refuse it with, or "". A connection that open lets in must
// be closed with close.
func (h *hosts) open(addr netip.Addr, now time.Time) (refusal string) {
	if !h.limited(addr) {
		return ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	key := h.account(addr)
	a := h.m[key]
	if a == nil {
		if len(h.m) >= h.sweepAt {
			h.sweep(now)
		}
		a = &host{tokens: h.burst, at: now}
		h.m[key] = a
	}
	if h.max > 0 && a.open >= h.max {
		return "too many connections from your address (max " + strconv.Itoa(h.max) + ")"
	}
	if h.rate > 0 {
		a.tokens = min(h.burst, a.tokens+now.Sub(a.at).Seconds()*h.rate)
		a.at = now
		if a.tokens < 1 {
			return "too many connections, try again later"
		}
		a.tokens--
	}
	a.open++
	return ""
}

// close counts a connection from addr, let in by open, as closed.
func (h *hosts) close(addr netip.Addr) {
	if !h.limited(addr) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if a := h.m[h.account(addr)]; a != nil {
		a.open--
	}
}

// sweep forgets the addresses with nothing open whose bucket has refilled:
// they are as if never seen. It keeps m proportional to the addresses
// actually active, however many come and go. h.mu must be held.
func (h *hosts) sweep(now time.Time) {
	for addr, a := range h.m {
		if a.open == 0 && (h.rate == 0 || a.tokens+now.Sub(a.at).Seconds()*h.rate >= h.burst) &&
			(h.lineRate == 0 || a.lines+now.Sub(a.linesAt).Seconds()*h.lineRate >= h.lineBurst) {
			delete(h.m, addr)
		}
	}
	h.sweepAt = max(1024, 2*len(h.m))
}

// hostOf returns the IP address of conn's remote end, or the zero Addr if
// it has none (a net.Pipe, an adapter that names its peer otherwise).
func hostOf(conn net.Conn) netip.Addr {
	ra := conn.RemoteAddr()
	if ra == nil {
		return netip.Addr{}
	}
	if tcp, ok := ra.(*net.TCPAddr); ok {
		return tcp.AddrPort().Addr().Unmap()
	}
	s := ra.String()
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}
