"""Fails when any value the e2e tests seeded into OpenBao appears in the given files.

usage: leak_check.py [--partial] SEEDED_VALUES_FILE FILE...

--partial: only some tests ran (E2E_FILTER), so few or no seeded values is
no sign that the suite misbehaved.
"""
import sys


def main() -> int:
    args = sys.argv[1:]
    partial = "--partial" in args
    seeded_path, *files = [a for a in args if a != "--partial"]
    try:
        with open(seeded_path, encoding="utf-8") as f:
            seeded = sorted({line.strip() for line in f if line.strip()})
    except FileNotFoundError:
        seeded = []
    if len(seeded) < 5 and not partial:
        print(f"leak check: only {len(seeded)} seeded values recorded; the tests did not run as expected")
        return 1
    leaks = []
    for path in files:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        leaks += [(path, value) for value in seeded if value in text]
    for path, value in leaks:
        # Print where, and only a prefix of the value, to not leak it here too.
        print(f"leak check: a seeded value ({value[:6]}...) appears in {path}")
    if leaks:
        return 1
    print(f"leak check: none of {len(seeded)} seeded values appear in {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
