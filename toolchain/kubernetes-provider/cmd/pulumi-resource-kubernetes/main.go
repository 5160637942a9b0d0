// Command pulumi-resource-kubernetes is the upstream provider's main, rebuilt outside its repository.
//
// Upstream's main embeds schema-embed.json and terraform-mapping-embed.json, which `go generate`
// writes and .gitignore keeps out of the published module, so the upstream main cannot be built
// from the module as published. scripts/e2e-tools.sh copies the committed schema.json and
// terraform-mapping.json from the module into this folder before building (they are not committed
// here); generate.go upstream only re-marshals them and sets the schema's cosmetic version field.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema.json
var pulumiSchema []byte

//go:embed terraform-mapping.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
