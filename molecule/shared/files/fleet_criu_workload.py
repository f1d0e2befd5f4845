"""A stateful test workload for checkpoint/restore checks.

It keeps state that only survives a correct restore:
- a counter in memory, incremented every --interval seconds and published to
  STATE_DIR/state.json (written atomically, no file descriptor kept open);
- a random token made at start (a fresh start would make a new one);
- a buffer of --mem-mb MiB of random bytes; on SIGUSR1 it hashes the buffer *from
  memory* and publishes the sha256, so a probe can compare memory before and after.

Variants (--mode), each publishing the same state.json:
- counter (default): as above;
- tcp-client --port P: keeps ONE TCP connection to 127.0.0.1:P open, sends the counter
  every tick and counts the echoes it gets back ("echoed" in state.json): it only
  goes on after a restore if the established connection was restored;
- tcp-server --port P: the echo peer (not checkpointed itself);
- flock: holds an exclusive flock() on STATE_DIR/lock for its whole life.

Usage:
  fleet_criu_workload.py STATE_DIR [--mode M] [--port P] [--mem-mb N] [--interval S]
  fleet_criu_workload.py --probe counter|token|checksum|echoed|lock|pid STATE_DIR
The checksum probe signals the process named in state.json and waits for its answer,
so the value printed was computed from the (possibly restored) process's memory.
"""
import argparse
import fcntl
import hashlib
import json
import os
import signal
import socket
import time


def publish(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def read_state(state_dir: str) -> dict:
    with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
        return json.load(handle)


def probe(what: str, state_dir: str, timeout: float = 20.0) -> str:
    if what == "lock":
        # "held" while some process holds the lock; never takes it for long.
        with open(os.path.join(state_dir, "lock"), "a", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return "held"
            fcntl.flock(handle, fcntl.LOCK_UN)
            return "free"
    state = read_state(state_dir)
    if what != "checksum":
        return str(state[what])
    serial = state["checksum_serial"]
    os.kill(state["pid"], signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        state = read_state(state_dir)
        if state["checksum_serial"] > serial:
            return state["memory_sha256"]
    raise SystemExit("process %s did not answer the checksum request" % state["pid"])


def serve_echo(port: int) -> None:
    """Echo each line back, one thread-free connection at a time (enough for tests)."""
    server = socket.create_server(("127.0.0.1", port), reuse_port=True)
    while True:
        conn, _addr = server.accept()
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                conn.sendall(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_dir")
    parser.add_argument("--mem-mb", type=int, default=8)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--probe", choices=["counter", "token", "checksum", "echoed", "lock", "pid"])
    parser.add_argument("--mode", choices=["counter", "tcp-client", "tcp-server", "flock"], default="counter")
    parser.add_argument("--port", type=int, default=7777)
    args = parser.parse_args()
    if args.probe:
        print(probe(args.probe, args.state_dir))
        return
    if args.mode == "tcp-server":
        serve_echo(args.port)
        return

    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    state_path = os.path.join(args.state_dir, "state.json")
    buffer = bytearray(os.urandom(args.mem_mb * 1024 * 1024))
    token = os.urandom(8).hex()
    checksum_requests = []

    def on_usr1(_signum, _frame):
        checksum_requests.append(1)

    signal.signal(signal.SIGUSR1, on_usr1)
    conn = None
    echoed = 0
    if args.mode == "tcp-client":
        conn = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    lock_handle = None
    if args.mode == "flock":
        lock_handle = open(os.path.join(args.state_dir, "lock"), "a", encoding="utf-8")  # noqa: SIM115 - held for life
        fcntl.flock(lock_handle, fcntl.LOCK_EX)
    counter = 0
    memory_sha256 = hashlib.sha256(buffer).hexdigest()
    checksum_serial = 0
    while True:
        if checksum_requests:
            checksum_requests.clear()
            memory_sha256 = hashlib.sha256(buffer).hexdigest()
            checksum_serial += 1
        counter += 1
        if conn is not None:
            conn.sendall(b"%d\n" % counter)
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = conn.recv(64)
                if not chunk:
                    raise SystemExit("echo peer closed the connection")
                reply += chunk
            if int(reply) == counter:
                echoed += 1
        publish(state_path, {
            "pid": os.getpid(),
            "token": token,
            "counter": counter,
            "memory_sha256": memory_sha256,
            "checksum_serial": checksum_serial,
            "echoed": echoed,
            "wall_time": time.time(),
        })
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
