package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/internal/source"
)

type historyOptions struct {
	repoFlags
	kubeconfigDir, output string
}

func newHistoryCommand() *cobra.Command {
	o := &historyOptions{}
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the revisions applied to an environment: author, approvers, time, outcome",
		Long: `history merges the applied-revision records kept in every cluster's inventory
with the commits of the config repository.`,
		Example: `  strata history --env prod --kubeconfig-dir ~/.strata/clusters`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.repoFlags.add(cmd)
	cmd.Flags().StringVar(&o.kubeconfigDir, "kubeconfig-dir", "", "directory with <cluster>.kubeconfig files")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	_ = cmd.MarkFlagRequired("kubeconfig-dir")
	return cmd
}

// HistoryEntry is one applied revision across the environment's clusters.
type HistoryEntry struct {
	Revision  string            `json:"revision"`
	Author    string            `json:"author,omitempty"`
	Subject   string            `json:"subject,omitempty"`
	Time      time.Time         `json:"time"`
	Approvers []string          `json:"approvers,omitempty"`
	Gate      string            `json:"gate,omitempty"`
	Outcome   map[string]string `json:"outcome"` // cluster → outcome
}

func (o *historyOptions) run(cmd *cobra.Command) error {
	if !slices.Contains([]string{"table", "json"}, o.output) {
		return fmt.Errorf("unknown output format %q: use table or json", o.output)
	}
	ctx := cmd.Context()
	set, err := o.clusterSet(ctx, o.kubeconfigDir)
	if err != nil {
		return err
	}
	defer set.connect.Close()
	connect := set.connect
	repo, err := source.Open(ctx, o.repo, source.OpenOptions{})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	byRev := map[string]*HistoryEntry{}
	var wg sync.WaitGroup
	var unreachable []string
	for _, name := range set.names() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var inv *inventory.Inventory
			cl, err := connect.Connect(name)
			if err == nil {
				inv, err = inventory.LoadStatus(ctx, cl.Client, set.env)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				unreachable = append(unreachable, name)
				return
			}
			for _, h := range inv.Status.History {
				e := byRev[h.Revision]
				if e == nil {
					e = &HistoryEntry{Revision: h.Revision, Time: h.Time, Outcome: map[string]string{}}
					byRev[h.Revision] = e
				}
				if h.Time.Before(e.Time) {
					e.Time = h.Time
				}
				e.Outcome[name] = h.Outcome
				if len(h.Approvers) > len(e.Approvers) {
					e.Approvers = h.Approvers
				}
				e.Gate = h.Gate
			}
		}()
	}
	wg.Wait()
	entries := make([]*HistoryEntry, 0, len(byRev))
	for _, e := range byRev {
		if r, err := repo.Resolve(e.Revision); err == nil {
			e.Author, e.Subject = r.Author, r.Subject()
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Time.After(entries[j].Time) })
	if o.output == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"environment": set.env, "revisions": entries, "unreachable": unreachable})
	}
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tREVISION\tAUTHOR\tAPPROVERS\tOUTCOME\tSUBJECT")
	for _, e := range entries {
		var outcomes []string
		for _, c := range set.names() {
			if v, ok := e.Outcome[c]; ok {
				outcomes = append(outcomes, c+"="+v)
			}
		}
		fmt.Fprintf(tw, "%s\t%.12s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), e.Revision, dash(e.Author),
			dash(strings.Join(e.Approvers, ",")), strings.Join(outcomes, " "), e.Subject)
	}
	if len(unreachable) > 0 {
		fmt.Fprintf(tw, "\n(unreachable: %s)\n", strings.Join(unreachable, ", "))
	}
	return tw.Flush()
}
