package capfilter

import "testing"

func TestClampRlimitsLowersOnlyWhatExceeds(t *testing.T) {
	p := map[string]any{"rlimits": []any{
		map[string]any{"type": "RLIMIT_NOFILE", "hard": float64(1048576), "soft": float64(1048576)},
		map[string]any{"type": "RLIMIT_NPROC", "hard": float64(100), "soft": float64(50)},
	}}
	limit := func(res int) (uint64, bool) { return 524288, true }
	if !ClampRlimits(p, limit) {
		t.Fatal("expected a change")
	}
	nofile := p["rlimits"].([]any)[0].(map[string]any)
	nproc := p["rlimits"].([]any)[1].(map[string]any)
	if nofile["hard"] != float64(524288) || nofile["soft"] != float64(524288) {
		t.Errorf("nofile = %v, want clamped to 524288", nofile)
	}
	if nproc["hard"] != float64(100) || nproc["soft"] != float64(50) {
		t.Errorf("nproc = %v, must stay as asked", nproc)
	}
}
