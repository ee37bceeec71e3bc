package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Request outcomes, the "outcome" label of portcullis_requests_total.
const (
	outcomeAllowed     = "allowed"   // authenticated and forwarded
	outcomeAnonymous   = "anonymous" // optional route, no token, forwarded
	outcomePublic      = "public"    // public route, forwarded
	outcomeUnauth      = "unauthenticated"
	outcomeForbidden   = "forbidden"
	outcomeBadRequest  = "bad_request"
	outcomeUnavailable = "unavailable"
	outcomeNoRoute     = "no_route"
	outcomeIssuer      = "issuer" // served by the built-in issuer
	outcomeLogin       = "login"  // the login endpoints
	outcomeRedirect    = "login_redirect"
)

// metrics are the gateway's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg             *prometheus.Registry
	requests        *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	authnLatency    prometheus.Histogram
	upstreamLatency *prometheus.HistogramVec
	upstreamErrors  *prometheus.CounterVec
	jwksFetches     *prometheus.CounterVec
	authDelays      prometheus.Counter
}

func newMetrics(keySets func() []keySetInfo) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Requests by route and outcome.",
		}, []string{"route", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_auth_failures_total",
			Help: "Rejected tokens and requests by reason.",
		}, []string{"route", "reason"}),
		authnLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portcullis_authn_duration_seconds",
			Help:    "Time spent finding and verifying tokens.",
			Buckets: []float64{.00001, .00005, .0001, .00025, .0005, .001, .005, .025, .1, .5, 2},
		}),
		upstreamLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_upstream_duration_seconds",
			Help:    "Time from forwarding a request to its response headers, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_upstream_errors_total",
			Help: "Failed upstream round trips by route and kind (timeout, canceled, error).",
		}, []string{"route", "kind"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_jwks_fetches_total",
			Help: "JWKS fetch attempts by issuer and result.",
		}, []string{"issuer", "result"}),
		authDelays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_auth_failure_delays_total",
			Help: "Answers held back because their connection kept failing authentication.",
		}),
	}
	m.reg.MustRegister(m.requests, m.authFailures, m.authnLatency, m.upstreamLatency,
		m.upstreamErrors, m.jwksFetches, m.authDelays, keySetCollector(keySets),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// keySetInfo is what the collector reports of one issuer's key set.
type keySetInfo struct {
	issuer  string
	ready   bool
	updated time.Time
	now     time.Time
}

var (
	descKeySetAge = prometheus.NewDesc("portcullis_jwks_age_seconds",
		"Seconds since the issuer's key set was last fetched successfully.", []string{"issuer"}, nil)
	descKeySetReady = prometheus.NewDesc("portcullis_jwks_ready",
		"1 when the issuer's key set has been loaded.", []string{"issuer"}, nil)
)

type keySetCollector func() []keySetInfo

func (c keySetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descKeySetAge
	ch <- descKeySetReady
}

func (c keySetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ks := range c() {
		ready := 0.0
		if ks.ready {
			ready = 1
			ch <- prometheus.MustNewConstMetric(descKeySetAge, prometheus.GaugeValue,
				ks.now.Sub(ks.updated).Seconds(), ks.issuer)
		}
		ch <- prometheus.MustNewConstMetric(descKeySetReady, prometheus.GaugeValue, ready, ks.issuer)
	}
}
