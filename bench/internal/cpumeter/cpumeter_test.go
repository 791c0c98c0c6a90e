package cpumeter

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Only the busy columns of the machine-wide "cpu" line count: user, nice,
// system, irq, softirq, steal; not idle, iowait nor the per-CPU lines.
func TestParseBusy(t *testing.T) {
	data, err := os.ReadFile("testdata/proc_stat")
	if err != nil {
		t.Fatal(err)
	}
	want := (4099210 + 81104 + 1617051 + 7 + 54568 + 3) * tick
	if got := parseBusy(data); got != want {
		t.Errorf("busy = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "cpu0 1 2 3 4 5 6 7 8\n", "cpu 1 2 3\n"} {
		if got := parseBusy([]byte(bad)); got != 0 {
			t.Errorf("parseBusy(%q) = %v, want 0", bad, got)
		}
	}
}

// utime+stime, with cutime+cstime when asked, counted after the command
// name, which may hold spaces and parentheses.
func TestParseProcessCPU(t *testing.T) {
	stat := "123 (kube (api) server) S 1 123 123 0 -1 4194560 100 0 0 0 70 30 5 6 20 0 12 0 100 0"
	type result struct {
		CPU time.Duration
		OK  bool
	}
	parse := func(stat string, children bool) result {
		d, ok := parseProcessCPU(stat, children)
		return result{d, ok}
	}
	for _, c := range []struct {
		stat     string
		children bool
		want     result
	}{
		{stat, false, result{100 * tick, true}},
		{stat, true, result{111 * tick, true}},
		{"123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12", false, result{23 * tick, true}},
		{"123 (x) S 1 2 3 4 5 6 7 8 9 10 11 12", true, result{}},
		{"no command name", false, result{}},
	} {
		if diff := cmp.Diff(c.want, parse(c.stat, c.children)); diff != "" {
			t.Errorf("parseProcessCPU(%q, %v) (-want +got):\n%s", c.stat, c.children, diff)
		}
	}
}

// This process's own /proc entries show the CPU it burns, and the meter
// counts it as ours, not as other work.
func TestMeterCountsThisProcess(t *testing.T) {
	m := Meter{Marker: "no-such-marker-" + t.Name()}
	self0, ok := processCPU(os.Getpid(), false)
	if !ok {
		t.Fatal("cannot read this process's /proc/PID/stat")
	}
	a := m.Read()
	// Burn until it shows (a busy machine gives this process only part of
	// a core), at most 20 s.
	b := a
	for b.Ours-a.Ours < 100*time.Millisecond && time.Since(a.At) < 20*time.Second {
		for t0 := time.Now(); time.Since(t0) < 50*time.Millisecond; {
		}
		b = m.Read()
	}
	if b.Ours-a.Ours < 100*time.Millisecond {
		t.Errorf("own CPU not seen after %v: %v", b.At.Sub(a.At), b.Ours-a.Ours)
	}
	if self1, _ := processCPU(os.Getpid(), false); self1 <= self0 {
		t.Errorf("utime+stime did not grow: %v, then %v", self0, self1)
	}
	if b.Busy < b.Ours-a.Ours {
		t.Errorf("machine busy %v since boot, less than this process's %v", b.Busy, b.Ours-a.Ours)
	}
}

// A process whose command line names the marker is ours as well.
func TestMeterCountsMarkedProcesses(t *testing.T) {
	marker := t.TempDir()
	cmd := exec.Command("sh", "-c", "while :; do :; done", marker) // marker is $0
	if err := cmd.Start(); err != nil {
		t.Skip("no sh:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	m := Meter{Marker: marker}
	start := time.Now()
	for time.Since(start) < 20*time.Second {
		self, _ := processCPU(os.Getpid(), false)
		if m.Ours()-self >= 100*time.Millisecond {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("the marked process's CPU is not counted after 20 s")
}

func TestOther(t *testing.T) {
	a := Reading{Busy: 10 * time.Second, Ours: 4 * time.Second, At: time.Unix(0, 0)}
	b := Reading{Busy: 25 * time.Second, Ours: 14 * time.Second, At: time.Unix(10, 0)}
	if got, want := Other(a, b, time.Second), 4*time.Second; got != want {
		t.Errorf("other = %v, want %v", got, want)
	}
	if got := OtherCores(a, b, 0); got != 0.5 {
		t.Errorf("other cores = %v, want 0.5", got)
	}
	if got := Other(a, b, time.Minute); got != 0 {
		t.Errorf("other with more children's CPU than busy time = %v, want 0", got)
	}
	if got := OtherCores(a, a, 0); got != 0 {
		t.Errorf("other cores over no time = %v, want 0", got)
	}
}
