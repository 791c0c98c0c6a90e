package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strata-gitops/strata/internal/audit"
	"github.com/strata-gitops/strata/internal/config"
	"github.com/strata-gitops/strata/internal/policy"
)

// MaxRequestBytes bounds an AdmissionReview body, like the apiserver's
// 3 MiB request limit.
const MaxRequestBytes = 3 << 20

// DecisionTimeout bounds the policy evaluation of one request, well inside
// the registration's 5 s timeout.
const DecisionTimeout = 2 * time.Second

// NamespaceLabels returns the labels of a live Namespace (from an informer
// cache, not a GET per request); ok is false when it could not be read, and
// then an object in it is denied: an unknown floor is never "no floor".
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

	once   sync.Once
	decide decider
}

func (h *Handler) audit(e audit.Event) {
	if h.Audit != nil {
		e.Cluster, e.Tier = h.Checker.Cluster, string(h.Checker.Tier)
		h.Audit.Record(e)
	}
}

// ServeHTTP is the chain's first link: it reads the body (bounded), decodes
// an AdmissionReview (v1 or v1beta1), lets the chain decide and answers in
// the same version. Bad requests get HTTP errors; the server stays up.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.once.Do(func() { h.decide = h.chain() })
	review, status, err := readReview(w, r)
	if err != nil {
		http.Error(w, err.Error(), status)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), DecisionTimeout)
	defer cancel()
	req := review.Request
	resp := h.decide(&attempt{ctx: ctx, req: req, object: subject(req)})
	resp.UID = req.UID
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: review.APIVersion, Kind: "AdmissionReview"}, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
	if req.DryRun != nil && *req.DryRun {
		return // no record of a dry run, not even a count
	}
	tier := string(h.Checker.Tier)
	h.Metrics.Latency.WithLabelValues(tier).Observe(time.Since(start).Seconds())
	h.Metrics.Requests.WithLabelValues(tier, string(req.Operation), strconv.FormatBool(resp.Allowed)).Inc()
}

// readReview reads and decodes one AdmissionReview, or says which HTTP
// status the request deserves and why.
func readReview(w http.ResponseWriter, r *http.Request) (*decodedReview, int, error) {
	if r.Method != http.MethodPost {
		return nil, http.StatusMethodNotAllowed, errors.New("admission reviews are POSTed")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, http.StatusUnsupportedMediaType, errors.New("content type must be application/json")
	}
	// One allocation of the announced size (bounded) instead of io.ReadAll's
	// doublings: the body is the largest allocation of a request.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), MaxRequestBytes)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	body := buf.Bytes()
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", MaxRequestBytes)
		}
		return nil, http.StatusBadRequest, errors.New("reading request: " + err.Error())
	}
	review, err := decodeReview(body)
	if err != nil {
		return nil, http.StatusBadRequest, errors.New("malformed AdmissionReview: " + err.Error())
	}
	if gv := review.APIVersion; gv != "admission.k8s.io/v1" && gv != "admission.k8s.io/v1beta1" {
		return nil, http.StatusBadRequest, fmt.Errorf("unsupported AdmissionReview apiVersion %q: admission.k8s.io/v1 or v1beta1", gv)
	}
	if review.Request == nil || review.Request.UID == "" {
		return nil, http.StatusBadRequest, errors.New("AdmissionReview has no request (or no request.uid)")
	}
	return review, 0, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
