package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	scrape := func() map[string]*dto.MetricFamily {
		resp, err := http.Get(srv.URL)
		require.NoError(t, err)
		defer resp.Body.Close()
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err := parser.TextToMetricFamilies(resp.Body)
		require.NoError(t, err)
		return families
	}
	// A delivery is counted once its write returns, which can be after the
	// client has read it: scrape until the hub has counted its last ones.
	var families map[string]*dto.MetricFamily
	var s chatroom.Stats
	chattest.Eventually(t, func() bool {
		families, s = scrape(), room.Stats()
		f := families["chatroom_delivered_lines_total"]
		return f != nil && f.GetMetric()[0].GetCounter().GetValue() == float64(s.Delivered)
	}, "the metrics catch up with the hub's deliveries")
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

// countingGatherer counts its gatherings; when entered is not nil, each
// gathering says so there and waits for release.
type countingGatherer struct {
	g       prometheus.Gatherer
	n       atomic.Int64
	entered chan struct{}
	release chan struct{}
}

func (c *countingGatherer) Gather() ([]*dto.MetricFamily, error) {
	c.n.Add(1)
	if c.entered != nil {
		c.entered <- struct{}{}
		<-c.release
	}
	return c.g.Gather()
}

// scrape gets url and returns the status and the body.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: waitLimit}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestMetricsCached: 40 scrapes at once, and more within the cache's
// life, gather once; a scrape after it gathers again.
func TestMetricsCached(t *testing.T) {
	t.Parallel()
	room := chatroom.NewRoom()
	defer room.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{room})
	g := &countingGatherer{g: reg}
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	srv := httptest.NewServer(newMetricsHandler(g, time.Second, 100, clock))
	defer srv.Close()

	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			status, body := scrape(t, srv.URL)
			assert.Equal(t, http.StatusOK, status)
			assert.Contains(t, body, "chatroom_clients 0")
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, g.n.Load(), "gatherings for 40 scrapes at once")

	mu.Lock()
	now = now.Add(999 * time.Millisecond)
	mu.Unlock()
	scrape(t, srv.URL)
	assert.EqualValues(t, 1, g.n.Load(), "gatherings within a second")

	mu.Lock()
	now = now.Add(time.Millisecond)
	mu.Unlock()
	scrape(t, srv.URL)
	assert.EqualValues(t, 2, g.n.Load(), "gatherings once a second has passed")
}

// TestMetricsFormats: a scrape gets the format it asks for, Prometheus's
// text format or its protobuf one, each cached on its own, and never
// compressed, even when asked to.
func TestMetricsFormats(t *testing.T) {
	t.Parallel()
	room := chatroom.NewRoom()
	defer room.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{room})
	g := &countingGatherer{g: reg}
	srv := httptest.NewServer(newMetricsHandler(g, time.Hour, 4, time.Now))
	defer srv.Close()

	get := func(accept string) (*http.Response, []byte) {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.Header.Set("Accept", accept)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Empty(t, resp.Header.Get("Content-Encoding"), "compressed")
		return resp, body
	}
	for range 2 {
		resp, body := get("text/plain")
		assert.Equal(t, expfmt.TypeTextPlain, expfmt.ResponseFormat(resp.Header).FormatType())
		assert.Contains(t, string(body), "chatroom_clients 0")

		resp, body = get("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
		require.Equal(t, expfmt.TypeProtoDelim, expfmt.ResponseFormat(resp.Header).FormatType())
		dec := expfmt.NewDecoder(strings.NewReader(string(body)), expfmt.ResponseFormat(resp.Header))
		var mf dto.MetricFamily
		require.NoError(t, dec.Decode(&mf))
		assert.NotEmpty(t, mf.GetName())
	}
	assert.EqualValues(t, 2, g.n.Load(), "gatherings: one for each format")
}

// TestMetricsInFlightBounded: with 2 scrapes being answered, a third gets
// 503 at once, without gathering; once they are done, scrapes are
// answered again.
func TestMetricsInFlightBounded(t *testing.T) {
	t.Parallel()
	room := chatroom.NewRoom()
	defer room.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(statsCollector{room})
	g := &countingGatherer{g: reg, entered: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(newMetricsHandler(g, 0, 2, time.Now))
	defer srv.Close()

	statuses := make(chan int, 2)
	for range 2 {
		go func() {
			status, _ := scrape(t, srv.URL)
			statuses <- status
		}()
	}
	for range 2 {
		select {
		case <-g.entered:
		case <-time.After(waitLimit):
			t.Fatal("the scrapes did not reach the gatherer")
		}
	}
	status, body := scrape(t, srv.URL)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Contains(t, body, "Limit of concurrent requests reached (2)")
	assert.EqualValues(t, 2, g.n.Load(), "the refused scrape gathered nothing")

	close(g.release)
	for range 2 {
		select {
		case status := <-statuses:
			assert.Equal(t, http.StatusOK, status)
		case <-time.After(waitLimit):
			t.Fatal("the scrapes were not answered")
		}
	}
}

// TestDemoMetricsOnTheirOwnAddress: -metrics serves /metrics, with the Go
// and process metrics, on its own address; the page's address has no
// /metrics.
func TestDemoMetricsOnTheirOwnAddress(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "-http", "127.0.0.1:0", "-metrics", "127.0.0.1:0")
	site := d.webAddr()
	m := regexp.MustCompile(`addr=(http://\S+/metrics)`).FindStringSubmatch(d.logLine("serving the metrics"))
	require.NotNil(t, m)
	metricsURL := m[1]
	joinDemo(t, d.addr, nil)

	status, body := scrape(t, metricsURL)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "\nchatroom_clients 1\n")
	assert.Contains(t, body, "\ngo_goroutines ")
	assert.Contains(t, body, "\nprocess_open_fds ")

	status, body = scrape(t, "http://"+site+"/metrics")
	assert.Equal(t, http.StatusNotFound, status)
	assert.NotContains(t, body, "chatroom_clients")
	status, _ = scrape(t, strings.TrimSuffix(metricsURL, "metrics"))
	assert.Equal(t, http.StatusNotFound, status, "the metrics address serves /metrics alone")
	d.stop()
}
