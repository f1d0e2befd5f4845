"""The benchmark's control-node side (scripts/bench -> molecule/bench): everything that is
not orchestration lives here, so the converge only runs steps and records.

  report.py plan                          the run's plan as JSON, from FLEET_CRIU_BENCH_* (see below)
  report.py run --out FILE -- CMD...      run CMD (ansible-playbook); record its wall time, rc, the
                                          peak RSS of its process tree (sampled from /proc every
                                          0.2 s) and the figures of fleet.criu's summary table
  report.py record --results FILE [--json OBJ] [--merge FILE]...
                                          append one measurement (a JSON object) to the results
  report.py render --results FILE --doc MD --png PNG [--notes MD]
                                          the table of ratios (printed), docs/performance.md and
                                          the downtime plot

Environment (all optional):
  FLEET_CRIU_BENCH_SIZES          workload sizes in MiB for the migrations ("64 256 1024")
  FLEET_CRIU_BENCH_REPS           repetitions of every comparison (3)
  FLEET_CRIU_BENCH_REPS_LARGEST   repetitions at the largest size (as FLEET_CRIU_BENCH_REPS)
  FLEET_CRIU_BENCH_METHODS        "raw stream controller shared lazy"
  FLEET_CRIU_BENCH_MODULE_MB      workload size of the module-cost comparison (the largest size)
  FLEET_CRIU_BENCH_SCALE_MB       workload size on each host of the fleet-scaling runs (16)
  FLEET_CRIU_BENCH_SCALE_HOSTS    fleet sizes of the scaling runs ("1 4 8")
  FLEET_CRIU_BENCH_PHASES         "scale module migrate"

Nothing here asserts on speed: the benchmark reports, it never fails a run for being slow.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import typing as t

METHODS = ("raw", "stream", "controller", "shared", "lazy")
STOP_AND_COPY = ("stream", "controller", "shared")
LABELS = {
    "raw": "raw pipeline (criu dump, tar over TCP, criu restore -d)",
    "stream": "fleet.criu.migrate, stream (default)",
    "controller": "fleet.criu.migrate, controller",
    "shared": "fleet.criu.migrate, shared volume",
    "lazy": "fleet.criu.migrate, lazy pages (post-copy)",
}
MIB = 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------- plan

def env_ints(name: str, default: str) -> t.List[int]:
    return [int(x) for x in (os.environ.get(name) or default).split()]


def env_words(name: str, default: str) -> t.List[str]:
    return (os.environ.get(name) or default).split()


def rotate(items: t.Sequence[str], by: int) -> t.List[str]:
    """The methods in a different order at each repetition: none always goes first."""
    by %= max(len(items), 1)
    return list(items[by:]) + list(items[:by])


def plan() -> t.Dict[str, t.Any]:
    sizes = env_ints("FLEET_CRIU_BENCH_SIZES", "64 256 1024")
    reps = int(os.environ.get("FLEET_CRIU_BENCH_REPS") or 3)
    reps_largest = int(os.environ.get("FLEET_CRIU_BENCH_REPS_LARGEST") or reps)
    methods = env_words("FLEET_CRIU_BENCH_METHODS", " ".join(METHODS))
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise SystemExit("unknown method(s) %s; known: %s" % (unknown, " ".join(METHODS)))
    phases = env_words("FLEET_CRIU_BENCH_PHASES", "scale module migrate")
    scale_hosts = env_ints("FLEET_CRIU_BENCH_SCALE_HOSTS", "1 4 8")
    reps_of = {size: (reps_largest if size == max(sizes) else reps) for size in sizes}
    migrations = []
    for size in sizes:
        # Alternating: every repetition runs each method once, in a rotated order.
        for rep in range(1, reps_of[size] + 1):
            for order, method in enumerate(rotate(methods, rep - 1)):
                migrations.append({"size_mb": size, "rep": rep, "order": order, "method": method,
                                   "tag": "%s-%s-r%s" % (method, size, rep)})
    scale = []
    for rep in range(1, reps + 1):
        for hosts in rotate([str(h) for h in scale_hosts], rep - 1):
            scale.append({"rep": rep, "hosts": int(hosts), "tag": "scale%s-r%s" % (hosts, rep)})
    module_mb = int(os.environ.get("FLEET_CRIU_BENCH_MODULE_MB") or max(sizes))
    return {
        "sizes": sizes, "reps": reps, "reps_of": {str(k): v for k, v in reps_of.items()}, "methods": methods,
        "phases": phases, "migrations": migrations if "migrate" in phases else [],
        "scale": scale if "scale" in phases else [], "scale_hosts": scale_hosts,
        "scale_mb": int(os.environ.get("FLEET_CRIU_BENCH_SCALE_MB") or 16),
        "module_mb": module_mb,
        "module": [{"rep": rep, "raw_first": rep % 2 == 1} for rep in range(1, reps + 1)] if "module" in phases else [],
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
    }


# ---------------------------------------------------------------------------- run

def tree_rss(root: int) -> t.Tuple[int, int]:
    """(sum, largest) resident set size in bytes of ROOT and all its descendants."""
    children: t.Dict[int, t.List[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, encoding="utf-8", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: ppid follows the last ')'.
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    total = largest = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open("/proc/%d/statm" % pid, encoding="utf-8") as handle:
                rss = int(handle.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


ANSI = re.compile(r"\x1b\[[0-9;]*m")
# A line of the table: plain text as fleet.criu.summary prints it (or, from runs before
# 0.3.0, a quoted string of debug's list).
SUMMARY_ROW = re.compile(r'^\s*"?(?P<row>.*?)"?,?\s*$')


def parse_summary(stdout: str, source: str, target: str) -> t.Dict[str, t.Any]:
    """The figures of fleet.criu's summary table (report role) for one pair.

    Columns: host, process, action, result, size MiB, frozen ms, downtime s, total s;
    the process column may hold spaces, so the figures are read from the right.
    """
    out: t.Dict[str, t.Any] = {}
    for line in stdout.splitlines():
        match = SUMMARY_ROW.match(line)
        if not match:
            continue
        row = match.group("row")
        if row.startswith("fleet.criu migrate (run "):
            out["outcome_line"] = row
            if "%s -> %s migrated" % (source, target) in row:
                out["outcome"] = "migrated"
            continue
        cols = row.split()
        if len(cols) < 8:
            continue
        if cols[0] == source and "dump" in cols:
            out["frozen_ms"] = number(cols[-3])
            out["engine_dump_s"] = number(cols[-1])
        elif cols[0] == target and ("restore" in cols or "migrate" in cols):
            out["size_mib"] = number(cols[-4])
            out["engine_downtime_s"] = number(cols[-2])
            out["engine_total_s"] = number(cols[-1])
    return out


def number(text: str) -> t.Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def run(out_path: str, argv: t.Sequence[str], source: str, target: str) -> t.Dict[str, t.Any]:
    started = time.monotonic()
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    peak = {"sum": 0, "max": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, largest = tree_rss(proc.pid)
            peak["sum"] = max(peak["sum"], total)
            peak["max"] = max(peak["max"], largest)
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout = ANSI.sub("", proc.communicate()[0])
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    result: t.Dict[str, t.Any] = {
        "rc": proc.returncode, "ok": proc.returncode == 0, "wall_s": round(wall, 3),
        "peak_tree_rss_mib": round(peak["sum"] / MIB, 1), "peak_proc_rss_mib": round(peak["max"] / MIB, 1),
    }
    if source and target:
        result.update(parse_summary(stdout, source, target))
    if proc.returncode != 0:
        lines = [line for line in stdout.splitlines() if line.strip()]
        failed = [line for line in lines if "fatal:" in line or "FAILED" in line or "ERROR" in line or "msg" in line]
        result["error"] = "\n".join((failed[-8:] or lines[-12:]))[-3000:]
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    with open(out_path + ".log", "w", encoding="utf-8") as handle:
        handle.write(stdout)
    return result


# ---------------------------------------------------------------------------- record

def this_machine() -> t.Dict[str, t.Any]:
    """The control node (which here also runs the containers): cores, memory, kernel."""
    with open("/proc/meminfo", encoding="utf-8") as handle:
        mem_kib = next(int(line.split()[1]) for line in handle if line.startswith("MemTotal:"))
    return {"cpus": os.cpu_count(), "mem_gib": round(mem_kib / 1048576, 1), "kernel": os.uname().release,
            "engine": engine_version()}


def engine_version() -> str:
    """The commit measured, and whether the engine's files differed from it."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "plugins", "playbooks", "roles"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes to the engine" if dirty else "")


