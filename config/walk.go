package config

import (
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

const (
	nullTag = "!!null"
	strTag  = "!!str"
)

// walk checks the YAML node in *slot against the Go type t before it is
// decoded: it records the line of every key path, reports unknown and
// duplicate keys and values of the wrong shape or type, and expands ${NAME}
// in scalars. A value it reports is replaced in its slot by null, so that
// decoding skips it rather than stopping there, while an anchored node that
// other places use through aliases stays intact.
func (p *parser) walk(slot **yaml.Node, t reflect.Type, path string) {
	if !p.visit(1) {
		return
	}
	n := resolve(*slot)
	if n == nil {
		return
	}
	if p.active[n] {
		p.fail(slot, path, "is an alias of a value that contains it")
		return
	}
	p.active[n] = true
	defer delete(p.active, n)
	if t.Kind() == reflect.Pointer {
		// An optional section (issuer): present unless absent or null.
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode {
		p.expandScalar(n, t, path)
		if n.ShortTag() == nullTag {
			p.null[path] = true
			return
		}
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[yaml.Unmarshaler]()) {
		p.walkCustom(slot, n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		p.walkStruct(slot, n, t, path)
	case reflect.Slice:
		p.walkSlice(slot, n, t, path)
	case reflect.Map:
		p.walkMap(slot, n, t, path)
	case reflect.Interface:
		p.walkAny(slot, n, path)
	default:
		p.walkScalar(slot, n, t, path)
	}
}

// visit counts n more nodes walked and reports whether the walk may go on.
// Aliases let a small file describe a huge tree; past maxVisits nodes the
// walk stops for good, with one error.
func (p *parser) visit(n int) bool {
	if p.visits += n; p.visits > p.maxVisits {
		if !p.tooBig {
			p.tooBig = true
			p.errorf(0, "", "the document is too large or uses aliases too much")
		}
		return false
	}
	return true
}

// fail reports a value that cannot be decoded, at the line where it is
// used, and replaces it in its slot with null.
func (p *parser) fail(slot **yaml.Node, path, format string, args ...any) {
	n := *slot
	p.errorf(n.Line, path, format, args...)
	p.bad[path] = true
	*slot = &yaml.Node{Kind: yaml.ScalarNode, Tag: nullTag, Line: n.Line, Column: n.Column}
}

// record notes the line of a key path; the first line seen wins.
func (p *parser) record(path string, line int) {
	if _, ok := p.lines[path]; !ok {
		p.lines[path] = line
	}
}

// walkStruct checks a mapping against the yaml tags of struct type t.
func (p *parser) walkStruct(slot **yaml.Node, n *yaml.Node, t reflect.Type, path string) {
	s := schemaOf(t)
	if n.Kind != yaml.MappingNode {
		p.fail(slot, path, "want a mapping with keys %s, got %s", strings.Join(s.names, ", "), describe(n))
		return
	}
	for _, kv := range p.pairs(n, path, 0, map[string]bool{}) {
		k := kv.key
		ft, ok := s.types[k.Value]
		if !ok {
			p.unknownKey(k, path, s.names)
			continue
		}
		kpath := keyPath(path, k.Value)
		p.record(kpath, k.Line)
		p.walk(kv.value, ft, kpath)
	}
}

// unknownKey reports a key that t has no field for.
func (p *parser) unknownKey(k *yaml.Node, path string, names []string) {
	where := "in " + path
	if path == "" {
		where = "at the top level"
	}
	msg := "unknown key " + strconv.Quote(k.Value) + " " + where
	if s := suggest(k.Value, names); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	p.errorf(k.Line, "", "%s; valid keys: %s", msg, strings.Join(names, ", "))
}

// walkMap checks a mapping whose keys are free (forward_headers,
// require_claims, claims) and walks its values. Where the values are free
// too (claims), a key must be a string: JSON objects have no other keys.
func (p *parser) walkMap(slot **yaml.Node, n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.MappingNode {
		p.fail(slot, path, "want a mapping of names to values, got %s", describe(n))
		return
	}
	for _, kv := range p.pairs(n, path, 0, map[string]bool{}) {
		k := kv.key
		kpath := keyPath(path, k.Value)
		p.record(kpath, k.Line)
		if t.Elem().Kind() == reflect.Interface && k.ShortTag() != strTag {
			p.errorf(k.Line, kpath, "a name must be a string, and %s reads as %s; quote it (%q) if it is meant as a name", describe(k), tagName(k.ShortTag()), k.Value)
			p.bad[kpath] = true
			// Decoded as a string, it lets the rest be checked.
			k.Tag, k.Style = strTag, k.Style&^yaml.TaggedStyle
		}
		p.walk(kv.value, t.Elem(), kpath)
	}
}

// walkAny checks a free-form value (a user's claim), which must be what
// JSON can hold: a mapping with string keys, a list, a string, a number,
// true, false or null.
func (p *parser) walkAny(slot **yaml.Node, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		p.walkMap(slot, n, reflect.TypeFor[map[string]any](), path)
		return
	case yaml.SequenceNode:
		p.walkSlice(slot, n, reflect.TypeFor[[]any](), path)
		return
	}
	const want = "want a string, a number, true, false, a list or a mapping"
	switch tag := n.ShortTag(); tag {
	case strTag, "!!int", "!!bool", nullTag:
	case "!!timestamp":
		// Kept as written: a date is a string in JSON.
		n.Tag, n.Style = strTag, n.Style&^yaml.TaggedStyle
	case "!!float":
		var f float64
		if err := decodeNode(n, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			p.fail(slot, path, "%s is not a number JSON can hold; %s", describe(n), want)
		}
	default:
		p.fail(slot, path, "a value tagged %s cannot be a claim; %s", tag, want)
	}
}

// tagName names a YAML tag for messages.
func tagName(tag string) string {
	switch tag {
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	case nullTag:
		return "null"
	case "!!timestamp":
		return "a date"
	}
	return "a value tagged " + tag
}

// walkSlice checks a sequence and walks its items as path[i].
func (p *parser) walkSlice(slot **yaml.Node, n *yaml.Node, t reflect.Type, path string) {
	if n.Kind != yaml.SequenceNode {
		p.fail(slot, path, "want a list such as [a, b], got %s", describe(n))
		return
	}
	for i, item := range n.Content {
		ipath := indexPath(path, i)
		p.record(ipath, item.Line)
		p.walk(&n.Content[i], t.Elem(), ipath)
	}
}

// walkScalar checks that a scalar decodes into t (string, bool, integer).
func (p *parser) walkScalar(slot **yaml.Node, n *yaml.Node, t reflect.Type, path string) {
	want := "a string"
	switch t.Kind() {
	case reflect.Bool:
		want = "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		want = "a whole number"
	}
	if n.Kind != yaml.ScalarNode {
		p.fail(slot, path, "want %s, got %s", want, describe(n))
		return
	}
	if err := decodeNode(n, reflect.New(t).Interface()); err != nil {
		p.fail(slot, path, "want %s, got %s", want, describe(n))
	}
}

// walkCustom checks a value of a type with its own UnmarshalYAML (Duration,
// StringList) by running it, after expanding the scalars of a list.
func (p *parser) walkCustom(slot **yaml.Node, n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.SequenceNode {
		if !p.visit(len(n.Content)) {
			return
		}
		for i, item := range n.Content {
			ipath := indexPath(path, i)
			p.record(ipath, item.Line)
			if item.Kind == yaml.ScalarNode {
				p.expandScalar(item, reflect.TypeFor[string](), ipath)
			}
		}
	}
	u := reflect.New(t).Interface().(yaml.Unmarshaler)
	if err := callUnmarshaler(u, n); err != nil {
		p.fail(slot, path, "%s", err.Error())
	}
}

// callUnmarshaler runs u on n, turning a panic into an error.
func callUnmarshaler(u yaml.Unmarshaler, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errorString("cannot be decoded")
		}
	}()
	return u.UnmarshalYAML(n)
}

