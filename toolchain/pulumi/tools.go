//go:build tools

// Package tools pins the Pulumi CLI's module so that `go build` of its main package
// resolves against the versions in this go.mod (pkg/v3's own replace directives are
// ignored outside its repository, so `go install ...@version` refuses it).
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
