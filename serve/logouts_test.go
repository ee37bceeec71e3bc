package serve

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/config"
	"github.com/portcullis-dev/portcullis/internal/testredis"
)

// logoutsConfig is a gateway signing in at its built-in issuer with
// back-channel logout on; %[1]s is the login's extra keys, %[2]s alice's
// password hash.
const logoutsConfig = `server: {listen: "127.0.0.1:0", public_url: "http://127.0.0.1:18080"}
admin: {listen: off}
issuers:
  - issuer: http://127.0.0.1:18080/idp
    audiences: [api]
issuer:
  url: http://127.0.0.1:18080/idp
  clients:
    - id: gw
      secret: gw-secret-0123456789
      first_party: true
      redirect_uris: [http://127.0.0.1:18080/oauth2/callback]
      audiences: [api]
  users:
    - username: alice
      password_hash: %[2]q
login:
  issuer: http://127.0.0.1:18080/idp
  client_id: gw
  client_secret: gw-secret-0123456789
  cookie: {secret: "cookie-secret-0123456789-0123456789-abc", secure: false}
  backchannel_logout: true
%[1]sroutes:
  - {name: app, path_prefix: /, upstream: "http://127.0.0.1:1"}
`

// TestLogoutStoreAcrossReloads: the logouts a gateway holds in memory
// survive a reload, a Redis logout store keeps its connections while its
// URL stays and is closed when it changes, and the built-in issuer's
// client for the gateway has the gateway's endpoint registered.
func TestLogoutStoreAcrossReloads(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	parse := func(extra string) *config.Config {
		t.Helper()
		c, err := config.Parse("t.yaml", []byte(fmt.Sprintf(logoutsConfig, extra, hash)), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := New(ctx, Options{Config: parse("")})
	if err != nil {
		t.Fatal(err)
	}
	mem := s.cur.logouts
	if mem == nil || s.cur.logoutsRedis != nil {
		t.Fatalf("logouts in memory: %v, in Redis: %v", mem, s.cur.logoutsRedis)
	}
	c := s.cur.cfg
	if gwClient := backchannelURI(c, c.Issuer.Clients[0]); gwClient != "http://127.0.0.1:18080/oauth2/backchannel_logout" {
		t.Fatalf("the gateway's client has back-channel logout URI %q", gwClient)
	}
	if err := s.Reload(parse("  refresh_before: 2m\n")); err != nil {
		t.Fatal(err)
	}
	if s.cur.logouts != mem {
		t.Fatal("a reload dropped the logouts kept in memory")
	}

	redisURL, _, _ := testredis.Start(t)
	if err := s.Reload(parse("  logout_store: " + redisURL + "\n")); err != nil {
		t.Fatal(err)
	}
	rs := s.cur.logoutsRedis
	if rs == nil || s.cur.logouts != nil {
		t.Fatal("logout_store: a Redis URL did not give a Redis logout store")
	}
	if err := s.Reload(parse("  logout_store: " + redisURL + "\n  refresh_before: 3m\n")); err != nil {
		t.Fatal(err)
	}
	if s.cur.logoutsRedis != rs {
		t.Fatal("a reload with the same logout_store opened another Redis client")
	}
	if err := s.Reload(parse("")); err != nil {
		t.Fatal(err)
	}
	if err := rs.Ping(ctx); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("the replaced Redis logout store still answers: %v", err)
	}
}
