//go:build tools

// Package tools pins actionlint, the linter of .github/workflows/*.yml that scripts/test.sh runs (with shellcheck on
// the `run:` scripts).
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
