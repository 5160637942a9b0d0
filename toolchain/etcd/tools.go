//go:build tools

// Package tools pins etcd (server/v3's root package is its main; its go.mod replaces siblings with ../).
package tools

import _ "go.etcd.io/etcd/server/v3"
