package main

import (
	"context"
	"fmt"
	"time"

	"github.com/strata-gitops/strata/bench/internal/childproc"
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

// fatal marks an error of a wait condition that polling cannot cure (a
// process exited).
type fatal struct{ error }

// waitFor polls cond every 100 ms until it holds, it fails fatally, or ctx
// ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		if f, ok := err.(fatal); ok {
			return f.error
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
			}
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
