#!/usr/bin/env python3
"""Every metric the Grafana dashboard (and the alert rules) query must be one
the operator exports: a name missing from a real /metrics scrape is a panel
that shows nothing, or an alert that never fires.

    dashboard_check.py DASHBOARD_JSON METRICS_TXT [RULES_YAML]
    dashboard_check.py --self-test

METRICS_TXT is a text exposition (a scrape of /metrics). A name counts as
exported when a sample of it is there, or a `# TYPE` line declares it
(some clients declare a family before it has a series). Counters are
declared without `_total` and sampled with it; histograms and summaries are
sampled as _bucket/_sum/_count. Names Prometheus makes up itself (ALERTS,
up) are skipped.

The operator's client (prometheus-client) leaves a labelled family out of
the exposition, TYPE line included, until it has a series: a scrape taken
before any sync failed has no vaultsync_sync_errors_total, one taken before
any ExternalSecret was reconciled no vaultsync_externalsecret_status_condition.
Check a scrape taken after both happened (the e2e suite's final scrape).

RULES_YAML needs no YAML parser: the `expr:` values (one line, or a `|`
block) are read from the text.
"""

import json
import re
import sys

# PromQL words that look like names but are not metrics.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atmodifier", "inf", "nan", "start", "end",
}
# Made by Prometheus, not by the scraped target.
BUILTIN = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape_duration_seconds", "scrape_samples_scraped"}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr):
    """The metric names an expression selects."""
    # Grafana's variables ($__rate_interval, ${datasource}, $namespace).
    expr = re.sub(r"\$\{[^}]*\}|\$\w+", "1m", expr)
    # Strings (label values, regexes), label matchers, ranges and
    # subqueries, and the label lists of by/without/on/ignoring/group_*.
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    # Numbers, durations and scientific notation are not names.
    expr = re.sub(r"\b\d[\w.]*", " ", expr)
    names = set()
    for m in NAME.finditer(expr):
        word = m.group(0)
        rest = expr[m.end():].lstrip()
        if rest.startswith("("):  # a function
            continue
        if word.lower() in KEYWORDS or word in BUILTIN:
            continue
        names.add(word)
    return names


def grafana_query_names(query):
    """Names in a templating query: label_values(), query_result(), or PromQL."""
    query = query.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_]\w*\s*\)", query, re.S)
    if m:
        return metric_names(m.group(1))
    if re.fullmatch(r"label_values\(\s*[a-zA-Z_]\w*\s*\)", query) or query.startswith("metrics("):
        return set()
    m = re.fullmatch(r"query_result\((.*)\)", query, re.S)
    return metric_names(m.group(1) if m else query)


def dashboard_exprs(dashboard):
    """(where, expr) of every panel target, nested rows included."""
    out = []

    def panels(items):
        for panel in items:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((f"panel {panel.get('title')!r}", target["expr"]))
            panels(panel.get("panels", []))

    panels(dashboard.get("panels", []))
    for row in dashboard.get("rows", []):
        panels(row.get("panels", []))
    return out


def dashboard_names(dashboard):
    """{name: [where it is used]} over panels and templating variables."""
    used = {}
    for where, expr in dashboard_exprs(dashboard):
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        for name in grafana_query_names(query or ""):
            used.setdefault(name, []).append(f"variable {var.get('name')!r}")
    return used


def rules_exprs(text):
    """(where, expr) of each `expr:` of a Prometheus rules file."""
    out = []
    lines = text.splitlines()
    where = "rules"
    i = 0
    while i < len(lines):
        line = lines[i]
        named = re.match(r"\s*-?\s*(alert|record):\s*(\S+)", line)
        if named:
            where = f"{named.group(1)} {named.group(2)}"
        m = re.match(r"(\s*)(?:-\s*)?expr:\s*(.*)$", line)
        if m:
            value = m.group(2).strip()
            if value in ("|", "|-", "|+", ">", ">-", ">+"):
                indent = len(m.group(1))
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                    block.append(lines[i].strip())
                    i += 1
                out.append((where, " ".join(block)))
                continue
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            out.append((where, value))
        i += 1
    return out


