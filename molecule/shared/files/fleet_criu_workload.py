"""A stateful test workload for checkpoint/restore checks.

It keeps state that only survives a correct restore:
- a counter in memory, incremented every --interval seconds and published to
  STATE_DIR/state.json (written atomically, no file descriptor kept open);
- a random token made at start (a fresh start would make a new one);
- a buffer of --mem-mb MiB of random bytes; on SIGUSR1 it hashes the buffer *from
  memory* and publishes the sha256, so a probe can compare memory before and after.

Usage: fleet_criu_workload.py STATE_DIR [--mem-mb N] [--interval S]
"""
import argparse
import hashlib
import json
import os
import signal
import time


def publish(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("state_dir")
    parser.add_argument("--mem-mb", type=int, default=8)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()

    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    state_path = os.path.join(args.state_dir, "state.json")
    buffer = bytearray(os.urandom(args.mem_mb * 1024 * 1024))
    token = os.urandom(8).hex()
    checksum_requests = []

    def on_usr1(_signum, _frame):
        checksum_requests.append(1)

    signal.signal(signal.SIGUSR1, on_usr1)
    counter = 0
    memory_sha256 = hashlib.sha256(buffer).hexdigest()
    checksum_serial = 0
    while True:
        if checksum_requests:
            checksum_requests.clear()
            memory_sha256 = hashlib.sha256(buffer).hexdigest()
            checksum_serial += 1
        counter += 1
        publish(state_path, {
            "pid": os.getpid(),
            "token": token,
            "counter": counter,
            "memory_sha256": memory_sha256,
            "checksum_serial": checksum_serial,
            "wall_time": time.time(),
        })
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
