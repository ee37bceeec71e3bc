package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// refDecode is the reference decodeObject must agree with: encoding/json
// into a map with UseNumber, nothing but whitespace after the object, and
// the top-level names and nesting checked by a separate scan.
func refDecode(b []byte) (map[string]any, error) {
	if err := checkTopLevelObject(b); err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	if len(bytes.Trim(b[d.InputOffset():], " \t\r\n")) != 0 {
		return nil, errors.New("trailing data")
	}
	if m == nil {
		return nil, errors.New("null")
	}
	return m, nil
}

// checkTopLevelObject makes sure b is one JSON object whose names are
// unique within each object, at every level, and whose nesting stays under
// maxNesting. It does not validate JSON in full (the decoder does).
func checkTopLevelObject(b []byte) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("claims are not a JSON object")
	}
	type level struct {
		object bool
		keys   []string
	}
	var stack []level
	expectKey := false
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '{', '[':
			stack = append(stack, level{object: c == '{'})
			if len(stack) > maxNesting {
				return errors.New("claims nest too deeply")
			}
			expectKey = c == '{'
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			expectKey = false
		case ',':
			expectKey = len(stack) > 0 && stack[len(stack)-1].object
		case '"':
			end, ok := stringEnd(b, i)
			if !ok {
				return errors.New("unterminated string in claims")
			}
			if expectKey && len(stack) > 0 {
				k := string(b[i+1 : end])
				if strings.IndexByte(k, '\\') >= 0 || !isPrintableASCII(k) {
					// Compare names as JSON sees them: "\u0061ud" is "aud",
					// and invalid UTF-8 reads as U+FFFD.
					if err := json.Unmarshal(b[i:end+1], &k); err != nil {
						return err
					}
				}
				top := &stack[len(stack)-1]
				for _, prev := range top.keys {
					if prev == k {
						return errDuplicateClaim
					}
				}
				top.keys = append(top.keys, k)
				expectKey = false
			}
			i = end
		}
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the string opening at i.
func stringEnd(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j, true
		}
	}
	return 0, false
}

var decodeCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":-0.5e+10,"b":[1,"x",true,false,null,{"c":{}}],"d":"é"}`,
	`{"sub":"alice","aud":["api","web"],"exp":1700000000,"scope":"read write"}`,
	`{"a":"\u0041\n\"\\\/","b":"\ud83d\ude00","c":"\ud800"}`, `{"a":"` + "\xff\xfe" + `"}`,
	`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"a":{"b":1,"b":2}}`, "{\"\x81\":0,\"\xbb\":0}",
	`{"realm_access":{"roles":["user"],"roles":["admin"]}}`, `{"a":[{"b":1},{"b":2}]}`, `{"a":[{"b":1,"\u0062":2}]}`,
	`{"a":{"b":{"c":1}},"d":{"c":2}}`,
	`{"a":1}x`, `{"a":1}]`, `{"a":1} {}`, `[]`, `null`, `"x"`, `1`, ``, `{`, `{"a"}`, `{"a":}`,
	`{"a":1,}`, `{,}`, `{"a":[1,]}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`,
	`{"a":+1}`, `{"a":tru}`, `{"a":nul}`, `{"a":"` + "\x01" + `"}`, `{"a":"x}`, `{'a':1}`,
	`{"a":NaN}`, `{"a":Infinity}`, "{\"a\":1}\x00", "\ufeff{}", `{"a":"\x"}`, `{"a":"\u12"}`,
	strings.Repeat(`{"a":`, 31) + `1` + strings.Repeat(`}`, 31),
	strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat(`}`, 32),
	`{"a":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `}`,
	`{"a":` + strings.Repeat(`[`, 32) + strings.Repeat(`]`, 32) + `}`,
}

func TestDecodeObjectAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range decodeCases {
		checkDecode(t, []byte(c))
	}
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	got, err := decodeObject(b)
	want, werr := refDecode(b)
	if (err == nil) != (werr == nil) {
		t.Fatalf("%q: decodeObject err %v, encoding/json err %v", b, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: decodeObject %#v, encoding/json %#v", b, got, want)
	}
	// On valid JSON both must also agree that a name is repeated (on
	// invalid JSON either error will do).
	if json.Valid(b) && errors.Is(werr, errDuplicateClaim) != errors.Is(err, errDuplicateClaim) {
		t.Fatalf("%q: duplicate: %v vs %v", b, err, werr)
	}
}

// FuzzDecodeObject checks decodeObject against encoding/json on arbitrary
// input: the same verdict and, when accepted, the same value.
func FuzzDecodeObject(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

func BenchmarkDecodeClaims(b *testing.B) {
	payload := []byte(`{"iss":"https://idp.example.com","sub":"alice","aud":["api"],"exp":1800000000,` +
		`"iat":1700000000,"nbf":1700000000,"jti":"3f2a9c","scope":"openid profile read",` +
		`"email":"alice@example.com","groups":["admin","dev"],"org":{"tenant":"acme"}}`)
	b.Run("decodeObject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeObject(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := refDecode(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}
