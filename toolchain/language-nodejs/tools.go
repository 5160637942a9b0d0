//go:build tools

// Package tools pins the Node.js language host built for the real-engine suite.
package tools

import _ "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs"