def record(results: str, obj: t.Optional[str], merge: t.Sequence[str]) -> t.Dict[str, t.Any]:
    data: t.Dict[str, t.Any] = json.loads(obj) if obj else {}
    if data.get("kind") == "meta":
        data.update(this_machine())
    for path in merge:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read().strip()
        except OSError as exc:
            data.setdefault("error", "cannot read %s: %s" % (path, exc))
            continue
        # A file may hold a JSON object, or command output whose last line is one.
        for line in reversed(text.splitlines() or [""]):
            try:
                extra = json.loads(line)
            except ValueError:
                continue
            if isinstance(extra, dict):
                data.update({k: v for k, v in extra.items() if k not in data or data[k] in (None, "")})
                break
    data["recorded"] = time.time()
    with open(results, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(data, sort_keys=True) + "\n")
    return data


# ---------------------------------------------------------------------------- statistics

@dataclasses.dataclass
class Spread:
    """The median of some repetitions and their range (min..max)."""

    values: t.List[float]

    @property
    def ok(self) -> bool:
        return bool(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, digits: int = 2, unit: str = "") -> str:
        if not self.values:
            return "-"
        if len(self.values) == 1:
            return "%.*f%s" % (digits, self.values[0], unit)
        return "%.*f%s (%.*f..%.*f, n=%d)" % (digits, self.median, unit, digits, min(self.values),
                                              digits, max(self.values), len(self.values))


