package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"unicode"

	"github.com/Masterminds/semver/v3"
)

// The Kubernetes version .Capabilities reports, as `helm template` does without a cluster
// (Helm's default is the version of the client libraries it was built with).
const kubeVersion = "v1.30.0"

type options struct {
	chartDir    string
	valueFiles  []string
	apiVersions []string
	namespace   string
	release     string
}

// apiVersions is .Capabilities.APIVersions: the built-in groups plus those given with -a.
type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

// files is .Files: the chart's files outside templates/ and the chart's own metadata files.
type files map[string][]byte

func (f files) Get(name string) string      { return string(f[name]) }
func (f files) GetBytes(name string) []byte { return f[name] }
func (f files) Has(name string) bool        { _, ok := f[name]; return ok }

var builtinAPIVersions = []string{"v1", "apps/v1", "batch/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
	"networking.k8s.io/v1", "scheduling.k8s.io/v1", "storage.k8s.io/v1", "apiextensions.k8s.io/v1",
	"admissionregistration.k8s.io/v1", "coordination.k8s.io/v1", "autoscaling/v2"}

// chartMeta turns Chart.yaml into .Chart: keys with their first letter upper-cased, as Helm's
// Metadata struct exposes them (apiVersion is APIVersion there).
func chartMeta(chartDir string) (map[string]interface{}, error) {
	raw, err := readYAMLMap(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	meta := map[string]interface{}{}
	for k, v := range raw {
		if k == "apiVersion" {
			meta["APIVersion"] = v
			continue
		}
		r := []rune(k)
		r[0] = unicode.ToUpper(r[0])
		meta[string(r)] = v
	}
	for _, k := range []string{"Name", "Version"} {
		if s, _ := meta[k].(string); s == "" {
			return nil, fmt.Errorf("Chart.yaml: %s is required", strings.ToLower(k))
		}
	}
	return meta, nil
}

// checkKubeVersion applies Chart.yaml's kubeVersion constraint, as helm template does.
func checkKubeVersion(meta map[string]interface{}) error {
	constraint, _ := meta["KubeVersion"].(string)
	if constraint == "" {
		return nil
	}
	c, err := semver.NewConstraint(constraint)
	if err != nil {
		return fmt.Errorf("Chart.yaml kubeVersion %q: %v", constraint, err)
	}
	if !c.Check(semver.MustParse(kubeVersion)) {
		return fmt.Errorf("chart requires kubeVersion %s, which is incompatible with %s", constraint, kubeVersion)
	}
	return nil
}

// loadChart reads every file of the chart: templates/ into the template set (named
// "<chart>/templates/<path>" as Helm names them), the rest into .Files.
func loadChart(chartDir, chartName string, root **template.Template) ([]string, files, error) {
	*root = template.New("chart").Funcs(funcMap(root)).Option("missingkey=error")
	var names []string
	other := files{}
	err := filepath.Walk(chartDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(rel, "templates/") {
			if rel != "Chart.yaml" && rel != "values.yaml" && rel != "values.schema.json" {
				other[rel] = data
			}
			return nil
		}
		name := chartName + "/" + rel
		if _, err := (*root).New(name).Parse(string(data)); err != nil {
			return err
		}
		names = append(names, name)
		return nil
	})
	sort.Strings(names)
	return names, other, err
}

// renderable: what Helm renders into manifests (not partials "_*", not NOTES.txt).
func renderable(name string) bool {
	base := filepath.Base(name)
	return !strings.HasPrefix(base, "_") && base != "NOTES.txt"
}

func execute(root *template.Template, name string, top map[string]interface{}) (string, error) {
	data := map[string]interface{}{}
	for k, v := range top {
		data[k] = v
	}
	data["Template"] = map[string]interface{}{"Name": name, "BasePath": filepath.Dir(name)}
	var b strings.Builder
	if err := root.ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

func render(o options) (string, string, error) {
	meta, err := chartMeta(o.chartDir)
	if err != nil {
		return "", "", err
	}
	if err := checkKubeVersion(meta); err != nil {
		return "", "", err
	}
	values, err := loadValues(o.chartDir, o.valueFiles)
	if err != nil {
		return "", "", err
	}
	if err := validateValues(o.chartDir, values); err != nil {
		return "", "", err
	}
	var root *template.Template
	names, other, err := loadChart(o.chartDir, meta["Name"].(string), &root)
	if err != nil {
		return "", "", err
	}
	v := semver.MustParse(kubeVersion)
	top := map[string]interface{}{
		"Values": values,
		"Chart":  meta,
		"Files":  other,
		"Release": map[string]interface{}{"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1},
		"Capabilities": map[string]interface{}{
			"APIVersions": apiVersions(append(append([]string{}, builtinAPIVersions...), o.apiVersions...)),
			"KubeVersion": map[string]interface{}{"Version": kubeVersion, "GitVersion": kubeVersion,
				"Major": fmt.Sprint(v.Major()), "Minor": fmt.Sprint(v.Minor())},
		},
	}
	var out, notes strings.Builder
	for _, name := range names {
		text, err := execute(root, name, top)
		if err != nil {
			return "", "", err
		}
		if filepath.Base(name) == "NOTES.txt" {
			notes.WriteString(text)
			continue
		}
		if !renderable(name) || strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", name, strings.Trim(text, "\n"))
	}
	return out.String(), notes.String(), nil
}
