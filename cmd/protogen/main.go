// Command protogen generates the Go code of every .proto file in the
// repository, beside its source, or checks that the committed code is
// current:
//
//	go run ./cmd/protogen          # write *.pb.go   (make generate)
//	go run ./cmd/protogen -check   # fail if stale   (make check-generated, part of make test)
//
// It is protoc plus protoc-gen-go in one pure-Go program: bufbuild's
// protocompile parses and links the .proto files, and protoc-gen-go's own
// generator (the version pinned in go.mod) writes the code. Nothing but Go
// is needed, and it builds in seconds where buf takes minutes, which keeps
// CI fast.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bufbuild/protocompile"
	gengo "google.golang.org/protobuf/cmd/protoc-gen-go/internal_gengo"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/pluginpb"
)

// skipDirs are never searched for .proto files: vendored code and local
// run state.
var skipDirs = map[string]bool{".git": true, ".run": true, "data": true, "third_party": true, "node_modules": true}

func main() {
	check := flag.Bool("check", false, "report stale generated files instead of writing them")
	flag.Parse()
	if err := run(".", *check); err != nil {
		fmt.Fprintln(os.Stderr, "protogen:", err)
		os.Exit(1)
	}
}

func run(root string, check bool) error {
	sources, err := findProtos(root)
	if err != nil {
		return err
	}
	generated, err := generate(root, sources)
	if err != nil {
		return err
	}
	var stale []string
	for name, content := range generated {
		path := filepath.Join(root, name)
		current, err := os.ReadFile(path)
		if err == nil && bytes.Equal(current, content) {
			continue
		}
		if check {
			stale = append(stale, name)
			continue
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", name)
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		return fmt.Errorf("stale generated code (run make generate): %s", strings.Join(stale, ", "))
	}
	if check {
		fmt.Printf("generated code is current (%d .proto files)\n", len(sources))
	}
	return nil
}

// findProtos lists the .proto files under root, relative to it.
func findProtos(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && skipDirs[d.Name()] {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".proto") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(out) == 0 && err == nil {
		err = errors.New("no .proto files found")
	}
	return out, err
}

// generate compiles sources and returns the generated files by path.
func generate(root string, sources []string) (map[string][]byte, error) {
	compiler := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{root}}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	files, err := compiler.Compile(context.Background(), sources...)
	if err != nil {
		return nil, err
	}
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: sources,
		Parameter:      proto.String("paths=source_relative"),
	}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) { // dependencies first, as protoc sends them
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := range imports.Len() {
			add(imports.Get(i).FileDescriptor)
		}
		req.ProtoFile = append(req.ProtoFile, protodesc.ToFileDescriptorProto(fd))
	}
	for _, f := range files {
		add(f)
	}

	plugin, err := protogen.Options{}.New(req)
	if err != nil {
		return nil, err
	}
	for _, f := range plugin.Files {
		if f.Generate {
			gengo.GenerateFile(plugin, f)
		}
	}
	resp := plugin.Response()
	if resp.Error != nil {
		return nil, errors.New(resp.GetError())
	}
	out := map[string][]byte{}
	for _, f := range resp.File {
		out[f.GetName()] = []byte(f.GetContent())
	}
	return out, nil
}
