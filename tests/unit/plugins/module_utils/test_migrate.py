# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The migration engine (_migrate) end to end in one process: two "hosts" (each its own
journal and images directories under tmp_path and its own fake criu), the receiver in a
thread, the sender in the test, real TLS on 127.0.0.1 with a certificate made by the real
openssl the way check_target makes it.

The process to migrate is a real `sleep`; the fake criu's dump writes images and then
ends that process as real criu does (so its PID is free for a restore), and the fake
restore "restores" another real `sleep` (so the restore record names a live process).

Every wait is bounded (socket timeouts, small io/receive timeouts, thread joins with a
timeout, events with a timeout); no test asserts on speed.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
import types
import typing as t

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _images, _journal, _migrate, _proc, _wire
from ansible_collections.fleet.criu.plugins.module_utils._runner import Runner, find_tool
from ansible_collections.fleet.criu.plugins.modules import migration
from ansible_collections.fleet.criu.tests.unit.plugins.modules.criu_fakes import FakeCriu, arg_after

KEY = "0123456789abcdef0123456789abcdef"
RUN_ID = "run-1"
TOKEN = "token-of-this-test-run"
JOIN = 60.0
WAIT = 30.0


# ------------------------------------------------------------------ fakes and fixtures

class StepKilled(BaseException):
    """A step that dies on the spot (the module's process killed, the host lost): nothing in
    the engine catches it, as nothing would run after a SIGKILL."""


class Procs:
    """Real `sleep` processes the test starts; all killed and reaped at the end."""

    def __init__(self) -> None:
        self.by_pid: t.Dict[int, subprocess.Popen] = {}

    def start(self, argv: t.Sequence[str] = ("sleep", "120")) -> subprocess.Popen:
        proc = subprocess.Popen(list(argv))  # pylint: disable=consider-using-with
        self.by_pid[proc.pid] = proc
        return proc

    def end(self, pid: int) -> None:
        proc = self.by_pid.get(pid)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)

    def close(self) -> None:
        for pid in list(self.by_pid):
            self.end(pid)


@pytest.fixture
def procs() -> t.Iterator[Procs]:
    registry = Procs()
    yield registry
    registry.close()


@pytest.fixture(autouse=True)
def no_real_faults(tmp_path, monkeypatch):
    """Never read the real /run/fleet-criu-fault of this machine; keep the umask the
    engine's threads set and reset (both "hosts" share one process)."""
    faults = tmp_path / "faults"
    faults.mkdir()
    monkeypatch.setattr(_migrate, "FAULT_DIR", str(faults))
    old = os.umask(0o022)
    os.umask(old)
    yield str(faults)
    os.umask(old)


class CriuLike(FakeCriu):
    """FakeCriu, plus what real criu does to the tree it dumped: after a successful dump the
    tree is gone (killed and reaped here), so its PIDs are free for a restore."""

    def __init__(self, procs: Procs, big_bytes: int = 0, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self.procs = procs
        self.big_bytes = big_bytes

    def count(self, action: str) -> int:
        return self.actions().count(action)

    def run(self, argv, cwd=None):
        rc, out, err = super().run(argv, cwd)
        if argv[1] == "dump" and rc == 0:
            images = arg_after(argv, "--images-dir")
            if self.big_bytes:
                with open(os.path.join(images, "pages-2.img"), "wb") as handle:
                    left = self.big_bytes
                    while left > 0:
                        handle.write(b"\x5a" * min(left, 1024 * 1024))
                        left -= 1024 * 1024
            self.procs.end(int(arg_after(argv, "--tree")))
        return rc, out, err


def host_runner(fake: FakeCriu, criu_path: str) -> Runner:
    """criu argv to the fake; everything else (openssl) really runs."""

    def run_command(argv, cwd=None):
        if argv[0] == criu_path:
            return fake.run(argv, cwd=cwd)
        proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=False)
        return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")

    return Runner(run_command, fake.spawn)


