package main

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/chatroom-go/chatroom"
)

// What a flood of scrapes may cost: one scrape's answer, gathered and
// encoded once, is served again for metricsTTL, and at most
// metricsInFlight requests are answered at once; the others get 503
// Service Unavailable at once.
const (
	metricsTTL      = time.Second
	metricsInFlight = 4
)

// metricsHandler serves room's Stats, and the Go runtime's and the
// process's metrics, in Prometheus's formats, with metricsTTL and
// metricsInFlight. The Go and process metrics tell the Go version, the
// process's descriptors and the host's network counters: serve them on an
// operator's network only.
func metricsHandler(room interface{ Stats() chatroom.Stats }) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{room}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return newMetricsHandler(reg, metricsTTL, metricsInFlight, time.Now)
}

// newMetricsHandler serves what g gathers, in the format each request
// negotiates (Prometheus's text format, or its protobuf one), to at most
// inFlight requests at once. Each format's answer is gathered and encoded
// at most once per ttl and served again meanwhile (0: for every request);
// requests that come while it is made wait for it. Answers are not
// compressed: about 10 KB, and compressing each would cost more than
// sending it, and a compressor's memory per request in flight.
func newMetricsHandler(g prometheus.Gatherer, ttl time.Duration, inFlight int, now func() time.Time) http.Handler {
	return &metricsCache{g: g, ttl: ttl, now: now, slots: make(chan struct{}, inFlight), answers: make(map[expfmt.Format]*metricsAnswer)}
}

// metricsCache is newMetricsHandler's handler.
type metricsCache struct {
	g     prometheus.Gatherer
	ttl   time.Duration
	now   func() time.Time
	slots chan struct{} // a place for each request being answered

	mu      sync.Mutex                       // held while an answer is made, with ttl > 0
	answers map[expfmt.Format]*metricsAnswer // by format: one for each of metricsFormats at most
}

// metricsFormats are the formats /metrics answers in, in order of
// preference; a request that accepts none of them gets the text format.
var metricsFormats = []expfmt.Format{
	expfmt.NewFormat(expfmt.TypeProtoDelim),
	expfmt.NewFormat(expfmt.TypeProtoText),
	expfmt.NewFormat(expfmt.TypeProtoCompact),
	expfmt.NewFormat(expfmt.TypeTextPlain),
}

// metricsAnswer is one format's answer, as it was made at a moment.
type metricsAnswer struct {
	at   time.Time
	body []byte // never modified once made
	err  error
}

func (m *metricsCache) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case m.slots <- struct{}{}:
		defer func() { <-m.slots }()
	default:
		http.Error(w, fmt.Sprintf("Limit of concurrent requests reached (%d), try again later.", cap(m.slots)), http.StatusServiceUnavailable)
		return
	}
	format := expfmt.NegotiateAccept(r.Header, metricsFormats...)
	a := m.answer(format)
	if a.err != nil {
		http.Error(w, "An error has occurred while serving metrics:\n\n"+a.err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(format))
	w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
	w.Write(a.body)
}

// answer returns the answer in format: the one made within ttl, or a new
// one.
func (m *metricsCache) answer(format expfmt.Format) *metricsAnswer {
	if m.ttl <= 0 {
		return m.make(format)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if a := m.answers[format]; a != nil && now.Sub(a.at) < m.ttl && !now.Before(a.at) {
		return a
	}
	a := m.make(format)
	a.at = now
	m.answers[format] = a
	return a
}

// make gathers and encodes a new answer in format.
func (m *metricsCache) make(format expfmt.Format) *metricsAnswer {
	mfs, err := m.g.Gather()
	if err != nil {
		return &metricsAnswer{err: err}
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return &metricsAnswer{err: err}
		}
	}
	if closer, ok := enc.(expfmt.Closer); ok {
		if err := closer.Close(); err != nil {
			return &metricsAnswer{err: err}
		}
	}
	return &metricsAnswer{body: buf.Bytes()}
}

// statsCollector exports a room's Stats as Prometheus metrics: one
// snapshot per scrape, so the figures of one scrape agree with each other.
type statsCollector struct {
	room interface{ Stats() chatroom.Stats } // a hub, or a room
}

// metric is one figure of Stats as Prometheus names it.
type metric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(chatroom.Stats) float64
}

var metrics = []metric{
	{prometheus.NewDesc("chatroom_clients", "Clients in the hub now.", nil, nil),
		prometheus.GaugeValue, func(s chatroom.Stats) float64 { return float64(s.Clients) }},
	{prometheus.NewDesc("chatroom_rooms", "Rooms open now.", nil, nil),
		prometheus.GaugeValue, func(s chatroom.Stats) float64 { return float64(s.Rooms) }},
	{prometheus.NewDesc("chatroom_admitting", "Connections waiting to be admitted or refused now.", nil, nil),
		prometheus.GaugeValue, func(s chatroom.Stats) float64 { return float64(s.Admitting) }},
	{prometheus.NewDesc("chatroom_joined_total", "Clients admitted.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Joined) }},
	{prometheus.NewDesc("chatroom_left_total", "Clients that left, for any reason.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Left) }},
	{prometheus.NewDesc("chatroom_refused_total", "Clients turned away: room full, name taken, address limits, auth.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Refused) }},
	{prometheus.NewDesc("chatroom_messages_total", "Chat lines relayed and notices broadcast.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Messages) }},
	{prometheus.NewDesc("chatroom_delivered_lines_total", "Lines written whole to clients, once per recipient.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Delivered) }},
	{prometheus.NewDesc("chatroom_dropped_lines_total", "Lines queued for a client that left before they were written.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Dropped) }},
	{prometheus.NewDesc("chatroom_evicted_total", "Clients cut off as too slow.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.Evicted) }},
	{prometheus.NewDesc("chatroom_events_dropped_total", "Events dropped because the observer fell behind.", nil, nil),
		prometheus.CounterValue, func(s chatroom.Stats) float64 { return float64(s.EventsDropped) }},
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range metrics {
		ch <- m.desc
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.room.Stats()
	for _, m := range metrics {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(s))
	}
}
