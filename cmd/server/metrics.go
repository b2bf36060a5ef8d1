package main

import (
	"database/sql"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is what /metrics reports. It has its own registry so that
// nothing a library registers globally leaks into Gatehouse's output.
type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	tokens       map[string]prometheus.Counter
	otherTokens  prometheus.Counter
	clientAuth   prometheus.Counter
	failedLogins prometheus.Counter
	throttled    prometheus.Counter

	// routes holds each route's pre-resolved children, so that a request
	// costs a map lookup rather than a label hash and allocations.
	routes sync.Map // route pattern -> *routeMetrics
}

type routeMetrics struct {
	byClass  [6]prometheus.Counter // index: status / 100
	duration prometheus.Observer
}

var statusClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// grantTypes are the grants the token endpoint can issue for; anything
// else is counted as "other" so a client cannot mint label values.
var grantTypes = []string{"authorization_code", "refresh_token", "client_credentials"}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status class.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		tokens: map[string]prometheus.Counter{},
		clientAuth: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_client_auth_failures_total",
			Help: "Requests to the token, revocation and introspection endpoints refused with invalid_client.",
		}),
		failedLogins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_login_failures_total",
			Help: "Sign-ins refused for a wrong username or password.",
		}),
		throttled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_login_throttled_total",
			Help: "Sign-ins refused with 429 by the per-account or per-address limit.",
		}),
	}
	issued := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_tokens_issued_total",
		Help: "Successful token responses, by grant type.",
	}, []string{"grant_type"})
	for _, g := range grantTypes {
		m.tokens[g] = issued.WithLabelValues(g)
	}
	m.otherTokens = issued.WithLabelValues("other")
	reg.MustRegister(m.requests, m.duration, issued, m.clientAuth, m.failedLogins, m.throttled)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// observe records one answered request.
func (m *metrics) observe(route string, status int, d time.Duration) {
	v, ok := m.routes.Load(route)
	if !ok {
		rm := &routeMetrics{duration: m.duration.WithLabelValues(route)}
		for i, class := range statusClasses {
			rm.byClass[i] = m.requests.WithLabelValues(route, class)
		}
		v, _ = m.routes.LoadOrStore(route, rm)
	}
	rm := v.(*routeMetrics)
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	rm.byClass[class].Inc()
	rm.duration.Observe(d.Seconds())
}

// TokenIssued and ClientAuthFailed implement oauth.Metrics.
func (m *metrics) TokenIssued(grantType string) {
	if c, ok := m.tokens[grantType]; ok {
		c.Inc()
		return
	}
	m.otherTokens.Inc()
}

func (m *metrics) ClientAuthFailed() { m.clientAuth.Inc() }

// poolStats reports database/sql connection pool statistics, one set per
// named pool (SQLite has a writer and a reader pool).
type poolStats func() map[string]sql.DBStats

// registerPools exports the pools' statistics, read at scrape time.
func (m *metrics) registerPools(stats poolStats) {
	m.registry.MustRegister(&poolCollector{stats: stats})
}

var (
	poolLabels     = []string{"pool"}
	poolMaxOpen    = prometheus.NewDesc("gatehouse_db_max_open_connections", "Maximum number of open connections to the database.", poolLabels, nil)
	poolOpen       = prometheus.NewDesc("gatehouse_db_open_connections", "Established connections, in use and idle.", poolLabels, nil)
	poolInUse      = prometheus.NewDesc("gatehouse_db_in_use_connections", "Connections currently in use.", poolLabels, nil)
	poolIdle       = prometheus.NewDesc("gatehouse_db_idle_connections", "Idle connections.", poolLabels, nil)
	poolWaitCount  = prometheus.NewDesc("gatehouse_db_wait_count_total", "Times a query waited for a free connection.", poolLabels, nil)
	poolWaitTime   = prometheus.NewDesc("gatehouse_db_wait_duration_seconds_total", "Time spent waiting for a free connection.", poolLabels, nil)
	poolIdleClosed = prometheus.NewDesc("gatehouse_db_max_idle_closed_total", "Connections closed because the idle pool was full.", poolLabels, nil)
	poolLifeClosed = prometheus.NewDesc("gatehouse_db_max_lifetime_closed_total", "Connections closed because they reached their maximum lifetime.", poolLabels, nil)
)

type poolCollector struct{ stats poolStats }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolMaxOpen, poolOpen, poolInUse, poolIdle, poolWaitCount, poolWaitTime, poolIdleClosed, poolLifeClosed} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.stats() {
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
		}
		gauge(poolMaxOpen, float64(s.MaxOpenConnections))
		gauge(poolOpen, float64(s.OpenConnections))
		gauge(poolInUse, float64(s.InUse))
		gauge(poolIdle, float64(s.Idle))
		counter(poolWaitCount, float64(s.WaitCount))
		counter(poolWaitTime, s.WaitDuration.Seconds())
		counter(poolIdleClosed, float64(s.MaxIdleClosed))
		counter(poolLifeClosed, float64(s.MaxLifetimeClosed))
	}
}
