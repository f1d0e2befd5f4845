# shellcheck shell=bash
# Base image recipes for the test containers. Changing anything here (or in
# scripts/build-images) changes the recipe hash and rebuilds the image.
#
# Each image is a debootstrap minbase of a Debian suite plus what Ansible and the
# tests need inside a target: python3 (+ python3-apt for ansible.builtin.apt),
# procps (ps/pgrep for probes), iproute2 and iptables (criu's network lock),
# bsdutils/util-linux (`script`, the pty holder for shell jobs), ca-certificates.
# No criu: putting CRIU on a host is the install role's job, and its tests need a
# host without it.
IMAGE_PREFIX="fleet-criu"
IMAGE_NAMES=(debian-13 debian-12)
declare -A IMAGE_SUITE=(
  [debian-13]=trixie
  [debian-12]=bookworm
)
IMAGE_PACKAGES="python3,python3-apt,procps,iproute2,iptables,bsdutils,util-linux,ca-certificates,gpgv"