class Host:
    def __init__(self, root: str, name: str, fake: CriuLike, criu_path: str) -> None:
        self.name = name
        self.fake = fake
        self.criu_path = criu_path
        self.runner = host_runner(fake, criu_path)
        self.jdir = os.path.join(root, name, "journal")
        self.images_root = os.path.join(root, name, "images")
        # As the playbook names it: <images_root>/<run_id>/<source host>, the same on both hosts.
        self.images_dir = os.path.join(self.images_root, RUN_ID, "source")
        self.warnings: t.List[str] = []

    def journal(self) -> t.Dict[str, t.Any]:
        return _journal.read(self.jdir, KEY) or {}

    def states(self) -> t.List[str]:
        return [item["state"] for item in self.journal().get("history", [])]

    def params(self, step: str, **extra: t.Any) -> t.Dict[str, t.Any]:
        params = _migrate.defaults(migration.argument_spec())
        params.update(step=step, key=KEY, run_id=RUN_ID, host=self.name, journal_dir=self.jdir,
                      images_root=self.images_root, images_dir=self.images_dir, criu_path=self.criu_path,
                      pid_wait_timeout=2, io_timeout=15, connect_timeout=20, receive_timeout=30)
        params.update(extra)
        assert _migrate.input_problem(params) is None, _migrate.input_problem(params)
        return params

    def temp_siblings(self) -> t.List[str]:
        parent = os.path.dirname(self.images_dir)
        return [n for n in os.listdir(parent) if _images.TEMP_MARK in n] if os.path.isdir(parent) else []


class Receiver:
    """_migrate.receive on the target, in a thread (as the playbook runs it with async)."""

    def __init__(self, target: Host, port: int) -> None:
        self.target = target
        self.params = target.params("receive", channel={"port": port, "token": TOKEN})
        self.result: t.Optional[t.Dict[str, t.Any]] = None
        self.error: t.Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = _migrate.receive(self.params, self.target.runner, self.target.warnings.append)
        except BaseException as exc:  # pylint: disable=broad-except
            self.error = exc

    def join(self) -> None:
        self.thread.join(JOIN)
        assert not self.thread.is_alive(), "the receiver did not end"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Pair:
    """A source and a target host, the process to migrate, and what the restore "restores"."""

    def __init__(self, tmp_path, procs: Procs, source_restore: bool = False, target_restore: bool = True,
                 big_bytes: int = 0) -> None:
        if not find_tool("openssl"):
            pytest.skip("the openssl command is not installed: the receiver's certificate cannot be made")
        criu = tmp_path / "bin" / "criu"
        criu.parent.mkdir()
        criu.write_text("#!/bin/sh\nexit 99\n")  # never run: the runners hand criu argv to the fakes
        criu.chmod(0o755)
        self.procs = procs
        self.app = procs.start()
        self.source_copy = procs.start() if source_restore else None
        self.target_copy = procs.start() if target_restore else None
        self.source = Host(str(tmp_path), "source", CriuLike(
            procs, big_bytes=big_bytes, restore_pid=self.source_copy.pid if self.source_copy else None), str(criu))
        self.target = Host(str(tmp_path), "target", CriuLike(
            procs, restore_pid=self.target_copy.pid if self.target_copy else None), str(criu))
        self.port = 0
        self.fingerprint = ""

    def receiver(self) -> Receiver:
        """Make the certificate as check_target does, then start the receiver."""
        self.fingerprint = _migrate.make_cert(self.target.runner, self.target.jdir, KEY, self.target.name)
        return self.start_receiver()

    def start_receiver(self) -> Receiver:
        self.port = free_port()
        return Receiver(self.target, self.port)

    def send_params(self, plan: str = "fresh") -> t.Dict[str, t.Any]:
        return self.source.params("send", pid=self.app.pid, plan=plan, channel={
            "address": "127.0.0.1", "port": self.port, "fingerprint": self.fingerprint, "token": TOKEN})

    def send(self, plan: str = "fresh") -> t.Dict[str, t.Any]:
        return _migrate.send(self.send_params(plan), self.source.runner, self.source.warnings.append)


def collapse(states: t.Sequence[str]) -> t.List[str]:
    """States in order, a repeated state (committed, then committed with the target's pid) once."""
    out: t.List[str] = []
    for state in states:
        if not out or out[-1] != state:
            out.append(state)
    return out


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def manifest_of(images_dir: str) -> t.Dict[str, t.Any]:
    manifest, problem = _images.load_manifest(images_dir)
    assert manifest is not None, problem
    return manifest


def assert_nothing_restored_on(host: Host) -> None:
    assert host.fake.count("restore") == 0
    assert "restored" not in host.states()
    assert not os.path.exists(os.path.join(host.images_dir, _images.RESTORE_RECORD_NAME))


