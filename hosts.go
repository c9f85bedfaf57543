package chatroom

import (
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// hosts counts connections per remote IP address, for WithMaxPerHost and
// WithJoinRate. Readers consult it in ServeConn before their client asks
// the hub for a place, so that a refusal costs the hub goroutine
// nothing; it has a lock of its own, held only for a map lookup.
type hosts struct {
	max   int     // connections open at once per address; 0: no limit
	rate  float64 // tokens a second per address; 0: no rate limit
	burst float64 // the bucket's size

	mu      sync.Mutex
	m       map[netip.Addr]*host
	sweepAt int // sweep m when it grows past this
}

// host is one address's account.
type host struct {
	open   int       // connections open from it, admitted or on their way in
	tokens float64   // join-rate tokens, as of at
	at     time.Time // when tokens was last brought up to date
}

func newHosts(o options) *hosts {
	return &hosts{max: o.maxPerHost, rate: o.joinRate, burst: float64(o.joinBurst),
		m: make(map[netip.Addr]*host), sweepAt: 1024}
}

// limited reports whether connections from addr are counted at all.
func (h *hosts) limited(addr netip.Addr) bool {
	return (h.max > 0 || h.rate > 0) && addr.IsValid() && !addr.IsLoopback()
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
	a := h.m[addr]
	if a == nil {
		if len(h.m) >= h.sweepAt {
			h.sweep(now)
		}
		a = &host{tokens: h.burst, at: now}
		h.m[addr] = a
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
	if a := h.m[addr]; a != nil {
		a.open--
	}
}

// sweep forgets the addresses with nothing open whose bucket has refilled:
// they are as if never seen. It keeps m proportional to the addresses
// actually active, however many come and go. h.mu must be held.
func (h *hosts) sweep(now time.Time) {
	for addr, a := range h.m {
		if a.open == 0 && (h.rate == 0 || a.tokens+now.Sub(a.at).Seconds()*h.rate >= h.burst) {
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
