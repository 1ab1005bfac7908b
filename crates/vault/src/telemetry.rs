//! What a client tells its owner about its traffic: each request with its
//! status and duration, each login attempt with its outcome. The operator
//! turns these into metrics; this crate stays free of any metrics library.

use std::time::Duration;

/// Receives a client's request and login reports. Called on the request
/// path, so an implementation must be quick and must not block.
pub trait Observer: Send + Sync + 'static {
    /// One HTTP request: what it was for, the HTTP status (`None`: no
    /// answer came: refused connection, timeout, TLS failure) and how long
    /// it took.
    fn request(&self, operation: Operation, status: Option<u16>, elapsed: Duration);

    /// One login attempt by an auth method as the store names it (`kubernetes`, `appRole`, `jwt`,
    /// `token` for a token's first lookup) and how it ended.
    fn login(&self, method: &'static str, outcome: LoginOutcome);
}

/// What a request was for. A fixed set, so a metric label built from it
/// has bounded cardinality whatever the paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// A KV read of a secret's data.
    Read,
    /// A KV v2 read of a secret's metadata.
    ReadMetadata,
    /// A KV list of a folder.
    List,
    /// `sys/internal/ui/mounts/<mount>`: the type of a mount.
    MountInfo,
    /// `auth/<mount>/login`.
    Login,
    /// `auth/token/lookup-self`.
    LookupSelf,
    /// `auth/token/renew-self`.
    RenewSelf,
    /// `auth/token/revoke-self`.
    RevokeSelf,
    /// `sys/health`.
    Health,
    /// A request to a dynamic secrets engine that issues a credential
    /// (`database/creds/<role>`, `pki/issue/<role>`, ...).
    Issue,
    /// `sys/leases/renew`.
    RenewLease,
    /// `sys/leases/revoke`, or `<pki>/revoke` of a certificate.
    Revoke,
}

impl Operation {
    pub fn label(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::ReadMetadata => "read_metadata",
            Operation::List => "list",
            Operation::MountInfo => "mount_info",
            Operation::Login => "login",
            Operation::LookupSelf => "lookup_self",
            Operation::RenewSelf => "renew_self",
            Operation::RevokeSelf => "revoke_self",
            Operation::Health => "health",
            Operation::Issue => "issue",
            Operation::RenewLease => "renew_lease",
            Operation::Revoke => "revoke",
        }
    }
}

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoginOutcome {
    /// A token was issued (or a given token was found valid).
    Success,
    /// Vault answered and refused: unknown role, bad credentials, a JWT it
    /// does not accept.
    Refused,
    /// The credential to log in with could not be obtained (a
    /// ServiceAccount token request failed).
    NoCredential,
    /// No answer from Vault.
    Unreachable,
    /// Vault is sealed.
    Sealed,
    /// Any other failure (an unexpected answer).
    Error,
}

impl LoginOutcome {
    pub fn label(self) -> &'static str {
        match self {
            LoginOutcome::Success => "success",
            LoginOutcome::Refused => "refused",
            LoginOutcome::NoCredential => "no_credential",
            LoginOutcome::Unreachable => "unreachable",
            LoginOutcome::Sealed => "sealed",
            LoginOutcome::Error => "error",
        }
    }

    pub(crate) fn of<T>(result: &crate::Result<T>) -> Self {
        use crate::Error;
        match result {
            Ok(_) => LoginOutcome::Success,
            Err(Error::Login { status, .. }) if *status < 500 => LoginOutcome::Refused,
            Err(Error::Credential { .. }) => LoginOutcome::NoCredential,
            Err(Error::Unreachable { .. } | Error::Tls(_)) => LoginOutcome::Unreachable,
            Err(Error::Sealed { .. }) => LoginOutcome::Sealed,
            Err(_) => LoginOutcome::Error,
        }
    }
}
