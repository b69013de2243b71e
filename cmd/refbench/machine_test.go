package main

import (
	"runtime"
	"strings"
	"testing"
)

// TestParseCPUTimes reads /proc/stat's first line as Linux writes it:
// the total leaves out guest time (already in user and nice), the steal
// is the eighth number, and lines of another shape are refused.
func TestParseCPUTimes(t *testing.T) {
	got, ok := parseCPUTimes("cpu  522295 0 147240 2071350 4031 0 813 21138 7 9")
	want := cpuTimes{total: 522295 + 147240 + 2071350 + 4031 + 813 + 21138, steal: 21138}
	if !ok || got != want {
		t.Errorf("parseCPUTimes = %+v, %v; want %+v, true", got, ok, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3 4 5 6 7", "cpu 1 2 3 4 x 6 7 8"} {
		if got, ok := parseCPUTimes(bad); ok {
			t.Errorf("parseCPUTimes(%q) = %+v, true; want false", bad, got)
		}
	}
}

// TestStealText: the share is the stolen part of the time that passed.
func TestStealText(t *testing.T) {
	share := stolenShare(cpuTimes{total: 1000, steal: 10}, cpuTimes{total: 2000, steal: 60})
	if share != 0.05 {
		t.Errorf("stolenShare = %v, want 0.05", share)
	}
	if s, want := stealText("x", share), "while x ran: 5.0% of its time."; !strings.Contains(s, want) {
		t.Errorf("stealText(5%%) = %q, want it to say %q", s, want)
	}
	if share := stolenShare(cpuTimes{total: 5, steal: 1}, cpuTimes{total: 5, steal: 1}); share != 0 {
		t.Errorf("stolenShare with no time passed = %v, want 0", share)
	}
}

// TestMachineName names the processor count and the Go that ran.
func TestMachineName(t *testing.T) {
	s := machineName()
	if !strings.Contains(s, runtime.Version()) || !strings.Contains(s, " CPUs") {
		t.Errorf("machineName() = %q", s)
	}
	if _, ok := readCPUTimes(); runtime.GOOS == "linux" && !ok {
		t.Errorf("readCPUTimes found no counters on Linux")
	}
}
