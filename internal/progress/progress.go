// Package progress prints what a long step is doing, so that a user watching
// a ten-minute build sees it is alive and where its log is.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Out is where progress goes; standard error, so that standard output stays
// clean for values a caller may capture (make cluster's export line).
var Out io.Writer = os.Stderr

var mu sync.Mutex

// Printf prints one progress line.
func Printf(format string, args ...any) {
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(Out, "netconform: "+format+"\n", args...)
}

// Step runs fn, announcing it, reporting every interval that it is still
// running, and reporting how long it took or how it failed.
func Step(title string, fn func() error) error {
	const interval = 30 * time.Second
	start := time.Now()
	Printf("%s ...", title)
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				Printf("  ... %s: still running (%s)", title, time.Since(start).Round(time.Second))
			}
		}
	}()
	err := fn()
	close(stop)
	if err != nil {
		Printf("%s: failed after %s", title, time.Since(start).Round(time.Second))
		return err
	}
	Printf("%s: done in %s", title, time.Since(start).Round(time.Second))
	return nil
}
