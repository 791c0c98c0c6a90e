package statuspage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/approval"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/inventory"
	"github.com/strata-gitops/strata/reconciler"
)

const (
	goodRev = "d1cf1d9894f0a7c3e5b2d4f6a8c0e2b4d6f8a0c2"
	badRev  = "3f2a9c1d0e4b6a8c0e2f4b6d8a0c2e4f6b8d0a2c"
	kcDir   = "/home/oncall/.strata/clusters"
)

var now = time.Date(2026, 3, 31, 3, 12, 0, 0, time.UTC)

func healthy(rev string, objects int) inventory.Status {
	return inventory.Status{
		Revision: rev, Objects: objects, Healthy: objects, LastReconcile: now.Add(-20 * time.Second),
		Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: inventory.ReasonSucceeded}},
		History:    []inventory.Applied{{Revision: rev, Outcome: inventory.ReasonSucceeded, Time: now.Add(-time.Hour)}},
	}
}

func prod(clusters ...Cluster) *Snapshot {
	return &Snapshot{
		Time:         now,
		Environments: []Environment{{Name: "prod", Clusters: clusters}},
		Subjects: map[string]string{
			goodRev: "Scale fraud-scoring for month-end",
			badRev:  "fraud-scoring: switch to model v7",
		},
	}
}

func greenProd() *Snapshot {
	return prod(
		Cluster{Name: "public", Tier: "public-cloud", Reachable: true, Reconciled: true, Status: healthy(goodRev, 6)},
		Cluster{Name: "private", Tier: "private-cloud", Reachable: true, Reconciled: true, Status: healthy(goodRev, 18)},
		Cluster{Name: "onprem", Tier: "on-prem", Reachable: true, Reconciled: true, Status: healthy(goodRev, 11)},
	)
}

// get renders snap through the handler and returns the response.
func get(t *testing.T, snap *Snapshot, err error) (*http.Response, string) {
	t.Helper()
	h := New(SourceFunc(func(context.Context) (*Snapshot, error) { return snap, err }),
		Options{KubeconfigDir: kcDir, Now: func() time.Time { return now }})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

func mustNotContain(t *testing.T, body string, bad ...string) {
	t.Helper()
	for _, b := range bad {
		if strings.Contains(body, b) {
			t.Errorf("page has %q", b)
		}
	}
}

var verdictRE = regexp.MustCompile(`<header class="verdict (\w+)">\s*<div>\s*<p class="headline"><span class="dot \w+"></span>([^<]*)</p>`)

// verdictOf returns the header's class and headline.
func verdictOf(t *testing.T, body string) (string, string) {
	t.Helper()
	m := verdictRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no verdict header in page:\n%s", body)
	}
	return m[1], m[2]
}