def assert_rolled_back(pair: Pair, result: t.Mapping[str, t.Any]) -> None:
    """The source restored its own sealed images once, and says so."""
    assert result["outcome"] == "rolled back", result
    assert pair.source_copy is not None and result["source_pid"] == pair.source_copy.pid
    assert pair.source.fake.count("dump") == 1 and pair.source.fake.count("restore") == 1
    entry = pair.source.journal()
    assert entry["state"] == "rolled_back" and entry["outcome"] == "rolled back"
    assert entry["pid"] == pair.source_copy.pid
    assert result["journal"]["state"] == "rolled_back"
    record = _images.read_json(os.path.join(pair.source.images_dir, _images.RESTORE_RECORD_NAME))
    assert record is not None and record["pid"] == pair.source_copy.pid
    assert record["image_id"] == manifest_of(pair.source.images_dir)["image_id"] == result["image_id"]


# ------------------------------------------------------------------ 1. the move

def test_send_and_receive_move_the_process_over_tls(tmp_path, procs):
    pair = Pair(tmp_path, procs)
    receiver = pair.receiver()
    assert len(pair.fingerprint) == 64
    result = pair.send()
    receiver.join()
    assert receiver.error is None, receiver.error
    assert pair.target_copy is not None

    # the sender's report
    assert result["outcome"] == "restored", result
    assert result["target_pid"] == pair.target_copy.pid
    assert result["dumped"] is True
    assert isinstance(result["downtime_s"], float) and result["downtime_s"] >= 0
    frozen = result["stats"].get("frozen_time_us")
    assert frozen and result["downtime_s"] >= frozen / 1e6  # criu's frozen time is part of it
    # the receiver's report
    assert receiver.result is not None and receiver.result["pid"] == pair.target_copy.pid
    assert receiver.result["image_id"] == result["image_id"]

    # the journals, in order: committed right after streaming (the seal follows, off the critical path)
    assert collapse(pair.source.states()) == ["checked", "dumped", "committed"]
    source_entry = pair.source.journal()
    assert source_entry["target_pid"] == pair.target_copy.pid and source_entry["image_id"] == result["image_id"]
    assert not os.path.exists(source_entry["images_tmp"])  # moved into place by the seal
    assert pair.target.states() == ["listening", "received", "restored"]
    target_entry = pair.target.journal()
    assert target_entry["pid"] == pair.target_copy.pid
    assert target_entry["start_ticks"] == _proc.read_proc(pair.target_copy.pid).start_ticks
    assert target_entry["image_id"] == result["image_id"]

    # the images: sealed on the source, the same bytes on the target
    source_manifest = manifest_of(pair.source.images_dir)
    target_manifest = manifest_of(pair.target.images_dir)
    assert source_manifest["image_id"] == target_manifest["image_id"] == result["image_id"]
    assert set(source_manifest["files"]) == set(target_manifest["files"])
    assert {"pages-1.img", "pstree.img", "stats-dump", "dump.log"} <= set(source_manifest["files"])
    for name, meta in source_manifest["files"].items():
        assert sha256(os.path.join(pair.source.images_dir, name)) == meta["sha256"]
        assert sha256(os.path.join(pair.target.images_dir, name)) == meta["sha256"]
        assert target_manifest["files"][name] == meta
    extra = set(os.listdir(pair.target.images_dir)) - set(target_manifest["files"]) - {_images.MANIFEST_NAME}
    assert all(_images.is_module_extra(name) for name in extra), extra
    record = _images.read_json(os.path.join(pair.target.images_dir, _images.RESTORE_RECORD_NAME))
    assert record is not None and record["pid"] == pair.target_copy.pid
    assert not pair.source.temp_siblings() and not pair.target.temp_siblings()
    # the TLS key and certificate do not outlive the receiver's accept
    assert not os.path.exists(_migrate.tls_dir(pair.target.jdir, KEY))

    # criu: one dump on the source, one restore on the target, nothing else
    assert pair.source.fake.count("dump") == 1 and pair.source.fake.count("restore") == 0
    assert pair.target.fake.count("restore") == 1 and pair.target.fake.count("dump") == 0

    # ... and after verify, finish on both sides: the source's images are removed
    assert _migrate.finish(pair.source.params("finish"))["removed"] is True
    assert _migrate.finish(pair.target.params("finish", role="target"))["changed"] is True
    assert collapse(pair.source.states())[-2:] == ["migrated", "cleaned"]
    assert pair.target.states()[-2:] == ["verified", "cleaned"]
    assert not os.path.exists(os.path.join(pair.source.images_dir, _images.MANIFEST_NAME))
    assert os.path.exists(os.path.join(pair.target.images_dir, _images.MANIFEST_NAME))
    assert _migrate.finish(pair.source.params("finish"))["changed"] is False


# ------------------------------------------------------------------ 2. the target cannot restore

