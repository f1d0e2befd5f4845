"""fleet.criu.install, one host per case (see molecule.yml). Every test names the
case it checks and skips on the other hosts. Assertions read the host's real state:
dpkg, apt's policy, the pin and hold, the role's records, and criu itself."""
import json
import re

import pytest

PREFIX = "fleet-criu-install-methods-"
FLOOR = (3, 18)
# Built from source (and packaged for the apt_repo/deb cases): 4.2.1, the first release
# that dumps inet sockets on Linux >= 6.16 (see docs/architecture.md).
TEST_VERSION = "4.2.1"
TEST_DEB_VERSION = "4.2.1-0fleet1"
# What Debian 13 ships, which `auto` takes there.
DEBIAN13_DISTRO_VERSION = "4.1.1"
PIN_FILE = "/etc/apt/preferences.d/fleet-criu"
RECORD = "/var/lib/fleet-criu/install.json"
RESULTS = "/var/lib/fleet-criu-test"


@pytest.fixture
def case(host):
    return host.backend.get_hostname().removeprefix(PREFIX)


def only(case, *wanted):
    if case not in wanted:
        pytest.skip(f"case {'/'.join(wanted)} only (this host: {case})")


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def criu_version(host, binary="criu"):
    out = host.check_output("%s --version", binary)
    match = re.search(r"Version:\s*(\d+(?:\.\d+)*)", out)
    assert match, out
    return match.group(1)


def assert_check_passes(host, binary="criu"):
    check = host.run("%s check", binary)
    assert check.rc == 0, check.stdout + check.stderr
    assert "Looks good." in check.stdout + check.stderr


def record(host):
    return json.loads(host.file(RECORD).content_string)


def result(host, name):
    return json.loads(host.file(f"{RESULTS}/{name}.json").content_string)


def holds(host):
    return host.check_output("apt-mark showhold").split()


def installed_package_version(host, name="criu"):
    return host.check_output("dpkg-query -W -f '${Version}' %s", name)


def is_ubuntu(host):
    return host.system_info.distribution == "ubuntu"


# ---------------------------------------------------------------- debian13: auto -> distro
def test_debian13_auto_installs_the_distro_package(host, case):
    only(case, "debian13")
    rec = record(host)
    assert (rec["requested_method"], rec["method"]) == ("auto", "distro")
    package = installed_package_version(host)
    assert package.startswith(DEBIAN13_DISTRO_VERSION + "-"), package
    assert rec["package_version"] == package
    assert criu_version(host) == DEBIAN13_DISTRO_VERSION
    assert host.check_output("command -v criu") == "/usr/sbin/criu"
    policy = host.check_output("apt-cache policy criu")
    assert f"Installed: {package}" in policy and f"Candidate: {package}" in policy
    # installed from the Debian archive, at the pin's priority
    assert re.search(r"\*\*\* " + re.escape(package) + r" 1001\n\s+\d+ \S+/debian trixie/main", policy), policy


def test_debian13_distro_package_is_pinned_and_held(host, case):
    only(case, "debian13")
    package = installed_package_version(host)
    pin = host.file(PIN_FILE).content_string
    assert f"Package: criu\nPin: version {package}\nPin-Priority: 1001" in pin
    assert "Pin: release o=Debian,n=trixie" in pin
    assert "criu" in holds(host)
    # apt upgrade cannot move it
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert not re.search(r"^Inst criu ", sim, re.M), sim


def test_debian13_criu_check_passes(host, case):
    only(case, "debian13")
    assert_check_passes(host)
    assert record(host)["check_passed"] is True


def test_debian13_default_conf_from_install_config(host, case):
    only(case, "debian13")
    conf = host.file("/etc/criu/default.conf")
    assert conf.mode == 0o644
    lines = [line for line in conf.content_string.splitlines() if line and not line.startswith("#")]
    assert lines == ["ghost-limit 2M", "tcp-established"]


def test_debian13_unprivileged_needs_the_capability_in_the_bounding_set(host, case):
    only(case, "debian13")
    res = result(host, "unprivileged")
    capbnd = int(re.search(r"CapBnd:\s*([0-9a-f]+)", host.file("/proc/self/status").content_string).group(1), 16)
    if capbnd >> 40 & 1:
        assert not res["failed"], res
        assert "cap_checkpoint_restore" in host.check_output("getcap /usr/sbin/criu")
    else:
        assert res["failed"]
        assert "CAP_CHECKPOINT_RESTORE" in res["msg"] and "bounding set" in res["msg"]
        assert "cap_checkpoint_restore" not in host.run("getcap /usr/sbin/criu").stdout
    assert criu_version(host) == DEBIAN13_DISTRO_VERSION, "criu must still run after the refusal"


