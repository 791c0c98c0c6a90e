package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"sigs.k8s.io/kustomize/api/resource"

	"github.com/strata-gitops/strata/internal/desired"
	"github.com/strata-gitops/strata/internal/placement"
	"github.com/strata-gitops/strata/internal/render"
)

// placementRow is one object's placement as render shows it.
type placementRow struct {
	APIVersion  string   `json:"apiVersion"`
	Kind        string   `json:"kind"`
	Namespace   string   `json:"namespace,omitempty"`
	Name        string   `json:"name"`
	Sensitivity string   `json:"sensitivity"`
	Tiers       []string `json:"tiers"`
	Clusters    []string `json:"clusters"`
	Reason      string   `json:"reason"`
}

func newPlacementRow(st *desired.State, d placement.Decision) placementRow {
	tiers := make([]string, len(d.Tiers))
	for i, t := range d.Tiers {
		tiers[i] = string(t)
	}
	return placementRow{
		APIVersion: st.Objects[d.Index].APIVersion(), Kind: d.Object.Kind,
		Namespace: d.Object.Namespace, Name: d.Object.Name, Sensitivity: string(d.Sensitivity),
		Tiers: tiers, Clusters: d.Clusters, Reason: d.Reason,
	}
}

func (r placementRow) ref() string {
	if r.Namespace == "" {
		return r.Name
	}
	return r.Namespace + "/" + r.Name
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writeTable(w io.Writer, st *desired.State, cluster string) error {
	rows := decisionsFor(st, cluster)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAMESPACE/NAME\tSENSITIVITY\tTIER\tCLUSTERS\tREASON")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Kind, r.ref(), dash(r.Sensitivity),
			strings.Join(r.Tiers, ","), strings.Join(r.Clusters, ","), r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := make([]string, 0, len(st.Clusters))
	for _, c := range st.Clusters {
		if cluster == "" || c.Name == cluster {
			counts = append(counts, fmt.Sprintf("%s (%s) %d", c.Name, c.Tier, len(st.Placement.ForCluster(c.Name))))
		}
	}
	if _, err := fmt.Fprintf(w, "\n%d objects of %s at %s → %s\n", len(rows), st.Environment, shortRev(st.Revision), strings.Join(counts, ", ")); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "monthly cost of %s (relative units per cluster, strata.yaml cost): %s\n", st.Environment, placement.CostOf(st.Clusters, st.Placement)); err != nil {
		return err
	}
	if len(st.Windows) > 0 {
		_, err := fmt.Fprintf(w, "open windows: %s (their components are included)\n", strings.Join(st.Windows, ", "))
		return err
	}
	return nil
}

// shortRev shortens the commit of a revision label ("<sha>" or "<sha>+worktree").
func shortRev(rev string) string {
	sha, rest, _ := strings.Cut(rev, "+")
	if len(sha) == 40 {
		sha = sha[:12]
	}
	if rest != "" {
		return sha + "+" + rest
	}
	return sha
}

func writeYAML(w io.Writer, st *desired.State, clusters []string) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var all []*resource.Resource
	for _, c := range clusters {
		all = append(all, st.ForCluster(c)...)
	}
	ys, err := render.EncodeYAML(all)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		fmt.Fprintf(bw, "# cluster: %s  environment: %s  revision: %s\n", c, st.Environment, st.Revision)
		for range st.ForCluster(c) {
			bw.WriteString("---\n")
			bw.Write(ys[0])
			ys = ys[1:]
		}
	}
	return bw.Flush()
}

type renderJSON struct {
	Environment string                       `json:"environment"`
	Revision    string                       `json:"revision"`
	Windows     []string                     `json:"windows,omitempty"`
	Objects     []placementRow               `json:"objects"`
	Clusters    map[string][]json.RawMessage `json:"clusters"`
	// Cost is the environment's monthly cost for this placement, per tier,
	// in relative units per cluster (strata.yaml clusters[].cost).
	Cost placement.Cost `json:"cost"`
}

