package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// The machine a run measured: named in the output, with how much of its
// time other guests of the same host took while parts of the run ran
// (Linux's steal count). A virtual machine's neighbours move its timings:
// the figure is one sign of that, printed beside the tables (BENCHMARKS.md,
// Where the time goes, "A loaded machine"), not a sure one.

// machineName describes this machine: processor, count, Go, system.
func machineName() string {
	cpu := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v) + ", "
				break
			}
		}
		f.Close()
	}
	return fmt.Sprintf("%s%d CPUs, %s %s/%s", cpu, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// cpuTimes are the machine's CPU time counters (/proc/stat's "cpu" line,
// in clock ticks): all of them, and the stolen part.
type cpuTimes struct{ total, steal uint64 }

// readCPUTimes reads the counters; ok is false where there are none (not
// Linux, or a kernel without the steal column).
func readCPUTimes() (t cpuTimes, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseCPUTimes(line)
}

// parseCPUTimes parses /proc/stat's first line: "cpu user nice system
// idle iowait irq softirq steal [guest guest_nice]". guest and guest_nice
// are already counted in user and nice, so they are left out of the total.
func parseCPUTimes(line string) (t cpuTimes, ok bool) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return t, false
	}
	for i, s := range f[1:9] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return cpuTimes{}, false
		}
		t.total += n
		if i == 7 {
			t.steal = n
		}
	}
	return t, true
}

// stolenShare is the share of the machine's time stolen between two
// readings (0 if none passed).
func stolenShare(before, after cpuTimes) float64 {
	if after.total <= before.total || after.steal < before.steal {
		return 0
	}
	return float64(after.steal-before.steal) / float64(after.total-before.total)
}

// stealNote says how much of the machine's time was stolen while what is
// named ran; "" where the machine does not count it.
func stealNote(what string, before cpuTimes, okBefore bool) string {
	after, ok := readCPUTimes()
	if !ok || !okBefore {
		return ""
	}
	return stealText(what, stolenShare(before, after))
}

// stealText is stealNote's line for a share already measured.
func stealText(what string, share float64) string {
	return fmt.Sprintf("Stolen by other guests of the machine's host while %s ran: %.1f%% of its time.\n", what, 100*share)
}
