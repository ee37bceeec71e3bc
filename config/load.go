package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path and parses it with [Parse],
// taking ${NAME} values from the process environment. A file that cannot be
// read is a plain error; everything wrong inside it comes back as [Errors].
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse parses one YAML document into a [Config], applies the defaults
// documented on each field and runs [Config.Validate]. name is the file name
// used in error messages.
//
// Keys are checked against the schema: unknown and duplicate keys are errors,
// as are values of the wrong type. Scalar values may refer to environment
// variables as ${NAME} (NAME made of letters, digits and "_", not starting
// with a digit), looked up with lookupEnv (nil means nothing is set). A
// variable that is not set is an error; one set to "" expands to "". "$${"
// is a literal "${", and any other "$" is kept as is, so bcrypt hashes need
// no escaping. Keys and comments are never expanded. A scalar that held a
// reference gets the type of its field after expansion, quoted or not.
// Anchors, aliases and "<<" merge keys work as in YAML.
//
// Parse reports every problem at once, as [Errors] sorted by line, and
// returns a nil *Config with them. It does not panic on any input.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	p := &parser{
		file:      name,
		lookupEnv: lookupEnv,
		lines:     map[string]int{},
		null:      map[string]bool{},
		bad:       map[string]bool{},
		expanded:  map[*yaml.Node]bool{},
		active:    map[*yaml.Node]bool{},
		maxVisits: 100_000 + 10*len(data),
	}
	root := p.document(data)
	if root == nil {
		return nil, p.errs.asError()
	}
	cfg := &Config{file: name, lines: p.lines}
	p.walk(&root, reflect.TypeFor[Config](), "")
	if p.tooBig {
		return nil, p.errs.asError()
	}
	if err := decodeNode(root, cfg); err != nil {
		p.yamlError(err)
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// Decoding stopped part way: validating what it left would
			// only report keys as missing.
			return nil, p.errs.asError()
		}
	}
	cfg.applyDefaults(func(key string) bool { return cfg.has(key) && !p.null[key] })
	var verr Errors
	if errors.As(cfg.Validate(), &verr) {
		for _, e := range verr {
			// A key whose value could not be parsed was already reported;
			// its zero value would only add noise.
			if !p.isBad(e.Key) {
				p.errs = append(p.errs, e)
			}
		}
	}
	if err := p.errs.asError(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parser holds the state of one [Parse] call.
type parser struct {
	file      string
	lookupEnv func(string) (string, bool)
	errs      Errors

	// lines maps every key path written in the file to its line; null holds
	// the paths whose value is empty (YAML null), which count as absent for
	// defaults; bad holds the paths whose value could not be parsed.
	lines map[string]int
	null  map[string]bool
	bad   map[string]bool

	// expanded holds the scalars already expanded, so a node reached twice
	// through aliases is expanded once.
	expanded map[*yaml.Node]bool

	// active holds the nodes being walked, from the root down, to catch an
	// alias or merge of a value into itself.
	active map[*yaml.Node]bool

	// visits counts walked nodes; past maxVisits (aliases can make a small
	// file describe a huge tree) the walk stops with tooBig set.
	visits, maxVisits int
	tooBig            bool
}

// errorf records a problem at line for key.
func (p *parser) errorf(line int, key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// isBad reports whether key or one of its parents had a value that could not
// be parsed.
func (p *parser) isBad(key string) bool {
	for k := key; k != ""; k = parentKey(k) {
		if p.bad[k] {
			return true
		}
	}
	return false
}

// document parses data as exactly one YAML document whose root is a mapping
// and returns that mapping, or nil after recording why not.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	keys := strings.Join(schemaOf(reflect.TypeFor[Config]()).names, ", ")
	err := decodeDocument(dec, &doc)
	if errors.Is(err, io.EOF) {
		p.errorf(0, "", "the file is empty; want a mapping with keys %s", keys)
		return nil
	}
	if err != nil {
		p.syntaxError(data, err)
		return nil
	}
	var next yaml.Node
	switch err := decodeDocument(dec, &next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
		return nil
	default:
		p.errorf(next.Line, "", "a second YAML document starts here; keep the whole configuration in one document")
		return nil
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].ShortTag() == nullTag {
		p.errorf(doc.Line, "", "the file holds no configuration; want a mapping with keys %s", keys)
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root.Line, "", "the top level must be a mapping with keys %s, not %s", keys, describe(root))
		return nil
	}
	return root
}

// yamlError records an error from yaml.v3, taking the line from its
// "line N: " prefix, and each line of a *yaml.TypeError separately.
func (p *parser) yamlError(err error) {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, m := range te.Errors {
			p.yamlMessage(m)
		}
		return
	}
	p.yamlMessage(strings.TrimPrefix(err.Error(), "yaml: "))
}

// syntaxError records an error from parsing data. For the problems of
// yaml.v3's parser, which names the line of the enclosing block rather
// than the line it stumbled on, the line is found again: the first line
// from the block's on at which the file, cut off after it, fails the same
// way.
func (p *parser) syntaxError(data []byte, err error) {
	line, text := splitLine(strings.TrimPrefix(err.Error(), "yaml: "))
	if !parserProblems[text] {
		p.yamlError(err)
		return
	}
	if at := problemLine(data, line+1, text); at > 0 {
		line = at
	} else {
		line++ // 0-based, see yamlMessage
	}
	p.errorf(line, "", "invalid YAML: %s", text)
}

// problemLine returns the first line n, from from on, such that the first
// n lines of data fail to parse with the parser problem text; 0 if none
// does, or data is too long to search.
func problemLine(data []byte, from int, text string) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 2000 {
		return 0
	}
	end := 0
	for n := 1; n <= len(lines); n++ {
		end += len(lines[n-1])
		if n < from {
			continue
		}
		var doc yaml.Node
		err := decodeDocument(yaml.NewDecoder(bytes.NewReader(data[:end])), &doc)
		if err == nil || errors.Is(err, io.EOF) {
			continue
		}
		if _, t := splitLine(strings.TrimPrefix(err.Error(), "yaml: ")); t == text {
			return n
		}
	}
	return 0
}

// yamlMessage records one yaml.v3 message of the form "line N: text".
func (p *parser) yamlMessage(msg string) {
	line, text := splitLine(msg)
	if parserProblems[text] {
		// yaml.v3 reports the 0-based line of the enclosing block for these
		// (and none when that is 0); its other messages count from 1.
		line++
	}
	p.errorf(line, "", "invalid YAML: %s", text)
}

// parserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// splitLine splits "line N: text" into N and text; other messages get 0.
func splitLine(msg string) (int, string) {
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, text, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil && line > 0 {
				return line, text
			}
		}
	}
	return 0, msg
}

// decodeDocument reads the next document from dec. It turns a panic inside
// the YAML parser into an error, so no input can crash the caller.
func decodeDocument(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML parser failed: %v", r)
		}
	}()
	return dec.Decode(n)
}

// decodeNode decodes n into v, turning a panic inside yaml.v3 into an error.
func decodeNode(n *yaml.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the YAML decoder failed: %v", r)
		}
	}()
	return n.Decode(v)
}

// describe names the kind of n for messages: a list, a mapping or the
// scalar's value, shortened.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "an alias"
}
