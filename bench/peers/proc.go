package main

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/waitfor"
)

// usage is what a tool's processes used over their life: peak RSS (VmHWM)
// and CPU.
type usage struct {
	peakKiB int64
	cpu     time.Duration
}

func (u usage) add(v usage) usage { return usage{u.peakKiB + v.peakKiB, u.cpu + v.cpu} }

// usageOf reads a running process's usage from /proc.
func usageOf(p *childproc.Process) (usage, error) {
	if p.Exited() {
		return usage{}, fmt.Errorf("%s exited before its usage was read", p.Name)
	}
	return usage{peakKiB: p.PeakRSS() >> 10, cpu: p.CPU()}, nil
}

// fatal marks an error of a wait condition that polling cannot cure.
type fatal = waitfor.Fatal

// waitFor polls cond every 100 ms until it holds, it fails fatally, or
// timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	return waitfor.Until(ctx, timeout, 100*time.Millisecond, cond)
}
