package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/chatroom-go/chatroom"
)

// What a flood of scrapes may cost: one scrape's result is served again
// for metricsTTL, and at most metricsInFlight requests are answered at
// once; the others get 503 Service Unavailable at once.
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

// newMetricsHandler serves what g gathers, each gathering's result for
// ttl (0: gather for every request), to at most inFlight requests at once.
func newMetricsHandler(g prometheus.Gatherer, ttl time.Duration, inFlight int, now func() time.Time) http.Handler {
	if ttl > 0 {
		g = &cachedGatherer{g: g, ttl: ttl, now: now}
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{MaxRequestsInFlight: inFlight})
}

// cachedGatherer gathers from g at most once per ttl, and returns the same
// result to every caller meanwhile; callers that come during a gathering
// wait for it. The families it returns are shared: callers only read them
// (promhttp encodes them).
type cachedGatherer struct {
	g   prometheus.Gatherer
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	filled bool
	at     time.Time
	mfs    []*dto.MetricFamily
	err    error
}

func (c *cachedGatherer) Gather() ([]*dto.MetricFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); !c.filled || now.Sub(c.at) >= c.ttl || now.Before(c.at) {
		c.mfs, c.err = c.g.Gather()
		c.filled, c.at = true, now
	}
	return c.mfs, c.err
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
