"""The runnable blocks of a Markdown page, for the test that runs docs/quickstart.md.

A block is runnable when the line right before its opening fence (blank lines allowed
between them) is a marker:

  <!-- quickstart-test: run NAME -->     a ```sh block: its text is run by bash, as a user
                                          pasting it would (the test runs each in order)
  <!-- quickstart-test: file NAME -->    any fenced block: written to the file NAME first

The only changes the test makes are substitutions OLD=NEW (the servers' addresses, the
collection's install source), and each OLD must occur in the page: a substitution that no
longer matches fails loudly instead of running the page unchanged.

  doc_blocks.py PAGE [--subst OLD=NEW]...    prints the blocks as a JSON list of
                                             {"kind", "name", "lang", "text", "line"}
"""

from __future__ import annotations

import argparse
import json
import re
import sys

MARKER = re.compile(r"^<!--\s*quickstart-test:\s*(?P<kind>\S+)\s+(?P<name>\S+)\s*-->\s*$")
FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[A-Za-z0-9_+-]*)\s*$")
KINDS = ("run", "file")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class DocError(ValueError):
    """The page's markers or blocks are malformed."""


def substitute(text: str, substitutions: list[tuple[str, str]]) -> str:
    for old, new in substitutions:
        if not old:
            raise DocError("an empty substitution")
        if old not in text:
            raise DocError("the page does not contain %r any more: update the test's substitution" % old)
        text = text.replace(old, new)
    return text


def blocks(text: str) -> list[dict]:
    """Every marked block, in page order; unmarked blocks are ignored."""
    lines = text.splitlines()
    found: list[dict] = []
    names: set[str] = set()
    pending: dict | None = None  # the marker waiting for its block: kind, name, line
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line.strip())
        fence = FENCE.match(line)
        if marker:
            if pending:
                raise DocError("line %d: marker without a block after it (line %d)" % (pending["line"], i + 1))
            kind, name = marker.group("kind"), marker.group("name")
            if kind not in KINDS:
                raise DocError("line %d: unknown marker kind %r (known: %s)" % (i + 1, kind, ", ".join(KINDS)))
            if not NAME.match(name):
                raise DocError("line %d: bad block name %r" % (i + 1, name))
            if name in names:
                raise DocError("line %d: block name %r used twice" % (i + 1, name))
            names.add(name)
            pending = {"kind": kind, "name": name, "line": i + 1}
        elif fence:
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence.group("fence"):
                end += 1
            if end == len(lines):
                raise DocError("line %d: the block is never closed" % (i + 1))
            if pending:
                lang = fence.group("lang")
                if pending["kind"] == "run" and lang != "sh":
                    raise DocError("line %d: a run block must be ```sh, not %r" % (i + 1, lang))
                found.append({"kind": pending["kind"], "name": pending["name"], "lang": lang,
                              "text": "\n".join(lines[i + 1:end]) + "\n", "line": i + 2})
                pending = None
            i = end
        elif pending and line.strip():
            raise DocError("line %d: marker without a block after it (line %d)" % (pending["line"], i + 1))
        i += 1
    if pending:
        raise DocError("line %d: marker without a block after it (end of page)" % pending["line"])
    return found


def fenced_languages(text: str) -> list[tuple[int, str, bool]]:
    """(line, language, marked) of every fenced block: lets a test insist that every
    ```sh block of a page is run."""
    marked_lines = {b["line"] - 1 for b in blocks(text)}
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            out.append((i + 1, fence.group("lang"), (i + 1) in marked_lines))
            end = i + 1
            while end < len(lines) and lines[end].strip() != fence.group("fence"):
                end += 1
            i = end
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page")
    parser.add_argument("--subst", action="append", default=[], metavar="OLD=NEW")
    args = parser.parse_args(argv)
    pairs = []
    for item in args.subst:
        old, sep, new = item.partition("=")
        if not sep:
            parser.error("--subst needs OLD=NEW, not %r" % item)
        pairs.append((old, new))
    with open(args.page, encoding="utf-8") as handle:
        text = handle.read()
    try:
        result = blocks(substitute(text, pairs))
    except DocError as exc:
        print("%s: %s" % (args.page, exc), file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
