// Command pulumi-language-codegen answers the LanguageRuntime call `pulumi package gen-sdk` makes, GeneratePackage,
// for Node.js and Go, with the real code generators of pkg/v3 (codegen/nodejs, codegen/go) at the CLI's version.
//
// Why: CLI 3.274 generates every SDK through the language host of that language, and the modern Node.js and Go hosts
// are modules of their own (sdk/nodejs/cmd/pulumi-language-nodejs/v3, sdk/go/pulumi-language-go/v3) of which the Go
// module proxy here serves no version (403 for @latest, @master and @v3.274.1); sdk/v3 v3.68.0, the last release with
// the hosts inside sdk/v3, has hosts that predate GeneratePackage. So this host runs only codegen: it follows
// GeneratePackage of pulumi/pulumi's sdk/nodejs/cmd/pulumi-language-nodejs/main.go and
// sdk/go/pulumi-language-go/main.go (bind the schema with the CLI's schema loader, allowing dangling references,
// return binding errors as diagnostics, generate, write every file under the requested directory). Every other call,
// a program run included, is UNIMPLEMENTED. The language is the one in the name it is started under
// (pulumi-language-nodejs or pulumi-language-go, a link to this binary).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	nodejsgen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is the pkg/v3 release whose code generators this binary carries (set with -ldflags -X).
var version = "dev"

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	language string
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: strings.TrimPrefix(version, "v")}, nil
}

func (h *host) GeneratePackage(
	_ context.Context, req *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	if h.language == "go" && len(req.ExtraFiles) > 0 {
		return nil, fmt.Errorf("overlays are not supported for Go")
	}
	loader, err := schema.NewLoaderClient(req.LoaderTarget)
	if err != nil {
		return nil, err
	}
	defer loader.Close()

	var spec schema.PackageSpec
	if err := json.Unmarshal([]byte(req.Schema), &spec); err != nil {
		return nil, err
	}
	pkg, diags, err := schema.BindSpec(spec, schema.NewCachedLoader(loader), schema.ValidationOptions{
		AllowDanglingReferences: true,
	})
	if err != nil {
		return nil, err
	}
	diagnostics := plugin.HclDiagnosticsToRPCDiagnostics(diags)
	if diags.HasErrors() {
		return &pulumirpc.GeneratePackageResponse{Diagnostics: diagnostics}, nil
	}

	var files map[string][]byte
	switch h.language {
	case "nodejs":
		files, err = nodejsgen.GeneratePackage("pulumi-language-nodejs", pkg, req.ExtraFiles, req.LocalDependencies,
			req.Local, schema.NewCachedLoader(loader))
	case "go":
		files, err = gogen.GeneratePackage("pulumi-language-go", pkg, req.LocalDependencies)
	}
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		path := filepath.Join(req.Directory, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("could not create output directory %s: %w", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("could not write output file %s: %w", path, err)
		}
	}
	return &pulumirpc.GeneratePackageResponse{Diagnostics: diagnostics}, nil
}

func main() {
	name := filepath.Base(os.Args[0])
	language := strings.TrimPrefix(name, "pulumi-language-")
	if language != "nodejs" && language != "go" {
		fmt.Fprintf(os.Stderr, "%s: start me as pulumi-language-nodejs or pulumi-language-go (a link)\n", name)
		os.Exit(2)
	}
	// The CLI's arguments (engine address, -root, tracing) are not needed: codegen talks only to the schema loader
	// whose address comes with each request.
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{language: language})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: could not start the language host: %v\n", name, err)
		os.Exit(1)
	}
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
