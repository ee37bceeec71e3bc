package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/portcullis-dev/portcullis/issuer"
	"github.com/portcullis-dev/portcullis/oidcclient"
)

// RevokePath is the admin endpoint that ends a user's sessions.
const RevokePath = "/admin/sessions/revoke"

// RevokeResult is the answer of [RevokePath].
type RevokeResult struct {
	Subject string `json:"sub"`
	SID     string `json:"sid,omitempty"`
	// IssuerSessions is how many of the built-in issuer's sessions ended
	// (their clients are sent logout tokens); nil without the issuer.
	IssuerSessions *int `json:"issuer_sessions_ended,omitempty"`
	// GatewaySessions is how many of the gateway's stored sessions were
	// deleted; nil when they live in cookies or there is no login.
	GatewaySessions *int `json:"gateway_sessions_deleted,omitempty"`
	// CookieSessionsRefused: the gateway's sessions live in cookies, and
	// those of the user are refused from their next request.
	CookieSessionsRefused bool `json:"gateway_cookie_sessions_refused,omitempty"`
}

// revokeSessions serves POST RevokePath: with the bearer secret
// admin.token, it ends the sessions of sub (or of its session sid, the sid
// in its tokens) at the built-in issuer, which revokes their refresh
// tokens and sends back-channel logouts, and at the gateway itself, at
// once. Without admin.token the endpoint does not exist.
func (gw *Gateway) revokeSessions(w http.ResponseWriter, r *http.Request) {
	g := gw.enter()
	defer g.leave()
	if !g.adminAuthorized(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		adminError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		adminError(w, http.StatusBadRequest, "invalid_request", "the form could not be read")
		return
	}
	res := RevokeResult{Subject: r.PostForm.Get("sub"), SID: r.PostForm.Get("sid")}
	if res.Subject == "" {
		adminError(w, http.StatusBadRequest, "invalid_request", "sub is required: the user whose sessions end (sid, optional, ends only that session)")
		return
	}
	if err := g.revoke(r.Context(), &res); err != nil {
		g.log.Error("admin: sessions not revoked", "sub", res.Subject, "sid", res.SID, "err", err)
		w.Header().Set("Retry-After", "5")
		adminError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the sessions could not all be ended: "+err.Error())
		return
	}
	g.log.Info("admin: sessions revoked", "sub", res.Subject, "sid", res.SID)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// adminAuthorized checks the admin bearer secret, answering itself when it
// is off or wrong.
func (g *generation) adminAuthorized(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Set("Cache-Control", "no-store")
	if g.adminToken == nil {
		adminError(w, http.StatusNotFound, "not_found", "the endpoint is off; set admin.token to turn it on")
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	sum := sha256.Sum256([]byte(got))
	if !ok || subtle.ConstantTimeCompare(sum[:], g.adminToken) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="portcullis admin"`)
		adminError(w, http.StatusUnauthorized, "invalid_token", "send Authorization: Bearer with admin.token")
		return false
	}
	return true
}

// ClientsPath is the admin endpoint under which DELETE ClientsPath+"/{id}"
// removes a client that registered itself at the built-in issuer.
const ClientsPath = "/admin/clients"

// deleteClient serves DELETE ClientsPath/{client_id} behind admin.token:
// the registered client can no longer authorize, redeem codes or refresh
// (204); its access tokens live until they expire.
func (gw *Gateway) deleteClient(w http.ResponseWriter, r *http.Request) {
	g := gw.enter()
	defer g.leave()
	if !g.adminAuthorized(w, r) {
		return
	}
	if r.Method != http.MethodDelete {
		w.Header().Set("Allow", "DELETE")
		adminError(w, http.StatusMethodNotAllowed, "invalid_request", "use DELETE")
		return
	}
	id := r.PathValue("id")
	if g.builtin == nil {
		adminError(w, http.StatusNotFound, "not_found", "there is no built-in issuer")
		return
	}
	switch err := g.builtin.iss.DeleteClient(r.Context(), id); {
	case errors.Is(err, issuer.ErrNotFound):
		adminError(w, http.StatusNotFound, "not_found", "no registered client has that id")
	case errors.Is(err, issuer.ErrConfiguredClient):
		adminError(w, http.StatusConflict, "invalid_request", "the client is configured; remove it from the configuration")
	case err != nil:
		g.log.Error("admin: client not deleted", "client", id, "err", err)
		w.Header().Set("Retry-After", "5")
		adminError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the store cannot be reached")
	default:
		g.log.Info("admin: registered client deleted", "client", id)
		w.WriteHeader(http.StatusNoContent)
	}
}

// revoke ends res's sessions at the built-in issuer and at the gateway.
func (g *generation) revoke(ctx context.Context, res *RevokeResult) error {
	var errs []error
	if g.builtin != nil {
		n, err := g.builtin.iss.EndUserSessions(ctx, res.Subject, res.SID)
		if err != nil {
			errs = append(errs, err)
		} else {
			res.IssuerSessions = &n
		}
	}
	if g.login != nil {
		n, err := g.login.client.EndSessions(ctx, res.SID, res.Subject)
		switch {
		case errors.Is(err, oidcclient.ErrNoLogouts):
			// Cookie sessions without a logout store: the issuer's
			// revocation still ends them when they next refresh.
		case err != nil:
			errs = append(errs, err)
		case n < 0:
			res.CookieSessionsRefused = true
		default:
			res.GatewaySessions = &n
		}
	}
	return errors.Join(errs...)
}

func adminError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
