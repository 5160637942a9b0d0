//go:build tools

// Package tools pins SeaweedFS (`weed mini`: master, volume server, filer and S3 gateway in one process), the real
// S3-compatible object store that holds Pulumi state in the S3 scenarios (lab/object_store.py). Why this one: it is
// Apache-2.0 (MinIO is AGPL), and the Go module proxy serves it, as a pseudo-version of its master branch (no tagged
// module version is served: its tags are not semver module versions).
package tools

import _ "github.com/seaweedfs/seaweedfs/weed"
