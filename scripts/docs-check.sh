#!/usr/bin/env bash
# The documentation holds together: every relative link in README.md and
# docs/*.md points to a file that exists and, when it names an anchor
# (`file.md#heading`, `#heading`), to a heading of that file (GitHub's
# slugs); README.md stays under 250 lines (the rest belongs in docs/).
# `make lint` runs it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python3 - README.md docs/*.md <<'PY'
import os, re, sys

MAX_README_LINES = 250

def strip_code(text):
    """The text outside fenced code blocks and inline code spans."""
    out, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if fence:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            out.append("")
            continue
        if m:
            fence = m.group(1)
            out.append("")
            continue
        out.append(re.sub(r"(`+)(?:(?!\1).)+?\1", "", line))
    return out

def slug(heading):
    """GitHub's anchor for a heading: lower case, markup and punctuation
    dropped (but `-` and `_` kept), spaces as dashes."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")

def anchors(path, cache={}):
    if path not in cache:
        seen, found, fence = {}, set(), None
        for line in open(path, encoding="utf-8").read().split("\n"):
            m = re.match(r"^\s*(```+|~~~+)", line)
            if fence:
                if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                    fence = None
                continue
            if m:
                fence = m.group(1)
                continue
            h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
            if not h:
                continue
            base = slug(h.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
        cache[path] = found
    return cache[path]

link = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
errors = []
for md in sys.argv[1:]:
    lines = strip_code(open(md, encoding="utf-8").read())
    for number, line in enumerate(lines, 1):
        for m in link.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("//"):
                continue  # https:, mailto: and the like: not checked here
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(md), file_part)) if file_part else md
            where = f"{md}:{number}: {target}"
            if not os.path.exists(dest):
                errors.append(f"{where}: no file {dest}")
                continue
            if anchor:
                if not dest.endswith(".md") or os.path.isdir(dest):
                    errors.append(f"{where}: an anchor into a file that is not markdown")
                elif anchor not in anchors(dest):
                    errors.append(f"{where}: no heading #{anchor} in {dest}")

readme_lines = open("README.md", encoding="utf-8").read().count("\n")
if readme_lines >= MAX_README_LINES:
    errors.append(f"README.md: {readme_lines} lines; keep it under {MAX_README_LINES} and move the rest into docs/")

for e in errors:
    print(e, file=sys.stderr)
if errors:
    sys.exit(f"docs-check: {len(errors)} problem(s)")
print(f"docs-check: links of {len(sys.argv) - 1} files resolve; README.md has {readme_lines} lines")
PY
