"""The operator's JSON log (the chart's default, logJson) as log pipelines
read it: every line one JSON object with timestamp, level, target and
message at the top level (not nested under "fields"), no colour codes.

usage: log_check.py LOG_FILE
"""
import json
import sys


def main() -> int:
    path = sys.argv[1]
    problems = []
    lines = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            lines += 1
            if "\x1b[" in line:
                problems.append(f"{path}:{number}: colour codes in a log file")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{number}: not JSON ({e}): {line[:120]!r}")
                continue
            if not isinstance(record, dict):
                problems.append(f"{path}:{number}: not a JSON object")
                continue
            missing = [key for key in ("timestamp", "level", "target", "message") if key not in record]
            if missing:
                problems.append(f"{path}:{number}: no top-level {', '.join(missing)}")
            if "fields" in record:
                problems.append(f"{path}:{number}: fields nested under 'fields'")
    for problem in problems[:20]:
        print(f"log check: {problem}")
    if problems or lines == 0:
        print(f"log check: {len(problems)} problems in {lines} lines")
        return 1
    print(f"log check: {lines} lines, each a JSON object with its fields at the top level")
    return 0


if __name__ == "__main__":
    sys.exit(main())
