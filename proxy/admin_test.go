package proxy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testgw"
)

// TestRevokeEndpointOff: without admin.token there is no revoke endpoint,
// whatever the request carries.
func TestRevokeEndpointOff(t *testing.T) {
	up := upstream(t)
	g := testgw.Start(t, testgw.Options{
		Config: func(base string) string { return fmt.Sprintf(loginConfig, base, up, testgw.AliceHash()) }})
	for _, auth := range []string{"", "Bearer ", "Bearer anything-0123456789"} {
		req := httptest.NewRequest("POST", "/admin/sessions/revoke", strings.NewReader("sub=alice"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		g.AdminHandler().ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "admin.token") {
			t.Errorf("Authorization %q: %d %s, want 404 naming admin.token", auth, rec.Code, rec.Body)
		}
	}
}
