// Package approval holds strata's signed approvals: keys, the signed
// statement (a DSSE envelope made with sigstore's signature package), their
// storage as git notes on the approved tree, their verification against
// .strata/trust.yaml and the gate that decides whether a revision may be
// applied.
//
// An approval approves a tree (the content of a revision) for one
// environment, not a commit: a squash or a merge that produces the same tree
// keeps the approval, and any change of content needs a fresh one.
package approval

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

const (
	// StatementType is the _type of an approval statement.
	StatementType = "https://strata.dev/approval/v1"
	// PayloadType is the DSSE payloadType of an approval envelope.
	PayloadType = "application/vnd.strata.approval+json"

	// DefaultValidity is how long an approval stays valid when the statement
	// has no expires.
	DefaultValidity = 30 * 24 * time.Hour
	// ClockSkew is how far in the future a statement may be dated (the
	// signer's clock may run ahead of the reconciler's).
	ClockSkew = 5 * time.Minute
)

var objectName = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Statement is what a reviewer signs: "I approve this tree for this
// environment".
type Statement struct {
	Type string `json:"_type"`
	// Tree is the git tree hash of the approved content.
	Tree string `json:"tree"`
	// Environment is the environment of strata.yaml the approval is for.
	Environment string `json:"environment"`
	// Reviewer is the reviewer's name in .strata/trust.yaml.
	Reviewer string `json:"reviewer"`
	// Time is when the approval was signed.
	Time time.Time `json:"time"`
	// Expires ends the approval; zero means Time + DefaultValidity.
	Expires time.Time `json:"expires,omitzero"`
	// Commit is the commit the reviewer looked at; informational only (the
	// approval holds for every commit with the same tree).
	Commit string `json:"commit,omitempty"`
}

// ExpiresAt returns the end of the approval's validity.
func (s *Statement) ExpiresAt() time.Time {
	if s.Expires.IsZero() {
		return s.Time.Add(DefaultValidity)
	}
	return s.Expires
}

// check returns the first structural problem of s.
func (s *Statement) check() error {
	switch {
	case s.Type != StatementType:
		return fmt.Errorf("statement _type is %q, want %q", s.Type, StatementType)
	case !objectName.MatchString(s.Tree):
		return fmt.Errorf("tree %q is not a full lowercase git object name", s.Tree)
	case s.Environment == "":
		return errors.New("statement has no environment")
	case s.Reviewer == "":
		return errors.New("statement has no reviewer")
	case s.Time.IsZero():
		return errors.New("statement has no time")
	case !s.Expires.IsZero() && !s.Expires.After(s.Time):
		return fmt.Errorf("statement expires (%s) before it was signed (%s)", formatTime(s.Expires), formatTime(s.Time))
	case s.Commit != "" && !objectName.MatchString(s.Commit):
		return fmt.Errorf("commit %q is not a full lowercase git object name", s.Commit)
	}
	return nil
}

// parseStatement decodes a payload strictly: unknown fields are refused so
// that nothing unsigned-for can ride along.
func parseStatement(payload []byte) (*Statement, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var s Statement
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("statement is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("statement has trailing data")
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse)
// in its JSON form.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"`
	Signatures  []Signature `json:"signatures"`

	// parseErr is set by ParseEnvelopes for a line that is not an envelope;
	// Verify rejects such an entry with this reason. raw keeps the line so
	// that rewriting the note never drops what others wrote.
	parseErr error
	raw      []byte
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   string `json:"sig"`
}

// Statement decodes the payload without verifying the signature. Use it for
// display and bookkeeping only; Verify is the only judge of an approval.
func (e Envelope) Statement() (*Statement, error) {
	if e.parseErr != nil {
		return nil, e.parseErr
	}
	if e.PayloadType != PayloadType {
		return nil, fmt.Errorf("payloadType is %q, want %q", e.PayloadType, PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload is not base64: %v", err)
	}
	return parseStatement(payload)
}

// MarshalLine returns the envelope as one line of compact JSON (no newline).
func (e Envelope) MarshalLine() ([]byte, error) {
	if e.parseErr != nil {
		return e.raw, nil
	}
	return json.Marshal(e)
}

// ParseEnvelopes reads a note: one JSON envelope per line (blank lines are
// skipped, so notes joined by `git notes append` or merged with the
// cat_sort_uniq strategy read fine), or a JSON array of envelopes. A line
// that is not an envelope is kept as an entry that Verify rejects, so one
// bad line never hides the good ones.
func ParseEnvelopes(data []byte) []Envelope {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil
	}
	if trimmed[0] == '[' {
		var raw []json.RawMessage
		if err := json.Unmarshal(trimmed, &raw); err == nil {
			out := make([]Envelope, 0, len(raw))
			for _, r := range raw {
				out = append(out, parseEnvelope(r))
			}
			return out
		}
	}
	var out []Envelope
	for line := range bytes.SplitSeq(trimmed, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		out = append(out, parseEnvelope(line))
	}
	return out
}

func parseEnvelope(b []byte) Envelope {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		var c bytes.Buffer
		if json.Compact(&c, b) != nil {
			c.Reset()
			c.Write(b)
		}
		return Envelope{parseErr: fmt.Errorf("not a DSSE envelope: %v", err), raw: c.Bytes()}
	}
	return e
}

// FormatEnvelopes writes envelopes as a note: one compact JSON envelope per
// line, lines sorted and unique (the same canonical form as git's
// cat_sort_uniq notes merge strategy produces).
func FormatEnvelopes(envs []Envelope) ([]byte, error) {
	lines := make([]string, 0, len(envs))
	seen := map[string]bool{}
	for i := range envs {
		b, err := envs[i].MarshalLine()
		if err != nil {
			return nil, err
		}
		if len(b) > 0 && !seen[string(b)] {
			seen[string(b)] = true
			lines = append(lines, string(b))
		}
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return nil, nil
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
