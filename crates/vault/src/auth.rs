use std::sync::Arc;

use futures::future::BoxFuture;

use crate::Sensitive;

/// Supplies a fresh JWT each time a Kubernetes or JWT login happens (the
/// controller asks the TokenRequest API for a short-lived token). Its error
/// text must not contain a token.
pub type JwtSource = Arc<dyn Fn() -> BoxFuture<'static, Result<Sensitive, String>> + Send + Sync>;

/// How a client logs in.
#[derive(Clone)]
pub enum Auth {
    /// A token used as it is.
    Token(Sensitive),
    Kubernetes {
        mount_path: String,
        role: String,
        jwt: JwtSource,
    },
    AppRole {
        mount_path: String,
        role_id: String,
        secret_id: Sensitive,
    },
    Jwt {
        mount_path: String,
        role: String,
        jwt: JwtSource,
    },
    /// userpass or LDAP: a user's name and password, posted to
    /// `auth/<mount>/login/<username>`.
    Password {
        method: PasswordMethod,
        mount_path: String,
        username: String,
        password: Sensitive,
    },
    /// TLS certificate auth: the client certificate (and its key, PEM) is
    /// presented on the connection; `role` names the cert role to match.
    Cert {
        mount_path: String,
        role: Option<String>,
        identity_pem: Sensitive,
    },
}

/// The auth methods that log in with a user's name and password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordMethod {
    UserPass,
    Ldap,
}

impl Auth {
    /// The method's name as users write it in a store.
    pub fn method(&self) -> &'static str {
        match self {
            Auth::Token(_) => "token",
            Auth::Kubernetes { .. } => "kubernetes",
            Auth::AppRole { .. } => "appRole",
            Auth::Jwt { .. } => "jwt",
            Auth::Password { method: PasswordMethod::UserPass, .. } => "userPass",
            Auth::Password { method: PasswordMethod::Ldap, .. } => "ldap",
            Auth::Cert { .. } => "cert",
        }
    }

    pub(crate) fn mount(&self) -> &str {
        match self {
            Auth::Token(_) => "token",
            Auth::Kubernetes { mount_path, .. }
            | Auth::AppRole { mount_path, .. }
            | Auth::Jwt { mount_path, .. }
            | Auth::Password { mount_path, .. }
            | Auth::Cert { mount_path, .. } => mount_path.trim_matches('/'),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Auth({} at auth/{})", self.method(), self.mount())
    }
}