def test_target_restore_fails_target_clean_source_rolls_back(tmp_path, procs):
    pair = Pair(tmp_path, procs, source_restore=True, target_restore=False)
    receiver = pair.receiver()
    result = pair.send()
    receiver.join()

    assert isinstance(receiver.error, _migrate.MigrationError)
    assert "could not restore" in receiver.error.msg and receiver.error.extra["target_clean"] is True
    assert pair.target.fake.count("restore") == 1  # it tried
    assert pair.target.states() == ["listening", "received", "killed"]
    assert not os.path.exists(os.path.join(pair.target.images_dir, _images.RESTORE_RECORD_NAME))

    assert_rolled_back(pair, result)
    assert "target" in result["failure"]
    assert collapse(pair.source.states()) == ["checked", "dumped", "committed", "rolled_back"]


# ------------------------------------------------------------------ 3. a corrupted transfer

class FlipOneByte:
    """A socket whose second sendall (the first chunk after a file header) arrives with its
    first byte flipped: corruption in transit, after the sender hashed the true bytes."""

    def __init__(self, sock: t.Any) -> None:
        self._sock = sock
        self._calls = 0

    def sendall(self, data: bytes) -> None:
        self._calls += 1
        if self._calls == 2 and data:
            data = bytes([data[0] ^ 0xFF]) + bytes(data[1:])
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._sock, name)


def test_receiver_refuses_bytes_changed_in_transit(tmp_path, procs, monkeypatch):
    pair = Pair(tmp_path, procs, source_restore=True)
    original = _wire.Channel.send_file

    def send_file(self, path, name, fsync=True):
        if name != "pages-1.img":
            return original(self, path, name, fsync)
        real = self.sock
        self.sock = FlipOneByte(real)
        try:
            return original(self, path, name, fsync)
        finally:
            self.sock = real

    monkeypatch.setattr(_wire.Channel, "send_file", send_file)
    receiver = pair.receiver()
    result = pair.send()
    receiver.join()

    assert isinstance(receiver.error, _migrate.MigrationError)
    assert "refused the images" in receiver.error.msg and "pages-1.img differs" in receiver.error.msg
    assert pair.target.states() == ["listening", "aborted"]
    assert "pages-1.img" in pair.target.journal()["failure"]
    assert not os.path.exists(pair.target.images_dir)
    assert pair.target.temp_siblings() == []  # the partial images were removed
    assert_nothing_restored_on(pair.target)

    assert_rolled_back(pair, result)
    assert "refused the images" in result["failure"]
    # the source's own copy is intact: what it hashed is what is on its disk
    source_manifest = manifest_of(pair.source.images_dir)
    assert not _images.verify(pair.source.images_dir, source_manifest)


# ------------------------------------------------------------------ 4. the channel breaks before the commit

