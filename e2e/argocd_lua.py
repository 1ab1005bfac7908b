#!/usr/bin/env python3
"""Runs an Argo CD Lua script (health check or resource action) on a
Kubernetes object with a real Lua interpreter, as Argo CD does: the object
is the global `obj`, the script's `return` value is the result.

    argocd_lua.py SCRIPT EXPRESSION < object.json

prints EXPRESSION evaluated on the result (`result.status`, or
`result.metadata.annotations["..."]`)."""
import json
import subprocess
import sys


def lua(value):
    """A JSON value as a Lua literal; lists become 1-based sequences."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Lua strings are bytes: every byte that is not plain printable
        # ASCII (or is a quote or backslash) is written as a \ddd escape.
        return '"' + "".join(chr(b) if 0x20 <= b < 0x7f and b not in (0x22, 0x5C) else "\\%03d" % b
                             for b in value.encode()) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua(v) for v in value) + "}"
    return "{" + ", ".join("[%s] = %s" % (lua(k), lua(v)) for k, v in value.items()) + "}"


def main():
    script_path, expression = sys.argv[1], sys.argv[2]
    script = open(script_path).read()
    program = "obj = %s\nlocal result = (function()\n%s\nend)()\nprint(%s)\n" % (lua(json.load(sys.stdin)), script, expression)
    done = subprocess.run(["lua5.4", "-"], input=program, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("lua5.4 failed: " + done.stderr)
    sys.stdout.write(done.stdout)


if __name__ == "__main__":
    main()
