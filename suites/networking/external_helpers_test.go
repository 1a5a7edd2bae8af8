package networking

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netconform/netconform/pkg/probe"
)

// Helpers shared by the specs of traffic entering the cluster from outside
// (nodeport, source-ip, loadbalancer, ingress).

func fetchService(ctx context.Context, ns, name string) *corev1.Service {
	svc, err := env.Client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred(), "getting Service %s/%s", ns, name)
	return svc
}

// onlyNodePort is the node port of the Service's only port.
func onlyNodePort(svc *corev1.Service) int32 {
	Expect(svc.Spec.Ports).To(HaveLen(1), "Service %s/%s ports", svc.Namespace, svc.Name)
	np := svc.Spec.Ports[0].NodePort
	Expect(np).NotTo(BeZero(), "Service %s/%s (type %s) has no node port", svc.Namespace, svc.Name, svc.Spec.Type)
	return np
}

// addrURL is http://ip:port/path.
func addrURL(ip netip.Addr, port int32, path string) string {
	return "http://" + netip.AddrPortFrom(ip, uint16(port)).String() + path
}

// seenClientIPs is the union of the client addresses the pods reported on
// /clientip.
func seenClientIPs(res probe.HTTPResult) []string {
	var out []string
	for _, ips := range res.ClientIPs {
		for _, ip := range ips {
			if !slices.Contains(out, ip) {
				out = append(out, ip)
			}
		}
	}
	slices.Sort(out)
	return out
}

// proxyHealth is kube-proxy's answer on a Service's healthCheckNodePort.
type proxyHealth struct {
	Status  int
	Service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"service"`
	LocalEndpoints int `json:"localEndpoints"`
}

// readProxyHealth reads http://ip:port/healthz from this process (on a
// kind host, the network's gateway: outside the cluster like the external
// client), for what the probe does not report: the body, in which
// kube-proxy names the Service and counts its local endpoints.
func readProxyHealth(ctx context.Context, ip netip.Addr, port int32) (proxyHealth, error) {
	var hc proxyHealth
	c := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addrURL(ip, port, "/healthz"), nil)
	if err != nil {
		return hc, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return hc, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return hc, err
	}
	hc.Status = resp.StatusCode
	if err := json.Unmarshal(body, &hc); err != nil {
		return hc, fmt.Errorf("status %d, body %q: %w", resp.StatusCode, body, err)
	}
	return hc, nil
}