def spread(values: t.Iterable[t.Optional[float]]) -> Spread:
    return Spread([float(v) for v in values if isinstance(v, (int, float))])


@dataclasses.dataclass
class Verdict:
    target: str
    measured: str
    met: t.Optional[bool]
    reason: str = ""
    informational: bool = False

    @property
    def word(self) -> str:
        if self.informational:
            return "(no target)"
        return {True: "met", False: "**MISSED**", None: "not measured"}[self.met]


class Results:
    """The measurements of one run, read from the results file."""

    def __init__(self, rows: t.List[t.Dict[str, t.Any]]) -> None:
        self.rows = rows
        self.meta = next((r for r in rows if r.get("kind") == "meta"), {})
        self.migrations = [r for r in rows if r.get("kind") == "migration"]
        self.module = [r for r in rows if r.get("kind") == "module"]
        self.scale = [r for r in rows if r.get("kind") == "scale"]
        self.integrity = [r for r in rows if r.get("kind") == "integrity"]
        self.sizes = sorted({int(r["size_mb"]) for r in self.migrations})
        self.methods = [m for m in METHODS if any(r["method"] == m for r in self.migrations)]

    @classmethod
    def load(cls, path: str) -> "Results":
        with open(path, encoding="utf-8") as handle:
            return cls([json.loads(line) for line in handle if line.strip()])

    def runs(self, method: str, size: int) -> t.List[t.Dict[str, t.Any]]:
        return [r for r in self.migrations if r["method"] == method and int(r["size_mb"]) == size]

    def good(self, method: str, size: int) -> t.List[t.Dict[str, t.Any]]:
        return [r for r in self.runs(method, size) if r.get("ok") and isinstance(r.get("gap_s"), (int, float))]

    def downtime(self, method: str, size: int) -> Spread:
        return spread(r["gap_s"] for r in self.good(method, size))

    def paired(self, method: str, size: int, how: t.Callable[[float, float], float]) -> Spread:
        """how(method's downtime, raw's downtime) per repetition (both ran in the same one)."""
        raw = {r["rep"]: r["gap_s"] for r in self.good("raw", size)}
        return spread(how(r["gap_s"], raw[r["rep"]]) for r in self.good(method, size) if r["rep"] in raw)

    def failures(self) -> t.List[t.Dict[str, t.Any]]:
        return [r for r in self.migrations + self.scale if not r.get("ok")]


def fmt_s(value: t.Optional[float], digits: int = 2) -> str:
    return "-" if value is None else "%.*f" % (digits, value)


# ---------------------------------------------------------------------------- verdicts

