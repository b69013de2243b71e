package main

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets this test binary serve as refbench's plugins, as the
// refbench binary does.
func TestMain(m *testing.M) {
	if serveChild() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRefbenchRuns runs every workload briefly on both sides: each checks
// its results, so this shows both implementations answer correctly and the
// table is complete.
func TestRefbenchRuns(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, io.Discard, config{rounds: 1, round: 20 * time.Millisecond, refs: 2000, many: 3}); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, w := range append(workloads(), workload{name: "Load + Dispense"}, workload{name: "2000 live references"}, workload{name: "host export table empty"}, workload{name: "3 plugins loaded in parallel"}, workload{name: "host goroutine stacks per loaded plugin"}, workload{name: "host goroutines per loaded plugin"}, workload{name: "start-up by part"}, workload{name: "first call"}, workload{name: "against an echo into a fresh 1 MiB"}, workload{name: "the plugin io.Copying one to the other"}, workload{name: "through a method shaped as a read"}, workload{name: "while the plugin holds an object of the host's"}) {
		if !strings.Contains(out.String(), "| "+w.name) && !strings.Contains(out.String(), w.name) {
			t.Errorf("the table lacks %q:\n%s", w.name, out.String())
		}
	}
	checkMachineNamed(t, out.String(), "these rounds", "the whole run")
}

// checkMachineNamed checks that a run's output names the machine and, on
// Linux, how much of its time was stolen while each named part ran.
func checkMachineNamed(t *testing.T, out string, parts ...string) {
	t.Helper()
	if !strings.HasPrefix(out, "Machine: "+machineName()+".") {
		t.Errorf("the output does not begin by naming the machine:\n%s", out)
	}
	if runtime.GOOS != "linux" {
		return
	}
	for _, p := range parts {
		if !strings.Contains(out, "Stolen by other guests of the machine's host while "+p+" ran: ") {
			t.Errorf("the output lacks the stolen time while %s ran:\n%s", p, out)
		}
	}
}

// TestFloorRuns runs every ping-pong of -floor briefly: each mode's child
// answers and the table has a row, with a time, for each.
func TestFloorRuns(t *testing.T) {
	var out bytes.Buffer
	if err := runFloor(&out, io.Discard, 1, 20*time.Millisecond); err != nil {
		t.Fatalf("runFloor: %v", err)
	}
	for _, m := range floorModes {
		if !strings.Contains(out.String(), "| "+m.what+" | ") {
			t.Errorf("the table lacks %q:\n%s", m.what, out.String())
		}
	}
	checkMachineNamed(t, out.String(), "the ping-pongs")
}