# ---------------------------------------------------------------- debian12: auto -> source
def test_debian12_auto_refuses_the_distro_criu(host, case):
    only(case, "debian12")
    rec = record(host)
    assert rec["requested_method"] == "auto"
    if is_ubuntu(host):
        assert rec["method"] == "apt_repo"
        return
    assert rec["method"] == "source"
    # The distribution offers a criu below the floor, and it was not installed.
    madison = host.check_output("apt-cache madison criu")
    offered = re.findall(r"^\s*criu \| (\d+\.\d+)", madison, re.M)
    assert offered and all(version_tuple(v) < FLOOR for v in offered), madison
    assert host.run("dpkg-query -W -f '${Status}' criu").stdout.strip() != "install ok installed"


def test_debian12_source_build_is_installed_and_checks(host, case):
    only(case, "debian12")
    if is_ubuntu(host):
        pytest.skip("Ubuntu takes the PPA, not the source build")
    assert host.check_output("command -v criu") == "/usr/local/sbin/criu"
    assert criu_version(host) == TEST_VERSION
    assert version_tuple(criu_version(host)) >= FLOOR
    assert_check_passes(host)
    assert record(host)["binary"] == "/usr/local/sbin/criu"


def test_debian12_source_install_is_tracked_and_pinned(host, case):
    only(case, "debian12")
    if is_ubuntu(host):
        pytest.skip("Ubuntu takes the PPA, not the source build")
    tracked = json.loads(host.file("/var/lib/fleet-criu/source-install.json").content_string)
    assert tracked["request"]["version"] == TEST_VERSION
    assert re.fullmatch(r"[0-9a-f]{64}", tracked["request"]["sha256"])
    assert tracked["request"]["url"].endswith(f"criu_{TEST_VERSION}.orig.tar.xz")
    for path in ("/usr/local/sbin/criu", "/usr/local/sbin/criu-ns", "/usr/local/bin/crit"):
        assert path in tracked["files"], tracked["files"]
    for path in tracked["files"]:
        assert host.file(path).exists, path
    pin = host.file(PIN_FILE).content_string
    assert "Package: criu\nPin: version *\nPin-Priority: -1" in pin
    assert "Candidate: (none)" in host.check_output("apt-cache policy criu")


def test_debian12_source_tools_dump_and_read_images(host, case):
    """criu-ns and crit came with the source install: dump a process, read its image."""
    only(case, "debian12")
    if is_ubuntu(host):
        pytest.skip("Ubuntu takes the PPA, not the source build")
    assert host.file("/usr/local/sbin/criu-ns").mode & 0o111
    images = "/run/fleet-criu-install-crit"
    host.run("rm -rf %s", images)
    host.check_output("mkdir -p -m 0700 %s", images)
    pid = host.check_output("setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!")
    dump = host.run("criu dump -t %s -D %s -o dump.log", pid, images)
    assert dump.rc == 0, host.run("tail -n 20 %s/dump.log", images).stdout
    shown = json.loads(host.check_output("crit decode -i %s/pstree.img", images))
    assert shown["magic"] == "PSTREE"
    assert shown["entries"][0]["pid"] == int(pid)


# ---------------------------------------------------------------- apt-repo
def test_apt_repo_installs_from_the_signed_repository(host, case):
    only(case, "apt-repo")
    rec = record(host)
    assert (rec["requested_method"], rec["method"]) == ("apt_repo", "apt_repo")
    assert installed_package_version(host) == TEST_DEB_VERSION
    assert criu_version(host) == TEST_VERSION
    policy = host.check_output("apt-cache policy criu")
    assert f"Installed: {TEST_DEB_VERSION}" in policy
    assert re.search(r"http://127\.0\.0\.1:\d+ fleet-criu-test/main", policy), policy
    # the distro's own criu (below the floor) is offered but was not chosen
    assert re.search(r"^\s+3\.\d+[^\n]*\n\s+\d+ http\S+ ", policy, re.M), policy
    assert_check_passes(host)