type errorString string

func (e errorString) Error() string { return string(e) }

// pair is a key of a mapping and the slot of its value.
type pair struct {
	key   *yaml.Node
	value **yaml.Node
}

// pairs returns the key/value pairs of mapping n in the order they take
// effect: its own keys, then the keys merged in with "<<" that are not set
// already (have holds the keys seen so far). It reports and removes from n
// duplicate keys, keys that are not plain names and merges of anything but
// mappings, so that decoding n afterwards cannot fail on them.
func (p *parser) pairs(n *yaml.Node, path string, depth int, have map[string]bool) []pair {
	if depth > 8 {
		p.errorf(n.Line, path, "merges (<<) nest too deeply")
		return nil
	}
	if !p.visit(len(n.Content) / 2) {
		return nil
	}
	var (
		own    = map[string]int{}
		kept   = make([]*yaml.Node, 0, len(n.Content))
		values []int // indexes in kept of the values to return
		merges []*yaml.Node
	)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode || k.Style&yaml.TaggedStyle != 0 && k.ShortTag() != strTag && !isMerge(k):
			p.errorf(k.Line, path, "a key must be a plain name, not %s", describe(k))
			continue
		case isMerge(k):
			if line, dup := own["<<"]; dup {
				p.errorf(k.Line, path, "duplicate merge key <<; the first is at line %d; merge a list instead: <<: [*a, *b]", line)
				continue
			}
			if !mergeable(v) {
				p.errorf(k.Line, path, "<< must merge a mapping or a list of mappings, not %s", describe(resolveOrSelf(v)))
				continue
			}
			if p.mergesActive(n, v) {
				p.errorf(k.Line, path, "<< merges a mapping that contains it")
				continue
			}
			own["<<"] = k.Line
			merges = append(merges, v)
		default:
			if line, dup := own[k.Value]; dup {
				p.errorf(k.Line, keyPath(path, k.Value), "duplicate key; it is first set at line %d", line)
				continue
			}
			own[k.Value] = k.Line
			if !have[k.Value] {
				have[k.Value] = true
				values = append(values, len(kept)+1)
			}
		}
		kept = append(kept, k, v)
	}
	if len(kept) != len(n.Content) {
		// Only when something was dropped: slots handed out by an earlier
		// call on the same node (through an alias) must stay valid.
		n.Content = kept
	}
	out := make([]pair, 0, len(values))
	for _, i := range values {
		out = append(out, pair{key: n.Content[i-1], value: &n.Content[i]})
	}
	for _, m := range merges {
		items := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			items = m.Content
		}
		for _, item := range items {
			out = append(out, p.pairs(resolve(item), path, depth+1, have)...)
		}
	}
	return out
}

