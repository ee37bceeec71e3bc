package authn

import (
	"encoding/json"
	"errors"
)

// decodeObject decodes one JSON object the way encoding/json decodes into a
// map[string]any with UseNumber (numbers as json.Number), strictly: the
// input is one object and nothing but whitespace after it, names are unique
// within each object at every level (compared after unescaping), and
// nesting stays within
// maxNesting. It is a small recursive-descent parser, several times faster
// than encoding/json's reflection for the few hundred bytes of a token's
// header or claims; strings with escapes or bytes outside printable ASCII
// are handed to encoding/json, so their meaning is exactly its meaning.
func decodeObject(b []byte) (map[string]any, error) {
	d := jsonDecoder{b: b}
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '{' {
		return nil, errors.New("not a JSON object")
	}
	m, err := d.object(1)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, errors.New("trailing data after JSON object")
	}
	return m, nil
}

type jsonDecoder struct {
	b []byte
	i int
}

var (
	errJSONSyntax  = errors.New("invalid JSON")
	errNestTooDeep = errors.New("claims nest too deeply")
)

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// value decodes the value at d.i; depth is that of its container.
func (d *jsonDecoder) value(depth int) (any, error) {
	d.space()
	if d.i >= len(d.b) {
		return nil, errJSONSyntax
	}
	switch c := d.b[d.i]; {
	case c == '{':
		if depth+1 > maxNesting {
			return nil, errNestTooDeep
		}
		return d.object(depth + 1)
	case c == '[':
		if depth+1 > maxNesting {
			return nil, errNestTooDeep
		}
		return d.array(depth + 1)
	case c == '"':
		return d.str()
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, errJSONSyntax
}

func (d *jsonDecoder) literal(word string) error {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return errJSONSyntax
	}
	d.i += len(word)
	return nil
}

// object decodes the object opening at d.i. A repeated name is an error
// at every level: policies read nested claims (realm_access.roles), and a
// parser that takes the first of two would read another value than one
// that takes the last (RFC 8259 §4, RFC 8725 §3.11).
func (d *jsonDecoder) object(depth int) (map[string]any, error) {
	d.i++ // {
	m := make(map[string]any, 8)
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, errJSONSyntax
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, errDuplicateClaim
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, errJSONSyntax
		}
		d.i++
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		if end, err := d.separator('}'); err != nil {
			return nil, err
		} else if end {
			return m, nil
		}
	}
}

func (d *jsonDecoder) array(depth int) ([]any, error) {
	d.i++ // [
	out := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return out, nil
	}
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if end, err := d.separator(']'); err != nil {
			return nil, err
		} else if end {
			return out, nil
		}
	}
}

// separator consumes what follows a member or an element: a comma, before
// another (end false), or close, which ends the object or array (end true).
func (d *jsonDecoder) separator(close byte) (end bool, err error) {
	d.space()
	if d.i >= len(d.b) {
		return false, errJSONSyntax
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, nil
	case close:
		d.i++
		return true, nil
	}
	return false, errJSONSyntax
}

// str decodes the string opening at d.i.
func (d *jsonDecoder) str() (string, error) {
	start := d.i
	plain := true
	for j := start + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			if plain {
				return string(d.b[start+1 : j]), nil
			}
			// Escapes, control or non-ASCII bytes: encoding/json decides,
			// including how it replaces invalid UTF-8.
			// (A copy, so the caller's buffer never escapes.)
			var s string
			if err := json.Unmarshal(append([]byte(nil), d.b[start:j+1]...), &s); err != nil {
				return "", err
			}
			return s, nil
		case c == '\\':
			plain = false
			j++
		case c < 0x20 || c >= 0x7f:
			plain = false
		}
	}
	return "", errors.New("unterminated string")
}

// number decodes the JSON number at d.i as a json.Number.
func (d *jsonDecoder) number() (json.Number, error) {
	b, i := d.b, d.i
	start := i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return "", errJSONSyntax
	}
	if i < len(b) && b[i] == '.' {
		n := skipDigits(b, i+1)
		if n == i+1 {
			return "", errJSONSyntax // a fraction needs a digit
		}
		i = n
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		n := skipDigits(b, i)
		if n == i {
			return "", errJSONSyntax // an exponent needs a digit
		}
		i = n
	}
	d.i = i
	return json.Number(b[start:i]), nil
}

// skipDigits returns the index of the first byte at or after i in b that
// is not an ASCII digit.
func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
