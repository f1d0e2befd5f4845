"""Helpers for the `faults` scenario's converge (run in the container as root).

  snapshot [--checksum] STATE_DIR...
        JSON {basename of STATE_DIR: facts} for each workload publishing STATE_DIR/state.json:
        its pid, the State letter of that pid (/proc/PID/status), whether its counter
        moves within 0.5 s, its token, how many processes run it (copies), and with
        --checksum the sha256 of its memory as the process itself computes it (SIGUSR1).
  spawn-thread          start a python process with a second thread; print {"pid", "tid"}
  spawn-zombie          start a process with a zombie child; print {"parent", "zombie"}
  corrupt DIR FILE OFFSET     flip one byte of DIR/FILE (a transfer that changed a byte)
  truncate DIR FILE BYTES     cut BYTES off the end of DIR/FILE (a transfer cut short)
  edit-manifest DIR KEY.PATH VALUE
                        set one field of DIR/fleet-criu-manifest.json, re-written as JSON
  digest PATH...        JSON {path: sha256 or null} (victim files must not change)
  leftovers DIR         JSON list of the names in DIR (temporary and half directories)
  arm MODE [TARGET_PID] set the fault the criu_path wrapper (fleet-criu-faulty) injects next,
                        and clear what the previous one left in /run/fleet-criu-faults
  fault-status          JSON: was the fault injected, the target's State when it was, the
                        pid of the module that ran the wrapper, is a gate waiting
"""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

WORKLOAD = "/usr/local/bin/fleet_criu_workload.py"


def read_state(state_dir):
    with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
        return json.load(handle)


def task_state(pid):
    try:
        with open("/proc/%d/status" % pid, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("State:"):
                    return line.split()[1]
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def copies(state_dir):
    """Processes whose command line runs the workload on state_dir."""
    wanted = [WORKLOAD, state_dir]
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
        except OSError:
            continue
        if argv[1:3] == wanted and task_state(int(name)) not in (None, "Z", "X"):
            found.append(int(name))
    return sorted(found)


def checksum(state, state_dir, timeout=20.0):
    serial = state["checksum_serial"]
    try:
        os.kill(state["pid"], signal.SIGUSR1)
    except OSError:
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read_state(state_dir)
        if now["checksum_serial"] > serial:
            return now["memory_sha256"]
    return None


def snapshot(args):
    want_checksum = "--checksum" in args
    dirs = [a for a in args if a != "--checksum"]
    first = {d: read_state(d) for d in dirs}
    time.sleep(0.5)
    out = {}
    for state_dir in dirs:
        last = read_state(state_dir)
        state = task_state(last["pid"])
        alive = state is not None and state not in ("Z", "X")
        facts = {
            "pid": last["pid"],
            "state": state,
            "alive": alive,
            "stopped": state in ("T", "t"),
            "token": last["token"],
            "counter_first": first[state_dir]["counter"],
            "counter_last": last["counter"],
            "moving": last["counter"] > first[state_dir]["counter"],
            "copies": copies(state_dir),
            "checksum": None,
        }
        if want_checksum and alive and facts["moving"]:
            facts["checksum"] = checksum(last, state_dir)
        out[os.path.basename(state_dir)] = facts
    print(json.dumps(out))


def detached(argv):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def spawn_thread():
    code = ("import threading, time\n"
            "threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n"
            "time.sleep(3600)\n")
    proc = detached([sys.executable, "-c", code, "fleet-criu-faults-threaded"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        tids = [int(t) for t in os.listdir("/proc/%d/task" % proc.pid) if int(t) != proc.pid]
        if tids:
            print(json.dumps({"pid": proc.pid, "tid": tids[0]}))
            return
        time.sleep(0.05)
    raise SystemExit("the threaded process started no thread")


def spawn_zombie():
    # `true &` forks a child that exits at once; sleep (exec'd in its place) never reaps it.
    proc = detached(["sh", "-c", "true & exec sleep 3600"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name, encoding="utf-8") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == proc.pid:
                print(json.dumps({"parent": proc.pid, "zombie": int(name)}))
                return
        time.sleep(0.05)
    raise SystemExit("no zombie showed up")


def corrupt(images_dir, name, offset):
    with open(os.path.join(images_dir, name), "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    print(json.dumps({"changed": True}))


def truncate(images_dir, name, cut):
    path = os.path.join(images_dir, name)
    size = os.path.getsize(path)
    os.truncate(path, max(0, size - cut))
    print(json.dumps({"changed": True, "size_before": size, "size_after": os.path.getsize(path)}))


def edit_manifest(images_dir, dotted, value):
    path = os.path.join(images_dir, "fleet-criu-manifest.json")
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    node = manifest
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = {"true": True, "false": False}.get(value, value)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    print(json.dumps({"changed": True}))


def digest(paths):
    out = {}
    for path in paths:
        try:
            with open(path, "rb") as handle:
                out[path] = hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            out[path] = None
    print(json.dumps(out))


FAULT_DIR = "/run/fleet-criu-faults"
FAULT_FILES = ("injected", "state-at-kill", "module.pid", "wrapper.pid", "waiting", "go", "target.pid")


def arm(mode, target=None):
    os.makedirs(FAULT_DIR, mode=0o700, exist_ok=True)
    for name in FAULT_FILES:
        try:
            os.unlink(os.path.join(FAULT_DIR, name))
        except FileNotFoundError:
            pass
    with open(os.path.join(FAULT_DIR, "mode"), "w", encoding="utf-8") as handle:
        handle.write(mode + "\n")
    if target:
        with open(os.path.join(FAULT_DIR, "target.pid"), "w", encoding="utf-8") as handle:
            handle.write(target + "\n")
    print(json.dumps({"mode": mode}))


def fault_status():
    def text(name):
        try:
            with open(os.path.join(FAULT_DIR, name), encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError:
            return None
    state = text("state-at-kill")
    module_pid = text("module.pid")
    wrapper_pid = text("wrapper.pid")
    print(json.dumps({
        "injected": os.path.exists(os.path.join(FAULT_DIR, "injected")),
        "waiting": os.path.exists(os.path.join(FAULT_DIR, "waiting")),
        "state_at_injection": state.split()[1] if state and len(state.split()) > 1 else None,
        # The tracer (criu) of the target when the fault hit: 0 when it was not seized.
        "tracer_at_injection": int(state.split("TracerPid:")[1].split()[0]) if state and "TracerPid:" in state else 0,
        "module_pid": int(module_pid) if module_pid and module_pid.isdigit() else None,
        "wrapper_pid": int(wrapper_pid) if wrapper_pid and wrapper_pid.isdigit() else None,
    }))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "snapshot":
        snapshot(args)
    elif cmd == "spawn-thread":
        spawn_thread()
    elif cmd == "spawn-zombie":
        spawn_zombie()
    elif cmd == "corrupt":
        corrupt(args[0], args[1], int(args[2]))
    elif cmd == "truncate":
        truncate(args[0], args[1], int(args[2]))
    elif cmd == "edit-manifest":
        edit_manifest(args[0], args[1], args[2])
    elif cmd == "digest":
        digest(args)
    elif cmd == "arm":
        arm(args[0], args[1] if len(args) > 1 else None)
    elif cmd == "fault-status":
        fault_status()
    elif cmd == "leftovers":
        print(json.dumps(sorted(os.listdir(args[0])) if os.path.isdir(args[0]) else []))
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main()