func TestGreenPageShowsEveryClusterRow(t *testing.T) {
	res, body := get(t, greenProd(), nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	class, headline := verdictOf(t, body)
	if class != "ok" || headline != "all 3 clusters at d1cf1d9894f0 and healthy" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	for _, row := range []string{
		`<span class="cl">public</span>`, `<span class="cl">private</span>`, `<span class="cl">onprem</span>`,
		`<td class="nw">public-cloud</td>`, `<td class="nw">private-cloud</td>`, `<td class="nw">on-prem</td>`,
		`<td class="num ">18/18</td>`, `Scale fraud-scoring for month-end`, `title="` + goodRev + `"`,
		`<td class="nw " title="2026-03-31T03:11:40Z">20s ago</td>`,
	} {
		mustContain(t, body, row)
	}
	if n := strings.Count(body, `<tr class="row ok">`); n != 3 {
		t.Errorf("%d green rows, want 3", n)
	}
	mustContain(t, body, `<meta http-equiv="refresh" content="5">`, "environment: <b>prod</b>", "2026-03-31 03:12:00 UTC")
	mustNotContain(t, body, "Pending approvals", "Revert this", "<script", "<form", "<link", "src=")
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
}

// refuse records in st what the reconciler stores when the gate refuses
// badRev: the error text and the verdict as data, built with its own types.
func refuse(st *inventory.Status, d approval.Decision) {
	st.LastError = (&reconciler.GateError{Environment: "prod", Revision: badRev, Decision: d}).Error()
	st.Gate = reconciler.GateStatusOf(&approval.Verdict{Decision: d, Commit: badRev, Enforced: true})
}

func TestAmberPendingApprovals(t *testing.T) {
	snap := greenProd()
	d := approval.Decision{Sensitivity: config.Restricted, Need: 2, Have: []string{"alice"},
		Rejected: []approval.Rejection{{Reviewer: "bob", Reason: "may approve changes up to internal, this one is restricted"}},
		Message:  "restricted change needs 2 approvals, has 1: alice; rejected bob: may approve changes up to internal, this one is restricted"}
	for i := range snap.Environments[0].Clusters {
		refuse(&snap.Environments[0].Clusters[i].Status, d)
	}
	_, body := get(t, snap, nil)
	class, headline := verdictOf(t, body)
	if class != "warn" || headline != "3 of 3 clusters need attention" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	mustContain(t, body,
		"Pending approvals: prod revision <code>3f2a9c1d0e4b</code>",
		"“fraud-scoring: switch to model v7”",
		"<b>restricted</b> change needs <b>2</b>, has <b>alice</b> · <b>1 more</b> needed",
		"rejected bob: may approve changes up to internal, this one is restricted",
		"Nothing is applied to public, private, onprem until reviewers sign the revision",
		"strata approve 3f2a9c1d0e4b --env prod --key KEY --push",
		"<b>prod (all 3 clusters)</b>: revision 3f2a9c1d0e4b waits for approvals: restricted change needs 2 approvals, has 1: alice",
	)
	if n := strings.Count(body, `class="box warn pending"`); n != 1 {
		t.Errorf("%d pending boxes, want one for the environment", n)
	}
	mustNotContain(t, body, "Revert this")
}

func TestGateOfReadsTheStoredVerdict(t *testing.T) {
	// The verdict approval.Gate makes with no approvals at all.
	var st inventory.Status
	refuse(&st, approval.Gate(&config.Trust{}, "prod", "tree", config.Restricted, 2, now, nil))
	g, ok := GateOf("prod", st)
	if !ok || !g.Parsed || g.Revision != "3f2a9c1d0e4b" || g.Environment != "prod" || g.Sensitivity != "restricted" ||
		g.Need != 2 || len(g.Have) != 0 || g.Missing() != 2 || g.Command != "strata approve 3f2a9c1d0e4b --env prod --key KEY --push" {
		t.Errorf("GateOf = %+v, %t", g, ok)
	}
	refuse(&st, approval.Gate(&config.Trust{}, "prod", "tree", config.Sensitivity("secret"), 2, now, nil))
	if g, ok := GateOf("prod", st); !ok || g.Parsed || !strings.Contains(g.Message, "cannot be approved") {
		t.Errorf("unknown sensitivity: %+v %t", g, ok)
	}
	// An error that merely looks like a refusal is not one: only data counts.
	st = inventory.Status{LastError: "revision 3f2a9c1d0e4b is not approved for prod: restricted change needs 2 approvals, has 0; reviewers sign it with `x`"}
	if _, ok := GateOf("prod", st); ok {
		t.Error("a last error's text was taken for a gate refusal")
	}
	st.Gate = &inventory.GateStatus{Commit: badRev, Allowed: true, Enforced: true}
	if _, ok := GateOf("prod", st); ok {
		t.Error("an allowed verdict was shown as pending")
	}
}

func TestRedRevertHintNamesTheFailingCommit(t *testing.T) {
	snap := greenProd()
	private := &snap.Environments[0].Clusters[1]
	private.Status.Healthy, private.Status.Failed = 17, 1
	private.Status.LastError = "cluster private: health check failed: failed early due to stalled resources: [Deployment/fraud/fraud-scoring status: 'Failed']: objects that moved here stay in their old cluster until they are healthy; fix or revert the commit"
	private.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: inventory.ReasonHealthFailed}}
	private.Status.History = append([]inventory.Applied{{Revision: badRev, Outcome: inventory.ReasonHealthFailed, Time: now.Add(-4 * time.Minute)}},
		private.Status.History...)
	_, body := get(t, snap, nil)
	class, headline := verdictOf(t, body)
	if class != "bad" || headline != "1 of 3 clusters failing" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	mustContain(t, body,
		"Revert this: prod revision <code title=\""+badRev+"\">3f2a9c1d0e4b</code> failed its health check",
		"“fraud-scoring: switch to model v7” · on private · applied 4m ago",
		"<pre class=\"cmd\">strata rollback 3f2a9c1d0e4b --push --wait --env prod --kubeconfig-dir /home/oncall/.strata/clusters</pre>",
		`<tr class="row bad">`, `<td class="num bad">17/18</td>`, `<td class="num bad">0 / 1</td>`,
		"revision 3f2a9c1d0e4b failed its health check (1 failed, 0 progressing)",
	)
	mustNotContain(t, body, "strata rollback d1cf1d9894f0", "Pending approvals")

	// Once a newer revision is applied, the hint goes away.
	private.Status.History = append([]inventory.Applied{{Revision: goodRev, Outcome: inventory.ReasonSucceeded}}, private.Status.History...)
	private.Status.Healthy, private.Status.Failed, private.Status.LastError = 18, 0, ""
	private.Status.Conditions = nil
	_, body = get(t, snap, nil)
	mustNotContain(t, body, "Revert this", "strata rollback")
}

