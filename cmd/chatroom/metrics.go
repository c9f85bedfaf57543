package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chatroom-go/chatroom"
)

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
	{prometheus.NewDesc("chatroom_clients", "Clients in the room now.", nil, nil),
		prometheus.GaugeValue, func(s chatroom.Stats) float64 { return float64(s.Clients) }},
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
