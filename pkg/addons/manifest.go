package addons

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// decodeManifest splits a multi-document YAML stream into objects, in
// order, skipping empty documents (a leading "---", comment-only parts).
func decodeManifest(data []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML document %d: %w", i, err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("parsing YAML document %d: %w", i, err)
		}
		// apimachinery's JSON decoding keeps integers int64, as
		// unstructured's accessors expect (plain JSON would make them
		// float64).
		var m map[string]any
		if err := utiljson.Unmarshal(j, &m); err != nil {
			return nil, fmt.Errorf("parsing YAML document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" || u.GetName() == "" {
			return nil, fmt.Errorf("YAML document %d is not a named Kubernetes object (apiVersion %q, kind %q, name %q)", i, u.GetAPIVersion(), u.GetKind(), u.GetName())
		}
		objs = append(objs, u)
	}
}

// renderTemplate fills one of the package's YAML templates and decodes it.
func renderTemplate(name, src string, data any) ([]*unstructured.Unstructured, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("parsing template %s: %w", name, err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return nil, fmt.Errorf("rendering template %s: %w", name, err)
	}
	objs, err := decodeManifest(out.Bytes())
	if err != nil {
		return nil, fmt.Errorf("decoding rendered template %s: %w", name, err)
	}
	return objs, nil
}

// podSpecPath is where each workload kind keeps its pod spec.
var podSpecPath = map[string][]string{
	"Pod":         {"spec"},
	"Deployment":  {"spec", "template", "spec"},
	"DaemonSet":   {"spec", "template", "spec"},
	"StatefulSet": {"spec", "template", "spec"},
	"ReplicaSet":  {"spec", "template", "spec"},
	"Job":         {"spec", "template", "spec"},
	"CronJob":     {"spec", "jobTemplate", "spec", "template", "spec"},
}

// setImages points every container of every workload in objs at the image
// images maps its upstream reference to, and makes its pull policy
// IfNotPresent: the images exist only as archives loaded into the nodes, so
// a pull (Always, or the default for :latest) could never succeed. An image
// that images does not name is an error rather than left alone, because
// this host could not pull it either and the pod would hang in
// ImagePullBackOff.
func setImages(objs []*unstructured.Unstructured, images map[string]string) error {
	var unknown []string
	for _, o := range objs {
		path, ok := podSpecPath[o.GetKind()]
		if !ok {
			continue
		}
		for _, field := range []string{"initContainers", "containers"} {
			p := append(append([]string(nil), path...), field)
			list, found, err := unstructured.NestedSlice(o.Object, p...)
			if err != nil {
				return fmt.Errorf("%s %s: reading %s: %w", o.GetKind(), o.GetName(), strings.Join(p, "."), err)
			}
			if !found {
				continue
			}
			for i, c := range list {
				cm, ok := c.(map[string]any)
				if !ok {
					return fmt.Errorf("%s %s: %s[%d] is not an object", o.GetKind(), o.GetName(), strings.Join(p, "."), i)
				}
				old, _ := cm["image"].(string)
				ours, ok := images[old]
				if !ok {
					unknown = append(unknown, fmt.Sprintf("%s (%s %s/%s, container %v)", old, o.GetKind(), o.GetNamespace(), o.GetName(), cm["name"]))
					continue
				}
				cm["image"] = ours
				cm["imagePullPolicy"] = "IfNotPresent"
			}
			if err := unstructured.SetNestedSlice(o.Object, list, p...); err != nil {
				return fmt.Errorf("%s %s: writing %s: %w", o.GetKind(), o.GetName(), strings.Join(p, "."), err)
			}
		}
	}
	if len(unknown) > 0 {
		var known []string
		for k := range images {
			known = append(known, k)
		}
		sort.Strings(known)
		return fmt.Errorf("the manifest names images netconform does not build, which a host without a registry cannot pull: %s (built: %s)", strings.Join(unknown, "; "), strings.Join(known, ", "))
	}
	return nil
}

// ofKind returns the names of the objects of one kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []string {
	var names []string
	for _, o := range objs {
		if o.GetKind() == kind {
			names = append(names, o.GetName())
		}
	}
	return names
}
