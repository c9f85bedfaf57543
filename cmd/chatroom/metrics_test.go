package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/chatroom-go/chatroom"
	"github.com/chatroom-go/chatroom/internal/chattest"
)

// TestMetricsMatchStats scrapes /metrics after a known scenario, parses it
// with Prometheus's own text parser, and checks every figure against
// Room.Stats, with the type Prometheus's conventions give it.
func TestMetricsMatchStats(t *testing.T) {
	t.Parallel()
	room := chatroom.NewRoom(chatroom.WithMaxClients(2))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- room.Serve(ln) }()
	defer func() {
		room.Close()
		<-served
	}()
	a := joinDemo(t, ln.Addr().String(), nil)
	b := joinDemo(t, ln.Addr().String(), nil)
	a.WaitForPart(" joined")
	full := chattest.Dial(t, ln.Addr().String()).Line() // refused: the room is full
	assert.Equal(t, "* room is full (2 clients)", full)
	a.Send("counted\n")
	b.WaitForPart("say: counted")
	b.Send("exit\n")
	a.WaitForPart(" left")

	srv := httptest.NewServer(metricsHandler(room))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)

	s := room.Stats()
	for name, want := range map[string]struct {
		kind  dto.MetricType
		value float64
	}{
		"chatroom_clients":               {dto.MetricType_GAUGE, float64(s.Clients)},
		"chatroom_admitting":             {dto.MetricType_GAUGE, float64(s.Admitting)},
		"chatroom_joined_total":          {dto.MetricType_COUNTER, float64(s.Joined)},
		"chatroom_left_total":            {dto.MetricType_COUNTER, float64(s.Left)},
		"chatroom_refused_total":         {dto.MetricType_COUNTER, float64(s.Refused)},
		"chatroom_messages_total":        {dto.MetricType_COUNTER, float64(s.Messages)},
		"chatroom_delivered_lines_total": {dto.MetricType_COUNTER, float64(s.Delivered)},
		"chatroom_dropped_lines_total":   {dto.MetricType_COUNTER, float64(s.Dropped)},
		"chatroom_evicted_total":         {dto.MetricType_COUNTER, float64(s.Evicted)},
		"chatroom_events_dropped_total":  {dto.MetricType_COUNTER, float64(s.EventsDropped)},
	} {
		f := families[name]
		require.NotNil(t, f, name)
		assert.Equal(t, want.kind, f.GetType(), name)
		m := f.GetMetric()[0]
		got := m.GetGauge().GetValue()
		if want.kind == dto.MetricType_COUNTER {
			got = m.GetCounter().GetValue()
		}
		assert.Equal(t, want.value, got, name)
	}
	assert.Equal(t, 1.0, families["chatroom_refused_total"].GetMetric()[0].GetCounter().GetValue())
	assert.Equal(t, 1.0, families["chatroom_messages_total"].GetMetric()[0].GetCounter().GetValue())
	assert.Contains(t, families, "go_goroutines")
}
