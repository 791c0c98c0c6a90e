// Command render times `strata render -o yaml` against `kubectl kustomize`
// on a generated config repository of -objects objects.
//
//	go run ./bench/render [-objects 4000] [-reps 7] [-keep DIR] [-markdown bench/RESULTS.md]
//
// It generates and commits the repository (git CLI), builds strata once,
// runs one untimed warm-up of each tool, then -reps timed runs of each,
// alternating which goes first, and prints per-run wall clock and CPU time,
// medians, min/max and the ratio of the medians against the goal (≤ 0.25×, issue 16).
// Both outputs must hold the same objects. With -markdown FILE it replaces
// the render section of FILE and keeps the rest.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-gitops/strata/bench/internal/childproc"
	"github.com/strata-gitops/strata/bench/internal/results"
)

// goal is the largest acceptable ratio of strata's median to kubectl's:
// issue 16 asks for a quarter, rendering the environment in parallel units.
const goal = 0.25

// sectionHeader is the header of the section -markdown maintains.
const sectionHeader = "## Render: strata render vs kubectl kustomize"

type options struct {
	objects    int
	namespaces int
	reps       int
	keep       string
	markdown   string
	strata     string
}

func main() {
	var o options
	flag.IntVar(&o.objects, "objects", 4000, "objects the overlay renders to (Namespaces included)")
	flag.IntVar(&o.namespaces, "namespaces", 40, "namespaces to spread the objects over")
	flag.IntVar(&o.reps, "reps", 7, "timed runs of each tool")
	flag.StringVar(&o.keep, "keep", "", "generate the repository into this (empty or new) directory and keep it")
	flag.StringVar(&o.markdown, "markdown", "", "write the results into the render section of this markdown file")
	flag.StringVar(&o.strata, "strata", "", "use this strata binary instead of building ./cmd/strata")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/render:", err)
		os.Exit(1)
	}
}

// sample is one timed process run.
type sample struct {
	wall, cpu time.Duration
	maxRSSKiB int64
}

type report struct {
	opts        options
	command     string
	date        time.Time
	machine     results.Machine
	kubectl     string
	strataBuild string
	repo        *Repo
	objects     int // objects in both outputs (unique kind/namespace/name)
	strataDocs  int // documents strata printed (a Namespace once per cluster it goes to)
	strataBytes int
	kubeBytes   int
	strata      []sample
	kube        []sample
	startStrata time.Duration // median of `strata version`
	startKube   time.Duration // median of `kubectl version --client`
	loadBefore  string
	loadAfter   string
	units       int // units the environment was rendered in, checked identical to a whole render
}

