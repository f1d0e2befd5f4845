# Copyright (c) fleet.criu contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.fleet.criu.plugins.module_utils import _proc


def stat_line(pid, comm, state="S", ppid=1, flags=4194560, start=1000):
    fields = [state, str(ppid), str(pid), str(pid), "0", "-1", str(flags)] + ["0"] * 12 + [str(start)] + ["0"] * 30
    return "%d (%s) %s\n" % (pid, comm, " ".join(fields))


def fake_proc(root, procs):
    """procs: list of (pid, ppid, comm, cmdline list, flags, has_exe, state)."""
    for pid, ppid, comm, cmdline, flags, has_exe, state in procs:
        base = root / str(pid)
        base.mkdir(parents=True)
        (base / "stat").write_text(stat_line(pid, comm, state=state, ppid=ppid, flags=flags, start=pid * 10))
        (base / "cmdline").write_bytes(b"\0".join(c.encode() for c in cmdline) + (b"\0" if cmdline else b""))
        (base / "status").write_text("Name:\t%s\nNSpid:\t%d\n" % (comm, pid))
        if has_exe:
            os.symlink("/usr/bin/" + comm, str(base / "exe"))
    return str(root)


def test_parse_stat_comm_with_spaces_and_parens():
    fields = _proc.parse_stat(stat_line(77, "a (b) c", ppid=5, start=424242))
    assert fields["comm"] == "a (b) c"
    assert fields["ppid"] == 5
    assert fields["start_ticks"] == 424242
    assert fields["state"] == "S"


def test_read_self_and_missing():
    me = _proc.read_proc(os.getpid())
    assert me is not None and me.pid == os.getpid() and not me.is_kernel_thread
    assert _proc.read_proc(2 ** 22 + 12345) is None


def test_kernel_thread_by_flag(tmp_path):
    root = fake_proc(tmp_path, [(2, 0, "kthreadd", [], 0x00208040, False, "S")])
    assert _proc.read_proc(2, root).is_kernel_thread


def test_zombie_is_not_a_kernel_thread(tmp_path):
    root = fake_proc(tmp_path, [(9, 1, "python3", [], 0x00400000, False, "Z")])
    info = _proc.read_proc(9, root)
    assert not info.is_kernel_thread and info.state == "Z"


TREE = [
    (1, 0, "init", ["/sbin/init"], 0x400100, True, "S"),
    (2, 0, "kthreadd", [], 0x208040, False, "S"),
    (100, 1, "script", ["script", "-qfc", "sh -c \"python3 job.py\"", "/dev/null"], 0x400100, True, "S"),
    (101, 100, "sh", ["sh", "-c", "python3 job.py"], 0x400100, True, "S"),
    (102, 101, "python3", ["python3", "job.py"], 0x400100, True, "S"),
    (200, 1, "python3", ["python3", "job.py", "--other"], 0x400100, True, "S"),
    (300, 1, "ansible", ["python3", "AnsiballZ_dump.py", "job.py"], 0x400100, True, "S"),
]


def test_match_roots_and_exclusions(tmp_path):
    root = fake_proc(tmp_path, TREE)
    matches, roots = _proc.match(r"job\.py", exclude=[300], proc_root=root)
    assert [p.pid for p in matches] == [100, 101, 102, 200]
    assert [p.pid for p in roots] == [100, 200]
    _matches, roots = _proc.match(r"^python3 job\.py$", exclude=[300], proc_root=root)
    assert [p.pid for p in roots] == [102]
    _matches, roots = _proc.match(r"kthreadd|^$", proc_root=root)
    assert roots == []


def test_tree_and_ancestors(tmp_path):
    root = fake_proc(tmp_path, TREE)
    assert [p.pid for p in _proc.tree(100, root)] == [100, 101, 102]
    assert _proc.ancestors(102, root) == [102, 101, 100, 1]
    facts = _proc.tree_facts(_proc.tree(101, root))
    assert facts[0] == {"pid": 101, "ns_pid": 101, "ppid": 100, "comm": "sh", "cmdline": "sh -c python3 job.py"}


def test_identity_distinguishes_pid_reuse():
    child = subprocess.Popen(["sleep", "30"])
    try:
        info = _proc.read_proc(child.pid)
        ident = _proc.identity(info)
        assert _proc.same_process(info, ident)
        assert not _proc.same_process(info, dict(ident, start_ticks=ident["start_ticks"] + 1))
        assert ident["start_time"].endswith("Z")
    finally:
        child.kill()
        child.wait()


def test_holder_describes_zombies(tmp_path):
    root = fake_proc(tmp_path, [(1, 0, "sleep", ["sleep", "infinity"], 0x400100, True, "S"),
                                (267, 1, "python3", [], 0x400100, False, "Z")])
    text = _proc.holder(267, root)
    assert "zombie" in text and "sleep infinity" in text
    assert _proc.holder(999, root) is None


def test_stopped_and_resume():
    child = subprocess.Popen(["sleep", "30"])
    try:
        os.kill(child.pid, 19)  # SIGSTOP
        for _attempt in range(100):
            if _proc.is_stopped(_proc.read_proc(child.pid)):
                break
        assert _proc.is_stopped(_proc.read_proc(child.pid))
        assert _proc.resume(child.pid)
        for _attempt in range(100):
            if not _proc.is_stopped(_proc.read_proc(child.pid)):
                break
        assert not _proc.is_stopped(_proc.read_proc(child.pid))
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("pid", [os.getpid()])
def test_same_pid_namespace_for_self(pid):
    assert _proc.same_pid_namespace(pid) is True


