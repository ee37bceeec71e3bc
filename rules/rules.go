// Package rules compiles and evaluates a route's authorization rules: CEL
// expressions over the verified token's claims and the request. A rule is
// parsed, type-checked and cost-estimated when it is compiled, so a rule
// that could not run, or could run too long, is refused at load and never
// met on the request path.
package rules

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/interpreter"
)

// Defaults of [Limits].
const (
	DefaultMaxListSize = 100
	DefaultMaxCost     = 100000
)

// maxStringSize is the longest string a rule is assumed to meet when its
// cost is estimated: a claim is no longer than the token that carries it,
// and tokens are at most 16 KiB.
const maxStringSize = 16 << 10

// Limits bound what a rule may cost.
type Limits struct {
	// MaxListSize is the number of elements a list or map from a claim (or
	// the request's headers) is assumed to hold at most when a rule's cost
	// is estimated. 0 means DefaultMaxListSize.
	MaxListSize uint64
	// MaxCost bounds a rule's estimated cost at compile time and its actual
	// cost at each evaluation, in CEL's cost units. 0 means DefaultMaxCost.
	MaxCost uint64
}

func (l Limits) withDefaults() Limits {
	if l.MaxListSize == 0 {
		l.MaxListSize = DefaultMaxListSize
	}
	if l.MaxCost == 0 {
		l.MaxCost = DefaultMaxCost
	}
	return l
}

// Rule is one entry of a route's rules: when Expr is true, Allow decides
// the request (allowed, or denied).
type Rule struct {
	// Name names the rule in metrics, logs and denials; empty names it by
	// its index.
	Name  string
	Allow bool
	Expr  string
}

// Request is what a rule sees of the request, as request.method,
// request.path, request.host, request.headers and request.remote_ip.
type Request struct {
	Method string
	// Path is the cleaned path the route matched.
	Path string
	// Host is the request's host, in lower case and without a port.
	Host string
	// Headers maps lower-case header names to their first value, without
	// the headers portcullis strips; filled only for a [Set] whose rules
	// read it (see [Set.ReadsHeaders]).
	Headers map[string]string
	// RemoteIP is the client's address, behind trusted proxies; filled
	// only for a Set whose rules read it (see [Set.ReadsRemoteIP]).
	RemoteIP string

	vals [4]ref.Val // the four strings as CEL values, made when first read
}

// Input is everything one evaluation sees.
type Input struct {
	// Claims are the token's claims (numbers as json.Number); nil for an
	// anonymous request.
	Claims  map[string]any
	Scopes  []string
	Request Request
	Now     time.Time

	act activation // the evaluation's variables, in the same allocation
}

// Decision is the outcome of a [Set] for one request.
type Decision struct {
	Allow bool
	// Rule is the index of the rule that decided, or -1 when none matched
	// (and the request is denied).
	Rule int
	// Name is the deciding rule's name or index, or "default".
	Name string
	// Err is the first evaluation error met: an allow rule that fails to
	// evaluate does not match, a deny rule that fails denies.
	Err error
}

// Set is a route's compiled rules. It is safe for concurrent use.
type Set struct {
	rules             []compiled
	headers, remoteIP bool
}

type compiled struct {
	name  string
	allow bool
	prg   cel.Program
	cost  uint64 // estimated, at most
	// headers and remoteIP are set when the rule reads request.headers
	// or request.remote_ip.
	headers, remoteIP bool
}

// Error is a rule that does not compile.
type Error struct {
	// Rule is the index of the rule; Allow says which of its keys holds
	// the expression.
	Rule  int
	Allow bool
	// Line and Column are 1-based, inside the expression; 0 when the
	// error has no position.
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	key := "deny"
	if e.Allow {
		key = "allow"
	}
	return fmt.Sprintf("rules[%d].%s: %s", e.Rule, key, e.Detail())
}

