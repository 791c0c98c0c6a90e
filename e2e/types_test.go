package e2e

import "github.com/strata-gitops/strata/internal/inventory"

type inventoryRef = inventory.Ref
