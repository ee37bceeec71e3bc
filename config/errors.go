package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem found in a configuration file. It names the file, the
// line and the key, and its message says what would be valid.
type Error struct {
	// File is the name given to [Load] or [Parse].
	File string
	// Line is the 1-based line of the problem, 0 when it has none (an empty
	// file, a key that is neither present nor has a present parent).
	Line int
	// Key is the key path, such as "routes[0].upstream", or empty when the
	// problem belongs to no single key (YAML syntax, an unknown key).
	Key string
	// Msg says what is wrong and what would be valid. It never holds a
	// secret's value.
	Msg string
}

// Error formats e as "file:line: key: msg", leaving out empty parts.
func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		if loc == "" {
			loc = "line " + strconv.Itoa(e.Line)
		} else {
			loc += ":" + strconv.Itoa(e.Line)
		}
	}
	parts := make([]string, 0, 3)
	for _, p := range []string{loc, e.Key, e.Msg} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ": ")
}

// Errors is every problem found in one configuration file, sorted by line,
// then key. [Load], [Parse] and [Config.Validate] return it whenever anything
// is wrong; it is never empty when returned as an error.
type Errors []*Error

// Error formats every problem, one a line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, for [errors.As] and [errors.Is].
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sort orders es by line, then key, then message, and drops exact repeats.
func (es Errors) sort() Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Msg, b.Msg))
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return *a == *b })
}

// asErrors returns es as an error, nil when it is empty.
func (es Errors) asError() error {
	if len(es) == 0 {
		return nil
	}
	return es.sort()
}

// File returns the name the configuration was loaded from, empty for a
// [Config] built in code.
func (c *Config) File() string { return c.file }

// Pos returns the position of a key path such as "routes[2].upstream" as
// "file:line", for messages at run time. A key that was not written in the
// file (it was defaulted) gets the line of its nearest written parent; with
// no such parent, Pos returns the file name alone.
func (c *Config) Pos(key string) string {
	line := c.line(key)
	switch {
	case line == 0:
		return c.file
	case c.file == "":
		return "line " + strconv.Itoa(line)
	}
	return c.file + ":" + strconv.Itoa(line)
}

// line returns the line of key or of its nearest recorded parent, 0 if none.
func (c *Config) line(key string) int {
	for k := key; k != ""; k = parentKey(k) {
		if l, ok := c.lines[k]; ok {
			return l
		}
	}
	return 0
}

// has reports whether key was written in the file.
func (c *Config) has(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// parentKey strips the last ".name" or "[i]" from a key path.
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		// A quoted map key may itself hold "[" or "."; its opening bracket
		// is the last `["`, or for an index the last "[".
		if i := strings.LastIndex(key, `["`); i >= 0 && strings.HasSuffix(key, `"]`) {
			return key[:i]
		}
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

// keyPath joins a parent path and a key: "a.b" for plain keys, `a["x y"]`
// for keys holding anything but letters, digits, "_" and "-".
func keyPath(parent, key string) string {
	plain := key != "" && !strings.ContainsFunc(key, func(r rune) bool {
		return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
	switch {
	case !plain:
		return parent + "[" + strconv.Quote(key) + "]"
	case parent == "":
		return key
	}
	return parent + "." + key
}

// indexPath returns "parent[i]".
func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

var (
	_ error = (*Error)(nil)
	_ error = Errors(nil)
)
