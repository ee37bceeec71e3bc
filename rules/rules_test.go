package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// claimsOf decodes claims as authn does: numbers as json.Number.
func claimsOf(t testing.TB, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// issueRules are the example of the rules documentation.
var issueRules = []Rule{
	{Allow: true, Expr: `request.method in ["GET", "HEAD"] && "staff" in claims.groups`},
	{Allow: true, Expr: `request.method == "DELETE" && "admin" in claims.groups`},
	{Name: "own-user", Allow: true, Expr: `request.path.startsWith("/users/" + claims.sub + "/")`},
	{Name: "rest", Allow: false, Expr: `true`},
}

func TestDecisions(t *testing.T) {
	s, err := Compile(issueRules, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		claims, method, path string
		allow                bool
		name                 string
	}{
		{`{"sub": "alice", "groups": ["staff"]}`, "GET", "/docs", true, "0"},
		{`{"sub": "alice", "groups": ["staff"]}`, "HEAD", "/docs", true, "0"},
		{`{"sub": "alice", "groups": ["staff"]}`, "DELETE", "/docs", false, "rest"},
		{`{"sub": "root", "groups": ["admin"]}`, "DELETE", "/docs", true, "1"},
		{`{"sub": "bob", "groups": []}`, "PUT", "/users/bob/avatar", true, "own-user"},
		{`{"sub": "bob", "groups": []}`, "PUT", "/users/alice/avatar", false, "rest"},
		// No groups claim: the first two rules fail to evaluate, which
		// never grants; the path rule still can.
		{`{"sub": "carol"}`, "GET", "/users/carol/x", true, "own-user"},
		{`{"sub": "carol"}`, "GET", "/docs", false, "rest"},
	} {
		d := s.Eval(&Input{Claims: claimsOf(t, tc.claims), Request: Request{Method: tc.method, Path: tc.path}, Now: now})
		if d.Allow != tc.allow || d.Name != tc.name {
			t.Errorf("%s %s %s: allow %v by %q (%v), want %v by %q", tc.claims, tc.method, tc.path, d.Allow, d.Name, d.Err, tc.allow, tc.name)
		}
	}
}

func TestNoMatchDenies(t *testing.T) {
	s, err := Compile([]Rule{{Allow: true, Expr: `"admin" in scopes`}}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Eval(&Input{Scopes: []string{"read"}}); d.Allow || d.Rule != -1 || d.Name != "default" {
		t.Errorf("no match: %+v, want the default deny", d)
	}
	if d := s.Eval(&Input{Scopes: []string{"read", "admin"}}); !d.Allow || d.Rule != 0 {
		t.Errorf("match: %+v", d)
	}
	// An anonymous request: no claims, no scopes.
	if d := s.Eval(&Input{}); d.Allow {
		t.Errorf("anonymous: %+v", d)
	}
}

func TestDenyRuleThatFailsDenies(t *testing.T) {
	s, err := Compile([]Rule{
		{Name: "suspended", Expr: `claims.suspended == true`},
		{Allow: true, Expr: `true`},
	}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	d := s.Eval(&Input{Claims: claimsOf(t, `{"sub": "a"}`)})
	if d.Allow || d.Name != "suspended" || d.Err == nil || !strings.Contains(d.Err.Error(), "suspended") {
		t.Errorf("a deny rule that cannot be evaluated: %+v, want a denial naming it with its error", d)
	}
	if d := s.Eval(&Input{Claims: claimsOf(t, `{"suspended": false}`)}); !d.Allow {
		t.Errorf("not suspended: %+v", d)
	}
}

func TestVariables(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	in := &Input{
		Claims: claimsOf(t, `{"sub": "alice", "age": 42, "ratio": 0.5, "org": {"id": 7, "teams": ["a", "b"]}, "client_id": "cli"}`),
		Scopes: []string{"read", "write"},
		Request: Request{Method: "GET", Path: "/a/b", Host: "app.example", RemoteIP: "10.1.2.3",
			Headers: map[string]string{"x-tenant": "acme"}},
		Now: now,
	}
	for _, expr := range []string{
		`claims.age >= 18 && claims.age == 42`,
		`claims.ratio < 1.0`,
		`claims.org.id == 7 && "b" in claims.org.teams && size(claims.org.teams) == 2`,
		`claims.client_id == "cli" && cidr("10.0.0.0/8").containsIP(request.remote_ip)`,
		`!cidr("192.168.0.0/16").containsIP(request.remote_ip)`,
		`request.host == "app.example" && request.headers["x-tenant"] == "acme"`,
		`!("x-missing" in request.headers)`,
		`"write" in scopes && scopes.exists(s, s.startsWith("re"))`,
		`now > timestamp("2026-01-01T00:00:00Z") && now - duration("1h") < timestamp("2026-12-03T12:00:00Z")`,
		`request.path.split("/").size() == 3`,
		`has(claims.sub) && !has(claims.email)`,
		`claims.sub.lowerAscii() == "alice"`,
	} {
		s, err := Compile([]Rule{{Allow: true, Expr: expr}}, Limits{})
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if d := s.Eval(in); !d.Allow {
			t.Errorf("%s: denied (%v)", expr, d.Err)
		}
	}
	s, err := Compile([]Rule{{Allow: true, Expr: `request.headers["x-tenant"] == "acme"`}}, Limits{})
	if err != nil || !s.ReadsHeaders() || s.ReadsRemoteIP() {
		t.Errorf("a rule reading headers: %v, ReadsHeaders %v", err, s.ReadsHeaders())
	}
	s, err = Compile(issueRules, Limits{})
	if err != nil || s.ReadsHeaders() {
		t.Errorf("rules not reading headers: %v, ReadsHeaders %v", err, s.ReadsHeaders())
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{Allow: true, Expr: `claims.groups + 1`}, "rules[0].allow: is of type int; a rule must be a bool"},
		{Rule{Allow: true, Expr: `request.method == "GET" &&`}, "rules[0].allow: column 27: "},
		{Rule{Allow: false, Expr: `claim.sub == "x"`}, "rules[0].deny: column 1: undeclared reference to 'claim'"},
		{Rule{Allow: true, Expr: `request.metod == "GET"`}, "rules[0].allow: column 8: undefined field 'metod'"},
		{Rule{Allow: true, Expr: "true &&\n  nope"}, "rules[0].allow: line 2, column 3 of the expression: undeclared reference to 'nope'"},
		{Rule{Allow: true, Expr: `  `}, "rules[0].allow: is empty"},
		{Rule{Allow: true, Expr: `"x"`}, "is of type string"},
		{Rule{Allow: true, Expr: `claims.groups.all(a, claims.groups.all(b, claims.groups.all(c, a + b + c != "")))`},
			"rules[0].allow: estimated cost"},
	} {
		_, err := Compile([]Rule{tc.rule}, Limits{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.rule.Expr, err, tc.want)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: %T is not a *rules.Error", tc.rule.Expr, err)
		}
	}
	// Every bad rule is reported, with its index.
	_, err := Compile([]Rule{{Allow: true, Expr: "true"}, {Allow: true, Expr: "1"}, {Expr: "x"}}, Limits{})
	if err == nil || !strings.Contains(err.Error(), "rules[1].allow") || !strings.Contains(err.Error(), "rules[2].deny") {
		t.Errorf("two bad rules: %v", err)
	}
}

func TestCostLimits(t *testing.T) {
	expr := `claims.groups.exists(g, claims.groups.exists(h, g == h))`
	// 50 × 50 comparisons fit the default budget; 100 × 100 do not.
	if _, err := Compile([]Rule{{Allow: true, Expr: expr}}, Limits{MaxListSize: 50}); err != nil {
		t.Fatalf("max_list_size 50: %v", err)
	}
	_, err := Compile([]Rule{{Allow: true, Expr: expr}}, Limits{})
	if err == nil || !strings.Contains(err.Error(), "exceeds server.rules.max_cost (100000), with lists of at most 100 elements") {
		t.Fatalf("default limits: %v", err)
	}
	if _, err := Compile([]Rule{{Allow: true, Expr: expr}}, Limits{MaxCost: 1_000_000}); err != nil {
		t.Fatalf("a raised max_cost: %v", err)
	}
	// A token whose list is longer than the estimate assumed is stopped by
	// the cost limit at run time, and a failed allow rule never grants.
	s, err := Compile([]Rule{{Allow: true, Expr: `claims.groups.all(g, claims.groups.all(h, g != h + "x"))`}}, Limits{MaxListSize: 10, MaxCost: 20000})
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]any, 2000)
	for i := range groups {
		groups[i] = strings.Repeat("g", i)
	}
	d := s.Eval(&Input{Claims: map[string]any{"groups": groups}})
	if d.Allow || d.Err == nil || !strings.Contains(d.Err.Error(), "cost") {
		t.Errorf("over the cost limit at run time: %+v", d)
	}
}

