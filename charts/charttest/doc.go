// Package charttest tests the Helm chart in charts/strata: that it lints and
// renders in its main configurations, that a real apiserver accepts every
// object it renders, that values.schema.json rejects bad values, that the
// dashboard and alert rules use only metrics strata exports, and that the
// names, paths and flags it uses are the ones in strata's code.
//
// The tests run helm and kubectl from $STRATA_BIN (default
// ~/.cache/strata/bin), which `hack/install-tools.sh all` (make tools) fills;
// they fail, rather than skip, when those are missing, so that CI never
// passes without them. The apiserver test brings up one kwok cluster with
// internal/localcluster and is skipped only with -short.
package charttest
