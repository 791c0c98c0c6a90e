//go:build tools

// Package kyverno pins the Kyverno build used by bench/peers/build.sh.
package kyverno

import _ "github.com/kyverno/kyverno/cmd/kyverno"
