package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/labels"
	"github.com/strata-gitops/strata/internal/policy"
)

// MaxRequestBytes bounds an AdmissionReview body, like the apiserver's
// 3 MiB request limit.
const MaxRequestBytes = 3 << 20

// DecisionTimeout bounds the policy evaluation of one request, well inside
// the registration's 5 s timeout.
const DecisionTimeout = 2 * time.Second

// NamespaceLabels returns the labels of a live Namespace (from an informer
// cache, not a GET per request); ok is false when it is not known.
type NamespaceLabels func(name string) (labels map[string]string, ok bool)

// Policies evaluates the policies of policies/.
type Policies interface {
	Evaluate(ctx context.Context, in policy.Input) []policy.Verdict
}

// BreakGlassRecorder records a break-glass admission for strata audit.
type BreakGlassRecorder interface {
	RecordBreakGlass(ctx context.Context, e BreakGlassEvent)
}

// BreakGlassEvent is one emergency bypass.
type BreakGlassEvent struct {
	Time      time.Time
	Cluster   string
	Tier      config.Tier
	User      string
	Groups    []string
	Reason    string
	Operation string
	Object    string
	Namespace string
	// Bypassed lists the rules that would have denied the request.
	Bypassed []string
}

// Handler serves /validate.
type Handler struct {
	Checker          *Checker
	Policies         Policies
	Namespaces       NamespaceLabels
	BreakGlassGroups []string
	Recorder         BreakGlassRecorder
	// Audit records denials and break-glass admissions (nil: none).
	Audit   audit.Recorder
	Metrics *Metrics
	Log     *slog.Logger
}

func (h *Handler) audit(e audit.Event) {
	if h.Audit != nil {
		e.Cluster, e.Tier = h.Checker.Cluster, string(h.Checker.Tier)
		h.Audit.Record(e)
	}
}

// ServeHTTP decodes an AdmissionReview (v1 or v1beta1), decides and answers
// in the same version. Bad requests get HTTP errors; the server stays up.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "content type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", MaxRequestBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading request: "+err.Error(), http.StatusBadRequest)
		return
	}
	review, err := decodeReview(body)
	if err != nil {
		http.Error(w, "malformed AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	gv := review.APIVersion
	if gv != "admission.k8s.io/v1" && gv != "admission.k8s.io/v1beta1" {
		http.Error(w, fmt.Sprintf("unsupported AdmissionReview apiVersion %q: admission.k8s.io/v1 or v1beta1", gv), http.StatusBadRequest)
		return
	}
	if review.Request == nil || review.Request.UID == "" {
		http.Error(w, "AdmissionReview has no request (or no request.uid)", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DecisionTimeout)
	defer cancel()
	resp := h.decide(ctx, review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: gv, Kind: "AdmissionReview"}, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
	tier := string(h.Checker.Tier)
	h.Metrics.Latency.WithLabelValues(tier).Observe(time.Since(start).Seconds())
	h.Metrics.Requests.WithLabelValues(tier, string(review.Request.Operation), strconv.FormatBool(resp.Allowed)).Inc()
}

// decide runs the sensitivity check, then the policies, then break-glass.
func (h *Handler) decide(ctx context.Context, req *request) *admissionv1.AdmissionResponse {
	// A revert must always be able to prune: DELETE is never denied.
	if req.Operation == admissionv1.Delete || req.Operation == admissionv1.Connect {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	obj := req.Object
	if obj == nil {
		msg := "the request carries no object"
		if req.objectErr != nil {
			msg = "the object is not a JSON object: " + req.objectErr.Error()
		}
		return h.denyResponse("malformed-object", msg+": strata cannot classify it, so it is denied (fail closed)")
	}
	meta := objectMeta(obj)
	subject := Subject{
		Kind: req.Kind.Kind, Namespace: req.Namespace, Name: firstNonEmpty(req.Name, meta.name),
		ClusterScoped: req.Namespace == "", Labels: meta.labels,
	}
	var nsObj map[string]any
	if !subject.ClusterScoped && h.Namespaces != nil {
		if l, ok := h.Namespaces(req.Namespace); ok {
			subject.NamespaceLabels = l
			nsObj = map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": req.Namespace, "labels": toAny(l)}}
		}
	}
	var denials []denial
	var warnings []string
	c := h.Checker.Check(subject)
	sens := c.Sensitivity
	if !c.Allowed {
		denials = append(denials, denial{rule: c.Rule, msg: c.Message})
	}
	if h.Policies != nil && !slices.Contains(ExcludedNamespaces, req.Namespace) {
		in := policy.Input{
			Operation: string(req.Operation), Object: obj, Namespace: nsObj,
			Resource:    schema.GroupVersionResource(req.Resource),
			SubResource: req.SubResource, Kind: schema.GroupVersionKind(req.Kind),
			Name: subject.Name, NamespaceName: req.Namespace, DryRun: req.DryRun != nil && *req.DryRun,
			UserInfo: req.UserInfo, Tier: h.Checker.Tier,
		}
		in.OldObject = req.OldObject
		for _, v := range h.Policies.Evaluate(ctx, in) {
			switch v.Action {
			case "Deny":
				denials = append(denials, denial{rule: v.Policy, msg: fmt.Sprintf("policy %s (%s): %s", v.Policy, v.Rule, v.Message)})
			case "Warn":
				warnings = append(warnings, fmt.Sprintf("policy %s: %s", v.Policy, v.Message))
			default:
				h.Log.Info("policy audit", "policy", v.Policy, "object", subject.String(), "message", v.Message)
			}
		}
	}
	if len(denials) == 0 {
		return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
	}
	if reason, ok := meta.annotations[labels.BreakGlass]; ok {
		if h.mayBreakGlass(req.UserInfo.Groups) && strings.TrimSpace(reason) != "" {
			return h.breakGlass(ctx, req, subject, reason, denials, warnings)
		}
		denials = append(denials, denial{rule: RuleBreakGlassDenied, msg: fmt.Sprintf(
			"%s=%q was ignored: break-glass needs a non-empty reason and membership in one of the groups %v (user %s is in %v)",
			labels.BreakGlass, reason, h.BreakGlassGroups, req.UserInfo.Username, req.UserInfo.Groups)})
	}
	msgs := make([]string, len(denials))
	dry := ""
	if req.DryRun != nil && *req.DryRun {
		dry = "dry-run: "
	}
	for i, d := range denials {
		msgs[i] = d.msg
		h.Metrics.Denials.WithLabelValues(d.rule, string(h.Checker.Tier)).Inc()
		h.audit(audit.Event{Kind: audit.Denial, Rule: d.rule, Object: subject.String(), Actor: req.UserInfo.Username,
			Sensitivity: string(sens), Message: dry + d.msg})
	}
	h.Log.Info("denied", "cluster", h.Checker.Cluster, "object", subject.String(), "operation", req.Operation,
		"user", req.UserInfo.Username, "dryRun", req.DryRun != nil && *req.DryRun, "rules", rulesOf(denials))
	return &admissionv1.AdmissionResponse{Allowed: false, Warnings: warnings, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
		Message: "strata: " + strings.Join(msgs, "; "),
	}}
}

type denial struct{ rule, msg string }

func rulesOf(ds []denial) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.rule
	}
	return out
}