def verdicts(res: Results) -> t.List[Verdict]:
    out: t.List[Verdict] = []
    largest = max(res.sizes) if res.sizes else None
    big = 1024 if 1024 in res.sizes else largest
    caveat = "" if big == 1024 else " (1 GiB not measured: at %s MiB)" % big
    for method in [m for m in STOP_AND_COPY if m in res.methods]:
        for size in res.sizes:
            mine, raw = res.downtime(method, size), res.downtime("raw", size)
            target = "%s downtime <= raw + 1.0 s at %s MiB" % (method, size)
            if not (mine.ok and raw.ok):
                out.append(Verdict(target, "-", None, failed_reason(res, method, size)))
                continue
            extra = res.paired(method, size, lambda a, b: a - b)
            met = mine.median <= raw.median + 1.0
            out.append(Verdict(target, "%s s vs raw %s s: %+.2f s (per repetition %s)" % (
                fmt_s(mine.median), fmt_s(raw.median), mine.median - raw.median, extra.fmt(2, " s")), met,
                "" if met else downtime_reason(res, method, size)))
        if big is not None:
            mine, raw = res.downtime(method, big), res.downtime("raw", big)
            target = "%s downtime <= 1.1x raw at 1 GiB%s" % (method, caveat)
            if mine.ok and raw.ok:
                ratio = res.paired(method, big, lambda a, b: a / b)
                met = mine.median <= 1.1 * raw.median
                out.append(Verdict(target, "%.2fx (%s s vs %s s; per repetition %s)" % (
                    mine.median / raw.median, fmt_s(mine.median), fmt_s(raw.median), ratio.fmt(2, "x")), met,
                    "" if met else downtime_reason(res, method, big)))
            else:
                out.append(Verdict(target, "-", None, failed_reason(res, method, big)))
    if big is not None and "lazy" in res.methods:
        lazy = res.downtime("lazy", big)
        best = min(((res.downtime(m, big).median, m) for m in STOP_AND_COPY if res.downtime(m, big).ok), default=None)
        target = "lazy-pages downtime at 1 GiB <= 0.5x the best stop-and-copy%s" % caveat
        if lazy.ok and best:
            met = lazy.median <= 0.5 * best[0]
            out.append(Verdict(target, "%.2fx (lazy %s vs %s %s s)" % (lazy.median / best[0], lazy.fmt(2, " s"),
                                                                       best[1], fmt_s(best[0])), met,
                       "" if met else lazy_reason(res, big)))
        else:
            out.append(Verdict(target, "-", None, failed_reason(res, "lazy", big)))
    for step in ("dump", "restore"):
        ratio = spread(r["mod_%s_s" % step] / r["raw_%s_s" % step] for r in res.module
                       if r.get("mod_%s_s" % step) and r.get("raw_%s_s" % step))
        size = res.module[0]["size_mb"] if res.module else None
        target = "module %s <= 1.2x raw criu at 1 GiB%s" % (
            step, "" if size in (None, 1024) else " (1 GiB not measured: at %s MiB)" % size)
        if not ratio.ok:
            out.append(Verdict(target, "-", None, "no successful repetition"))
            continue
        mod = spread(r.get("mod_%s_s" % step) for r in res.module)
        raw = spread(r.get("raw_%s_s" % step) for r in res.module)
        met = ratio.median <= 1.2
        reason = module_reason(res, step) if not met else (
            "met on the median only: the repetitions ranged %.2fx..%.2fx. See the notes below."
            % (min(ratio.values), max(ratio.values)) if max(ratio.values) > 1.2 else "")
        out.append(Verdict(target, "%s (module %s, raw %s)" % (ratio.fmt(2, "x"), mod.fmt(2, " s"), raw.fmt(2, " s")),
                           met, reason))
    one = {r["rep"]: r["wall_s"] for r in res.scale if r["hosts"] == 1 and r.get("ok")}
    for n in sorted({r["hosts"] for r in res.scale} - {1}):
        ratio = spread(r["wall_s"] / one[r["rep"]] for r in res.scale if r["hosts"] == n and r.get("ok") and r["rep"] in one)
        target = "%d hosts in <= 2x the time of one" % n if n == 8 else "%d hosts vs one (no target; for the shape)" % n
        if not ratio.ok:
            out.append(Verdict(target, "-", None, "no successful repetition"))
            continue
        if n != 8:
            out.append(Verdict(target, ratio.fmt(2, "x"), None, informational=True))
            continue
        met = ratio.median <= 2.0
        out.append(Verdict(target, ratio.fmt(2, "x"), met, "" if met else scale_reason(res, n)))
    mem = {size: spread(r.get("peak_tree_rss_mib") for r in res.good("controller", size)) for size in res.sizes}
    measured = [s for s in res.sizes if mem[s].ok]
    target = "control-node memory flat in image size (controller transfer)"
    if len(measured) >= 2:
        # The pair (256 MiB against 1 GiB) when both ran, else the extremes.
        lo, hi = (256, 1024) if {256, 1024} <= set(measured) else (min(measured), max(measured))
        ratio = mem[hi].median / mem[lo].median
        growth = mem[hi].median - mem[lo].median
        met = ratio <= 1.2
        out.append(Verdict(target, "peak RSS of the ansible-playbook tree %s MiB at %s MiB vs %s MiB at %s MiB: %.2fx "
                           "(+%.0f MiB for +%d MiB of images)" % (fmt_s(mem[hi].median, 0), hi, fmt_s(mem[lo].median, 0),
                                                                  lo, ratio, growth, hi - lo), met,
                           "" if met else "the control node's memory grows with the images: see the notes"))
    else:
        out.append(Verdict(target, "-", None, "needs controller runs at two sizes"))
    return out


