// Command strata is a GitOps reconciler that places every object by its
// data-sensitivity. The commands live in internal/cli.
package main

import (
	"os"

	"github.com/strata-gitops/strata/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
