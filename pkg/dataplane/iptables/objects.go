package iptables

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// APIObjects are the API objects a node's rules are checked against, as
// read from a saved `kubectl get -o yaml` (or JSON) file.
type APIObjects struct {
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	Nodes          []corev1.Node
}

// DecodeAPIObjects reads Services, EndpointSlices and Nodes from YAML or
// JSON: single objects, multi-document YAML, v1 Lists (kubectl get -o yaml
// of several kinds), or any mix. Objects of other kinds are skipped, so a
// file that also holds Deployments can be read as is.
func DecodeAPIObjects(r io.Reader) (*APIObjects, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	out := &APIObjects{}
	for doc := 1; ; doc++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding document %d: %w", doc, err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		if err := out.add(raw); err != nil {
			return nil, fmt.Errorf("document %d: %w", doc, err)
		}
	}
}

// add decodes one object, descending into Lists.
func (o *APIObjects) add(raw json.RawMessage) error {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return fmt.Errorf("reading object kind: %w", err)
	}
	switch {
	case head.Kind == "List" || (head.Items != nil && len(head.Kind) > 4 && head.Kind[len(head.Kind)-4:] == "List"):
		for i, item := range head.Items {
			if err := o.add(item); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
	case head.Kind == "Service" && head.APIVersion == "v1":
		var s corev1.Service
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("decoding Service: %w", err)
		}
		o.Services = append(o.Services, s)
	case head.Kind == "EndpointSlice" && head.APIVersion == "discovery.k8s.io/v1":
		var s discoveryv1.EndpointSlice
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("decoding EndpointSlice: %w", err)
		}
		o.EndpointSlices = append(o.EndpointSlices, s)
	case head.Kind == "Node" && head.APIVersion == "v1":
		var n corev1.Node
		if err := json.Unmarshal(raw, &n); err != nil {
			return fmt.Errorf("decoding Node: %w", err)
		}
		o.Nodes = append(o.Nodes, n)
	}
	return nil
}