def engine_vs_seen(res: Results, method: str, size: int) -> str:
    runs = res.good(method, size)
    engine = spread(r.get("engine_downtime_s") for r in runs)
    seen = spread(r.get("gap_s") for r in runs)
    if not seen.ok:
        return ""
    if not engine.ok:
        return "the process saw %s s; the playbook's summary shows no downtime_s for this method" % fmt_s(seen.median)
    return "the engine's own downtime_s says %s s, the process saw %s s" % (fmt_s(engine.median), fmt_s(seen.median))


def downtime_reason(res: Results, method: str, size: int) -> str:
    raw = res.good("raw", size)
    parts = []
    dump = spread(r.get("dump_s") for r in raw)
    if dump.ok:
        raw_restore = spread((r.get("target") or {}).get("restore_s") for r in raw)
        parts.append("raw: dump %s s, copy %s s, restore %s s" % (
            fmt_s(dump.median), fmt_s(spread(r.get("send_s") for r in raw).median if raw else None),
            fmt_s(raw_restore.median if raw_restore.ok else None)))
    seen = engine_vs_seen(res, method, size)
    if seen:
        parts.append(seen)
    send = spread(r.get("engine_dump_s") for r in res.good(method, size))
    if send.ok:
        parts.append("its send step's dump_s %s s" % fmt_s(send.median))
    frozen = spread(r.get("frozen_ms") for r in res.good(method, size))
    if frozen.ok:
        parts.append("criu froze the tree for %s ms of it" % fmt_s(frozen.median, 0))
    return "; ".join(parts) + ". See the notes below."


def lazy_reason(res: Results, size: int) -> str:
    seen = engine_vs_seen(res, "lazy", size)
    return (seen + ". " if seen else "") + "See the notes below."


def module_reason(res: Results, step: str) -> str:
    extra = spread(r["mod_%s_s" % step] - r["raw_%s_s" % step] for r in res.module
                   if r.get("mod_%s_s" % step) and r.get("raw_%s_s" % step))
    return "the module adds %s per %s over raw criu. See the notes below." % (extra.fmt(2, " s"), step)


def scale_reason(res: Results, n: int) -> str:
    one = spread(r["wall_s"] for r in res.scale if r["hosts"] == 1 and r.get("ok"))
    many = spread(r["wall_s"] for r in res.scale if r["hosts"] == n and r.get("ok"))
    return "one host %s s, %d hosts %s s, with %d forks on %s CPU cores. See the notes below." % (
        fmt_s(one.median, 1), n, fmt_s(many.median, 1), n, os.cpu_count())


def failed_reason(res: Results, method: str, size: int) -> str:
    bad = [r for r in res.runs(method, size) if not r.get("ok")]
    if not bad:
        return "not run"
    return "%d of %d runs failed: %s" % (len(bad), len(res.runs(method, size)), describe_failure(bad[0]))


def describe_failure(row: t.Mapping[str, t.Any]) -> str:
    """Why a run counts as failed, from what was recorded."""
    if row.get("error"):
        return one_line(row["error"])
    if row.get("kind") != "migration":
        return "rc %s" % row.get("rc", "?")
    if row.get("at") == "nowhere":
        return "the workload runs on neither host"
    if row.get("copies", 1) > 1:
        return "the workload runs on both hosts"
    if row.get("at") != row.get("dst"):
        return "the workload is still on %s" % short(row.get("at"))
    if row.get("gap_s") is None:
        return "the process moved, but its largest gap could not be read (the workload did not answer)"
    return "rc %s" % row.get("rc", "?")


def one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


# ---------------------------------------------------------------------------- output

def table(head: t.Sequence[str], rows: t.Sequence[t.Sequence[str]]) -> t.List[str]:
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _column in head) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def ratio_table(res: Results) -> t.List[t.List[str]]:
    """Per method and size: downtime, ratio to raw and difference to raw (median, min..max)."""
    rows = []
    for method in res.methods:
        for size in res.sizes:
            n_all = len(res.runs(method, size))
            down = res.downtime(method, size)
            if method == "raw":
                ratio, diff = "1", "0"
            else:
                ratio = res.paired(method, size, lambda a, b: a / b).fmt(2, "x")
                diff = res.paired(method, size, lambda a, b: a - b).fmt(2, " s")
            engine = spread(r.get("engine_downtime_s") for r in res.good(method, size))
            wall = spread(r.get("wall_s") for r in res.good(method, size))
            rows.append([method, str(size), down.fmt(2, " s"), ratio, diff, engine.fmt(2, " s") if engine.ok else "-",
                         wall.fmt(1, " s") if wall.ok else "-", "%d/%d" % (len(down.values), n_all)])
    return rows


