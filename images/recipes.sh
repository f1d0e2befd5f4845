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
# debian-13-systemd is debian-13-criu plus systemd, to boot systemd as PID 1 (the
# systemd scenario; see docs/architecture.md for how it boots on cgroup v1).
# debian-13-server is debian-13-criu plus what a cloud server has: sshd, the ssh client,
# sudo and rsync (the quickstart scenario logs in over SSH as a sudoer, as on Ubuntu).
# An image's recipe hash covers scripts/build-images, IMAGE_PREFIX, IMAGE_PACKAGES and
# the image's own entries below: adding an image does not rebuild the others.
IMAGE_PREFIX="fleet-criu"
IMAGE_NAMES=(debian-13 debian-12 debian-13-criu debian-13-systemd debian-13-server)
declare -A IMAGE_SUITE=(
  [debian-13]=trixie
  [debian-12]=bookworm
  [debian-13-criu]=trixie
  [debian-13-systemd]=trixie
  [debian-13-server]=trixie
)
# Packages some images add to IMAGE_PACKAGES.
declare -A IMAGE_EXTRA=(
  [debian-13-criu]=criu,python3-pycriu
  [debian-13-systemd]=criu,python3-pycriu,systemd,systemd-sysv,dbus
  [debian-13-server]=criu,python3-pycriu,openssh-server,openssh-client,sudo,rsync
)
IMAGE_PACKAGES="python3,python3-apt,procps,iproute2,iptables,bsdutils,util-linux,ca-certificates,gpgv"
