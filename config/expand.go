package config

import (
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandScalar expands ${NAME} references in the scalar n, once per node,
// reporting unset variables and malformed references at n's line. A scalar
// that held a reference and carries no explicit tag is retyped for t: a
// string for string fields, otherwise resolved from the expanded text as if
// it had been written plain (so port: "${PORT}" still decodes as a number).
func (p *parser) expandScalar(n *yaml.Node, t reflect.Type, path string) {
	if p.expanded[n] {
		return
	}
	p.expanded[n] = true
	if !strings.Contains(n.Value, "${") {
		return
	}
	out, problems := expand(n.Value, p.lookupEnv)
	for _, msg := range problems {
		p.errorf(n.Line, path, "%s", msg)
	}
	if len(problems) > 0 {
		p.bad[path] = true
	}
	n.Value = out
	if n.Style&yaml.TaggedStyle != 0 {
		return
	}
	if t.Kind() == reflect.String {
		n.Tag = strTag
	} else {
		n.Tag, n.Style = "", 0
	}
}

// expand replaces every ${NAME} in s with the value lookup returns. "$${"
// stands for a literal "${"; any other "$" is kept. It returns the expanded
// text and one message per variable that is not set or reference that is
// not of the form ${NAME}. Messages name variables, never their values.
func expand(s string, lookup func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var problems []string
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				problems = append(problems, `"${" is not closed; write ${NAME}, or $${ for a literal "${"`)
				b.WriteString(rest)
				i = len(s)
				continue
			}
			name := rest[2:end]
			i += end + 1
			if !isEnvName(name) {
				problems = append(problems, "${"+shorten(name)+"} is not a variable reference; "+
					`a name has letters, digits and "_" and does not start with a digit (write $${ for a literal "${")`)
				continue
			}
			v, ok := lookup(name)
			if !ok {
				problems = append(problems, "environment variable "+name+" is not set")
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), problems
}

// isEnvName reports whether s matches [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// shorten truncates s and escapes what is not printable, for messages.
func shorten(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
