package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
)

// countFluxReconciles counts, per Kustomization name, the reconciles
// kustomize-controller logged as ended in its JSON log: "Reconciliation
// finished in …" or "Reconciliation failed after …" (the lines it writes
// once per reconcile; controller-runtime adds the object's name as the
// "name" key and as "Kustomization": {"name": …}). Other lines, and lines
// that are not JSON, do not count.
func countFluxReconciles(log []byte) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte("Reconciliation ")) {
			continue
		}
		var l struct {
			Msg           string `json:"msg"`
			Name          string `json:"name"`
			Kustomization struct {
				Name string `json:"name"`
			} `json:"Kustomization"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		if !strings.HasPrefix(l.Msg, "Reconciliation finished in ") && !strings.HasPrefix(l.Msg, "Reconciliation failed after ") {
			continue
		}
		name := l.Kustomization.Name
		if name == "" {
			name = l.Name
		}
		if name != "" {
			out[name]++
		}
	}
	return out
}
