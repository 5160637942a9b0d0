//go:build tools

// Package tools pins the helm CLI, used to package the stand-in agent chart and for the guide's manual path.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
