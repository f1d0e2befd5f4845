"""Helpers shared by the scenarios' testinfra tests: start the stateful workload,
read its state, wait for it to move. Every helper asserts on what the process
itself publishes, never on exit codes alone."""
import json
import time

WORKLOAD = "/usr/local/bin/fleet_criu_workload.py"


def start_workload(host, state_dir, mem_mb=8):
    """Start the workload detached (own session, stdio on /dev/null); return its pid."""
    host.run("rm -rf %s", state_dir)
    cmd = host.run(
        "setsid python3 %s %s --mem-mb %s </dev/null >/dev/null 2>&1 & echo $!",
        WORKLOAD, state_dir, str(mem_mb),
    )
    assert cmd.rc == 0, cmd.stderr
    pid = int(cmd.stdout.strip())
    wait_for_counter(host, state_dir, above=3)
    return pid


def probe(host, what, state_dir):
    """The workload's own --probe answer (counter, token, checksum, pid, ...) as a string."""
    return host.check_output("python3 %s --probe %s %s", WORKLOAD, what, state_dir)


def read_state(host, state_dir):
    out = host.check_output("cat %s/state.json", state_dir)
    return json.loads(out)


def wait_for_counter(host, state_dir, above, timeout=20.0):
    """Wait until the published counter exceeds `above`; return the state."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        cmd = host.run("cat %s/state.json", state_dir)
        if cmd.rc == 0 and cmd.stdout.strip():
            last = json.loads(cmd.stdout)
            if last["counter"] > above:
                return last
        time.sleep(0.3)
    raise AssertionError(f"counter did not pass {above} within {timeout}s (last state: {last})")


def memory_checksum(host, pid, state_dir, timeout=20.0):
    """Ask the process to hash its buffer from memory (SIGUSR1); return the sha256."""
    before = read_state(host, state_dir)["checksum_serial"]
    host.check_output("kill -USR1 %s", str(pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(host, state_dir)
        if state["checksum_serial"] > before:
            return state["memory_sha256"]
        time.sleep(0.2)
    raise AssertionError(f"process {pid} did not answer the checksum request")


def pid_alive(host, pid):
    """True if pid is a live task (a zombie does not count)."""
    status = host.run("cat /proc/%s/status", str(pid))
    return status.rc == 0 and "\nState:\tZ" not in status.stdout


def hostname(host):
    """The inventory name of the host a test runs against."""
    return host.backend.get_hostname()


def running_pids(host, pattern):
    """PIDs whose command line matches pattern (pgrep -f). Write the pattern so that it
    does not match itself, e.g. "[f]leet_criu_workload.py ...", since pgrep runs in a shell."""
    return [int(pid) for pid in host.run("pgrep -f %s", pattern).stdout.split()]


def load_json(path):
    """A JSON file on the controller (what converge recorded for the verifier)."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