func TestTrace(t *testing.T) {
	s, err := Compile(issueRules, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, d := s.Trace(&Input{Claims: claimsOf(t, `{"sub": "bob"}`), Request: Request{Method: "GET", Path: "/users/bob/"}})
	if len(res) != 4 || res[0].Err == nil || res[2].Matched != true || res[3].Matched != true || d.Name != "own-user" || !d.Allow {
		t.Errorf("trace: %+v, decision %+v", res, d)
	}
}

// FuzzEval runs the documented rules, and some that walk claims, on random
// claims: evaluation never panics, and only a matching allow rule allows.
func FuzzEval(f *testing.F) {
	for _, s := range []string{
		`{"sub": "alice", "groups": ["staff"]}`,
		`{"sub": 1, "groups": "staff"}`,
		`{"groups": [1, 2.5, null, {"a": []}], "org": {"teams": [[]]}}`,
		`{"sub": "", "age": 1e400, "n": -9223372036854775809}`,
		`{}`,
	} {
		f.Add([]byte(s), "GET", "/users/alice/x")
	}
	rs := append([]Rule{
		{Allow: true, Expr: `claims.org.teams.exists(t, size(t) > 1)`},
		{Allow: true, Expr: `claims.age > 18 || claims.n < 0`},
		{Allow: false, Expr: `claims.groups.all(g, g != "banned")`},
	}, issueRules...)
	s, err := Compile(rs, Limits{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, method, path string) {
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var claims map[string]any
		if d.Decode(&claims) != nil {
			return
		}
		dec := s.Eval(&Input{Claims: claims, Scopes: []string{"a"}, Request: Request{Method: method, Path: path}})
		if dec.Allow && (dec.Rule < 0 || !s.Allows(dec.Rule)) {
			t.Fatalf("allowed by %+v, which is not an allow rule", dec)
		}
		if !dec.Allow && dec.Rule >= 0 && s.Allows(dec.Rule) {
			t.Fatalf("denied by allow rule %+v", dec)
		}
	})
}

// BenchmarkEval is three rules where the third decides, on a token's
// claims as authn decodes them.
func BenchmarkEval(b *testing.B) {
	s, err := Compile(issueRules[:3], Limits{})
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{Claims: claimsOf(b, `{"sub": "alice", "groups": ["dev", "ops"], "scope": "read"}`),
		Request: Request{Method: "GET", Path: "/users/alice/profile"}}
	b.ReportAllocs()
	for b.Loop() {
		if d := s.Eval(in); !d.Allow || d.Rule != 2 {
			b.Fatal(d)
		}
	}
}