RATIO_HEAD = ["method", "MiB", "downtime seen by the process", "x raw", "- raw", "engine's downtime_s",
              "playbook wall", "ok runs"]


def print_table(res: Results, verdict_list: t.List[Verdict]) -> None:
    rows = ratio_table(res)
    widths = [max(len(str(x)) for x in col) for col in zip(RATIO_HEAD, *rows)]
    print("\nfleet.criu benchmark: median (min..max, n) of the repetitions; ratios per repetition against raw")
    for row in [RATIO_HEAD] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print()
    for v in verdict_list:
        print("%-13s %s: %s%s" % (v.word.replace("*", ""), v.target, v.measured, (" -- " + v.reason) if v.reason else ""))
    for bad in Results(res.rows).failures():
        what = bad.get("method", "scale%s" % bad.get("hosts"))
        print("FAILED run: %s %s MiB, repetition %s: %s" % (
            what, bad.get("size_mb", ""), bad.get("rep", ""), describe_failure(bad)))


def plot(res: Results, png: str) -> t.Optional[str]:
    """Downtime against memory size, one line per method (median, min..max as error bars)."""
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    except ImportError:
        return "matplotlib is not installed in this venv: no plot (scripts/bench installs it)"
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for method in res.methods:
        xs, ys, lo, hi = [], [], [], []
        for size in res.sizes:
            down = res.downtime(method, size)
            if down.ok:
                xs.append(size)
                ys.append(down.median)
                lo.append(down.median - min(down.values))
                hi.append(max(down.values) - down.median)
        if xs:
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=LABELS[method])
    ax.set_xscale("log", base=2)
    ax.set_xticks(res.sizes)
    ax.set_xticklabels([str(s) for s in res.sizes])
    ax.set_xlabel("workload memory (MiB of touched random bytes)")
    # Log scale: the methods differ by two orders of magnitude.
    ax.set_yscale("log")
    ax.set_ylabel("downtime seen by the process (s, log scale)")
    ax.set_title("Migration downtime between two containers (median, min..max)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return None


def render(res: Results, doc: str, png: str, notes: t.Optional[str]) -> None:
    verdict_list = verdicts(res)
    print_table(res, verdict_list)
    plot_problem = plot(res, png) if res.sizes else "no migrations measured: no plot"
    meta = res.meta
    reps_of = meta.get("reps_of") or {}
    lines = [
        "# Performance",
        "",
        "Written by `./scripts/bench` (Molecule scenario `bench`, code in `molecule/bench/`) from one run on "
        "%s: %s. Compare the ratios, not the absolute times: the machines are shared, small VMs "
        "(2 cores here), and every figure moves between runs." % (meta.get("started", "?"), machine(meta)),
        "",
        "Run configuration: sizes %s MiB, repetitions %s, methods %s; module cost at %s MiB; "
        "fleet scaling on %s hosts with %s MiB each. Re-run with `./scripts/bench` (see "
        "`molecule/bench/files/report.py` for the `FLEET_CRIU_BENCH_*` settings)." % (
            " ".join(str(s) for s in res.sizes) or "-",
            ", ".join("%s at %s MiB" % (v, k) for k, v in sorted(reps_of.items(), key=lambda kv: int(kv[0]))) or "-",
            " ".join(res.methods) or "-", meta.get("module_mb", "-"),
            " / ".join(str(h) for h in meta.get("scale_hosts", [])) or "-", meta.get("scale_mb", "-")),
        "",
        "## Targets (issue 10)",
        "",
    ]
    lines += table(["target", "measured", "verdict", "why, when missed"],
                   [[v.target, v.measured, v.word, v.reason] for v in verdict_list])
    lines += ["", "## Downtime", ""]
    if plot_problem:
        lines += ["(%s)" % plot_problem, ""]
    else:
        lines += ["![Downtime against memory size, one line per method](%s)" % os.path.basename(png), ""]
    lines += [
        "Downtime is what the process saw: the workload (`molecule/bench/files/fleet_criu_bench_workload.py`) "
        "wakes every 10 ms, reads the wall clock and keeps the largest gap between two wake-ups; the gap is "
        "reset right before each migration and read on the host it runs on afterwards. \"x raw\" and \"- raw\" "
        "pair each run with the raw pipeline's run of the same repetition (the methods alternate within every "
        "repetition, in a rotated order). \"engine's downtime_s\" is the `downtime s` column of the playbook's "
        "own summary; \"playbook wall\" is the whole `ansible-playbook` run.",
        "",
    ]
    lines += table(RATIO_HEAD, ratio_table(res))
    lines += ["", "The raw pipeline (`molecule/bench/files/fleet_criu_bench_raw.py`): the target listens first; "
              "the source connects, runs `criu dump -t PID -D DIR`, streams `tar -c` of the images over that plain "
              "TCP connection (no TLS, no checksums), and the target runs `criu restore -d` the moment the stream "
              "ends. No Ansible task sits between the freeze and the restore.", ""]
    lines += breakdown_section(res)
    lines += module_section(res) + scale_section(res) + memory_section(res) + integrity_section(res)
    if notes and os.path.exists(notes):
        with open(notes, encoding="utf-8") as handle:
            lines += ["", handle.read().rstrip(), ""]
    lines += ["## Every run", ""]
    lines += table(["kind", "method/hosts", "MiB", "rep", "order", "from -> to", "ok", "seen s", "engine s", "wall s",
                    "peak RSS MiB", "error"],
                   [[r.get("kind", ""), str(r.get("method", r.get("hosts", ""))), str(r.get("size_mb", "")),
                     str(r.get("rep", "")), str(r.get("order", "")),
                     "%s -> %s" % (short(r.get("src")), short(r.get("dst"))) if r.get("src") else "",
                     "yes" if r.get("ok") else "NO", fmt_s(num(r.get("gap_s")), 3), fmt_s(num(r.get("engine_downtime_s"))),
                     fmt_s(num(r.get("wall_s")), 1), fmt_s(num(r.get("peak_tree_rss_mib")), 0),
                     "" if r.get("ok") else one_line(describe_failure(r), 160)]
                    for r in res.migrations + res.scale])
    with open(doc, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines).rstrip() + "\n")
    print("\nwrote %s%s" % (doc, "" if plot_problem else " and %s" % png))