def exported(metrics_text):
    """Every series name the exposition carries, or may carry (TYPE lines)."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                family, kind = parts[2], parts[3]
                names.add(family)
                names.update(family + suffix for suffix in SUFFIXES.get(kind, ()))
        elif line and not line.startswith("#"):
            m = NAME.match(line)
            if m:
                names.add(m.group(0))
    return names


def missing(used, names):
    return {name: where for name, where in used.items() if name not in names}


def check(dashboard_path, metrics_path, rules_path=None):
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    used = dashboard_names(dashboard)
    if not used:
        print(f"{dashboard_path}: no metric found in the dashboard's queries", file=sys.stderr)
        return 1
    if rules_path:
        with open(rules_path) as f:
            for where, expr in rules_exprs(f.read()):
                for name in metric_names(expr):
                    used.setdefault(name, []).append(where)
    with open(metrics_path) as f:
        names = exported(f.read())
    gone = missing(used, names)
    if gone:
        for name, where in sorted(gone.items()):
            print(f"{name}: not in {metrics_path}; used by {', '.join(sorted(set(where)))}", file=sys.stderr)
        print(f"{len(gone)} metric name(s) the dashboard or rules use are not exported", file=sys.stderr)
        return 1
    print(f"dashboard check: {len(used)} metric names used, all exported: {', '.join(sorted(used))}")
    return 0


def self_test():
    assert metric_names('sum by (outcome) (rate(vaultsync_syncs_total{outcome!="x"}[$__rate_interval]))') == {
        "vaultsync_syncs_total"}
    assert metric_names('max by (namespace, name) (a{condition="Ready", status="False"}) == 1 unless on (name) b') == {
        "a", "b"}
    assert metric_names("count(x > 0) or vector(0)") == {"x"}
    assert metric_names("absent(up{job=\"a\"}) and c offset 5m") == {"c"}
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m]))) > 1e3") == {"h_bucket"}
    assert grafana_query_names("label_values(vaultsync_x{a=\"b\"}, namespace)") == {"vaultsync_x"}
    assert grafana_query_names("label_values(namespace)") == set()
    rules = 'groups:\n- name: g\n  rules:\n  - alert: A\n    expr: |\n      sum(rate(a_total[5m]))\n        > 0\n    for: 5m\n  - record: r\n    expr: "b"\n'
    assert rules_exprs(rules) == [("alert A", "sum(rate(a_total[5m])) > 0"), ("record r", "b")], rules_exprs(rules)
    text = (
        "# TYPE c counter\nc_total 1\n# TYPE empty counter\n# TYPE g gauge\ng 1\n"
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\nloose 2\n# EOF\n"
    )
    names = exported(text)
    for name in ("c_total", "empty_total", "g", "h_bucket", "h_count", "loose"):
        assert name in names, name
    assert "made_up_metric" not in names
    used = {"c_total": ["p"], "empty_total": ["p"], "made_up_metric": ["p"], "g": ["p"]}
    assert missing(used, names) == {"made_up_metric": ["p"]}
    # The whole check, on files: a made-up name fails it, real ones pass.
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        metrics_path = os.path.join(tmp, "metrics.txt")
        with open(metrics_path, "w") as f:
            f.write(text)
        for exprs, want in ((["rate(c_total[5m])", "g"], 0), (["rate(c_total[5m])", "made_up_metric"], 1)):
            dash_path = os.path.join(tmp, "d.json")
            with open(dash_path, "w") as f:
                json.dump({"panels": [{"title": "t", "targets": [{"expr": e} for e in exprs]}]}, f)
            devnull = open(os.devnull, "w")
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = devnull
            try:
                got = check(dash_path, metrics_path)
            finally:
                sys.stdout, sys.stderr = stdout, stderr
                devnull.close()
            assert got == want, (exprs, got)
    print("dashboard check: self-test passed")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print("usage: dashboard_check.py DASHBOARD_JSON METRICS_TXT [RULES_YAML] | --self-test", file=sys.stderr)
        return 2
    return check(*argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