// Detail is the message with its position inside the expression.
func (e *Error) Detail() string {
	switch {
	case e.Column == 0:
		return e.Msg
	case e.Line > 1:
		return fmt.Sprintf("line %d, column %d of the expression: %s", e.Line, e.Column, e.Msg)
	default:
		return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
	}
}

// Compile parses, type-checks and cost-estimates rules. Every rule that
// does not compile is reported, each as an [*Error], joined.
func Compile(rs []Rule, lim Limits) (*Set, error) {
	lim = lim.withDefaults()
	env, err := environment()
	if err != nil {
		return nil, err
	}
	s := &Set{rules: make([]compiled, 0, len(rs))}
	var errs []error
	for i, r := range rs {
		c, err := compile(env, r, lim)
		if err != nil {
			err.Rule, err.Allow = i, r.Allow
			errs = append(errs, err)
			continue
		}
		c.name = r.Name
		if c.name == "" {
			c.name = strconv.Itoa(i)
		}
		s.rules = append(s.rules, c)
		s.headers = s.headers || c.headers
		s.remoteIP = s.remoteIP || c.remoteIP
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

func compile(env *cel.Env, r Rule, lim Limits) (compiled, *Error) {
	if strings.TrimSpace(r.Expr) == "" {
		return compiled{}, &Error{Msg: `is empty; write a CEL expression such as '"staff" in claims.groups'`}
	}
	ast, iss := env.Compile(r.Expr)
	if iss.Err() != nil {
		e := &Error{}
		var msgs []string
		for i, ce := range iss.Errors() {
			if i == 0 && ce.Location != nil {
				e.Line, e.Column = ce.Location.Line(), ce.Location.Column()+1
			}
			msgs = append(msgs, ce.Message)
		}
		e.Msg = strings.Join(msgs, "; ")
		return compiled{}, e
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return compiled{}, &Error{Msg: fmt.Sprintf("is of type %s; a rule must be a bool (true or false)", t)}
	}
	est, err := env.EstimateCost(ast, estimator{list: lim.MaxListSize})
	if err != nil {
		return compiled{}, &Error{Msg: "cost cannot be estimated: " + err.Error()}
	}
	if est.Max > lim.MaxCost {
		return compiled{}, &Error{Msg: fmt.Sprintf("estimated cost %d exceeds server.rules.max_cost (%d), with lists of at most %d elements (server.rules.max_list_size); simplify the expression or raise the limit", est.Max, lim.MaxCost, lim.MaxListSize)}
	}
	// Only a comprehension (all, exists, map, filter...) can cost more than
	// its estimate, when a list is longer than max_list_size; only then is
	// each evaluation's cost tracked and bounded, which makes it several
	// times slower.
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	nav := celast.NavigateAST(ast.NativeRep())
	if len(celast.MatchDescendants(nav, celast.KindMatcher(celast.ComprehensionKind))) > 0 {
		opts = append(opts, cel.CostLimit(lim.MaxCost))
	}
	prg, err := env.Program(ast, opts...)
	if err != nil {
		return compiled{}, &Error{Msg: err.Error()}
	}
	c := compiled{allow: r.Allow, prg: prg, cost: est.Max}
	c.headers = len(celast.MatchDescendants(nav, selects("headers"))) > 0
	c.remoteIP = len(celast.MatchDescendants(nav, selects("remote_ip"))) > 0
	return c, nil
}

// selects matches request.field: the fields that cost something to fill
// are filled only for a Set with a rule that reads them.
func selects(field string) celast.ExprMatcher {
	return func(e celast.NavigableExpr) bool {
		if e.Kind() != celast.SelectKind || e.AsSelect().FieldName() != field {
			return false
		}
		op := e.AsSelect().Operand()
		return op.Kind() == celast.IdentKind && op.AsIdent() == "request"
	}
}

// ReadsHeaders reports whether the rules read request.headers, which the
// caller then fills in.
func (s *Set) ReadsHeaders() bool { return s != nil && s.headers }

// ReadsRemoteIP reports whether the rules read request.remote_ip, which
// the caller then fills in.
func (s *Set) ReadsRemoteIP() bool { return s != nil && s.remoteIP }

// Len is the number of rules.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// Name is the name of rule i: its own, or its index.
func (s *Set) Name(i int) string { return s.rules[i].name }

// Allows reports whether rule i allows when it matches.
func (s *Set) Allows(i int) bool { return s.rules[i].allow }

// Eval runs the rules in order on in; the first that is true decides, and
// no match denies.
func (s *Set) Eval(in *Input) Decision {
	in.act = activation{in: in}
	in.Request.vals = [4]ref.Val{}
	var first error
	for i := range s.rules {
		r := &s.rules[i]
		ok, err := r.eval(&in.act)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("rule %s: %w", r.name, err)
			}
			if r.allow {
				continue // an error never grants
			}
			return Decision{Allow: false, Rule: i, Name: r.name, Err: first}
		}
		if ok {
			return Decision{Allow: r.allow, Rule: i, Name: r.name, Err: first}
		}
	}
	return Decision{Allow: false, Rule: -1, Name: "default", Err: first}
}

