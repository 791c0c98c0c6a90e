package admission

import (
	"context"
	"fmt"
	"time"
)

// measurer runs the measured loads.
type measurer struct {
	ctx  context.Context
	o    *Options
	pool []*body
	want []bool // per pool body: allowed?
	say  func(format string, args ...any)
}

// load runs one warm-up and one measured run of s at rate. other, if not
// nil, is the other tool's server, still running: it is put under
// SCHED_OTHER at nice 19 for the run, so that it gets only CPU nobody
// else wants, and its CPU use meanwhile is reported.
func (m *measurer) load(s, other *server, rate, gomaxprocs, run int) (LoadRow, error) {
	o := m.o
	if other != nil {
		if other.p.Exited() {
			return LoadRow{}, fmt.Errorf("%s exited (%v):\n%s", other.tool, other.p.Err, other.p.Tail(20))
		}
		if o.RT > 0 {
			if err := setSchedFIFO(other.p.Pid(), 0); err != nil {
				return LoadRow{}, fmt.Errorf("%s: %w", other.tool, err)
			}
		}
		if err := setNice(other.p.Pid(), 19); err != nil {
			return LoadRow{}, fmt.Errorf("%s: %w", other.tool, err)
		}
		defer setNice(other.p.Pid(), 0)
	}
	if o.RT > 0 {
		if err := setSchedFIFO(s.p.Pid(), o.RT); err != nil {
			return LoadRow{}, fmt.Errorf("%s: %w", s.tool, err)
		}
		// The generator too, during the load only: processes started
		// later must not inherit SCHED_FIFO from it.
		if err := setSchedFIFO(0, o.RT); err != nil {
			return LoadRow{}, err
		}
		defer setSchedFIFO(0, 0)
	}
	m.say("%s: %d req/s at GOMAXPROCS=%d, run %d, for %s (after %s warm-up)", s.tool, rate, gomaxprocs, run, o.Duration, o.Warmup)
	runLoad(m.ctx, s.client, s.url, m.pool, m.want, rate, o.Warmup, o.Inflight, o.Timeout)
	cpu0 := s.p.CPU()
	var other0 time.Duration
	if other != nil {
		other0 = other.p.CPU()
	}
	row := runLoad(m.ctx, s.client, s.url, m.pool, m.want, rate, o.Duration, o.Inflight, o.Timeout)
	row.Tool, row.ServerCPU, row.PeakRSS, row.GOMAXPROCS, row.Run = s.tool, s.p.CPU()-cpu0, s.p.PeakRSS(), gomaxprocs, run
	if other != nil {
		row.OtherCPU = other.p.CPU() - other0
	}
	if err := m.ctx.Err(); err != nil {
		return row, err
	}
	if s.p.Exited() {
		return row, fmt.Errorf("%s exited during its load (%v):\n%s", s.tool, s.p.Err, s.p.Tail(20))
	}
	waitIdle(m.ctx, s.p, 30*time.Second)
	m.say("%s: %d req/s at GOMAXPROCS=%d, run %d: p50 %s p99 %s max %s, %d errors", s.tool, rate, gomaxprocs, run, ms(row.P50), ms(row.P99), ms(row.Max), row.Errors)
	return row, nil
}
