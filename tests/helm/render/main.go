// chart-render renders a Helm chart the way `helm template` does, for CI machines where Helm
// itself is not installed. It uses the same template engine (Go text/template), the same
// function library (sprig v3) and the same YAML library (sigs.k8s.io/yaml) as Helm 3, adds the
// functions Helm defines on top of them (include, tpl, required, fail, toYaml, fromYaml, toJson,
// fromJson, .Files.Get, .Capabilities.APIVersions.Has), merges values files like
// `helm template -f A -f B`, and validates the merged values against values.schema.json with
// the JSON-schema validator Helm 3 used (xeipuuv/gojsonschema).
//
// Usage: chart-render [-f values.yaml]... [-n namespace] [-r release] [-a apiVersion]...
//
//	[-notes FILE] CHART_DIR
//
// Writes the manifests to stdout, each preceded by "# Source: <chart>/templates/<file>", as
// Helm does. Exit status 1 with the reason on stderr for any error: bad values, a schema
// violation, a template error, `fail`/`required`, or a key missing from the values.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	var valueFiles, apiVersions stringList
	flag.Var(&valueFiles, "f", "values file merged over the chart's values.yaml (repeatable)")
	flag.Var(&apiVersions, "a", "API version the cluster serves, for .Capabilities.APIVersions.Has (repeatable)")
	namespace := flag.String("n", "default", "release namespace")
	release := flag.String("r", "release-name", "release name")
	notes := flag.String("notes", "", "write the rendered NOTES.txt to this file")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: chart-render [-f values.yaml]... [-n ns] [-r release] [-a apiVersion]... [-notes FILE] CHART_DIR")
		os.Exit(2)
	}
	opts := options{chartDir: flag.Arg(0), valueFiles: valueFiles, apiVersions: apiVersions,
		namespace: *namespace, release: *release}
	out, notesText, err := render(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart-render: "+err.Error())
		os.Exit(1)
	}
	if *notes != "" {
		if err := os.WriteFile(*notes, []byte(notesText), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "chart-render: "+err.Error())
			os.Exit(1)
		}
	}
	fmt.Print(out)
}