func run(o options) error {
	if o.reps < 1 && !profiling() {
		return fmt.Errorf("-reps must be at least 1")
	}
	r := &report{opts: o, command: commandLine(), date: time.Now(), machine: results.ReadMachine(), loadBefore: results.LoadAvg()}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return fmt.Errorf("kubectl not found in PATH: install kubectl (it carries kustomize as `kubectl kustomize`) to compare against it")
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("git not found in PATH: the benchmark commits the generated repository with the git CLI")
	}
	out, err := exec.Command(kubectl, "version", "--client").CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl version --client: %v: %s", err, out)
	}
	r.kubectl = strings.Join(strings.Fields(strings.ReplaceAll(string(out), "\n", "; ")), " ")

	tmp, err := os.MkdirTemp("", "strata-bench-render-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	dir := o.keep
	if dir == "" {
		dir = filepath.Join(tmp, "repo")
	}
	fmt.Fprintf(os.Stderr, "generating %d objects in %s …\n", o.objects, dir)
	repo, err := Generate(dir, Spec{Objects: o.objects, Namespaces: o.namespaces})
	if err != nil {
		return err
	}
	r.repo = repo
	if o.keep != "" {
		fmt.Fprintf(os.Stderr, "keeping the repository in %s\n", repo.Dir)
	}
	if o.reps < 1 { // profiling only
		return profileIfAsked(repo)
	}

	strata := o.strata
	if strata == "" {
		root, err := results.ModuleRoot()
		if errors.Is(err, results.ErrNoModule) {
			return fmt.Errorf("no go.mod above the working directory: run from inside the strata module, or pass -strata BIN")
		}
		if err != nil {
			return err
		}
		strata = filepath.Join(tmp, "strata")
		start := time.Now()
		if err := results.BuildStrata(context.Background(), root, strata); err != nil {
			return err
		}
		r.strataBuild = fmt.Sprintf("built from %s with %s in %s", root, results.GoVersion(root), time.Since(start).Round(time.Second))
	} else {
		r.strataBuild = "given with -strata " + strata
	}

	strataArgs := []string{strata, "render", "--env", benchEnv, "--repo", repo.Dir, "-o", "yaml"}
	kubeArgs := []string{kubectl, "kustomize", repo.Overlay}

	// Warm-up (not counted): also checks that both render the same objects.
	fmt.Fprintln(os.Stderr, "warm-up and output check …")
	sOut, _, err := runOnce(strataArgs, true)
	if err != nil {
		return err
	}
	kOut, _, err := runOnce(kubeArgs, true)
	if err != nil {
		return err
	}
	if err := r.check(sOut, kOut); err != nil {
		return err
	}

	for i := 0; i < o.reps; i++ {
		fmt.Fprintf(os.Stderr, "rep %d/%d …\n", i+1, o.reps)
		order := [][]string{strataArgs, kubeArgs}
		if i%2 == 1 {
			order = [][]string{kubeArgs, strataArgs}
		}
		for _, args := range order {
			_, s, err := runOnce(args, false)
			if err != nil {
				return err
			}
			if args[0] == strata {
				r.strata = append(r.strata, s)
			} else {
				r.kube = append(r.kube, s)
			}
		}
	}

	// Only now the in-process check, which renders the whole environment
	// in this process: Linux carries the parent's peak RSS into a child's
	// ru_maxrss (Go starts children with a vfork sharing its memory, and
	// exec keeps the larger peak), so a large parent before the timed runs
	// would be reported as both tools' peak.
	fmt.Fprintln(os.Stderr, "checking, in-process, that the units give the whole render's objects …")
	if r.units, err = checkIdentical(repo.Dir); err != nil {
		return err
	}

	// Process start-up alone: a command that does no work.
	r.startStrata, err = medianOf(5, []string{strata, "version"})
	if err != nil {
		return err
	}
	r.startKube, err = medianOf(5, []string{kubectl, "version", "--client"})
	if err != nil {
		return err
	}
	r.loadAfter = results.LoadAvg()

	var buf bytes.Buffer
	r.text(&buf)
	os.Stdout.Write(buf.Bytes())

	if o.markdown != "" {
		if err := results.UpdateSection(o.markdown, sectionHeader, r.markdown()); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "updated %s\n", o.markdown)
	}
	return profileIfAsked(repo)
}

// check compares the objects of both outputs.
func (r *report) check(strataOut, kubeOut []byte) error {
	if len(bytes.TrimSpace(strataOut)) == 0 {
		return fmt.Errorf("strata render printed nothing")
	}
	sIDs, sDocs := objectIDs(strataOut)
	kIDs, _ := objectIDs(kubeOut)
	r.strataDocs, r.strataBytes, r.kubeBytes = sDocs, len(strataOut), len(kubeOut)
	if len(sIDs) != len(kIDs) {
		return fmt.Errorf("strata rendered %d objects, kubectl kustomize %d", len(sIDs), len(kIDs))
	}
	for id := range kIDs {
		if !sIDs[id] {
			return fmt.Errorf("kubectl kustomize rendered %s, strata did not", id)
		}
	}
	if len(kIDs) != r.repo.Total() {
		return fmt.Errorf("both rendered %d objects but the generator wrote %d", len(kIDs), r.repo.Total())
	}
	r.objects = len(kIDs)
	return nil
}

