package nodeimage

import "testing"

func TestPickServed(t *testing.T) {
	served := []string{"v1.14.3", "v1.14.6", "v1.15.0"}
	for _, c := range []struct{ want, got string }{
		{"v1.14.6", "v1.14.6"}, // exact
		{"v1.12.1", "v1.14.3"}, // not served: next served above
		{"v1.16.0", "v1.15.0"}, // newer than all: newest
	} {
		if g := pickServed(c.want, served); g != c.got {
			t.Errorf("pickServed(%s) = %s, want %s", c.want, g, c.got)
		}
	}
}
