#!/bin/bash
# Runs inside the build container (a Debian root file system made by
# debootstrap) to turn it into a kind node, as kind's images/base/Dockerfile
# and `kind build node-image` do, then preloads the component images into
# containerd. /build holds the prepared files and image archives.
set -euo pipefail

cp -a /build/files/. /

# systemd as kind runs it: no units that make no sense in a container.
find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
rm -f /lib/systemd/system/multi-user.target.wants/* \
      /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* \
      /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* \
      /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
systemctl enable kubelet.service containerd.service undo-mount-hacks.service
systemctl mask systemd-binfmt.service
mkdir -p /etc/kubernetes/manifests /opt/cni/bin /var/lib/kubelet

# kind's units expect containerd under /usr/local/bin; Debian puts it in /usr/bin.
ln -sf /usr/bin/containerd /usr/local/bin/containerd
ln -sf /usr/bin/ctr /usr/local/bin/ctr
# Debian installs the CNI plugins to /usr/lib/cni; kubelet looks in /opt/cni/bin.
cp -a /usr/lib/cni/. /opt/cni/bin/

# The base runtime spec with kind's product-files hook, as kind's base image builds it.
ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' > /etc/containerd/cri-base.json

# Preload the images kubeadm and the default CNI need.
nohup containerd >/tmp/containerd.log 2>&1 &
for i in $(seq 1 30); do
  [ -S /run/containerd/containerd.sock ] && ctr version >/dev/null 2>&1 && break
  sleep 0.5
done
for archive in /build/images/*.tar; do
  ctr --namespace=k8s.io images import --label=io.cri-containerd.pinned=pinned --all-platforms --no-unpack --digests "$archive" >/dev/null
done
ctr --namespace=k8s.io images list -q
pkill containerd || true
for i in $(seq 1 30); do pgrep containerd >/dev/null || break; sleep 0.5; done
rm -rf /tmp/* /var/log/* /run/containerd
