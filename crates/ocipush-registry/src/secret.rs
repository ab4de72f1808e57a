//! Credentials and tokens wrapped so they cannot leak: `Debug` and `Display` print a placeholder,
//! and the value is only reachable through an explicit `expose()`.

use std::fmt;

/// A secret string: a password, identity token or bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; from here on it prints as `<redacted>`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for building an `Authorization` header or a credential store entry,
    /// and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty, asked without exposing it.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What proves who we are to one registry, in the three forms docker keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and a password (or personal access token): sent as Basic auth, to the
    /// registry or to its token server.
    Basic {
        /// The account name.
        username: String,
        /// The password or token; redacted in `Debug`.
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`, a helper's `<token>` user): exchanged
    /// for access tokens with `grant_type=refresh_token`.
    IdentityToken {
        /// The account the token belongs to, where known.
        username: Option<String>,
        /// The refresh token; redacted in `Debug`.
        token: Secret,
    },
    /// A bearer token sent as it is (docker's `registrytoken`).
    RegistryToken(Secret),
}

impl Credentials {
    /// User name and password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials::Basic {
            username: username.into(),
            password: Secret::new(password),
        }
    }

    /// The user name, where there is one.
    pub fn username(&self) -> Option<&str> {
        match self {
            Credentials::Basic { username, .. } => Some(username),
            Credentials::IdentityToken { username, .. } => username.as_deref(),
            Credentials::RegistryToken(_) => None,
        }
    }

    /// How these credentials are named in messages: "the credentials of `alice`", never a value.
    pub fn describe(&self) -> String {
        match self {
            Credentials::Basic { username, .. } => format!("the credentials of `{username}`"),
            Credentials::IdentityToken {
                username: Some(u), ..
            } => format!("the identity token of `{u}`"),
            Credentials::IdentityToken { username: None, .. } => "the identity token".into(),
            Credentials::RegistryToken(_) => "the registry token".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let c = Credentials::new("alice", "hunter2-very-secret");
        let Credentials::Basic { password, .. } = &c else {
            panic!("basic")
        };
        let shown = format!("{c:?} {password} {password:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("alice"));
        assert_eq!(password.expose(), "hunter2-very-secret");
        let token = Credentials::IdentityToken {
            username: None,
            token: Secret::new("refresh-me-secret"),
        };
        let shown = format!("{token:?} {}", token.describe());
        assert!(!shown.contains("refresh-me"), "{shown}");
        assert_eq!(c.username(), Some("alice"));
    }
}