// Result is what one rule gave, for explain.
type Result struct {
	Name    string
	Allow   bool // the rule allows when it matches
	Matched bool
	Err     error
}

// Trace evaluates every rule on in, not only up to the deciding one, and
// returns each result with the decision Eval would give.
func (s *Set) Trace(in *Input) ([]Result, Decision) {
	in.act = activation{in: in}
	in.Request.vals = [4]ref.Val{}
	out := make([]Result, len(s.rules))
	for i := range s.rules {
		r := &s.rules[i]
		ok, err := r.eval(&in.act)
		out[i] = Result{Name: r.name, Allow: r.allow, Matched: ok, Err: err}
	}
	return out, s.Eval(in)
}

func (r *compiled) eval(act *activation) (bool, error) {
	v, _, err := r.prg.Eval(act)
	if err != nil {
		return false, err
	}
	b, ok := v.(types.Bool)
	if !ok {
		return false, fmt.Errorf("gave %s, not a bool", v.Type().(ref.Type).TypeName())
	}
	return bool(b), nil
}

// activation resolves the four variables of a rule without building a map
// per request.
type activation struct {
	in              *Input
	claims, request ref.Val // adapted once per evaluation of a Set
}

var emptyClaims = types.NewStringInterfaceMap(claimsAdapter, map[string]any{})

// claimsAdapter turns claims into CEL values as they are read.
var claimsAdapter = adapter{types.DefaultTypeAdapter}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "claims":
		if a.in.Claims == nil {
			return emptyClaims, true
		}
		return a.in.Claims, true
	case "scopes":
		if a.in.Scopes == nil {
			return []string{}, true
		}
		return a.in.Scopes, true
	case "request":
		return requestVal{&a.in.Request}, true
	case "now":
		return types.Timestamp{Time: a.in.Now}, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// environment is the one CEL environment every rule compiles in: the
// variables, the standard library, the string and network extensions
// (cidr('10.0.0.0/8').containsIP(request.remote_ip)), and an adapter that
// reads JSON numbers as ints or doubles.
var environment = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.CustomTypeAdapter(claimsAdapter),
		ext.Strings(),
		ext.Network(),
		// After the extensions, which register their types with the
		// standard registry this wraps.
		func(e *cel.Env) (*cel.Env, error) {
			return cel.CustomTypeProvider(provider{e.CELTypeProvider()})(e)
		},
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("scopes", cel.ListType(cel.StringType)),
		cel.Variable("request", cel.ObjectType(requestType)),
		cel.Variable("now", cel.TimestampType),
	)
})

// requestVal is a *Request as a CEL value, so that the interpreter reads
// its fields with requestFields and never adapts it.
type requestVal struct{ r *Request }

var requestCELType = types.NewObjectType(requestType)

