#!/usr/bin/env python3
"""Field-path gap between ESO's CRD bundle and vaultsync's CRDs.

Usage:
  git --git-dir=<eso mirror> show v2.9.0:deploy/crds/bundle.yaml > /tmp/eso-bundle.yaml
  python3 docs/design/eso-field-diff.py /tmp/eso-bundle.yaml crds [--full]

A field path is every node of the structural schema under the root (spec.*,
status.*), written `a.b`, `a[].b` for list items and `a{}.b` for map values.
Stores: under spec.provider only `vault` is kept on ESO's side (other providers
are out of scope); vaultsync's own `provider.openBao` is kept, it is a
vaultsync-only field. A node with x-kubernetes-preserve-unknown-fields is
marked `*` and keeps anything below it (no pruning there).

Printed per kind: counts, ESO-only paths (vaultsync lacks them), vaultsync-only
paths (ESO's CRD would PRUNE them if the object is stored in ESO's group), and
type/enum/default differences on common paths.
"""
import sys, os, yaml

PAIRS = [
    # (ESO CRD name, ESO version, vaultsync file, provider filter)
    ("externalsecrets.external-secrets.io", "v1", "externalsecrets.vaultsync.dev.yaml", False),
    ("secretstores.external-secrets.io", "v1", "secretstores.vaultsync.dev.yaml", True),
    ("clustersecretstores.external-secrets.io", "v1", "clustersecretstores.vaultsync.dev.yaml", True),
    ("clusterexternalsecrets.external-secrets.io", "v1", "clusterexternalsecrets.vaultsync.dev.yaml", False),
    ("vaultdynamicsecrets.generators.external-secrets.io", "v1alpha1",
     "vaultdynamicsecrets.generators.vaultsync.dev.yaml", False),  # spec.provider IS the vault provider
]
# ESO generators a Vault-only operator could also serve (no vaultsync counterpart yet).
OTHER_GENERATORS = [
    "passwords.generators.external-secrets.io",
    "uuids.generators.external-secrets.io",
    "sshkeys.generators.external-secrets.io",
    "clustergenerators.generators.external-secrets.io",
    "generatorstates.generators.external-secrets.io",
]


def flatten(node, prefix, out, provider_filter, keep_openbao):
    if not isinstance(node, dict):
        return
    out[prefix] = {
        "type": node.get("type"),
        "enum": tuple(node.get("enum", []) or []) + ((None,) if node.get("nullable") and node.get("enum") and None not in node["enum"] else ()),
        "default": repr(node.get("default")) if "default" in node else None,
        "open": bool(node.get("x-kubernetes-preserve-unknown-fields")),
        "cel": len(node.get("x-kubernetes-validations", []) or []),
    }
    props = node.get("properties") or {}
    for k, v in props.items():
        p = f"{prefix}.{k}" if prefix else k
        if provider_filter and prefix.endswith("spec.provider") and prefix.count(".") <= 1:
            if k != "vault" and not (keep_openbao and k == "openBao"):
                continue
        flatten(v, p, out, provider_filter, keep_openbao)
    if "items" in node and isinstance(node["items"], dict):
        flatten(node["items"], prefix + "[]", out, provider_filter, keep_openbao)
    ap = node.get("additionalProperties")
    if isinstance(ap, dict) and (ap.get("properties") or ap.get("items")):
        flatten(ap, prefix + "{}", out, provider_filter, keep_openbao)


def paths_of(crd, version, provider_filter, keep_openbao):
    v = next(x for x in crd["spec"]["versions"] if x["name"] == version)
    root = v["schema"]["openAPIV3Schema"]
    out = {}
    for top in ("spec", "status"):
        if top in root.get("properties", {}):
            flatten(root["properties"][top], top, out, provider_filter, keep_openbao)
    return out, v


def covered_by_open(path, paths):
    """True if an ancestor of `path` preserves unknown fields on that side."""
    parts = path.split(".")
    for i in range(1, len(parts)):
        anc = ".".join(parts[:i])
        if anc in paths and paths[anc]["open"]:
            return True
    return False


def columns(v):
    return sorted(c["jsonPath"] for c in v.get("additionalPrinterColumns", []) or [])