// objectIDs returns the kind/namespace/name of every document of a
// kustomize-formatted YAML stream and the number of documents.
func objectIDs(y []byte) (map[string]bool, int) {
	ids := map[string]bool{}
	docs := 0
	var kind, ns, name string
	inMeta := false
	flush := func() {
		if kind != "" {
			docs++
			ids[kind+" "+ns+"/"+name] = true
		}
		kind, ns, name, inMeta = "", "", "", false
	}
	sc := bufio.NewScanner(bytes.NewReader(y))
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "---":
			flush()
		case strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "kind: "):
			kind = strings.TrimSpace(strings.TrimPrefix(line, "kind: "))
			inMeta = false
		case line == "metadata:":
			inMeta = true
		case len(line) > 0 && line[0] != ' ':
			inMeta = false
		case inMeta && strings.HasPrefix(line, "  name: "):
			name = strings.Trim(strings.TrimPrefix(line, "  name: "), `"'`)
		case inMeta && strings.HasPrefix(line, "  namespace: "):
			ns = strings.Trim(strings.TrimPrefix(line, "  namespace: "), `"'`)
		}
	}
	flush()
	return ids, docs
}

// runOnce runs args, discarding stdout unless capture, and times it.
func runOnce(args []string, capture bool) ([]byte, sample, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	if capture {
		cmd.Stdout = &out
	} else {
		// An *os.File lets the child write straight to /dev/null, with no
		// copying goroutine in this process (io.Discard would add one).
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return nil, sample{}, err
		}
		defer null.Close()
		cmd.Stdout = null
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	self := childproc.SelfPeakKiB()
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return nil, sample{}, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	s := sample{wall: wall, cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	s.maxRSSKiB = childproc.ExitedPeakKiB(cmd.ProcessState, self)
	return out.Bytes(), s, nil
}

func medianOf(n int, args []string) (time.Duration, error) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		_, s, err := runOnce(args, false)
		if err != nil {
			return 0, err
		}
		ds = append(ds, s.wall)
	}
	return median(ds), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func walls(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.wall
	}
	return out
}

func cpus(ss []sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.cpu
	}
	return out
}

// maxRSS is the largest peak of ss in KiB, -1 when none was measured
// (childproc.ExitedPeakKiB).
func maxRSS(ss []sample) int64 {
	m := int64(-1)
	for _, s := range ss {
		m = max(m, s.maxRSSKiB)
	}
	return m
}

func (r *report) ratio() float64 {
	return float64(median(walls(r.strata))) / float64(median(walls(r.kube)))
}

