package host

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/netconform/netconform/internal/progress"
)

// inotifyMinimums are the limits kind's known-issues page asks for: every
// kubelet (and systemd) in every node takes inotify instances from the
// host's per-user pool, and with several 3-node clusters the default of 128
// runs out ("inotify_init: too many open files"; the node never registers).
var inotifyMinimums = map[string]int{
	"/proc/sys/fs/inotify/max_user_instances": 512,
	"/proc/sys/fs/inotify/max_user_watches":   524288,
}

// ensureInotify raises the host's inotify limits to kind's minimums; it
// only ever raises them. Without root it says what to run instead.
func ensureInotify() error {
	for path, min := range inotifyMinimums {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		cur, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || cur >= min {
			continue
		}
		name := strings.ReplaceAll(strings.TrimPrefix(path, "/proc/sys/"), "/", ".")
		if !isRoot() {
			return fmt.Errorf("%s is %d; multi-node kind clusters need at least %d: run sudo sysctl -w %s=%d", name, cur, min, name, min)
		}
		if err := os.WriteFile(path, []byte(strconv.Itoa(min)), 0o644); err != nil {
			return fmt.Errorf("raising %s to %d: %w", name, min, err)
		}
		progress.Printf("raised %s from %d to %d (kind needs it for multi-node clusters)", name, cur, min)
	}
	return nil
}