func TestHostileTextIsEscaped(t *testing.T) {
	snap := greenProd()
	c := &snap.Environments[0].Clusters[2]
	c.Status.LastError = `apply failed: <script>alert("pwned")</script> "quoted" & more`
	c.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionFalse, Reason: inventory.ReasonApplyFailed}}
	snap.Subjects[goodRev] = `<img src=x onerror=alert(1)> evil subject`
	snap.BreakGlass = []BreakGlass{{Time: now.Add(-time.Minute), Cluster: "onprem", User: "mallory<b>", Reason: `"><script>x()</script>`, Message: "<iframe>"}}
	_, body := get(t, snap, nil)
	mustNotContain(t, body, "<script", "<img", "<iframe", "mallory<b>", `"quoted"`)
	mustContain(t, body,
		"&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;",       // text
		`title="apply failed: &lt;script&gt;alert(&#34;pwned&#34;)`, // attribute
		"&lt;img src=x onerror=alert(1)&gt; evil subject",
		"mallory&lt;b&gt;",
	)
	class, _ := verdictOf(t, body)
	if class != "bad" {
		t.Errorf("a failed apply is %s, want bad", class)
	}
}

func TestLongErrorsAreTruncatedWithTheFullTextInTheTitle(t *testing.T) {
	snap := greenProd()
	long := "cluster onprem: prune failed: " + strings.Repeat("x", 300) + " END"
	snap.Environments[0].Clusters[2].Status.LastError = long
	_, body := get(t, snap, nil)
	mustContain(t, body, `title="`+long+`"`, "…</td>")
	if strings.Count(body, "END") != 1 {
		t.Error("the full error is shown outside the title attribute")
	}
}

func TestUnreachableAndNeverReconciled(t *testing.T) {
	snap := greenProd()
	snap.Environments[0].Clusters[0] = Cluster{Name: "public", Tier: "public-cloud",
		Error: "unreachable: Get \"https://127.0.0.1:1/readyz\": dial tcp 127.0.0.1:1: connect: connection refused"}
	snap.Environments[0].Clusters[1] = Cluster{Name: "private", Tier: "private-cloud", Reachable: true}
	_, body := get(t, snap, nil)
	class, headline := verdictOf(t, body)
	if class != "bad" || headline != "1 of 3 clusters failing, 1 needs attention" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	mustContain(t, body, `<span class="bad">no</span>`, "connection refused", "never reconciled: run strata reconcile")
}

func TestMultipleEnvironmentsAndDifferentRevisions(t *testing.T) {
	snap := greenProd()
	snap.Environments = append(snap.Environments, Environment{Name: "staging", Clusters: []Cluster{
		{Name: "stg-public", Tier: "public-cloud", Reachable: true, Reconciled: true, Status: healthy(badRev, 6)},
	}})
	_, body := get(t, snap, nil)
	class, headline := verdictOf(t, body)
	if class != "ok" || headline != "all 4 clusters healthy: prod at d1cf1d9894f0, staging at 3f2a9c1d0e4b" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	mustContain(t, body, "environments: <b>prod · staging</b>", "all 3 at d1cf1d9894f0 and healthy")

	snap.Environments[0].Clusters[0].Status = healthy(badRev, 6)
	_, body = get(t, snap, nil)
	class, headline = verdictOf(t, body)
	if class != "warn" || headline != "all 4 clusters healthy, not all at one revision" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	mustContain(t, body, "clusters at different revisions: 3f2a9c1d0e4b on 1, d1cf1d9894f0 on 2")
}