// mergesActive reports whether the merge value v names n or a mapping being
// walked around n, which would merge a mapping into itself.
func (p *parser) mergesActive(n, v *yaml.Node) bool {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	for _, item := range items {
		if m := resolve(item); m == n || p.active[m] {
			return true
		}
	}
	return false
}

// isMerge reports whether k is the merge key "<<", as yaml.v3 decides it.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" &&
		(k.Tag == "" || k.Tag == "!" || k.Tag == "!!merge" || k.Tag == "tag:yaml.org,2002:merge")
}

// mergeable reports whether v can follow "<<" as yaml.v3 decides it: a
// mapping, an alias of a mapping, or a list of those.
func mergeable(v *yaml.Node) bool {
	switch v.Kind {
	case yaml.AliasNode:
		return v.Alias != nil && v.Alias.Kind == yaml.MappingNode
	case yaml.MappingNode:
		return true
	case yaml.SequenceNode:
		for _, item := range v.Content {
			ok := item.Kind == yaml.MappingNode || item.Kind == yaml.AliasNode && mergeable(item)
			if !ok {
				return false
			}
		}
		return true
	}
	return false
}

// resolve follows aliases to the node they name, nil for a broken alias.
func resolve(n *yaml.Node) *yaml.Node {
	for range 64 {
		if n == nil || n.Kind != yaml.AliasNode {
			return n
		}
		n = n.Alias
	}
	return nil
}

// resolveOrSelf is resolve, falling back to n itself for messages.
func resolveOrSelf(n *yaml.Node) *yaml.Node {
	if r := resolve(n); r != nil {
		return r
	}
	return n
}

// schema lists the yaml keys of a struct type, in field order.
type schema struct {
	names []string
	types map[string]reflect.Type
}

// schemaOf returns the schema of struct type t from its yaml tags.
func schemaOf(t reflect.Type) schema {
	s := schema{types: map[string]reflect.Type{}}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		s.names = append(s.names, name)
		s.types[name] = f.Type
	}
	return s
}

// suggest returns the valid name that key most likely meant: the same
// letters ignoring case, "_" and "-" (pathPrefix, path-prefix).
func suggest(key string, names []string) string {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	for _, n := range names {
		if norm(n) == norm(key) {
			return n
		}
	}
	return ""
}
