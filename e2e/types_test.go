package e2e

import (
	"encoding/json"

	"github.com/strata-gitops/strata/internal/inventory"
)

type inventoryRef = inventory.Ref

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