func TestStaleReconcileIsAmber(t *testing.T) {
	snap := greenProd()
	snap.Environments[0].Clusters[0].Status.LastReconcile = now.Add(-3 * time.Hour)
	_, body := get(t, snap, nil)
	class, _ := verdictOf(t, body)
	if class != "warn" {
		t.Errorf("verdict %s, want warn", class)
	}
	mustContain(t, body, "no reconcile for 3h00m: is strata reconcile running?", `<td class="nw warn"`)
}

func TestLastDenials(t *testing.T) {
	snap := greenProd()
	for i := range 10 {
		snap.BreakGlass = append(snap.BreakGlass, BreakGlass{Time: now.Add(-time.Duration(i+1) * time.Hour), Cluster: "onprem",
			User: "carol", Reason: "INC-" + string(rune('0'+i)), Message: "break-glass by carol"})
	}
	snap.BreakGlass[9].Time = now.Add(-30 * time.Second) // newest, listed first
	snap.EventErrors = []string{"private: reading break-glass events: forbidden"}
	_, body := get(t, snap, nil)
	mustContain(t, body, "Last denials", "strata_webhook_denials_total", "and 2 older", "private: reading break-glass events: forbidden")
	first := strings.Index(body, "30s ago")
	second := strings.Index(body, "1h00m ago")
	if first < 0 || second < 0 || first > second {
		t.Errorf("break-glass admissions not newest first (%d, %d)", first, second)
	}
	if n := strings.Count(body, "<td>carol</td>"); n != 8 {
		t.Errorf("%d admissions listed, want 8", n)
	}

	snap.BreakGlass, snap.EventErrors = nil, nil
	_, body = get(t, snap, nil)
	mustContain(t, body, "none recorded in the reachable clusters")
}

func TestReadOnlyMethodsAndPaths(t *testing.T) {
	h := New(SourceFunc(func(context.Context) (*Snapshot, error) { return greenProd(), nil }), Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/", strings.NewReader("x=1")))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s / = %d, Allow %q; want 405, GET, HEAD", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /admin = %d, want 404", rec.Code)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD = %d with %d bytes", res.StatusCode, len(body))
	}
	res, err = http.Post(srv.URL, "application/x-www-form-urlencoded", strings.NewReader("x=1"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST over HTTP = %d, want 405", res.StatusCode)
	}
}

func TestSnapshotIsCachedForTwoSeconds(t *testing.T) {
	var calls atomic.Int32
	clock := now
	h := New(SourceFunc(func(context.Context) (*Snapshot, error) {
		calls.Add(1)
		return greenProd(), nil
	}), Options{Now: func() time.Time { return clock }})
	view := func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
	}
	view()
	clock = clock.Add(time.Second)
	view()
	if calls.Load() != 1 {
		t.Errorf("%d reads within the cache period, want 1", calls.Load())
	}
	clock = clock.Add(1500 * time.Millisecond)
	view()
	if calls.Load() != 2 {
		t.Errorf("%d reads after the cache period, want 2", calls.Load())
	}
}

func TestSourceErrorIsShownWith503(t *testing.T) {
	res, body := get(t, nil, errors.New("reading strata.yaml: <boom>"))
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", res.StatusCode)
	}
	class, headline := verdictOf(t, body)
	if class != "bad" || headline != "status unavailable" {
		t.Errorf("verdict = %s %q", class, headline)
	}
	mustContain(t, body, "reading strata.yaml: &lt;boom&gt;", `<meta http-equiv="refresh" content="5">`)
}

func TestRollbackCommandQuotesAndRepo(t *testing.T) {
	got := rollbackCommand(badRev, "prod", Options{KubeconfigDir: "/srv/my clusters", Repo: "/srv/config"})
	want := "strata rollback 3f2a9c1d0e4b --push --wait --env prod --kubeconfig-dir '/srv/my clusters' --repo /srv/config"
	if got != want {
		t.Errorf("rollbackCommand = %q, want %q", got, want)
	}
}

// A gate switched off in strata.yaml shows on the page, as a warning.
func TestGateOffIsShown(t *testing.T) {
	snap := greenProd()
	snap.Environments[0].Clusters[2].Status.Gate = &inventory.GateStatus{Enforced: false, Allowed: true, Message: "approvals are not enforced"}
	_, body := get(t, snap, nil)
	if class, _ := verdictOf(t, body); class != "warn" {
		t.Errorf("verdict %s, want warn", class)
	}
	mustContain(t, body, "approval gate is OFF")
}
