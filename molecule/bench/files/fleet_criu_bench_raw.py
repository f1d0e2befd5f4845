"""The raw migration pipeline the benchmark compares fleet.criu.migrate with.

A plain script, no checks: `criu dump` on the source, tar over a plain TCP connection
between the two hosts (no TLS, no checksums, no journal), `criu restore -d` on the
target the moment the stream ends. The receiver is started first and the sender
connects before it dumps, so no orchestration sits between the freeze and the restore:
this is the floor any wrapper can be measured against.

  target: fleet_criu_bench_raw.py receive --port P --dir DIR --result FILE.json
  source: fleet_criu_bench_raw.py send --pid PID --dir DIR --to HOST:P
  one host: fleet_criu_bench_raw.py dump|restore --pid PID --dir DIR   (criu alone, timed)

The receiver prints (and writes to --result) its figures as JSON; the sender prints its
own (dump_s, send_s, bytes) and the receiver's answer.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import typing as t


def timed(argv: t.Sequence[str]) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True)
    return round(time.monotonic() - started, 3)


def connect(address: str, timeout: float) -> socket.socket:
    """Connect to HOST:PORT, retrying while the receiver is not listening yet."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection((host, int(port)), timeout=300)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def send(pid: int, images_dir: str, to: str) -> t.Dict[str, t.Any]:
    sock = connect(to, timeout=60)
    if os.path.exists(images_dir):
        shutil.rmtree(images_dir)
    os.makedirs(images_dir, mode=0o700)
    dump_s = timed(["criu", "dump", "-t", str(pid), "-D", images_dir, "-o", "dump.log"])
    started = time.monotonic()
    # tar writes straight into the socket: no copy loop in between (a blocking fd: a
    # Python socket with a timeout is non-blocking underneath, which tar cannot use).
    sock.settimeout(None)
    subprocess.run(["tar", "-C", images_dir, "-cf", "-", "."], stdout=sock.fileno(), check=True)
    sent = sum(os.path.getsize(os.path.join(images_dir, name)) for name in os.listdir(images_dir))
    sock.shutdown(socket.SHUT_WR)
    send_s = round(time.monotonic() - started, 3)
    sock.settimeout(600)
    answer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
    shutil.rmtree(images_dir, ignore_errors=True)
    result = {"dump_s": dump_s, "send_s": send_s, "bytes": sent, "target": json.loads(answer or b"{}")}
    if not result["target"].get("ok"):
        raise SystemExit("the target did not restore: %s" % json.dumps(result))
    return result


def receive(port: int, images_dir: str, result_path: str) -> t.Dict[str, t.Any]:
    if os.path.exists(images_dir):
        shutil.rmtree(images_dir)
    os.makedirs(images_dir, mode=0o700)
    server = socket.create_server(("0.0.0.0", port), reuse_port=True)
    server.settimeout(300)
    conn, _peer = server.accept()
    conn.settimeout(None)
    started = time.monotonic()
    # tar reads straight from the socket: no copy loop in between.
    tar = subprocess.run(["tar", "-C", images_dir, "-xf", "-"], stdin=conn.fileno(), check=False)
    received = sum(os.path.getsize(os.path.join(images_dir, name)) for name in os.listdir(images_dir))
    receive_s = round(time.monotonic() - started, 3)
    result: t.Dict[str, t.Any] = {"ok": False, "bytes": received, "receive_s": receive_s}
    try:
        if tar.returncode:
            raise subprocess.CalledProcessError(tar.returncode, "tar -x")
        result["restore_s"] = timed(["criu", "restore", "-d", "-D", images_dir, "-o", "restore.log"])
        result["ok"] = True
    except subprocess.CalledProcessError as exc:
        result["error"] = str(exc)
    conn.sendall(json.dumps(result).encode())
    conn.close()
    server.close()
    shutil.rmtree(images_dir, ignore_errors=True)
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return result


def dump(pid: int, images_dir: str) -> t.Dict[str, t.Any]:
    """`criu dump` alone, timed around the command (the module-cost comparison)."""
    if os.path.exists(images_dir):
        shutil.rmtree(images_dir)
    os.makedirs(images_dir, mode=0o700)
    return {"duration_s": timed(["criu", "dump", "-t", str(pid), "-D", images_dir, "-o", "dump.log"])}


def restore(pid: int, images_dir: str) -> t.Dict[str, t.Any]:
    """`criu restore -d` alone, timed, once the dumped PID is free again (reaped by the init)."""
    deadline = time.monotonic() + 30
    while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"duration_s": timed(["criu", "restore", "-d", "-D", images_dir, "-o", "restore.log"])}


def main(argv: t.Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("send")
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--dir", required=True)
    s.add_argument("--to", required=True)
    r = sub.add_parser("receive")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--dir", required=True)
    r.add_argument("--result", required=True)
    for name in ("dump", "restore"):
        alone = sub.add_parser(name)
        alone.add_argument("--pid", type=int, required=True)
        alone.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    if args.role == "send":
        out = send(args.pid, args.dir, args.to)
    elif args.role == "dump":
        out = dump(args.pid, args.dir)
    elif args.role == "restore":
        out = restore(args.pid, args.dir)
    else:
        out = receive(args.port, args.dir, args.result)
    print(json.dumps(out))
    return 0 if out.get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
