// Package cli holds strata's cobra commands, one file per verb. main only
// calls Execute.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// ExitError carries a specific exit code; its message is already printed
// when Message is empty.
type ExitError struct {
	Code    int
	Message string
}

func (e *ExitError) Error() string { return e.Message }

// Execute runs the strata command line and returns the process exit code.
func Execute() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// Run runs strata with args, writing to stdout and stderr; tests call it
// directly.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Message != "" {
			fmt.Fprintln(stderr, "Error:", ee.Message)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "Error:", err)
	return 1
}

// NewRootCommand returns the strata command with every verb.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "strata",
		Short: "GitOps that places every object by its data sensitivity",
		Long: `strata renders per-environment Kustomize overlays from git and routes each
object to public-cloud, private-cloud or on-prem clusters by its
strata.dev/sensitivity label (public < internal < confidential < restricted).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCommand(), newRenderCommand(), newReconcileCommand(), newStatusCommand(), newDevCommand(), newWebhookCommand(), newPlanCommand(), newKeygenCommand(), newApproveCommand(), newRollbackCommand(), newHistoryCommand(), newAuditCommand(), newSuspendCommand(), newResumeCommand())
	root.AddCommand(newSecretCommand())
	return root
}
