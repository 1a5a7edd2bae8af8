// Command podnet is the default pod network of netconform's offline node
// images (see internal/podnet): it runs as a DaemonSet on every node.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netconform/netconform/internal/podnet"
)

func main() {
	node := os.Getenv("NODE_NAME")
	subnets := strings.Split(os.Getenv("POD_SUBNET"), ",")
	if node == "" || subnets[0] == "" {
		log.Fatal("podnet: NODE_NAME and POD_SUBNET must be set (the DaemonSet sets them)")
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatalf("podnet: in-cluster config: %v", err)
	}
	// Reach the API server directly, not through its Service: the Service
	// needs kube-proxy, which may not run before the pod network does.
	if ep := os.Getenv("CONTROL_PLANE_ENDPOINT"); ep != "" {
		cfg.Host = "https://" + ep
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("podnet: client: %v", err)
	}
	if err := podnet.EnableForwarding(); err != nil {
		log.Fatalf("podnet: enabling IPv4 forwarding: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &podnet.Controller{Client: client, NodeName: node, PodSubnet: subnets, MTU: 1500,
		Dataplane: podnet.Node{}, ConfPath: podnet.ConfPath, ReadyFile: "/tmp/podnet-ready"}
	log.Printf("podnet: node %s, cluster pod subnet %v", node, subnets)
	if err := c.Run(ctx); err != nil {
		log.Fatalf("podnet: %v", err)
	}
}
