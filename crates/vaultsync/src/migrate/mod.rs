//! `vaultsync convert` and `vaultsync migrate check`: moving manifests from
//! the External Secrets Operator's groups to vaultsync's (and back), and
//! saying beforehand what would change or fail. Each job in its module:
//! [`documents`] reads YAML, [`groups`] maps kinds between the groups,
//! [`convert`] rewrites one document, [`schema`] and [`cel`] apply
//! vaultsync's CRDs as the API server would, [`check`] turns all of it
//! into findings, [`cluster`] reads a live cluster.

mod cel;
mod check;
mod cluster;
mod convert;
mod documents;
mod groups;
mod schema;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::Value;

pub use convert::Target;

/// Exit code of a usage or input error (clap's own is 2 as well).
const USAGE_ERROR: i32 = 2;

#[derive(Subcommand)]
pub enum MigrateCommand {
    /// For every ESO object, what would change or fail under vaultsync, each
    /// with its fix. Exit code 0 when nothing would fail, 1 when some object
    /// would, 2 on a usage or input error.
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// Manifest files or directories (every .yaml/.yml below), `-` for
    /// stdin.
    #[arg(required_unless_present = "cluster", conflicts_with = "cluster")]
    paths: Vec<PathBuf>,
    /// Check the ESO objects of the current kubeconfig's cluster instead.
    #[arg(long)]
    cluster: bool,
}

#[derive(Args)]
#[command(after_help = "YAML comments and key order are not kept: documents are rewritten from their parsed \
                        values. Documents of other kinds are written back unchanged (Secrets included).")]
pub struct ConvertArgs {
    /// Which group to write: vaultsync's (`vaultsync.dev/v1alpha1`) or
    /// ESO's (`external-secrets.io/v1`).
    #[arg(long, value_enum, default_value_t = Target::Vaultsync)]
    to: Target,
    /// With --to eso: exit 0 even when fields that only vaultsync has were
    /// left out (they are named on stderr either way).
    #[arg(long)]
    allow_loss: bool,
    /// Manifest files or directories (every .yaml/.yml below), `-` for
    /// stdin. The result goes to stdout as one multi-document stream.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// `vaultsync convert`; returns the exit code.
pub fn run_convert(args: ConvertArgs) -> i32 {
    let documents = match documents::read_all(&args.paths) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return USAGE_ERROR;
        }
    };
    let mut values = Vec::with_capacity(documents.len());
    let mut lost = false;
    for document in &documents {
        let converted = convert::convert(document, args.to);
        for note in &converted.notes {
            eprintln!("note: {note}");
        }
        for loss in &converted.losses {
            eprintln!("{}: {loss}", if args.allow_loss { "note" } else { "error" });
        }
        lost |= !converted.losses.is_empty();
        values.push(converted.value);
    }
    match documents::to_yaml(&values) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("error: cannot write YAML: {e}");
            return USAGE_ERROR;
        }
    }
    if lost && !args.allow_loss {
        eprintln!("error: some fields have no counterpart in ESO and were left out; --allow-loss accepts that");
        return 1;
    }
    0
}

/// `vaultsync migrate check`; returns the exit code.
pub async fn run_check(command: MigrateCommand) -> i32 {
    let MigrateCommand::Check(args) = command;
    let values: Vec<Value> = if args.cluster {
        match cluster::read().await {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e:#}");
                return USAGE_ERROR;
            }
        }
    } else {
        match documents::read_all(&args.paths) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("error: {e}");
                return USAGE_ERROR;
            }
        }
    };
    let reports = check::check(&values);
    for report in &reports {
        for line in report.lines() {
            println!("{line}");
        }
    }
    println!("{}", check::summary(&reports));
    i32::from(reports.iter().any(|r| r.worst() == Some(check::Severity::Fail)))
}