def main():
    bundle, crddir = sys.argv[1], sys.argv[2]
    full = "--full" in sys.argv
    eso = {d["metadata"]["name"]: d for d in yaml.safe_load_all(open(bundle)) if d}
    for eso_name, ver, vs_file, pf in PAIRS:
        vs = yaml.safe_load(open(os.path.join(crddir, vs_file)))
        vs_ver = vs["spec"]["versions"][0]["name"]
        e, ev = paths_of(eso[eso_name], ver, pf, False)
        s, sv = paths_of(vs, vs_ver, pf, True)
        kind = eso[eso_name]["spec"]["names"]["kind"]
        eso_only = sorted(p for p in e if p not in s and not covered_by_open(p, s))
        vs_only = sorted(p for p in s if p not in e and not covered_by_open(p, e))
        common = sorted(set(e) & set(s))
        print(f"\n=== {kind}: ESO {ver} vs vaultsync {vs['spec']['group']}/{vs_ver}")
        for top in ("spec", "status"):
            et = [p for p in e if p.split(".")[0].split("[")[0] == top]
            print(f"  {top}: vaultsync has {sum(1 for p in et if p in s or covered_by_open(p, s))} of ESO's {len(et)} paths")
        print(f"  ESO-only paths ({len(eso_only)}): vaultsync lacks them")
        # print only the top-most missing path of each missing subtree, with subtree size
        tops = [p for p in eso_only if not any(p.startswith(q + ".") or p.startswith(q + "[") or p.startswith(q + "{") for q in eso_only if q != p)]
        for t in (eso_only if full else tops):
            n = sum(1 for p in eso_only if p == t or p.startswith(t + ".") or p.startswith(t + "[") or p.startswith(t + "{"))
            print(f"    - {t}" + ("" if full or n == 1 else f"  (+{n-1} below)"))
        print(f"  vaultsync-only paths ({len(vs_only)}): PRUNED when stored in ESO's group")
        vtops = [p for p in vs_only if not any(p.startswith(q + ".") or p.startswith(q + "[") or p.startswith(q + "{") for q in vs_only if q != p)]
        for t in (vs_only if full else vtops):
            n = sum(1 for p in vs_only if p == t or p.startswith(t + ".") or p.startswith(t + "[") or p.startswith(t + "{"))
            print(f"    + {t}" + ("" if full or n == 1 else f"  (+{n-1} below)"))
        diffs = []
        for p in common:
            a, b = e[p], s[p]
            if a["type"] != b["type"] and a["type"] and b["type"]:
                diffs.append(f"    ~ {p}: type ESO={a['type']} vaultsync={b['type']}")
            if set(a["enum"]) != set(b["enum"]):
                ea, eb = set(map(repr, a["enum"])), set(map(repr, b["enum"]))
                diffs.append(f"    ~ {p}: enum ESO-only={sorted(ea-eb)} vaultsync-only={sorted(eb-ea)}" if ea and eb
                             else f"    ~ {p}: enum ESO={list(a['enum'])} vaultsync={list(b['enum'])}")
            if a["default"] != b["default"]:
                diffs.append(f"    ~ {p}: default ESO={a['default']} vaultsync={b['default']}")
            if a["open"] != b["open"]:
                diffs.append(f"    ~ {p}: preserve-unknown ESO={a['open']} vaultsync={b['open']}")
        print(f"  schema differences on common paths ({len(diffs)}):")
        print("\n".join(diffs) if diffs else "    (none)")
        print(f"  printer columns ESO:       {columns(ev)}")
        print(f"  printer columns vaultsync: {columns(sv)}")
        print(f"  selectableFields ESO={[f['jsonPath'] for f in ev.get('selectableFields', []) or []]}"
              f" vaultsync={[f['jsonPath'] for f in sv.get('selectableFields', []) or []]}")
        print(f"  shortNames/categories ESO={eso[eso_name]['spec']['names'].get('shortNames')}/"
              f"{eso[eso_name]['spec']['names'].get('categories')} vaultsync={vs['spec']['names'].get('shortNames')}/"
              f"{vs['spec']['names'].get('categories')}")
    print("\n=== Other ESO generators a Vault-only operator could serve (vaultsync has none)")
    for n in OTHER_GENERATORS:
        e, _ = paths_of(eso[n], "v1alpha1", n.startswith("clustergenerators"), False)
        spec = sorted(p for p in e if p.startswith("spec"))
        print(f"  {eso[n]['spec']['names']['kind']}: {len(spec)} spec paths; top: "
              f"{sorted({p.split('.')[1].split('[')[0] for p in spec if '.' in p})}")


if __name__ == "__main__":
    main()
