// Package waitfor polls a benchmark's condition (a cluster converged, a
// server ready) until it holds, fails for good, or time runs out.
package waitfor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Fatal wraps an error of a condition that polling cannot cure (a process
// exited): Until returns it at once.
type Fatal struct{ Err error }

func (f Fatal) Error() string { return f.Err.Error() }
func (f Fatal) Unwrap() error { return f.Err }

// Until calls cond every interval until it reports true, returns a Fatal
// error, or timeout passes; a timeout names the last error cond gave.
func Until(ctx context.Context, timeout, interval time.Duration, cond func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return nil
		}
		var f Fatal
		if errors.As(err, &f) {
			return f.Err
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
		case <-time.After(interval):
		}
	}
}
