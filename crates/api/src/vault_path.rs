//! CEL rules for fields that become Vault request paths. The API server
//! refuses what these can see; the controller checks the same and more
//! (reserved mounts of a store without `path`, mount types) before any
//! request, since a rule here cannot see the store an ExternalSecret uses.

/// Longest path accepted; also what lets the API server bound the cost
/// of the rules below.
pub(crate) const MAX_PATH: usize = 512;

/// A path inside a mount: no leading or trailing `/`, no empty segments, no
/// `.` or `..` segment (also percent-encoded), no `?`, `#`, `\` or control
/// characters (also percent-encoded), no percent-encoded `/`. One regular
/// expression, so the API server's cost estimate stays within budget.
pub(crate) const KEY_RULE: &str = concat!(
    r"!self.matches('(?i)^/|//|/$|(^|/)(\\.|%(25)*2e){1,2}(/|$)|[?#\\\\\\x00-\\x1f\\x7f]",
    r"|%(25)*(2f|5c|3f|23|[01][0-9a-f]|7f)')",
);

pub(crate) const KEY_MESSAGE: &str = "must be a path inside the store's mount: no leading or trailing '/', no empty, '.' or '..' segments (in any encoding), no '?', '#', '\\' or control characters";

/// A folder or mount: the same, except that it may end with `/`.
pub(crate) const FOLDER_RULE: &str = concat!(
    r"!self.matches('(?i)^/|//|(^|/)(\\.|%(25)*2e){1,2}(/|$)|[?#\\\\\\x00-\\x1f\\x7f]",
    r"|%(25)*(2f|5c|3f|23|[01][0-9a-f]|7f)')",
);

pub(crate) const FOLDER_MESSAGE: &str = "must be a path inside Vault: no leading '/', no empty, '.' or '..' segments (in any encoding), no '?', '#', '\\' or control characters";

/// No segment named like one of Vault's system mounts, at any position:
/// behind a Vault namespace a mount starts wherever the namespace prefix
/// ends. (Percent-encoded names are refused by the controller, which
/// decodes fully; a regular expression cannot.)
pub(crate) const RESERVED_SEGMENT_RULE: &str = r"!self.matches('(?i)(^|/)(auth|sys|identity|cubbyhole)(/|$)')";

pub(crate) const RESERVED_SEGMENT_MESSAGE: &str = "must not have a segment named auth, sys, identity or cubbyhole: those are Vault's own mounts (also behind a Vault namespace), never KV secrets";

/// A KV mount: a folder that is not one of Vault's system mounts.
pub(crate) const MOUNT_RULE: &str = RESERVED_SEGMENT_RULE;

pub(crate) const MOUNT_MESSAGE: &str =
    "must name a KV secrets engine, not auth/, sys/, identity/ or cubbyhole/ (at any segment)";

/// A generator's request path: a key, except that it may start with one `/`
/// (ESO's examples write `/database/creds/<role>`).
pub(crate) const GENERATOR_PATH_RULE: &str = concat!(
    r"!self.matches('(?i)^//|//|/$|(^|/)(\\.|%(25)*2e){1,2}(/|$)|[?#\\\\\\x00-\\x1f\\x7f]",
    r"|%(25)*(2f|5c|3f|23|[01][0-9a-f]|7f)')",
);

/// A generator issues credentials from a secrets engine; Vault's own
/// mounts would let it hand a tenant tokens, identities or policies of the
/// provider's identity (`auth/token/create`, `sys/...`), which no store
/// allows either.
pub(crate) const GENERATOR_SYSTEM_MOUNT_RULE: &str = r"!self.matches('(?i)(^|/)(auth|sys|identity|cubbyhole)(/|$)')";

pub(crate) const GENERATOR_SYSTEM_MOUNT_MESSAGE: &str = "names a system mount (a segment auth, sys, identity or cubbyhole): a generator issues credentials from a secrets engine";

pub(crate) const GENERATOR_PATH_MESSAGE: &str = "must be a Vault path: no trailing '/', no empty, '.' or '..' segments (in any encoding), no '?', '#', '\\' or control characters";