func writeJSON(w io.Writer, st *desired.State, clusters []string) error {
	doc := renderJSON{Environment: st.Environment, Revision: st.Revision, Windows: st.Windows, Clusters: map[string][]json.RawMessage{},
		Cost: placement.CostOf(st.Clusters, st.Placement)}
	cluster := ""
	if len(clusters) == 1 && len(st.Clusters) > 1 {
		cluster = clusters[0]
	}
	doc.Objects = decisionsFor(st, cluster)
	for _, c := range clusters {
		items := []json.RawMessage{}
		for _, r := range st.ForCluster(c) {
			b, err := r.MarshalJSON()
			if err != nil {
				return fmt.Errorf("encoding %s: %w", r.CurId(), err)
			}
			items = append(items, b)
		}
		doc.Clusters[c] = items
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// numberedFileName names the file of the n-th of total objects: numbers
// zero-padded to one width (at least 4), so that file order — what
// `kubectl apply -f DIR` follows — is render order whatever the count.
func numberedFileName(n, total int, kind, namespace, name string) string {
	width := max(4, len(strconv.Itoa(total)))
	return fmt.Sprintf("%0*d-%s", width, n, fileName(kind, namespace, name))
}

// renderMarker marks a directory written by --out, so that a later render
// may replace it and nothing else is ever removed.
const renderMarker = "placement.json"

// writeClusterDirs writes DIR/<cluster>/NNNN-kind-namespace-name.yaml for
// every cluster and DIR/placement.json. It writes into a sibling temporary
// directory and swaps it in, so a failure leaves no partial output.
func writeClusterDirs(w io.Writer, dir string, st *desired.State, clusters []string) error {
	dir = filepath.Clean(dir)
	if err := checkReplaceable(dir); err != nil {
		return err
	}
	// Create missing parents (like mkdir -p) so that the temporary directory
	// can sit next to DIR.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	for _, c := range clusters {
		cdir := filepath.Join(tmp, c)
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return err
		}
		objs := st.ForCluster(c)
		for i, r := range objs {
			y, err := r.AsYAML()
			if err != nil {
				return fmt.Errorf("encoding %s: %w", r.CurId(), err)
			}
			name := numberedFileName(i+1, len(objs), r.GetKind(), r.GetNamespace(), r.GetName())
			if err := os.WriteFile(filepath.Join(cdir, name), y, 0o644); err != nil {
				return err
			}
		}
	}
	marker, err := os.Create(filepath.Join(tmp, renderMarker))
	if err != nil {
		return err
	}
	if err := writeJSON(marker, &desired.State{Environment: st.Environment, Revision: st.Revision,
		Config: st.Config, Clusters: st.Clusters, Objects: st.Objects, Resources: st.Resources, Placement: st.Placement}, nil); err != nil {
		marker.Close()
		return err
	}
	if err := marker.Close(); err != nil {
		return err
	}
	if err := swapDir(tmp, dir); err != nil {
		return err
	}
	for _, c := range clusters {
		fmt.Fprintf(w, "wrote %d objects to %s\n", len(st.Placement.ForCluster(c)), filepath.Join(dir, c))
	}
	return nil
}

func fileName(kind, ns, name string) string {
	parts := []string{strings.ToLower(kind)}
	if ns != "" {
		parts = append(parts, ns)
	}
	parts = append(parts, name)
	s := strings.Join(parts, "-")
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == ':' || r == os.PathSeparator {
			return '_'
		}
		return r
	}, s)
	return s + ".yaml"
}

// checkReplaceable refuses to replace a directory that render did not write.
func checkReplaceable(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, renderMarker)); err != nil {
		return fmt.Errorf("--out %s exists and was not written by strata render (no %s): choose an empty or new directory", dir, renderMarker)
	}
	return nil
}

func swapDir(tmp, dir string) error {
	old := ""
	if _, err := os.Stat(dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			return fmt.Errorf("--out %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if old != "" {
			_ = os.Rename(old, dir)
		}
		return fmt.Errorf("--out %s: %w", dir, err)
	}
	if old != "" {
		return os.RemoveAll(old)
	}
	return nil
}
