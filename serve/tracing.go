package serve

import (
	"net/url"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/proxy"
)

// tracingConfig is telemetry.tracing as the telemetry package takes it.
func tracingConfig(c *config.Config, o Options, dropped func(reason string, n int)) telemetry.Config {
	t := c.Telemetry.Tracing
	return telemetry.Config{
		Enabled: t.Enabled, Endpoint: t.Endpoint, Protocol: t.Protocol, Headers: t.Headers,
		Sampler: t.Sampler, SamplerArg: t.SamplerArg, ServiceName: t.ServiceName,
		ResourceAttributes: t.ResourceAttributes, Version: o.Version, Getenv: o.Getenv, Dropped: dropped,
	}
}

// traceTrust is telemetry.tracing.trust_incoming as the proxy takes it.
func traceTrust(c *config.Config) proxy.TraceTrust {
	switch c.Telemetry.Tracing.TrustIncoming {
	case config.TrustIncomingAll:
		return proxy.TraceTrustAll
	case config.TrustIncomingNone:
		return proxy.TraceTrustNone
	}
	return proxy.TraceTrustProxies
}

// tracingEndpoint is where spans go, for the log.
func tracingEndpoint(c *config.Config, o Options) string {
	for _, v := range []string{c.Telemetry.Tracing.Endpoint, o.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), o.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")} {
		if v != "" {
			if u, err := url.Parse(v); err == nil {
				return u.Redacted()
			}
			return "(not a URL)"
		}
	}
	return "the exporter's default"
}