def num(value: t.Any) -> t.Optional[float]:
    return float(value) if isinstance(value, (int, float)) else None


def short(host: t.Any) -> str:
    return str(host or "").replace("fleet-criu-bench-", "")


def machine(meta: t.Mapping[str, t.Any]) -> str:
    return "%s CPU cores, %s GiB RAM, kernel %s, criu %s, collection at %s" % (
        meta.get("cpus", "?"), meta.get("mem_gib", "?"), meta.get("kernel", "?"), meta.get("criu", "?"),
        meta.get("engine", "?"))


def breakdown_section(res: Results) -> t.List[str]:
    """Where the downtime goes: raw's own steps, and what the engine's summary says of its runs."""
    rows = []
    for size in res.sizes:
        raw = res.good("raw", size)
        if raw:
            rows.append(["raw", str(size), spread(r.get("dump_s") for r in raw).fmt(2, " s"),
                         spread(r.get("send_s") for r in raw).fmt(2, " s"),
                         spread((r.get("target") or {}).get("restore_s") for r in raw).fmt(2, " s"),
                         "-", "-", res.downtime("raw", size).fmt(2, " s")])
        for method in [m for m in res.methods if m != "raw"]:
            runs = res.good(method, size)
            if not runs:
                continue
            engine = spread(r.get("engine_downtime_s") for r in runs)
            rows.append([method, str(size), "-", "-", "-", spread(r.get("frozen_ms") for r in runs).fmt(0, " ms"),
                         spread(r.get("engine_dump_s") for r in runs).fmt(2, " s") + " / "
                         + (engine.fmt(2, " s") if engine.ok else "none"),
                         res.downtime(method, size).fmt(2, " s")])
    if not rows:
        return []
    return ["", "### Where the downtime goes", "",
            "For raw: its own timings (criu dump, tar through the socket, criu restore -d). For the playbook: "
            "the summary's frozen time (criu's freeze), the source row's total (the send step's dump_s: for "
            "`stream` the dump plus streaming the images over TLS) and the target row's downtime_s, beside "
            "what the process saw.", ""] + table(
        ["method", "MiB", "raw dump", "raw copy", "raw restore", "criu frozen", "engine dump_s / downtime_s",
         "seen by the process"], rows)