func (h *Handler) denyResponse(rule, msg string) *admissionv1.AdmissionResponse {
	h.Metrics.Denials.WithLabelValues(rule, string(h.Checker.Tier)).Inc()
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: "strata: " + msg,
	}}
}

func (h *Handler) mayBreakGlass(groups []string) bool {
	for _, g := range groups {
		if slices.Contains(h.BreakGlassGroups, g) {
			return true
		}
	}
	return false
}

func (h *Handler) breakGlass(ctx context.Context, req *request, s Subject, reason string, denials []denial, warnings []string) *admissionv1.AdmissionResponse {
	e := BreakGlassEvent{
		Time: time.Now().UTC(), Cluster: h.Checker.Cluster, Tier: h.Checker.Tier, User: req.UserInfo.Username,
		Groups: req.UserInfo.Groups, Reason: reason, Operation: string(req.Operation), Object: s.String(),
		Namespace: req.Namespace, Bypassed: rulesOf(denials),
	}
	h.Metrics.BreakGlass.WithLabelValues(string(h.Checker.Tier)).Inc()
	h.audit(audit.Event{Kind: audit.BreakGlass, Object: e.Object, Actor: e.User, Rule: strings.Join(e.Bypassed, ","), Message: reason})
	h.Log.Warn("break-glass", "cluster", e.Cluster, "tier", e.Tier, "user", e.User, "reason", reason,
		"object", e.Object, "operation", e.Operation, "bypassed", e.Bypassed)
	if h.Recorder != nil && (req.DryRun == nil || !*req.DryRun) {
		h.Recorder.RecordBreakGlass(ctx, e)
	}
	warnings = append(warnings, fmt.Sprintf("strata: break-glass by %s (%q) bypassed %s; this is recorded for audit", e.User, reason, strings.Join(e.Bypassed, ", ")))
	return &admissionv1.AdmissionResponse{Allowed: true, Warnings: warnings}
}

type objMeta struct {
	name        string
	labels      map[string]string
	annotations map[string]string
}

func objectMeta(obj map[string]any) objMeta {
	md, _ := obj["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	if name == "" {
		name, _ = md["generateName"].(string)
	}
	return objMeta{name: name, labels: stringMap(md["labels"]), annotations: stringMap(md["annotations"])}
}

func stringMap(v any) map[string]string {
	m, _ := v.(map[string]any)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
