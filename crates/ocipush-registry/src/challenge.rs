//! `WWW-Authenticate` challenges (RFC 7235) as registries send them: `Basic realm="…"` or
//! `Bearer realm="…",service="…",scope="…"`.

use std::collections::HashMap;

/// An authentication challenge from a 401 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Send the credentials as Basic auth.
    Basic,
    /// Fetch a token from the token server at `realm` and send it as a bearer token.
    Bearer {
        /// The token server's URL.
        realm: String,
        /// The `service` to name in token requests.
        service: Option<String>,
        /// The scope the refused request needs, if the registry names it.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses a header value. Unknown schemes and bearer challenges without a realm give `None`.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = match header.find(char::is_whitespace) {
            Some(i) => (&header[..i], header[i..].trim_start()),
            None => (header, ""),
        };
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut params = parse_params(rest)?;
        Some(Challenge::Bearer {
            realm: params.remove("realm").filter(|r| !r.is_empty())?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        })
    }
}

/// `key=value` or `key="quoted, \"escaped\""` pairs separated by commas; keys are lowercased.
fn parse_params(input: &str) -> Option<HashMap<String, String>> {
    let mut params = HashMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(params);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return None;
        }
        while matches!(chars.peek(), Some(c) if c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.insert(key.to_ascii_lowercase(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_with_quoted_comma_scope() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
    }

    #[test]
    fn parses_basic_and_unquoted_values() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry""#),
            Some(Challenge::Basic)
        );
        let c = Challenge::parse("bearer realm=http://x/token, service=x").unwrap();
        assert!(matches!(c, Challenge::Bearer { ref realm, .. } if realm == "http://x/token"));
    }

    #[test]
    fn refuses_garbage() {
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
        assert_eq!(Challenge::parse(r#"Bearer realm="unterminated"#), None);
        assert_eq!(Challenge::parse("Bearer realm"), None);
    }
}