def test_apt_repo_is_trusted_through_signed_by_only(host, case):
    only(case, "apt-repo")
    sources = host.file("/etc/apt/sources.list.d/fleet-criu-test.sources").content_string
    assert re.search(r"^URIs: http://127\.0\.0\.1:\d+$", sources, re.M)
    assert "Suites: fleet-criu-test" in sources and "Components: main" in sources
    assert "Signed-By: /etc/apt/keyrings/fleet-criu-test.asc" in sources
    key = host.file("/etc/apt/keyrings/fleet-criu-test.asc")
    assert key.exists and key.mode == 0o644
    assert "BEGIN PGP PUBLIC KEY BLOCK" in key.content_string
    # no apt-key: nothing added to the global keyrings
    assert not host.file("/etc/apt/trusted.gpg").exists
    assert host.check_output("ls /etc/apt/trusted.gpg.d/ 2>/dev/null | grep -c fleet || true") == "0"


def test_apt_repo_is_pinned_and_held(host, case):
    only(case, "apt-repo")
    pin = host.file(PIN_FILE).content_string
    assert f"Package: criu\nPin: version {TEST_DEB_VERSION}\nPin-Priority: 1001" in pin
    assert 'Pin: origin "127.0.0.1"' in pin
    assert "criu" in holds(host)
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert not re.search(r"^Inst criu ", sim, re.M), sim


# ---------------------------------------------------------------- deb
def test_deb_installs_the_given_file(host, case):
    only(case, "deb")
    rec = record(host)
    assert (rec["requested_method"], rec["method"]) == ("deb", "deb")
    assert installed_package_version(host) == TEST_DEB_VERSION
    assert host.file(f"/var/lib/fleet-criu/debs/criu_{TEST_DEB_VERSION}_amd64.deb").exists or host.check_output(
        "ls /var/lib/fleet-criu/debs"
    ).startswith("criu_")
    assert criu_version(host) == TEST_VERSION
    assert_check_passes(host)


def test_deb_is_pinned_and_held(host, case):
    only(case, "deb")
    pin = host.file(PIN_FILE).content_string
    assert f"Package: criu\nPin: version {TEST_DEB_VERSION}\nPin-Priority: 1001" in pin
    assert "criu" in holds(host)
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    assert not re.search(r"^Inst criu ", sim, re.M), sim


# ---------------------------------------------------------------- negative: floor raised
@pytest.mark.parametrize("wanted", ["debian13", "debian12", "apt-repo", "deb"])
def test_raised_floor_fails_clearly_and_leaves_criu_alone(host, case, wanted):
    only(case, wanted)
    res = result(host, "raised-floor")
    assert res["failed"], res
    assert f"below install_min_version {res['floor']}" in res["msg"], res["msg"]
    assert "the installed criu was not touched" in res["msg"]
    assert res["before"] == res["after"]
    version = criu_version(host)
    assert version_tuple(version) >= FLOOR
    assert record(host)["version"] == version
    if not is_ubuntu(host):  # a real Ubuntu host takes whatever the PPA has
        assert version == (DEBIAN13_DISTRO_VERSION if wanted == "debian13" else TEST_VERSION)


# ---------------------------------------------------------------- negative: the gate
def test_gate_fails_with_criu_checks_message_and_the_kernel(host, case):
    only(case, "gate")
    res = result(host, "gate")
    assert version_tuple(criu_version(host)) < FLOOR  # the distro criu, forced in
    if res["check_rc"] == 0:
        assert not res["failed"], "criu check passes on this kernel, so the gate must too"
        return
    assert res["failed"], res
    assert "criu check failed" in res["msg"]
    kernel = host.check_output("uname -r")
    assert kernel == res["kernel"] and kernel in res["msg"]
    first_error = next(
        line for line in res["check_output"] if "Error" in line and "RLIMIT_NOFILE" not in line
    )
    assert first_error.strip() in res["msg"], (first_error, res["msg"])
    assert "install_check_required: false" in res["msg"]


def test_gate_can_be_a_warning(host, case):
    only(case, "gate")
    rec = record(host)
    res = result(host, "gate")
    assert rec["method"] == "distro"
    assert rec["check_passed"] is (res["check_rc"] == 0)
    assert "criu" in holds(host)
