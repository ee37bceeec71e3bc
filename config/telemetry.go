package config

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Telemetry configures what portcullis reports besides logs and metrics:
// the telemetry: section.
type Telemetry struct {
	// Tracing configures OpenTelemetry traces.
	Tracing Tracing `yaml:"tracing"`
}

// Tracing configures OpenTelemetry traces, exported over OTLP. Every key
// mirrors a standard OTEL_* environment variable, which applies when the
// key is left empty; a key that is set wins over its variable.
type Tracing struct {
	// Enabled turns tracing on. Tracing is on as well when
	// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
	// set, and off, whatever else says, with OTEL_SDK_DISABLED=true.
	// Default false.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the collector's OTLP base URL, such as
	// http://otel-collector:4318 (OTEL_EXPORTER_OTLP_ENDPOINT); for
	// http/protobuf, /v1/traces is added when it has no path. Default "":
	// the variables', else http://localhost:4318.
	Endpoint string `yaml:"endpoint"`
	// Protocol is http/protobuf or grpc (OTEL_EXPORTER_OTLP_PROTOCOL).
	// Default "": http/protobuf.
	Protocol string `yaml:"protocol"`
	// Headers are sent with every export, such as an API key
	// (OTEL_EXPORTER_OTLP_HEADERS); keep secrets in the environment.
	// Default {}.
	Headers map[string]string `yaml:"headers"`
	// Sampler is always_on, always_off, traceidratio,
	// parentbased_always_on, parentbased_always_off or
	// parentbased_traceidratio (OTEL_TRACES_SAMPLER). Default "":
	// parentbased_always_on.
	Sampler string `yaml:"sampler"`
	// SamplerArg is the ratio of the traceidratio samplers, from 0 to 1
	// (OTEL_TRACES_SAMPLER_ARG). Default "": 1.
	SamplerArg string `yaml:"sampler_arg"`
	// ServiceName is the service.name of the spans (OTEL_SERVICE_NAME).
	// Default "": portcullis.
	ServiceName string `yaml:"service_name"`
	// ResourceAttributes are added to the spans' resource
	// (OTEL_RESOURCE_ATTRIBUTES). Default {}.
	ResourceAttributes map[string]string `yaml:"resource_attributes"`
	// TrustIncoming says whose traceparent a request's span continues:
	// [TrustIncomingProxies] (server.trusted_proxies), [TrustIncomingAll]
	// or [TrustIncomingNone]. A traceparent that is not continued starts a
	// new trace, linked to it. Default trusted_proxies.
	TrustIncoming string `yaml:"trust_incoming"`
}

// Values of telemetry.tracing.trust_incoming.
const (
	TrustIncomingProxies = "trusted_proxies"
	TrustIncomingAll     = "all"
	TrustIncomingNone    = "none"
)

// tracingSamplers are the names telemetry.tracing.sampler takes.
var tracingSamplers = []string{"always_on", "always_off", "traceidratio", "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}

func (t *Tracing) applyDefaults() {
	orString(&t.TrustIncoming, TrustIncomingProxies)
}

// telemetry checks the telemetry section.
func (v *validator) telemetry() {
	t := &v.c.Telemetry.Tracing
	const p = "telemetry.tracing."
	if t.Endpoint != "" {
		u, err := url.Parse(t.Endpoint)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			v.errorf(p+"endpoint", "%q is not an http or https URL; write the collector's OTLP URL, such as http://otel-collector:4318", shorten(t.Endpoint))
		case u.RawQuery != "" || u.Fragment != "":
			v.errorf(p+"endpoint", "%q has a query or fragment; write the collector's OTLP URL, such as http://otel-collector:4318", u.Redacted())
		}
	}
	switch t.Protocol {
	case "", "http/protobuf", "grpc":
	default:
		v.errorf(p+"protocol", "%q is not an OTLP protocol portcullis speaks; want http/protobuf or grpc", shorten(t.Protocol))
	}
	if t.Sampler != "" && !slices.Contains(tracingSamplers, t.Sampler) {
		v.errorf(p+"sampler", "%q is not a sampler; want one of %s", shorten(t.Sampler), strings.Join(tracingSamplers, ", "))
	}
	if a := t.SamplerArg; a != "" {
		if r, err := strconv.ParseFloat(a, 64); err != nil || r < 0 || r > 1 {
			v.errorf(p+"sampler_arg", "%q is not a ratio; want a number from 0 to 1, such as 0.1", shorten(a))
		} else if t.Sampler != "traceidratio" && t.Sampler != "parentbased_traceidratio" && t.Sampler != "" {
			v.errorf(p+"sampler_arg", "has no effect with sampler %s; use traceidratio or parentbased_traceidratio, or remove this key", t.Sampler)
		}
	}
	for k := range t.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			v.errorf(p+"headers", "%q is not a header name; want a name such as x-api-key", shorten(k))
		}
	}
	switch t.TrustIncoming {
	case "", TrustIncomingProxies, TrustIncomingAll, TrustIncomingNone:
	default:
		v.errorf(p+"trust_incoming", "%q is not a choice; want %s, %s or %s", shorten(t.TrustIncoming), TrustIncomingProxies, TrustIncomingAll, TrustIncomingNone)
	}
}
