package admission

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// setSchedFIFO puts every thread of process pid (0: this process) under
// SCHED_FIFO with priority prio, or back to SCHED_OTHER when prio is 0.
// Threads created later inherit the policy of the thread that creates
// them, so a Go program stays real-time once all its threads are. On a
// shared machine this stands in for a dedicated core: other work cannot
// preempt the webhook servers or the load generator (as `bench/webhook
// -rt` does). Needs root or CAP_SYS_NICE.
func setSchedFIFO(pid, prio int) error {
	policy := 1 // SCHED_FIFO
	if prio == 0 {
		policy = 0 // SCHED_OTHER
	}
	param := struct{ priority int32 }{int32(prio)}
	dir := "/proc/self/task"
	if pid != 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(&param)))
		if e != 0 && e != syscall.ESRCH { // ESRCH: the thread just exited
			return fmt.Errorf("sched_setscheduler(%d, policy %d, priority %d): %w (needs root or CAP_SYS_NICE)", tid, policy, prio, e)
		}
	}
	return nil
}

// setNice sets the nice value of every thread of process pid (on Linux a
// thread's nice value is its own).
func setNice(pid, nice int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil && err != syscall.ESRCH {
			return fmt.Errorf("setpriority(%d, %d): %w", tid, nice, err)
		}
	}
	return nil
}
