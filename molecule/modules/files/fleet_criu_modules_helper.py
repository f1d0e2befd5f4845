"""Small read-mostly helpers for the `modules` scenario's converge (run in the container).

  observe STATE_DIR [SECONDS]   print JSON about the workload publishing STATE_DIR/state.json:
                                its pid, whether that pid is a live task, its State letter
                                (/proc/PID/status), and whether its counter moves within SECONDS
  edit-manifest DIR KEY.PATH VALUE
                                set one field of DIR/fleet-criu-manifest.json (a test of the
                                compatibility checks, on a copy of a dump)
  corrupt DIR FILE OFFSET       flip one byte of DIR/FILE at OFFSET (size unchanged)
"""
import json
import os
import sys
import time


def read_state(state_dir):
    with open(os.path.join(state_dir, "state.json"), encoding="utf-8") as handle:
        return json.load(handle)


def task_state(pid):
    """The State letter of a task, or None when there is no such task."""
    try:
        with open("/proc/%d/status" % pid, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("State:"):
                    return line.split()[1]
    except FileNotFoundError:
        return None
    return None


def observe(state_dir, seconds):
    first = read_state(state_dir)
    time.sleep(seconds)
    last = read_state(state_dir)
    state = task_state(first["pid"])
    print(json.dumps({
        "pid": first["pid"],
        "state": state,
        "alive": state is not None and state not in ("Z", "X"),
        "stopped": state in ("T", "t"),
        "token": last["token"],
        "counter_first": first["counter"],
        "counter_last": last["counter"],
        "moving": last["counter"] > first["counter"],
    }))


def edit_manifest(images_dir, dotted, value):
    path = os.path.join(images_dir, "fleet-criu-manifest.json")
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    node = manifest
    keys = dotted.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    print(json.dumps({"changed": True}))


def corrupt(images_dir, name, offset):
    path = os.path.join(images_dir, name)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
    print(json.dumps({"changed": True, "file": name, "offset": offset}))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "observe":
        observe(args[0], float(args[1]) if len(args) > 1 else 0.6)
    elif cmd == "edit-manifest":
        edit_manifest(args[0], args[1], args[2])
    elif cmd == "corrupt":
        corrupt(args[0], args[1], int(args[2]))
    else:
        raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main()
