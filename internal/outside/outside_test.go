package outside

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func TestHostReachesTheOutsideWorld(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	w, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err := net.DialTimeout("tcp", w.Addr.String(), 3*time.Second)
	if err != nil {
		t.Fatalf("host → %s: %v", w.Addr, err)
	}
	defer c.Close()
	got, _ := io.ReadAll(c)
	if string(got) != Greeting {
		t.Fatalf("answer %q, want %q", got, Greeting)
	}
}
