package nodeimage

import "strings"

// PodnetImage is the repository of the default CNI daemon's image (see
// internal/podnet); its tag is the binary's content hash.
const PodnetImage = "netconform.local/podnet"

// podnetManifest is /kind/manifests/default-cni.yaml of offline node images.
// kind itself applies it, filling in the pod subnet (the "template" marker)
// and the API server's address (the "patch" marker), exactly as it does for
// kindnet, so plain `kind create cluster --image` works with these images.
func podnetManifest(image string) string {
	return strings.ReplaceAll(podnetTemplate, "IMAGE", image)
}

const podnetTemplate = `# podnet: netconform's offline default pod network (ptp + host-local, routes, masquerade)
# would you kindly template this file
# would you kindly patch this file
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: podnet
rules:
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch", "get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: podnet
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: podnet
subjects:
- kind: ServiceAccount
  name: podnet
  namespace: kube-system
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: podnet
  namespace: kube-system
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: podnet
  namespace: kube-system
  labels:
    app: podnet
    k8s-app: podnet
spec:
  selector:
    matchLabels:
      app: podnet
  template:
    metadata:
      labels:
        app: podnet
        k8s-app: podnet
    spec:
      hostNetwork: true
      tolerations:
      - operator: Exists
      serviceAccountName: podnet
      priorityClassName: system-node-critical
      containers:
      - name: podnet
        image: IMAGE
        imagePullPolicy: IfNotPresent
        env:
        - name: NODE_NAME
          valueFrom:
            fieldRef:
              fieldPath: spec.nodeName
        - name: POD_SUBNET
          value: "{{ .PodSubnet }}"
        volumeMounts:
        - name: cni-cfg
          mountPath: /etc/cni/net.d
        - name: xtables-lock
          mountPath: /run/xtables.lock
        - name: lib-modules
          mountPath: /lib/modules
          readOnly: true
        readinessProbe:
          exec:
            command: ["test", "-f", "/tmp/podnet-ready"]
          periodSeconds: 2
        resources:
          requests:
            cpu: "50m"
            memory: "30Mi"
        securityContext:
          privileged: false
          capabilities:
            add: ["NET_RAW", "NET_ADMIN"]
      volumes:
      - name: cni-cfg
        hostPath:
          path: /etc/cni/net.d
          type: DirectoryOrCreate
      - name: xtables-lock
        hostPath:
          path: /run/xtables.lock
          type: FileOrCreate
      - name: lib-modules
        hostPath:
          path: /lib/modules
`