func (r *report) verdict() string {
	if r.ratio() <= goal {
		return "PASS"
	}
	return "MISS"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// rows returns the result table: header, one row per rep, then summaries.
func (r *report) rows() [][]string {
	rows := [][]string{{"run", "strata wall", "kubectl wall", "strata/kubectl", "strata CPU", "kubectl CPU"}}
	for i := range r.strata {
		s, k := r.strata[i], r.kube[i]
		first := "strata first"
		if i%2 == 1 {
			first = "kubectl first"
		}
		rows = append(rows, []string{fmt.Sprintf("rep %d (%s)", i+1, first), ms(s.wall), ms(k.wall),
			fmt.Sprintf("%.2f×", float64(s.wall)/float64(k.wall)), ms(s.cpu), ms(k.cpu)})
	}
	sw, kw, sc, kc := walls(r.strata), walls(r.kube), cpus(r.strata), cpus(r.kube)
	rows = append(rows,
		[]string{"**median**", ms(median(sw)), ms(median(kw)), fmt.Sprintf("**%.2f×**", r.ratio()), ms(median(sc)), ms(median(kc))},
		[]string{"min", ms(slices.Min(sw)), ms(slices.Min(kw)), fmt.Sprintf("%.2f×", float64(slices.Min(sw))/float64(slices.Min(kw))), ms(slices.Min(sc)), ms(slices.Min(kc))},
		[]string{"max", ms(slices.Max(sw)), ms(slices.Max(kw)), "", ms(slices.Max(sc)), ms(slices.Max(kc))},
	)
	return rows
}

func (r *report) facts() [][2]string {
	return [][2]string{
		{"date", r.date.Format("2006-01-02 15:04:05 MST")},
		{"command", r.command},
		{"machine", fmt.Sprintf("%d CPUs (nproc), %s, %s", r.machine.NProc, r.machine.CPU, r.machine.Mem)},
		{"kernel", r.machine.Kernel},
		{"go", r.machine.GoVersion},
		{"kubectl", r.kubectl},
		{"strata", r.strataBuild},
		{"repository", r.repo.Describe()},
		{"output", fmt.Sprintf("both render %d objects; strata -o yaml prints %d documents (a Namespace once per cluster that receives it), %.1f MiB; kubectl %.1f MiB",
			r.objects, r.strataDocs, float64(r.strataBytes)/(1<<20), float64(r.kubeBytes)/(1<<20))},
		{"units", fmt.Sprintf("strata renders the environment in %d units, in parallel; checked in-process: the units give a whole kustomize render's objects, byte for byte (AsYAML), in order", r.units)},
		{"peak RSS", fmt.Sprintf("strata %s, kubectl %s (largest of the timed runs; getrusage ru_maxrss of each process)", childproc.PeakMiB(maxRSS(r.strata)), childproc.PeakMiB(maxRSS(r.kube)))},
		{"start-up only", fmt.Sprintf("`strata version` %s, `kubectl version --client` %s (median of 5)", ms(r.startStrata), ms(r.startKube))},
		{"load average", fmt.Sprintf("before %s, after %s", r.loadBefore, r.loadAfter)},
	}
}

func (r *report) text(w io.Writer) {
	fmt.Fprintln(w, "strata render vs kubectl kustomize")
	for _, f := range r.facts() {
		fmt.Fprintf(w, "  %-14s %s\n", f[0]+":", strings.ReplaceAll(f[1], "`", ""))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	for _, row := range r.rows() {
		for _, c := range row {
			fmt.Fprintf(tw, "%s\t", strings.ReplaceAll(c, "**", ""))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nmedian ratio strata/kubectl: %.2f× (goal ≤ %.2f×): %s\n", r.ratio(), goal, r.verdict())
}

func (r *report) markdown() string {
	var b strings.Builder
	b.WriteString(sectionHeader + "\n\n")
	fmt.Fprintf(&b, "Goal: `strata render -o yaml` within %.2f× of `kubectl kustomize` on the same overlay (median wall clock, whole process).\n\n", goal)
	fmt.Fprintf(&b, "**Result: %.2f× — %s**\n\n", r.ratio(), r.verdict())
	for _, f := range r.facts() {
		v := f[1]
		if f[0] == "command" {
			v = "`" + v + "`"
		}
		fmt.Fprintf(&b, "- %s: %s\n", f[0], v)
	}
	fmt.Fprintf(&b, "- timed: `strata render --env %s --repo REPO -o yaml` and `kubectl kustomize REPO/overlays/%s`, stdout to /dev/null, one untimed warm-up of each, then %d runs of each alternating which goes first\n\n",
		benchEnv, benchEnv, r.opts.reps)
	rows := r.rows()
	b.WriteString("| " + strings.Join(rows[0], " | ") + " |\n")
	b.WriteString("|---" + strings.Repeat("|--:", len(rows[0])-1) + "|\n")
	for _, row := range rows[1:] {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n")
	return b.String()
}

func commandLine() string {
	args := slices.Clone(os.Args[1:])
	return "go run ./bench/render " + strings.Join(args, " ")
}
