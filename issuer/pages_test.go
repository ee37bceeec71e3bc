package issuer

import "testing"

func TestFirstLetter(t *testing.T) {
	for _, c := range []struct{ in, lower, upper string }{
		{"Read your data", "read your data", "Read your data"},
		{"see your email address", "see your email address", "See your email address"},
		{"API access", "API access", "API access"},
		{"Émettre des factures", "émettre des factures", "Émettre des factures"},
		{"x", "x", "X"},
		{"", "", ""},
	} {
		if got := lowerFirst(c.in); got != c.lower {
			t.Errorf("lowerFirst(%q) = %q, want %q", c.in, got, c.lower)
		}
		if got := upperFirst(c.in); got != c.upper {
			t.Errorf("upperFirst(%q) = %q, want %q", c.in, got, c.upper)
		}
	}
}
