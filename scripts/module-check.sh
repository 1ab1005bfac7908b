#!/usr/bin/env bash
# Keeps the crates livable: no import circle between a crate's top-level
# modules (a circle means neither side can be read, tested or moved alone),
# and no source file over 600 lines (a file that long does several jobs).
# Run by `make lint`, so `make test` fails when either creeps back in.
#
# A module is a file or folder directly under a crate's src/ (lib.rs and
# main.rs are the roots, not modules). A module depends on another when any
# of its files names `crate::<other>`, alone or in `use crate::{...}`;
# comments do not count. `super::` stays inside a module by convention, so
# code reaches another module through `crate::` and this check sees it.
# Tests (files under tests/, tests.rs) may be long.
#
#   scripts/module-check.sh           check
#   scripts/module-check.sh --graph   also print each module's dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

GRAPH="${1:-}" python3 - <<'PY'
import os, re, sys

MAX_LINES = 600
# Known-large files, to split next; each one shrinking under the limit
# should leave this list.
KNOWN_LARGE = set()

failed = False

def strip_comments(text):
    # Doc links and prose mention modules without depending on them.
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)

def crate_refs(text):
    """Top-level module names a file reaches through `crate::`."""
    names = set()
    for m in re.finditer(r"\bcrate\s*::\s*", text):
        i = m.end()
        if text.startswith("{", i):
            # use crate::{a, b::{c, d}, e}: the names at depth one.
            depth, expect, j = 0, False, i
            while j < len(text):
                ch = text[j]
                if ch == "{":
                    depth += 1
                    expect = depth == 1
                elif ch == "}":
                    depth -= 1
                    if depth == 0:
                        break
                elif ch == "," and depth == 1:
                    expect = True
                elif expect and not ch.isspace():
                    w = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[j:])
                    if w:
                        names.add(w.group(0))
                        j += len(w.group(0)) - 1
                    expect = False
                j += 1
        else:
            w = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i:])
            if w:
                names.add(w.group(0))
    return names

def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out

def one_circle(graph, comp):
    """A concrete path a -> ... -> a inside one component, for the message."""
    members, start = set(comp), comp[0]
    prev, queue = {start: None}, [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v; queue.append(w)
    return comp

for crate in sorted(os.listdir("crates")):
    src = os.path.join("crates", crate, "src")
    if not os.path.isdir(src):
        continue
    modules = {}
    for entry in os.listdir(src):
        path = os.path.join(src, entry)
        if os.path.isdir(path) and entry != "bin":
            modules[entry] = path
        elif entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
            modules.setdefault(entry[:-3], path)
    graph = {m: set() for m in modules}
    for m in modules:
        files = [modules[m]] if modules[m].endswith(".rs") else []
        sibling = os.path.join(src, m + ".rs")
        if os.path.isfile(sibling):
            files.append(sibling)
        if os.path.isdir(os.path.join(src, m)):
            for root, _, names in os.walk(os.path.join(src, m)):
                files += [os.path.join(root, f) for f in names if f.endswith(".rs")]
        for f in files:
            with open(f, encoding="utf-8") as fh:
                refs = crate_refs(strip_comments(fh.read()))
            graph[m] |= {r for r in refs if r in modules and r != m}
    if os.environ.get("GRAPH") == "--graph":
        for m in sorted(graph):
            print(f"crates/{crate}: {m} -> {', '.join(sorted(graph[m])) or '(nothing)'}")
    for comp in cycles(graph):
        failed = True
        print(f"module-check: import circle in crates/{crate}: "
              + " -> ".join(one_circle(graph, comp))
              + f"  (all of: {', '.join(comp)})")

for root, dirs, names in os.walk("crates"):
    dirs[:] = sorted(d for d in dirs if d not in ("tests", "target"))
    for name in sorted(names):
        if not name.endswith(".rs") or name == "tests.rs" or name.endswith("_tests.rs"):
            continue
        path = os.path.join(root, name)
        with open(path, encoding="utf-8") as fh:
            lines = sum(1 for _ in fh)
        if lines > MAX_LINES and path not in KNOWN_LARGE:
            failed = True
            print(f"module-check: {path} has {lines} lines (limit {MAX_LINES}): split it along its seams")

for path in sorted(KNOWN_LARGE):
    if not os.path.isfile(path):
        failed = True
        print(f"module-check: {path} is listed as known-large but does not exist: drop it from the list")
        continue
    with open(path, encoding="utf-8") as fh:
        if sum(1 for _ in fh) <= MAX_LINES:
            failed = True
            print(f"module-check: {path} is within {MAX_LINES} lines now: drop it from the known-large list")

sys.exit(1 if failed else 0)
PY
