//! One problem of one object, and how a report of them is printed.

use std::fmt;

/// How bad a problem is for moving the object to vaultsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Works under vaultsync, maybe after a small change; nothing is lost.
    Warn,
    /// Refused by the API server or by vaultsync, or it would behave
    /// differently: the object cannot move as it is.
    Fail,
}

/// A problem and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    pub fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { severity: Severity::Fail, problem: problem.into(), fix: fix.into() }
    }

    pub fn warn(problem: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { severity: Severity::Warn, problem: problem.into(), fix: fix.into() }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Warn => "warning",
            Severity::Fail => "would fail",
        };
        write!(f, "{tag}: {} — {}", self.problem, self.fix)
    }
}

/// The findings of one object, named `KIND namespace/name`.
#[derive(Debug, Clone)]
pub struct ObjectReport {
    pub name: String,
    pub findings: Vec<Finding>,
}

impl ObjectReport {
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// `KIND namespace/name: ...` lines, or one `ok` line.
    pub fn lines(&self) -> Vec<String> {
        if self.findings.is_empty() {
            return vec![format!("{}: ok", self.name)];
        }
        self.findings.iter().map(|f| format!("{}: {f}", self.name)).collect()
    }
}

/// `N objects: A ok, B with warnings, C would fail`.
pub fn summary(reports: &[ObjectReport]) -> String {
    let count = |s: Option<Severity>| reports.iter().filter(|r| r.worst() == s).count();
    format!(
        "{} objects: {} ok, {} with warnings, {} would fail",
        reports.len(),
        count(None),
        count(Some(Severity::Warn)),
        count(Some(Severity::Fail))
    )
}