def tcp_wmem_max() -> int:
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as handle:
            return int(handle.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 * 1024 * 1024


def test_channel_breaks_before_commit_source_seals_and_rolls_back(tmp_path, procs, monkeypatch):
    # After the receiver hung up, a sender can queue at most its send buffer (nothing is
    # acknowledged any more): a file well over that cannot be sent without an error.
    big = 2 * tcp_wmem_max() + 1024 * 1024
    pair = Pair(tmp_path, procs, source_restore=True, big_bytes=big)
    hung_up = threading.Event()
    recv_file, send_file = _wire.Channel.recv_file, _wire.Channel.send_file
    sent: t.List[str] = []

    def receiver_hangs_up_after_one_file(self, header, directory, fsync=True):
        got = recv_file(self, header, directory, fsync)
        self.sock.close()
        hung_up.set()
        raise _wire.WireError("test: the receiver hung up after %s" % got[0])

    def sender_notices_later(self, path, name, fsync=True):
        if sent:
            # Only once the receiver has really closed: the break is then certain before the commit.
            assert hung_up.wait(WAIT)
        sent.append(name)
        return send_file(self, path, name, fsync)

    monkeypatch.setattr(_wire.Channel, "recv_file", receiver_hangs_up_after_one_file)
    monkeypatch.setattr(_wire.Channel, "send_file", sender_notices_later)
    receiver = pair.receiver()
    result = pair.send()
    receiver.join()

    assert isinstance(receiver.error, _migrate.MigrationError)
    assert "broke off before the commit" in receiver.error.msg
    assert pair.target.states() == ["listening", "aborted"]
    assert not os.path.exists(pair.target.images_dir) and pair.target.temp_siblings() == []
    assert_nothing_restored_on(pair.target)

    assert "the transfer to the target broke off" in result["failure"]
    assert_rolled_back(pair, result)
    # sealed anyway (every file hashed, the ones the channel did not take too), never committed
    assert pair.source.states() == ["checked", "dumped", "sealed", "rolled_back"]
    assert "committed" not in pair.source.states() and "target_pid" not in result
    manifest = manifest_of(pair.source.images_dir)
    assert manifest["files"]["pages-2.img"]["size"] == big
    assert not _images.verify(pair.source.images_dir, manifest)
    assert pair.source.temp_siblings() == []


# ------------------------------------------------------------------ 5. no answer after the commit

class ReceiverDied(BaseException):
    pass


@pytest.mark.parametrize("how", ["hook", "fault-file"])
def test_no_answer_after_commit_is_unknown_and_nothing_restored_here(tmp_path, procs, monkeypatch, how,
                                                                     no_real_faults):
    pair = Pair(tmp_path, procs, source_restore=True)
    if how == "hook":
        real_fault = _migrate.fault

        def fault(point):
            if point == "receiver-after-commit":
                raise ReceiverDied(point)  # the receiver's process dies; its socket closes
            real_fault(point)

        monkeypatch.setattr(_migrate, "fault", fault)
    else:
        if os.geteuid() != 0:
            pytest.skip("fault files count only when owned by root")
        with open(os.path.join(no_real_faults, "receiver-after-commit"), "w") as handle:
            handle.write("fail\n")
    receiver = pair.receiver()
    result = pair.send()
    receiver.join()

    expected = ReceiverDied if how == "hook" else _migrate.FaultInjected
    assert isinstance(receiver.error, expected), receiver.error
    assert result["outcome"] == "unknown", result
    assert "no answer from the target after the commit" in result["failure"]
    assert "UNKNOWN" in result["msg"] and pair.source.images_dir in result["msg"]
    assert "target_pid" not in result and "source_pid" not in result
    # nothing restored on the source: that could make two copies
    assert pair.source.fake.count("restore") == 0
    assert not os.path.exists(os.path.join(pair.source.images_dir, _images.RESTORE_RECORD_NAME))
    assert pair.source.states() == ["checked", "dumped", "committed", "unknown"]
    assert pair.source.journal()["outcome"] == "unknown"
    # the images stay, sealed and whole
    manifest = manifest_of(pair.source.images_dir)
    assert manifest["image_id"] == result["image_id"] and not _images.verify(pair.source.images_dir, manifest)
    # the receiver died after reading the commit, before anything else
    assert pair.target.states() == ["listening"]
    assert pair.target.fake.count("restore") == 0


# ------------------------------------------------------------------ 6. resume after the dump

def test_interrupted_after_dump_resumes_without_a_second_dump(tmp_path, procs, monkeypatch):
    pair = Pair(tmp_path, procs)
    real_fault = _migrate.fault
    channels: t.List[_wire.Channel] = []
    real_connect = _wire.connect

    def fault(point):
        if point == "after-dump":
            raise StepKilled(point)
        real_fault(point)

    def connect(*args, **kwargs):
        channel = real_connect(*args, **kwargs)
        channels.append(channel)
        return channel

    monkeypatch.setattr(_migrate, "fault", fault)
    monkeypatch.setattr(_wire, "connect", connect)
    receiver = pair.receiver()
    with pytest.raises(StepKilled):
        pair.send()
    # The step is gone: so is its connection.
    assert len(channels) == 1
    channels[0].close()
    receiver.join()
    assert isinstance(receiver.error, _migrate.MigrationError)
    assert pair.target.states() == ["listening", "aborted"]
    assert pair.target.temp_siblings() == [] and not os.path.exists(pair.target.images_dir)

    source_entry = pair.source.journal()
    assert source_entry["state"] == "dumped" and pair.source.states() == ["checked", "dumped"]
    tmp = source_entry["images_tmp"]
    assert os.path.isdir(tmp) and os.path.dirname(tmp) == os.path.dirname(pair.source.images_dir)
    assert {"pages-1.img", "pstree.img", "stats-dump", "dump.log"} <= set(os.listdir(tmp))
    assert not os.path.exists(pair.source.images_dir)  # not sealed
    assert pair.source.fake.count("dump") == 1

    # The same command again: the plan from both journals.
    source_alive = _migrate.alive(source_entry)
    assert source_alive is False  # criu ended it when it dumped
    target_entry = pair.target.journal()
    decision = _journal.plan(source_entry, source_alive, target_entry, _migrate.alive(target_entry), False)
    assert decision.action == "send", decision
    # check_target comes to the same plan (and makes the next certificate)
    monkeypatch.setattr(_migrate, "fault", real_fault)
    facts = {"run_id": RUN_ID, "running": False, "journal": _migrate.journal_summary(source_entry),
             "criu_version": "4.1.1", "arch": _proc.machine(), "tree": [], "estimate_bytes": 0}
    checked = _migrate.check_target(pair.target.params("check_target", source_facts=facts), pair.target.runner)
    assert checked["plan"] == "send" and len(checked["fingerprint"]) == 64
    pair.fingerprint = checked["fingerprint"]

    receiver = pair.start_receiver()
    result = pair.send(plan=decision.action)
    receiver.join()
    assert receiver.error is None, receiver.error
    assert result["outcome"] == "restored", result
    assert pair.target_copy is not None and result["target_pid"] == pair.target_copy.pid
    assert result["dumped"] is False
    # one dump overall; the resumed run sent the images the first one made
    assert pair.source.fake.count("dump") == 1
    entry = pair.source.journal()
    assert _journal.count(entry, "dumped") == 1 and _journal.count(entry, "checked") == 1
    assert collapse(pair.source.states()) == ["checked", "dumped", "sealed", "committed"]
    assert not os.path.exists(tmp)
    assert pair.target.states() == ["listening", "aborted", "listening", "received", "restored"]
    source_manifest, target_manifest = manifest_of(pair.source.images_dir), manifest_of(pair.target.images_dir)
    assert source_manifest["image_id"] == target_manifest["image_id"] == result["image_id"]
    for name, meta in source_manifest["files"].items():
        assert sha256(os.path.join(pair.target.images_dir, name)) == meta["sha256"]
    assert pair.target.fake.count("restore") == 1 and pair.source.fake.count("restore") == 0


# ------------------------------------------------------------------ 7. small helpers

def test_downtime_adds_criu_frozen_time_to_the_time_since_the_dump():
    now = time.monotonic()
    # criu's frozen time (0.5 s) plus at least the 2 s since the dump ended
    assert _migrate.downtime(now - 100, now - 2, {"frozen_time_us": 500000}) >= 2.5
    # without criu's figure (a lazy dump): everything since just before criu started
    assert _migrate.downtime(now - 100, now - 2, {}) >= 100
    assert _migrate.downtime(now - 100, None, {"frozen_time_us": 500000}) >= 100
    value = _migrate.downtime(time.monotonic(), None, {})
    assert isinstance(value, float) and value >= 0


def test_skip_pids_past_only_ever_raises_the_counter(tmp_path):
    path = str(tmp_path / "ns_last_pid")
    pid_max = tmp_path / "pid_max"
    pid_max.write_text("4194304\n")

    def skip(pids, margin=0):
        _migrate.skip_pids_past(pids, path, margin=margin, pid_max_path=str(pid_max))

    def counter(text: t.Optional[str] = None) -> str:
        if text is not None:
            with open(path, "w") as handle:
                handle.write(text)
        with open(path) as handle:
            return handle.read().strip()

    counter("1000\n")
    skip([5, 999])
    assert counter() == "1000"
    skip(iter([1500, 7, 1200]))
    assert counter() == "1500"
    skip([])
    assert counter() == "1500"
    skip([1500])
    assert counter() == "1500"
    counter("garbage")
    skip([2000])  # best effort: unreadable, left alone
    assert counter() == "garbage"
    missing = str(tmp_path / "missing")
    _migrate.skip_pids_past([2000], missing, pid_max_path=str(pid_max))
    assert not os.path.exists(missing)


def test_skip_pids_past_leaves_room_for_what_the_tree_forks_before_the_freeze(tmp_path):
    """A shell loop forks a new child every iteration: the image's PIDs end above those seen
    at the check, so the counter goes past them by a margin, and never to pid_max."""
    path = tmp_path / "ns_last_pid"
    pid_max = tmp_path / "pid_max"
    pid_max.write_text("32768\n")
    path.write_text("900")
    _migrate.skip_pids_past([1010, 1022], str(path), pid_max_path=str(pid_max))
    assert int(path.read_text()) == 1022 + _migrate.PID_SKIP_MARGIN
    path.write_text("900")
    _migrate.skip_pids_past([32000], str(path), pid_max_path=str(pid_max))
    assert int(path.read_text()) == 32767


def test_estimate_bytes_counts_anonymous_and_shared_memory(tmp_path):
    # What check_source calls for the tree it is about to freeze.
    proc_root = tmp_path / "proc"
    for pid, status in ((100, "Name:\tapp\nRssAnon:\t    2048 kB\nRssFile:\t  99999 kB\nRssShmem:\t    1024 kB\n"),
                        (101, "Name:\tchild\nRssAnon:\t       4 kB\nRssShmem:\t       0 kB\n"),
                        (102, "Name:\tweird\nRssAnon:\tlots kB\nRssShmem:\n")):
        (proc_root / str(pid)).mkdir(parents=True)
        (proc_root / str(pid) / "status").write_text(status)
    tree = [types.SimpleNamespace(pid=pid) for pid in (100, 101, 102, 103)]  # 103: gone meanwhile
    memory = (2048 + 1024 + 4) * 1024
    margin = 16 * 1024 * 1024
    assert _proc.estimate_bytes(tree, str(proc_root)) == int(memory * 1.10) + margin  # type: ignore[arg-type]
    assert _proc.estimate_bytes([], str(proc_root)) == margin


def test_space_problem_measures_the_nearest_existing_directory(tmp_path):
    # What check_source and check_target refuse with, before any freeze.
    path = str(tmp_path / "not" / "yet" / "there")
    where, free = _images.free_bytes(path)
    assert where == str(tmp_path) and free >= 0
    assert _images.space_problem("hostA", path, 0) is None
    assert _images.space_problem("hostA", path, free) is None
    problem = _images.space_problem("hostA", path, 1 << 60)
    assert problem is not None
    assert "not enough free space on hostA" in problem and str(tmp_path) in problem and path in problem
    assert not os.path.exists(str(tmp_path / "not"))  # measuring creates nothing


def test_input_problem(tmp_path):
    def params(step: str, **extra: t.Any) -> t.Dict[str, t.Any]:
        out = _migrate.defaults(migration.argument_spec())
        out.update(step=step, key=KEY, run_id=RUN_ID, images_dir=str(tmp_path / "images" / RUN_ID / "source"),
                   journal_dir=str(tmp_path / "journal"), pid=4242, source_facts={"run_id": RUN_ID},
                   channel={"address": "127.0.0.1", "port": 1, "fingerprint": "ab" * 32, "token": TOKEN})
        out.update(extra)
        return out

    for step in _migrate.STEPS:
        assert _migrate.input_problem(params(step)) is None, step
        for name in _migrate.REQUIRED[step]:
            assert _migrate.input_problem(params(step, **{name: None})) == "step %s needs %s" % (step, name)
    for key in ("ABCDEF0123456789", "0123", "0123456789abcdef\n", "0123456789abcdeg", "../0123456789abcdef", ""):
        problem = _migrate.input_problem(params("finish", key=key))
        assert problem is not None and problem.startswith("key must be"), key
    for run_id in ("a/b", "..", ".", "-x", ".hidden", "a b", "x" * 101, "r\n"):
        problem = _migrate.input_problem(params("send", run_id=run_id))
        assert problem is not None and problem.startswith("run_id must be"), run_id
    assert _migrate.input_problem(params("send", run_id="r.1_x-2")) is None
    assert _migrate.input_problem(params("send", images_dir="relative/dir")).startswith("images_dir:")
    assert _migrate.input_problem(params("send", images_dir=str(tmp_path) + "/a/../b")).startswith("images_dir:")
    assert _migrate.input_problem(params("finish", journal_dir="journal")).startswith("journal_dir:")
    assert _migrate.input_problem(params("finish", journal_dir="/var//lib")).startswith("journal_dir:")
    # the process selector: needed for a fresh dump, not to resume one
    for step in ("check_source", "send"):
        assert _migrate.input_problem(params(step, pid=None)) == "step %s needs one of pid, pidfile, pid_match, systemd_unit" % step
    assert _migrate.input_problem(params("send", pid=None, plan="send")) is None
    assert _migrate.input_problem(params("send", pid=None, pid_match="sleep")) is None
    # the channel
    problem = _migrate.input_problem(params("send", channel={"port": 1, "token": TOKEN}))
    assert problem is not None and "needs channel" in problem
    assert _migrate.input_problem(params("send", channel=None, transport="files")) is None
    assert _migrate.input_problem(params("receive", channel={"port": 1})) == "step receive needs channel.token"


def start_ticks(pid: int) -> int:
    info = _proc.read_proc(pid)
    assert info is not None
    return info.start_ticks


def ended(pid: int) -> bool:
    info = _proc.read_proc(pid)
    return info is None or info.state == "Z"


def wait_until(check: t.Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_kill_tree_ends_the_recorded_tree_and_its_holder(procs):
    root = procs.start(["sh", "-c", "sleep 120 & sleep 120 & wait"])
    assert wait_until(lambda: len(_proc.tree(root.pid)) == 3)
    children = [p.pid for p in _proc.tree(root.pid)[1:]]
    holder = procs.start()
    assert _migrate.kill_tree(root.pid, start_ticks(root.pid),
                              extra=[{"pid": holder.pid, "start_ticks": start_ticks(holder.pid)}]) is True
    root.wait(WAIT)
    holder.wait(WAIT)
    assert holder.returncode == -9 and root.returncode == -9
    assert all(wait_until(lambda pid=pid: ended(pid)) for pid in children)


def test_kill_tree_never_kills_a_process_that_merely_reuses_a_pid(procs):
    other = procs.start()
    # The recorded process is gone and its pid belongs to another one now: nothing is killed.
    assert _migrate.kill_tree(other.pid, start_ticks(other.pid) + 1, timeout=1) is True
    assert other.poll() is None and not ended(other.pid)

    root = procs.start()
    extra = procs.start()
    # The tree is ours, the "holder" is not (another start time): only the tree ends.
    assert _migrate.kill_tree(root.pid, start_ticks(root.pid),
                              extra=[{"pid": extra.pid, "start_ticks": start_ticks(extra.pid) + 1},
                                     {"pid": None, "start_ticks": None}]) is True
    root.wait(WAIT)
    assert root.returncode == -9
    assert extra.poll() is None and not ended(extra.pid)
    # A pid that does not exist: nothing runs.
    assert _migrate.kill_tree(root.pid, None, timeout=1) is True


def test_fault_hook_counts_only_root_owned_regular_files(no_real_faults):
    _migrate.fault("nothing-here")
    path = os.path.join(no_real_faults, "point")
    with open(path, "w") as handle:
        handle.write("fail\n")
    if os.geteuid() == 0:
        with pytest.raises(_migrate.FaultInjected):
            _migrate.fault("point")
        os.chown(path, 65534, 65534)
    _migrate.fault("point")  # not root's: ignored
    os.unlink(path)
    os.symlink(os.devnull, path)
    _migrate.fault("point")  # not a regular file: ignored


def test_a_step_that_fails_after_the_dump_resumes_from_its_temp_images(tmp_path, procs, monkeypatch, no_real_faults):
    """The "fail" fault right after the dump (as if finishing the images had failed): the
    process is gone from the source, the images are only in the temporary directory, the
    target was told to abort. A re-run sends those images; it never dumps again."""
    pair = Pair(tmp_path, procs)
    with open(os.path.join(no_real_faults, "after-dump"), "w") as handle:
        handle.write("fail\n")
    if os.geteuid() != 0:  # fault files count only when owned by root: the same failure by hand
        real_fault = _migrate.fault

        def fault(point):
            if point == "after-dump":
                raise _migrate.FaultInjected(point)
            real_fault(point)

        monkeypatch.setattr(_migrate, "fault", fault)
    receiver = pair.receiver()
    with pytest.raises(_migrate.MigrationError) as failed:
        pair.send()
    receiver.join()
    assert "the dump failed" in failed.value.msg and failed.value.extra["source_running"] is False
    assert isinstance(receiver.error, _migrate.MigrationError) and "aborted" in receiver.error.msg
    assert pair.target.states() == ["listening", "aborted"]
    entry = pair.source.journal()
    tmp = entry["images_tmp"]
    assert os.path.isdir(tmp) and not os.path.exists(pair.source.images_dir)
    assert entry["state"] in _journal.SOURCE_DUMPED  # never "fresh" again: the process is gone
    assert pair.source.fake.count("dump") == 1 and pair.source.fake.count("restore") == 0

    decision = _journal.plan(entry, _migrate.alive(entry), pair.target.journal(), False, False)
    assert decision.action == "send", decision
    os.unlink(os.path.join(no_real_faults, "after-dump"))
    monkeypatch.undo()
    monkeypatch.setattr(_migrate, "FAULT_DIR", no_real_faults)
    receiver = pair.receiver()
    result = pair.send(plan=decision.action)
    receiver.join()
    assert receiver.error is None, receiver.error
    assert result["outcome"] == "restored", result
    assert pair.source.fake.count("dump") == 1 and not os.path.exists(tmp)
    assert manifest_of(pair.target.images_dir)["image_id"] == manifest_of(pair.source.images_dir)["image_id"]
    assert pair.target.states()[-3:] == ["listening", "received", "restored"]
