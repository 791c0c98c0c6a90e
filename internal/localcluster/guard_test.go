package localcluster

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// guardHelperEnv makes the test binary act as a benchmark that starts a
// process of its home and then dies from a panic in a goroutine.
const guardHelperEnv = "STRATA_TEST_GUARD_HOME"

// guardStandInEnv makes the test binary a stand-in for a cluster's
// process: it sleeps, with the home on its command line.
const guardStandInEnv = "STRATA_TEST_GUARD_STAND_IN"

func TestMain(m *testing.M) {
	if os.Getenv(guardStandInEnv) == "1" {
		time.Sleep(10 * time.Minute)
		return
	}
	if home := os.Getenv(guardHelperEnv); home != "" {
		guardHelper(home)
		return
	}
	os.Exit(m.Run())
}

func guardHelper(home string) {
	if os.Getenv("STRATA_TEST_GUARD_ON") == "1" {
		if err := New(Options{Home: home}).KillOnExit(); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
	}
	// A stand-in for a cluster's apiserver: one process (nothing left
	// behind when it is killed) whose command line names the home, in its
	// own process group as kwokctl's are.
	child := exec.Command(os.Args[0], "-test.run=^$", "--", "apiserver-of", home+"/clusters/a")
	child.Env = append(os.Environ(), guardStandInEnv+"=1")
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	fmt.Println(child.Process.Pid)
	go func() { panic("a load goroutine panics: no deferred cleanup runs") }()
	time.Sleep(time.Minute)
}

// A benchmark or test that dies without running its cleanup (a panic in a
// goroutine) must not leave its clusters running: the guard kills them.
// Without the guard, the stand-in survives its parent.
func TestKillOnExitAfterAPanic(t *testing.T) {
	for _, guarded := range []bool{true, false} {
		t.Run(fmt.Sprintf("guarded=%v", guarded), func(t *testing.T) {
			home := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), guardHelperEnv+"="+home)
			if guarded {
				cmd.Env = append(cmd.Env, "STRATA_TEST_GUARD_ON=1")
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(out).ReadString('\n')
			pid, err := strconv.Atoi(strings.TrimSpace(line))
			if err != nil {
				t.Fatalf("helper said %q", line)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			if err := cmd.Wait(); err == nil {
				t.Fatal("the helper did not die from its panic")
			}
			wait := 10 * time.Second
			if !guarded {
				wait = time.Second // long enough for a guard, had there been one
			}
			deadline := time.Now().Add(wait)
			for processOf(pid, home) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if alive := processOf(pid, home); alive == guarded {
				t.Errorf("guarded=%v: the home's process still runs=%v after its parent died", guarded, alive)
			}
		})
	}
}

// A home the guard would match too widely with is refused.
func TestKillOnExitRefusesAWideHome(t *testing.T) {
	for _, home := range []string{"/", "/tmp", "relative/dir", "/tmp/"} {
		m := &Manager{home: home}
		if err := m.KillOnExit(); err == nil {
			t.Errorf("KillOnExit with home %q: no error", home)
		}
	}
}
