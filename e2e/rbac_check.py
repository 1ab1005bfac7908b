"""Least privilege: the rights the chart gives the operator are exactly the
rights its code uses, and each of them was exercised during the e2e run.

usage: rbac_check.py [--partial] [--scoped NAMESPACE] [--lease NAME] USED_FILE
                     AUDIT_LOG SERVICE_ACCOUNT_NAMESPACE SERVICE_ACCOUNT_NAME

--partial: only part of the suite ran, so a right never exercised is not
reported (the other checks still apply).
--scoped NAMESPACE: the release is a namespace-scoped install
(scope.namespace=NAMESPACE): check the second SCOPE column of USED_FILE.
--lease NAME: the release's leader Lease (`names=<lease>` in USED_FILE);
default vaultsync-leader, release `vaultsync`'s.

Runs kubectl with the admin kubeconfig of $KUBECONFIG. Fails when:
  - the ServiceAccount holds a right, in some namespace or cluster-wide, that
    USED_FILE (e2e/rbac-used.txt) does not list (or holds it more widely
    than listed: cluster-wide instead of in its own namespace, for all
    names instead of the listed ones);
  - USED_FILE lists a right the ServiceAccount does not hold (the code would
    be refused);
  - a listed right never appears in the API server's audit log as a request
    by the operator, unless its line says why the suite does not cover it;
  - the operator was refused anything (403) during the run.
Rights every ServiceAccount holds (discovery, self reviews, ...) are left out
by subtracting those of a ServiceAccount nothing is bound to.
"""
import json
import subprocess
import sys
from collections import defaultdict

# A namespace with no RoleBindings: what a subject holds there, it holds
# through ClusterRoleBindings, i.e. in every namespace.
NOWHERE = "rbac-check-no-such-namespace"
BASELINE_SA = ("rbac-check-baseline", "nobody")


def parse_used(path, scoped, lease):
    """{(scope, group, resource, verb, name): (line number, uncovered reason)}
    for the cluster-wide install, or the scoped one when `scoped`."""
    used = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            spec, _, where = line.partition(" -- ")
            if not where.strip():
                raise SystemExit(f"{path}:{number}: say where the code uses it, after ' -- '")
            _, _, uncovered = where.partition("| uncovered:")
            fields = spec.split()
            scopes = fields[0].split("/") if fields else []
            known = {"cluster", "release-ns", "scope-ns", "-"}
            if len(fields) not in (4, 5) or len(scopes) != 2 or not set(scopes) <= known:
                raise SystemExit(f"{path}:{number}: expected WIDE/SCOPED GROUP RESOURCE VERBS [names=...]")
            scope = scopes[1] if scoped else scopes[0]
            if scope == "-":
                continue
            group, resource, verbs = fields[1:4]
            names = [""]
            if len(fields) == 5:
                if not fields[4].startswith("names="):
                    raise SystemExit(f"{path}:{number}: fifth field must be names=...")
                names = fields[4][len("names=") :].replace("<lease>", lease).split(",")
            group = "" if group == "core" else group
            for verb in verbs.split(","):
                for name in names:
                    used[(scope, group, resource, verb, name)] = (number, uncovered.strip())
    return used