# --- pid_problem -----------------------------------------------------------------------

def _with_tgid(root, pid, tgid):
    status = os.path.join(root, str(pid), "status")
    with open(status, "a") as handle:
        handle.write("Tgid:\t%d\n" % tgid)


PID_TREE = [
    (1, 0, "init", ["/sbin/init"], 0x400100, True, "S"),
    (2, 0, "kthreadd", [], 0x208040, False, "S"),
    (40, 1, "sshd", ["/usr/sbin/sshd", "-D"], 0x400100, True, "S"),
    (50, 40, "python3", ["python3", "module.py"], 0x400100, True, "S"),
    (60, 1, "job", ["/usr/bin/job", "--db-password=hunter2"], 0x400100, True, "S"),
    (61, 1, "job", ["/usr/bin/job", "--db-password=hunter2"], 0x400140, True, "S"),
    (70, 1, "dead", [], 0x400100, False, "Z"),
]


@pytest.fixture
def pid_root(tmp_path):
    root = fake_proc(tmp_path, PID_TREE)
    for pid, *_rest in PID_TREE:
        _with_tgid(root, pid, 60 if pid == 61 else pid)
    return root


@pytest.mark.parametrize("pid, words", [
    (0, "positive integer"), (-5, "positive integer"), ("12", "must be an integer"), (True, "must be an integer"),
    (3.0, "must be an integer"), (1, "refusing pid 1"), (99, "no process with pid 99"),
    (61, "pid 61 is a thread of process 60"), (2, "kernel thread"), (70, "zombie"),
    (50, "own process or one of its ancestors"), (40, "own process or one of its ancestors"),
])
def test_pid_problem_refuses_with_a_clear_message(pid_root, pid, words):
    problem = _proc.pid_problem(pid, [50, 40, 1], proc_root=pid_root)
    assert problem is not None and words in problem, problem
    assert "hunter2" not in problem


def test_pid_problem_accepts_a_process(pid_root):
    assert _proc.pid_problem(60, [50, 40, 1], proc_root=pid_root) is None


def test_pid_problem_on_the_real_proc():
    chain = _proc.ancestors(os.getpid())
    assert "own process" in _proc.pid_problem(os.getpid(), chain)
    assert "refusing pid 1" in _proc.pid_problem(1, chain)
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert _proc.pid_problem(child.pid, chain) is None
    finally:
        child.kill()
        child.wait()


def test_pid_problem_refuses_a_thread_id_on_the_real_proc():
    import threading
    ready = threading.Event()
    done = threading.Event()
    tids = []

    def worker():
        tids.append(threading.get_native_id())
        ready.set()
        done.wait(30)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert ready.wait(30)
        problem = _proc.pid_problem(tids[0], [])
        assert problem is not None and "is a thread of process %d" % os.getpid() in problem
    finally:
        done.set()
        thread.join()


# --- redact_cmdline ------------------------------------------------------------------

@pytest.mark.parametrize("command, expected", [
    (["/usr/bin/job", "--db-password=hunter2", "--port=5432"], "/usr/bin/job --db-password=******** --port=5432"),
    (["job", "--db-password", "hunter2", "-v"], "job --db-password ******** -v"),
    (["job", "--password", "--verbose"], "job --password --verbose"),
    (["job", "--token=abc.def", "--secret", "s3", "--api-key", "AKIA1", "--key=k"],
     "job --token=******** --secret ******** --api-key ******** --key=********"),
    (["env", "PASSWORD=hunter2", "DB_PASS=x", "AWS_SECRET_ACCESS_KEY=y", "API_KEY=z", "HOME=/root", "./run"],
     "env PASSWORD=******** DB_PASS=******** AWS_SECRET_ACCESS_KEY=******** API_KEY=******** HOME=/root ./run"),
    (["java", "-Djavax.net.ssl.keyStorePassword=changeit", "-Xmx1g", "-jar", "app.jar"],
     "java -Djavax.net.ssl.keyStorePassword=******** -Xmx1g -jar app.jar"),
    (["psql", "postgres://app:hunter2@db:5432/x"], "psql postgres://app:********@db:5432/x"),
    (["curl", "-H", "Authorization: Bearer eyJhbGciOi", "https://example.com/a@b"],
     "curl -H Authorization: Bearer ******** https://example.com/a@b"),
    (["mysql", "-p", "hunter2"], "mysql -p hunter2"),  # -p is too ambiguous: left alone
    (["game", "--monkey=3", "--keyboard=us", "--keep-alive=1"], "game --monkey=3 --keyboard=us --keep-alive=1"),
    (["openssl", "enc", "-pass", "pass:xyz"], "openssl enc -pass ********"),
    ([], ""),
])
def test_redact_cmdline_lists(command, expected):
    assert _proc.redact_cmdline(command) == expected


def test_redact_cmdline_strings_keep_their_spacing():
    text = "python3  server.py --db-password=hunter2 --token  t0k\tTOKEN=abc curl -H Bearer xyz"
    assert _proc.redact_cmdline(text) == (
        "python3  server.py --db-password=******** --token  ********\tTOKEN=******** curl -H Bearer ********")
    assert _proc.redact_cmdline("") == ""


def test_process_info_offers_a_redacted_command_line(pid_root):
    info = _proc.read_proc(60, pid_root)
    assert info.cmdline_str == "/usr/bin/job --db-password=hunter2"
    assert info.cmdline_redacted == "/usr/bin/job --db-password=********"
