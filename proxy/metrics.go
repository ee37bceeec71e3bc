package proxy

import (
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/oidcclient"

	"github.com/portcullis-dev/portcullis/internal/boundcache"

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
	outcomeMethod      = "method_not_allowed" // not one of the route's methods
	outcomeUnavailable = "unavailable"
	outcomeNoRoute     = "no_route"
	outcomeIssuer      = "issuer" // served by the built-in issuer
	outcomeLogin       = "login"  // the login endpoints
	outcomeRedirect    = "login_redirect"
)

// metrics are the gateway's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg            *prometheus.Registry
	requests       *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	authFailures   *prometheus.CounterVec
	loginFailures  *prometheus.CounterVec
	// backchannelLogouts counts logout tokens by direction and result.
	backchannelLogouts *prometheus.CounterVec
	traceDrops         *prometheus.CounterVec
	authnLatency       prometheus.Histogram
	upstreamLatency    *prometheus.HistogramVec
	upstreamErrors     *prometheus.CounterVec
	jwksFetches        *prometheus.CounterVec
	grpcResponses      *prometheus.CounterVec
	ruleDecisions      *prometheus.CounterVec
	authDelays         prometheus.Counter
	connsRefused       prometheus.Counter
}

func newMetrics(keySets func() []keySetInfo, caches func() []cacheInfo) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_requests_total",
			Help: "Requests by route, outcome and status class (code: 1xx to 5xx).",
		}, []string{"route", "outcome", "code"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portcullis_request_duration_seconds",
			Help:    "Time from reading a request's headers to the end of its response, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_auth_failures_total",
			Help: "Rejected tokens and requests by reason.",
		}, []string{"route", "reason"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_login_failures_total",
			Help: "Failed browser sign-ins by reason: " + strings.Join(loginFailureReasons, ", ") + ".",
		}, []string{"reason"}),
		backchannelLogouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_backchannel_logouts_total",
			Help: "Back-channel logout tokens: sent by the built-in issuer (result ok, rejected, failed) and received by the gateway (result ok, invalid, replayed, error).",
		}, []string{"direction", "result"}),
		traceDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_trace_export_failures_total",
			Help: "Spans not exported, by reason: export (the exporter failed) or queue_full (dropped, the export queue being full).",
		}, []string{"reason"}),
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
		ruleDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_rule_decisions_total",
			Help: "Decisions of routes' rules, by route, rule (its name or index; default: no rule matched) and decision.",
		}, []string{"route", "rule", "decision"}),
		grpcResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portcullis_grpc_responses_total",
			Help: "gRPC calls by route and the grpc-status their client received (none: no status reached it).",
		}, []string{"route", "grpc_status"}),
		authDelays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_auth_failure_delays_total",
			Help: "Answers held back because their connection kept failing authentication.",
		}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portcullis_connections_refused_total",
			Help: "Client connections closed as soon as accepted because server.max_connections were open.",
		}),
	}
	for dir, results := range map[string][]string{"sent": {"ok", "rejected", "failed"}, "received": {"ok", "invalid", "replayed", "error"}} {
		for _, r := range results {
			m.backchannelLogouts.WithLabelValues(dir, r) // from 0, for alert rules
		}
	}
	m.traceDrops.WithLabelValues("export")
	m.traceDrops.WithLabelValues("queue_full")
	for _, r := range loginFailureReasons {
		m.loginFailures.WithLabelValues(r) // every reason from 0, for alert rules
	}
	m.reg.MustRegister(m.requests, m.requestLatency, m.authFailures, m.loginFailures, m.backchannelLogouts, m.traceDrops, m.authnLatency, m.upstreamLatency,
		m.upstreamErrors, m.jwksFetches, m.grpcResponses, m.ruleDecisions, m.authDelays, m.connsRefused, keySetCollector(keySets), cacheCollector(caches),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// loginFailureReasons are the values of portcullis_login_failures_total's
// reason label: the built-in issuer's (issuer.LoginFailure*) and the
// gateway login's (oidcclient.LoginFailure*).
var loginFailureReasons = []string{
	issuer.LoginFailureBadPassword, issuer.LoginFailureUnknownUser, issuer.LoginFailureThrottled,
	oidcclient.LoginFailureState, oidcclient.LoginFailureNonce, oidcclient.LoginFailureProvider,
}

// loginFailed counts a failed sign-in.
func (m *metrics) loginFailed(reason string) { m.loginFailures.WithLabelValues(reason).Inc() }

// statusClasses are the values of the "code" label, by status / 100.
var statusClasses = [...]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

// observe counts one finished request.
func (m *metrics) observe(route, outcome string, status int, d time.Duration) {
	class := "5xx"
	if c := status / 100; c >= 1 && c <= 5 {
		class = statusClasses[c]
	}
	m.requests.WithLabelValues(route, outcome, class).Inc()
	m.requestLatency.WithLabelValues(route).Observe(d.Seconds())
}

// keySetInfo is what the collector reports of one issuer's key set.
type keySetInfo struct {
	issuer  string
	local   bool // the built-in issuer's keys: no fetch, no age
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
		}
		if ks.ready && !ks.local {
			ch <- prometheus.MustNewConstMetric(descKeySetAge, prometheus.GaugeValue,
				ks.now.Sub(ks.updated).Seconds(), ks.issuer)
		}
		ch <- prometheus.MustNewConstMetric(descKeySetReady, prometheus.GaugeValue, ready, ks.issuer)
	}
}

// cacheInfo is what the collector reports of one cache.
type cacheInfo struct {
	name  string // the "cache" label: token or session
	stats boundcache.Stats
}

var (
	descCacheEntries = prometheus.NewDesc("portcullis_cache_entries",
		"Entries in the cache of verified tokens (token) or decoded session cookies (session).", []string{"cache"}, nil)
	descCacheBytes = prometheus.NewDesc("portcullis_cache_bytes",
		"Approximate bytes the cache's entries hold.", []string{"cache"}, nil)
	descCacheLookups = prometheus.NewDesc("portcullis_cache_lookups_total",
		"Lookups in the cache; it starts again from 0 when a reload rebuilds the cache.", []string{"cache"}, nil)
	descCacheHits = prometheus.NewDesc("portcullis_cache_hits_total",
		"Lookups that found a valid entry, each sparing a signature check or a cookie decryption.", []string{"cache"}, nil)
)

// cacheCollector reads the caches' counts at scrape time, so that the
// request path pays nothing for them.
type cacheCollector func() []cacheInfo

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCacheEntries
	ch <- descCacheBytes
	ch <- descCacheLookups
	ch <- descCacheHits
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ci := range c() {
		ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(ci.stats.Entries), ci.name)
		ch <- prometheus.MustNewConstMetric(descCacheBytes, prometheus.GaugeValue, float64(ci.stats.Bytes), ci.name)
		ch <- prometheus.MustNewConstMetric(descCacheLookups, prometheus.CounterValue, float64(ci.stats.Lookups), ci.name)
		ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(ci.stats.Hits), ci.name)
	}
}