def module_section(res: Results) -> t.List[str]:
    if not res.module:
        return []
    rows = []
    for step in ("dump", "restore"):
        raw = spread(r.get("raw_%s_s" % step) for r in res.module)
        mod = spread(r.get("mod_%s_s" % step) for r in res.module)
        ratio = spread(r["mod_%s_s" % step] / r["raw_%s_s" % step] for r in res.module
                       if r.get("mod_%s_s" % step) and r.get("raw_%s_s" % step))
        rows.append([step, raw.fmt(2, " s"), mod.fmt(2, " s"), ratio.fmt(2, "x")])
    frozen = spread(r.get("mod_frozen_ms") for r in res.module)
    return ["", "## Module cost (%s MiB)" % res.module[0]["size_mb"], "",
            "`fleet.criu.dump` / `fleet.criu.restore` at their defaults (`duration_s`), against `criu dump -t PID -D "
            "DIR -o dump.log` / `criu restore -d -D DIR -o restore.log` alone (criu's default log level), timed "
            "around the command, on the same host and file system, in alternating order. The module's dump "
            "froze the tree for %s." % frozen.fmt(0, " ms"), ""] + table(
        ["step", "raw criu", "module duration_s", "module / raw (per repetition)"], rows)


def scale_section(res: Results) -> t.List[str]:
    if not res.scale:
        return []
    rows = []
    one = {r["rep"]: r["wall_s"] for r in res.scale if r["hosts"] == 1 and r.get("ok")}
    for n in sorted({r["hosts"] for r in res.scale}):
        wall = spread(r["wall_s"] for r in res.scale if r["hosts"] == n and r.get("ok"))
        ratio = spread(r["wall_s"] / one[r["rep"]] for r in res.scale if r["hosts"] == n and r.get("ok")
                       and r["rep"] in one)
        rows.append([str(n), str(n), wall.fmt(1, " s"), ratio.fmt(2, "x")])
    return ["", "## Fleet scaling", "",
            "`ansible-playbook fleet.criu.checkpoint -e fleet_hosts=scaleN -e leave_running=true -f N`: every host "
            "dumps its own %s MiB workload; the whole playbook's wall time." % res.scale[0].get("size_mb", "?"), ""
            ] + table(["hosts", "forks", "wall time", "/ one host (per repetition)"], rows)


def memory_section(res: Results) -> t.List[str]:
    rows = []
    for method in [m for m in res.methods if m != "raw"]:
        for size in res.sizes:
            runs = res.good(method, size)
            tree = spread(r.get("peak_tree_rss_mib") for r in runs)
            biggest = spread(r.get("peak_proc_rss_mib") for r in runs)
            if tree.ok:
                rows.append([method, str(size), tree.fmt(0, " MiB"), biggest.fmt(0, " MiB")])
    if not rows:
        return []
    return ["", "## Control-node memory", "",
            "Peak resident memory of the `ansible-playbook` process and all its descendants on the control node "
            "(summed; sampled from /proc every 0.2 s), per run. The target is about `controller`, the only "
            "method whose bytes cross the control node.", ""] + table(
        ["method", "MiB", "peak RSS of the tree", "largest single process"], rows)


def integrity_section(res: Results) -> t.List[str]:
    if not res.integrity:
        return []
    rows = [[str(r.get("size_mb")), "yes" if r.get("token_ok") else "NO", "yes" if r.get("checksum_ok") else "NO",
             str(r.get("hops", "-"))] for r in res.integrity]
    return ["", "## The process survived", "",
            "Not a speed figure: after all the migrations of a size, the workload still had the token it made "
            "at start and the same memory checksum (hashed by the process from its own memory).", ""] + table(
        ["MiB", "same token", "same memory sha256", "migrations"], rows)


# ---------------------------------------------------------------------------- main

def main(argv: t.Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("plan")
    p_run = sub.add_parser("run")
    p_run.add_argument("--out", required=True)
    p_run.add_argument("--source", default="")
    p_run.add_argument("--target", default="")
    p_run.add_argument("argv", nargs=argparse.REMAINDER)
    p_rec = sub.add_parser("record")
    p_rec.add_argument("--results", required=True)
    p_rec.add_argument("--json")
    p_rec.add_argument("--merge", action="append", default=[])
    p_ren = sub.add_parser("render")
    p_ren.add_argument("--results", required=True)
    p_ren.add_argument("--doc", required=True)
    p_ren.add_argument("--png", required=True)
    p_ren.add_argument("--notes")
    args = parser.parse_args(argv)
    if args.cmd == "plan":
        print(json.dumps(plan()))
    elif args.cmd == "run":
        cmd = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        print(json.dumps(run(args.out, cmd, args.source, args.target)))
    elif args.cmd == "record":
        print(json.dumps(record(args.results, args.json, args.merge)))
    else:
        render(Results.load(args.results), args.doc, args.png, args.notes)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
