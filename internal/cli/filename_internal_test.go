package cli

import (
	"slices"
	"testing"
)

// Past 9,999 objects in a cluster the numbers widen, so that the files of
// `strata render --out` still sort in render order (kubectl apply -f DIR
// applies them in file order: a Namespace must come before its objects).
func TestNumberedFileNamesSortInRenderOrder(t *testing.T) {
	for _, total := range []int{3, 9999, 10000, 123456} {
		var names []string
		for _, n := range []int{1, 2, 9, 10, 999, 1000, 9999, 10000, 100000} {
			if n <= total {
				names = append(names, numberedFileName(n, total, "ConfigMap", "ns", "x"))
			}
		}
		if !slices.IsSorted(names) {
			t.Errorf("%d objects: file names out of render order: %v", total, names)
		}
	}
	if got := numberedFileName(7, 12, "Namespace", "", "ledger"); got[:5] != "0007-" {
		t.Errorf("numbered file name %q, want it to start with 0007- (four digits below 10,000 objects)", got)
	}
}
