//! The standard `process_*` metrics (as Prometheus' client libraries name
//! them), read from /proc/self at scrape time: memory, CPU time, open file
//! descriptors and start time. Elsewhere than Linux there are none.

use std::fmt::Write;

/// Linux reports CPU times in clock ticks of USER_HZ, which is 100 on every
/// architecture Kubernetes runs on.
const TICKS_PER_SECOND: f64 = 100.0;

/// OpenMetrics text for the process metrics that could be read.
pub fn encode() -> String {
    let mut out = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let fields = stat.as_deref().and_then(stat_fields);
    if let Some(fields) = &fields {
        let ticks = field(fields, 14).unwrap_or(0.0) + field(fields, 15).unwrap_or(0.0);
        metric(
            &mut out,
            "process_cpu_seconds",
            "counter",
            "Total user and system CPU time spent in seconds.",
            "_total",
            ticks / TICKS_PER_SECOND,
        );
    }
    if let Some(rss) = status_kib("VmRSS") {
        metric(&mut out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "", rss * 1024.0);
    }
    if let Some(virtual_kib) = status_kib("VmSize") {
        metric(
            &mut out,
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            "",
            virtual_kib * 1024.0,
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(&mut out, "process_open_fds", "gauge", "Number of open file descriptors.", "", fds.count() as f64);
    }
    let start_ticks = fields.as_deref().and_then(|fields| field(fields, 22));
    if let (Some(start_ticks), Some(boot)) = (start_ticks, boot_time()) {
        let start = boot + start_ticks / TICKS_PER_SECOND;
        metric(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            "",
            start,
        );
    }
    out
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, suffix: &str, value: f64) {
    // Writing into a String cannot fail.
    let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{suffix} {value}\n");
}

/// The fields of /proc/self/stat after the command name (which may itself
/// hold spaces and parentheses), so that field N of proc(5) is index N-3.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().collect())
}

/// Field `number` (1-based, as proc(5) counts) of /proc/self/stat.
fn field(fields: &[&str], number: usize) -> Option<f64> {
    fields.get(number.checked_sub(3)?)?.parse().ok()
}

/// A `kB` line of /proc/self/status, in KiB.
fn status_kib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?;
    line[key.len() + 1..].split_whitespace().next()?.parse().ok()
}

/// Boot time in seconds since the epoch (`btime` of /proc/stat).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_odd_command_names() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 12345 1000 200";
        let fields = stat_fields(stat).unwrap();
        assert_eq!(field(&fields, 3).map(|_| ()), None, "state is not a number");
        assert_eq!(field(&fields, 14), Some(250.0));
        assert_eq!(field(&fields, 15), Some(50.0));
        assert_eq!(field(&fields, 22), Some(12345.0));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_every_metric() {
        let text = encode();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_virtual_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    /// The sample the dashboard and alert checks read must declare the
    /// process families exactly as they are exported.
    #[test]
    #[cfg(target_os = "linux")]
    fn monitoring_sample_declares_the_process_families() {
        let types = |text: &str| {
            let mut lines: Vec<String> =
                text.lines().filter(|l| l.starts_with("# TYPE process_")).map(str::to_owned).collect();
            lines.sort();
            lines
        };
        let sample = include_str!("../../../e2e/monitoring/metrics-sample.txt");
        assert_eq!(types(sample), types(&encode()));
    }
}