def kubectl(*args, stdin=None):
    result = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def rights(user, namespace):
    """Resource rights of `user` in `namespace` as (group, resource, verb,
    name) tuples (name "" = any), and non-resource rights as (url, verb)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    out = json.loads(kubectl("create", "--validate=false", f"--as={user}", "-o", "json", "-f", "-", stdin=json.dumps(review)))
    status = out.get("status", {})
    if status.get("incomplete"):
        raise SystemExit(f"rules review of {user} in {namespace} is incomplete: {status.get('evaluationError')}")
    resource = set()
    for rule in status.get("resourceRules", []):
        for group in rule.get("apiGroups", [""]):
            for res in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in rule.get("resourceNames") or [""]:
                        resource.add((group, res, verb, name))
    non_resource = {
        (url, verb)
        for rule in status.get("nonResourceRules", [])
        for url in rule.get("nonResourceURLs", [])
        for verb in rule.get("verbs", [])
    }
    return resource, non_resource


def covered(right, held):
    """Whether `right` is within `held` (a right for all names covers one name)."""
    group, resource, verb, name = right
    return right in held or (name and (group, resource, verb, "") in held)


def show(right):
    group, resource, verb, name = right
    return f"{group or 'core'} {resource} {verb}" + (f" names={name}" if name else "")


def main() -> int:
    args = sys.argv[1:]
    partial = "--partial" in args
    args = [a for a in args if a != "--partial"]
    scoped = None
    if "--scoped" in args:
        at = args.index("--scoped")
        scoped = args[at + 1]
        del args[at : at + 2]
    lease = "vaultsync-leader"
    if "--lease" in args:
        at = args.index("--lease")
        lease = args[at + 1]
        del args[at : at + 2]
    used_path, audit_path, sa_namespace, sa_name = args
    used = parse_used(used_path, scoped, lease)
    user = f"system:serviceaccount:{sa_namespace}:{sa_name}"
    baseline = "system:serviceaccount:{}:{}".format(*BASELINE_SA)
    failures = []

    def effective(namespace):
        held, held_urls = rights(user, namespace)
        base, base_urls = rights(baseline, namespace)
        return {r for r in held if not covered(r, base)}, held_urls - base_urls

    cluster, urls = effective(NOWHERE)
    for url, verb in sorted(urls):
        failures.append(f"granted non-resource URL {url} {verb}: the code uses none")
    granted = {("cluster", *r) for r in cluster}
    namespaces = kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split()
    for namespace in namespaces:
        held, held_urls = effective(namespace)
        for r in sorted(held - cluster):
            if namespace == sa_namespace:
                granted.add(("release-ns", *r))
            elif namespace == scoped:
                granted.add(("scope-ns", *r))
            else:
                failures.append(f"granted in namespace {namespace} only: {show(r)}; no code uses it there")

    print(f"rbac check: effective rights of {user} (those of every ServiceAccount left out):")
    for right in sorted(granted):
        scope, *r = right
        print(f"  {scope:<10} {show(tuple(r))}")

    for right in sorted(granted):
        scope, *r = right
        listed = used.keys() & {(scope, *r), (scope, *r[:3], "")}
        if not listed:
            failures.append(f"granted but not used by the code: {scope} {show(tuple(r))}")
    for right in sorted(used):
        scope, *r = right
        if right not in granted and not (r[3] and (scope, *r[:3], "") in granted):
            failures.append(f"used by the code (e2e/rbac-used.txt:{used[right][0]}) but not granted: {scope} {show(tuple(r))}")

    # What the operator actually did, from the audit log.
    exercised = defaultdict(int)
    refused = []
    with open(audit_path, encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            if event.get("user", {}).get("username") != user or event.get("impersonatedUser"):
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            code = event.get("responseStatus", {}).get("code", 0)
            verb = event.get("verb", "")
            # Authorization's own verdict: a 403 can also come from admission
            # (a namespace being deleted), after authorization allowed it.
            decision = event.get("annotations", {}).get("authorization.k8s.io/decision")
            if decision == "forbid":
                refused.append(f"{verb} {ref.get('apiGroup') or 'core'} {resource} in {ref.get('namespace', '-')}")
                continue
            if not resource or decision != "allow":
                continue
            namespace = ref.get("namespace")
            # Which grant could have allowed it: a cluster-wide install's
            # ClusterRole allows it in any namespace.
            scopes = {"release-ns" if namespace == sa_namespace else "scope-ns" if namespace == scoped else "cluster"}
            if not scoped:
                scopes.add("cluster")
            verbs = [verb] + (["create"] if verb == "patch" and code == 201 else [])
            for v in verbs:
                for s in scopes:
                    for name in {ref.get("name", ""), ""}:
                        exercised[(s, ref.get("apiGroup", ""), resource, v, name)] += 1
    for what in sorted(set(refused)):
        failures.append(f"the operator was refused: {what}")
    print("rbac check: uses of each listed right in the audit log:")
    for right, (number, uncovered) in sorted(used.items(), key=lambda item: item[1][0]):
        count = exercised.get(right, 0)
        note = ""
        if count == 0 and (uncovered or partial):
            note = f"  (not exercised: {uncovered or 'partial run'})"
        elif uncovered:
            note = "  (exercised after all: drop its '| uncovered:' reason)"
        elif count == 0:
            failures.append(
                f"e2e/rbac-used.txt:{number}: {right[0]} {show(right[1:])} was never exercised during the run; "
                "drop it, or cover it with a test, or give the reason after '| uncovered:'"
            )
        print(f"  {count:>6}  {right[0]:<10} {show(right[1:])}{note}")

    for failure in failures:
        print(f"rbac check: FAIL: {failure}")
    if failures:
        return 1
    print(f"rbac check: {len(granted)} granted rights, each used by the code; none missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
