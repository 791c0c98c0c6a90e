package main

import (
	"testing"
)

func TestObjectIDs(t *testing.T) {
	y := `# cluster: public  environment: bench  revision: abc
---
apiVersion: v1
kind: Namespace
metadata:
  labels:
    name: not-the-name
  name: team-00
---
apiVersion: v1
kind: ConfigMap
data:
  name: not-the-name
metadata:
  name: cm
  namespace: team-00
# cluster: private  environment: bench  revision: abc
---
apiVersion: v1
kind: Namespace
metadata:
  name: team-00
`
	ids, docs := objectIDs([]byte(y))
	if docs != 3 || len(ids) != 2 || !ids["Namespace /team-00"] || !ids["ConfigMap team-00/cm"] {
		t.Fatalf("docs %d, ids %v", docs, ids)
	}
}
