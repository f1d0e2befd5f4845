"""The benchmark's workload: it measures its own downtime.

It holds --mem-mb MiB of touched random bytes and wakes every 10 ms. At each wake-up it
reads the wall clock (time.time(): containers share the kernel's clock, and real hosts
are NTP-synced, so a process restored elsewhere reads a clock that continues the old
one) and keeps the largest gap between two wake-ups in memory. A migration freezes the
process on one host and resumes it on another: the largest gap is the downtime as the
process itself saw it (plus at most one 10 ms tick).

Nothing is written while it runs (a write every tick would perturb what is measured).
It answers requests made by signal, from the host it runs on:
- SIGUSR1: publish STATE_DIR/state.json (pid, token, serial, max_gap_s, ticks);
- SIGUSR2: reset the largest gap, then publish (the reset is acknowledged by the serial);
- SIGHUP: hash the memory, then publish (memory_sha256).

Usage:
  fleet_criu_bench_workload.py STATE_DIR [--mem-mb N] [--tick S]
  fleet_criu_bench_workload.py --probe where|ready|stop|gap|reset|token|checksum STATE_DIR
"where" prints the workload's PID on this host (exit 1 when it does not run here),
"ready" the same once its memory is filled (exit 1 before), "stop" kills it; the
other probes signal it and print the published value once the serial moved past the
last one seen, so the value comes from the running (possibly restored) process.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import time
import typing as t

SCRIPT_NAME = "fleet_criu_bench_workload.py"
TICK_S = 0.01


def publish(path: str, data: t.Mapping[str, t.Any]) -> None:
    """Write the state atomically (a reader never sees half a file)."""
    # The directory may not exist on a host the process was just restored on.
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def find_pid(state_dir: str) -> t.Optional[int]:
    """The PID of the workload serving STATE_DIR on this host, from /proc (no state file needed)."""
    want = os.path.abspath(state_dir)
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if "--probe" in args:
            continue
        if any(a.endswith(SCRIPT_NAME) for a in args) and want in (os.path.abspath(a) for a in args):
            return int(name)
    return None


def read_serial(state_path: str, pid: int) -> int:
    """The serial of the last answer PID published here, or -1."""
    try:
        with open(state_path, encoding="utf-8") as handle:
            state = json.load(handle)
        return int(state["serial"]) if state.get("pid") == pid else -1
    except (OSError, ValueError, KeyError):
        return -1


def ask(state_dir: str, signum: int, timeout: float = 60.0) -> t.Dict[str, t.Any]:
    """Signal the workload and return what it published in answer."""
    pid = find_pid(state_dir)
    if pid is None:
        raise SystemExit("the workload for %s does not run on this host" % state_dir)
    state_path = os.path.join(state_dir, "state.json")
    # A state file this process left on an earlier stay here has a smaller serial than
    # any answer it can give now (its serial only grows, and travels with it). A file
    # another process left says nothing about this one.
    before = read_serial(state_path, pid)
    os.kill(pid, signum)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            with open(state_path, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            continue
        if state.get("pid") == pid and int(state.get("serial", -1)) > before:
            return state
    raise SystemExit("pid %s did not answer within %.0f s" % (pid, timeout))


def probe(what: str, state_dir: str) -> str:
    if what == "where":
        pid = find_pid(state_dir)
        if pid is None:
            raise SystemExit(1)
        return str(pid)
    if what == "ready":
        # No signal: the state file names this process once its memory is filled.
        pid = find_pid(state_dir)
        try:
            with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
                ready = pid is not None and json.load(handle).get("pid") == pid
        except (OSError, ValueError):
            ready = False
        if not ready:
            raise SystemExit("not ready")
        return str(pid)
    if what == "stop":
        pid = find_pid(state_dir)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while os.path.exists("/proc/%d" % pid) and find_pid(state_dir) == pid:
                time.sleep(0.05)
        # No answer of this workload may be taken for one of the next.
        for name in ("state.json", "state.json.tmp"):
            try:
                os.unlink(os.path.join(state_dir, name))
            except FileNotFoundError:
                pass
        return "none" if pid is None else str(pid)
    if what == "gap":
        return "%.4f" % ask(state_dir, signal.SIGUSR1)["max_gap_s"]
    if what == "reset":
        return "%.4f" % ask(state_dir, signal.SIGUSR2)["max_gap_s"]
    if what == "token":
        return str(ask(state_dir, signal.SIGUSR1)["token"])
    if what == "checksum":
        return str(ask(state_dir, signal.SIGHUP, timeout=300.0)["memory_sha256"])
    raise SystemExit("unknown probe %r" % what)


def run(state_dir: str, mem_mb: int, tick: float) -> None:
    # The handlers first: a request that comes early must not end the process.
    requests: t.List[int] = []

    def on_signal(signum: int, _frame: t.Any) -> None:
        requests.append(signum)

    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        signal.signal(signum, on_signal)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    state_path = os.path.join(state_dir, "state.json")
    # Random bytes, all of them touched: the dump cannot skip or compress them.
    buffer = bytearray(os.urandom(mem_mb * 1024 * 1024))
    token = os.urandom(8).hex()
    serial = 0
    ticks = 0
    max_gap = 0.0
    memory_sha256 = ""
    last = time.time()

    def answer() -> None:
        nonlocal serial
        serial += 1
        publish(state_path, {"pid": os.getpid(), "token": token, "serial": serial, "mem_mb": mem_mb,
                             "max_gap_s": round(max_gap, 4), "ticks": ticks, "memory_sha256": memory_sha256,
                             "wall_time": time.time()})

    answer()  # "ready": the buffer is filled
    while True:
        time.sleep(tick)
        now = time.time()
        max_gap = max(max_gap, now - last)
        last = now
        ticks += 1
        if requests:
            asked = set(requests)
            requests.clear()
            if signal.SIGHUP in asked:
                memory_sha256 = hashlib.sha256(buffer).hexdigest()
            if signal.SIGUSR2 in asked:
                max_gap = 0.0
            answer()
            # Answering (and hashing) is the workload's own time, not downtime.
            last = time.time()


def main(argv: t.Optional[t.Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state_dir")
    parser.add_argument("--mem-mb", type=int, default=16)
    parser.add_argument("--tick", type=float, default=TICK_S)
    parser.add_argument("--probe", choices=["where", "ready", "stop", "gap", "reset", "token", "checksum"])
    args = parser.parse_args(argv)
    if args.probe:
        print(probe(args.probe, args.state_dir))
        return
    run(args.state_dir, args.mem_mb, args.tick)


if __name__ == "__main__":
    main(sys.argv[1:])
