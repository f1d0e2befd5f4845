# shellcheck shell=bash
# Base image recipes for the test containers. Changing anything here (or in
# scripts/build-images) changes the recipe hash and rebuilds the image.
#
# Each image is a debootstrap minbase of a Debian suite plus what Ansible and the
# tests need inside a target: python3 (+ python3-apt for ansible.builtin.apt),
# procps (ps/pgrep for probes), iproute2 and iptables (criu's network lock),
# bsdutils/util-linux (`script`, the pty holder for shell jobs), ca-certificates.
# No criu in debian-13 and debian-12: putting CRIU on a host is the install role's job,
# and its tests need a host without it. debian-13-criu bakes in the distro's criu 4.1.1
# (and criu-ns/crit) for the scenarios that do not test installing it: each of them
# would otherwise spend 20-40 s on apt-get update + install (measured: 35 s for 4 hosts).
IMAGE_PREFIX="fleet-criu"
IMAGE_NAMES=(debian-13 debian-12 debian-13-criu)
declare -A IMAGE_SUITE=(
  [debian-13]=trixie
  [debian-12]=bookworm
  [debian-13-criu]=trixie
)
# Packages some images add to IMAGE_PACKAGES.
declare -A IMAGE_EXTRA=(
  [debian-13-criu]=criu,python3-pycriu
)
IMAGE_PACKAGES="python3,python3-apt,procps,iproute2,iptables,bsdutils,util-linux,ca-certificates,gpgv"
