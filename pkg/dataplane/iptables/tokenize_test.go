package iptables

import (
	"reflect"
	"testing"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		line string
		want []token
	}{
		{"-A X  -j\tACCEPT ", []token{{"-A", false}, {"X", false}, {"-j", false}, {"ACCEPT", false}}},
		{`--comment "a b" x`, []token{{"--comment", false}, {"a b", true}, {"x", false}}},
		{`--comment "say \"hi\" \\ it's"`, []token{{"--comment", false}, {`say "hi" \ it's`, true}}},
		{`a"b c"d`, []token{{"ab cd", true}}},
		{`""`, []token{{"", true}}},
		{`\-x`, []token{{"-x", false}}},
		{"--nfacct-name  x", []token{{"--nfacct-name", false}, {"x", false}}},
		{"a\u00a0b", []token{{"a\u00a0b", false}}}, // only blanks and tabs separate
		{"", []token{}},
	} {
		got, err := tokenize(tc.line)
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.line, got, tc.want)
		}
	}
	for _, bad := range []string{`"open`, `x \`, `a "b\" c`} {
		if _, err := tokenize(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