func (v requestVal) ConvertToNative(t reflect.Type) (any, error) {
	if t == reflect.TypeFor[*Request]() {
		return v.r, nil
	}
	return nil, fmt.Errorf("a request is not a %v", t)
}

func (v requestVal) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return requestCELType
	}
	return types.NewErr("a request cannot be converted to %s", t.TypeName())
}

func (v requestVal) Equal(other ref.Val) ref.Val {
	o, ok := other.(requestVal)
	return types.Bool(ok && o.r == v.r)
}

func (v requestVal) Type() ref.Type { return requestCELType }
func (v requestVal) Value() any     { return v.r }

// requestType is the CEL type of request: an object whose fields are read
// straight from a *Request, with no reflection.
const requestType = "portcullis.Request"

// provider adds requestType to the types CEL knows.
type provider struct{ types.Provider }

// stringField is field i of a request, made a CEL value once per
// evaluation however often the rules read it.
func stringField(i int, get func(*Request) string) *types.FieldType {
	return &types.FieldType{
		Type:  types.StringType,
		IsSet: func(obj any) bool { return get(obj.(*Request)) != "" },
		GetFrom: func(obj any) (any, error) {
			r := obj.(*Request)
			if r.vals[i] == nil {
				r.vals[i] = types.String(get(r))
			}
			return r.vals[i], nil
		},
	}
}

var requestFields = map[string]*types.FieldType{
	"method":    stringField(0, func(r *Request) string { return r.Method }),
	"path":      stringField(1, func(r *Request) string { return r.Path }),
	"host":      stringField(2, func(r *Request) string { return r.Host }),
	"remote_ip": stringField(3, func(r *Request) string { return r.RemoteIP }),
	"headers": {
		Type:  types.NewMapType(types.StringType, types.StringType),
		IsSet: func(obj any) bool { return obj.(*Request).Headers != nil },
		GetFrom: func(obj any) (any, error) {
			h := obj.(*Request).Headers
			if h == nil {
				h = map[string]string{}
			}
			return types.NewStringStringMap(claimsAdapter, h), nil
		},
	},
}

var requestFieldNames = slices.Sorted(maps.Keys(requestFields))

func (p provider) FindStructType(name string) (*types.Type, bool) {
	if name == requestType {
		return types.NewTypeTypeWithParam(types.NewObjectType(requestType)), true
	}
	return p.Provider.FindStructType(name)
}

func (p provider) FindStructFieldNames(name string) ([]string, bool) {
	if name == requestType {
		return requestFieldNames, true
	}
	return p.Provider.FindStructFieldNames(name)
}

func (p provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	if name == requestType {
		ft, ok := requestFields[field]
		return ft, ok
	}
	return p.Provider.FindStructFieldType(name, field)
}

func (p provider) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if name == requestType {
		return types.NewErr("a request cannot be made in a rule")
	}
	return p.Provider.NewValue(name, fields)
}

// adapter reads the numbers of claims, decoded as json.Number, as CEL ints
// when they are integers and doubles otherwise, at any depth.
type adapter struct{ types.Adapter }

func (a adapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return types.Int(i)
		}
		if f, err := v.Float64(); err == nil {
			return types.Double(f)
		}
		return types.String(v)
	case map[string]any:
		return types.NewStringInterfaceMap(a, v)
	case []any:
		return types.NewDynamicList(a, v)
	}
	return a.Adapter.NativeToValue(v)
}

// estimator bounds the sizes CEL cannot know: lists, maps and values of
// unknown type from claims or headers hold at most list elements, strings
// at most maxStringSize characters.
type estimator struct{ list uint64 }

func (e estimator) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	switch n.Type().Kind() {
	case types.StringKind, types.BytesKind:
		return &checker.SizeEstimate{Min: 0, Max: maxStringSize}
	case types.ListKind, types.MapKind, types.DynKind:
		return &checker.SizeEstimate{Min: 0, Max: e.list}
	}
	return nil
}

func (estimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
