#!/usr/bin/env python3
"""Runs the operator binary as the chart's Deployment would run it in a pod.

usage: run_as_deployment.py --namespace NS --deployment NAME --kubeconfig PATH
                            [--container NAME] [--pod-name NAME]
                            [--set NAME=VALUE]... BINARY

Pods never run here (no kubelet), so the e2e suite runs the operator as a
local process instead, and this is what keeps that honest: the container's
command line and environment are read from the Deployment the chart
installed (as the API server holds it), so a flag or variable the chart
renders that the binary does not understand fails the suite, and nothing the
test harness happens to have in its environment reaches the operator.

Exactly two things differ from a pod, both stand-ins for what the kubelet
provides: KUBECONFIG (with a token of the Deployment's ServiceAccount) takes
the place of the mounted ServiceAccount token, and fieldRef variables are
resolved as the downward API would. `--set` overrides one variable on top
(the benchmark turns read coalescing off with it); the suite uses none.
The process replaces this one (exec), so its pid is the operator's.
"""

import argparse
import json
import os
import re
import subprocess
import sys

CONTAINER = "vaultsync"
# The image's ENTRYPOINT (Containerfile), which the Deployment does not repeat.
ENTRYPOINT = ["/vaultsync"]


def expand(text, env):
    """Kubernetes' $(VAR) expansion of env values and args: a defined
    variable is replaced, $$ escapes, anything else is left as written."""

    def one(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def field_ref(path, deployment, pod_name):
    values = {
        "metadata.name": pod_name,
        "metadata.namespace": deployment["metadata"]["namespace"],
        "spec.serviceAccountName": deployment["spec"]["template"]["spec"].get("serviceAccountName", "default"),
    }
    if path not in values:
        raise SystemExit(f"run_as_deployment: fieldRef {path} has no local stand-in; add one here")
    return values[path]


def container_env(container, deployment, pod_name):
    env = {}
    for var in container.get("env", []):
        name = var["name"]
        if "value" in var:
            env[name] = expand(var["value"], env)
        elif "fieldRef" in var.get("valueFrom", {}):
            env[name] = field_ref(var["valueFrom"]["fieldRef"]["fieldPath"], deployment, pod_name)
        elif "valueFrom" in var:
            raise SystemExit(f"run_as_deployment: env {name} comes from {sorted(var['valueFrom'])}, not run locally")
        else:
            env[name] = ""
    if container.get("envFrom"):
        raise SystemExit("run_as_deployment: envFrom is not run locally")
    return env


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--container", default=CONTAINER)
    parser.add_argument("--pod-name", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--print", action="store_true", help="print argv and env as JSON instead of running")
    parser.add_argument("binary")
    options = parser.parse_args()

    deployment = json.loads(
        subprocess.run(
            ["kubectl", "get", "deployment", options.deployment, "--namespace", options.namespace, "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    containers = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == options.container]
    if len(containers) != 1:
        raise SystemExit(f"run_as_deployment: no container {options.container!r} in deployment {options.deployment}")
    container = containers[0]
    pod_name = options.pod_name or f"{options.deployment}-local"

    env = container_env(container, deployment, pod_name)
    for assignment in options.set:
        name, _, value = assignment.partition("=")
        env[name] = value
    env["KUBECONFIG"] = options.kubeconfig

    command = container.get("command") or ENTRYPOINT
    args = [expand(arg, env) for arg in container.get("args", [])]
    argv = [options.binary] + [expand(part, env) for part in command[1:]] + args
    if options.print:
        json.dump({"argv": argv, "env": env}, sys.stdout, indent=2)
        print()
        return 0
    os.execve(options.binary, argv, env)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
