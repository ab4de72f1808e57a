//! `WWW-Authenticate` challenges (RFC 7235 §4.1) as registries send them: `Basic realm="…"`,
//! `Bearer realm="…",service="…",scope="…"`, or several at once — in one header
//! (`Bearer realm="…",service="…", Basic realm="…"`) or in several headers.
//!
//! The grammar is `1#challenge`, where `challenge = scheme [ 1*SP ( token68 / #auth-param ) ]`:
//! a comma separates both the parameters of one challenge and the challenges, so a new
//! challenge starts where an item is a bare token (a scheme) rather than `name=value`.

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
    /// The challenge to answer among those of one header value: see [`Challenge::preferred`].
    pub fn parse(header: &str) -> Option<Challenge> {
        Challenge::preferred([header])
    }

    /// The challenge to answer among all those of all the given header values: Bearer over
    /// Basic (a token works with and without credentials, Basic only with them); the first of
    /// a kind wins. Unknown schemes and bearer challenges without a realm are passed over.
    pub fn preferred<'a>(headers: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
        let all: Vec<Challenge> = headers.into_iter().flat_map(Challenge::parse_all).collect();
        let bearer = all
            .iter()
            .position(|c| matches!(c, Challenge::Bearer { .. }));
        let chosen = bearer.or_else(|| all.iter().position(|c| *c == Challenge::Basic))?;
        all.into_iter().nth(chosen)
    }

    /// Every challenge of one header value that ocipush can answer, in order. Parsing stops at
    /// the first malformed item; the challenges complete before it are kept.
    pub fn parse_all(header: &str) -> Vec<Challenge> {
        parse_challenges(header)
            .into_iter()
            .filter_map(RawChallenge::into_challenge)
            .collect()
    }
}

/// One challenge as written: its scheme and its parameters (names lowercased).
struct RawChallenge {
    scheme: String,
    params: HashMap<String, String>,
}

impl RawChallenge {
    fn into_challenge(mut self) -> Option<Challenge> {
        if self.scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !self.scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        Some(Challenge::Bearer {
            realm: self.params.remove("realm").filter(|r| !r.is_empty())?,
            service: self.params.remove("service"),
            scope: self.params.remove("scope"),
        })
    }
}

/// Splits a header value into challenges. A challenge whose parameters are malformed (an
/// unterminated quoted string, a stray character) ends the parse and is dropped.
fn parse_challenges(header: &str) -> Vec<RawChallenge> {
    let mut cursor = Cursor::new(header);
    let mut done = Vec::new();
    let mut current: Option<RawChallenge> = None;
    loop {
        cursor.skip_list_separators();
        if cursor.at_end() {
            break;
        }
        let Some(name) = cursor.token() else {
            current = None;
            break;
        };
        cursor.skip_spaces();
        match current.as_mut() {
            // `name=value`: a parameter of the challenge being read.
            Some(challenge) if cursor.eat('=') => {
                cursor.skip_spaces();
                let Some(value) = cursor.value() else {
                    current = None;
                    break;
                };
                challenge
                    .params
                    .entry(name.to_ascii_lowercase())
                    .or_insert(value);
            }
            // A bare token: the scheme of the next challenge.
            _ => {
                done.extend(current.take());
                if cursor.rest().starts_with('=') {
                    // `name=` with no challenge to belong to.
                    break;
                }
                current = Some(RawChallenge {
                    scheme: name.to_string(),
                    params: HashMap::new(),
                });
                cursor.skip_token68();
            }
        }
        cursor.skip_spaces();
        if !(cursor.at_end() || cursor.rest().starts_with(',')) {
            // Two items not separated by a comma are only allowed as `scheme param`.
            if current.as_ref().is_some_and(|c| c.params.is_empty()) {
                continue;
            }
            current = None;
            break;
        }
    }
    done.extend(current);
    done
}

/// A position in a header value.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

/// RFC 7230 `tchar`.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// RFC 7235 `token68` characters (before the trailing `=` padding).
fn is_token68_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/".contains(c)
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Cursor { text, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn at_end(&self) -> bool {
        self.at >= self.text.len()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.rest().starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let start = self.at;
        let len = self.rest().find(|c| !keep(c)).unwrap_or(self.rest().len());
        self.at += len;
        &self.text[start..self.at]
    }

    fn skip_spaces(&mut self) {
        self.skip_while(|c| c == ' ' || c == '\t');
    }

    /// Commas and spaces between list items (empty items are allowed by `#rule`).
    fn skip_list_separators(&mut self) {
        self.skip_while(|c| c == ' ' || c == '\t' || c == ',');
    }

    fn token(&mut self) -> Option<&'a str> {
        Some(self.skip_while(is_tchar)).filter(|t| !t.is_empty())
    }

    /// After a scheme: a `token68` (`Negotiate abc==`) is consumed when it is the whole item.
    fn skip_token68(&mut self) {
        let rest = self.rest();
        let body = rest.find(|c| !is_token68_char(c)).unwrap_or(rest.len());
        let padded = body + rest[body..].find(|c| c != '=').unwrap_or(rest.len() - body);
        let after = rest[padded..].trim_start_matches([' ', '\t']);
        // `realm=x` is a parameter, not a token68: only take it if a list separator follows.
        if body > 0 && (after.is_empty() || after.starts_with(',')) {
            self.at += padded;
        }
    }

    /// A parameter value: a quoted string with `\` escapes, or else everything up to the next
    /// comma or space — laxer than `token`, because registries send unquoted URLs
    /// (`realm=https://…`) that the grammar does not allow but every client accepts.
    fn value(&mut self) -> Option<String> {
        if !self.eat('"') {
            let bare = self.skip_while(|c| c != ',' && c != '"' && !c.is_whitespace());
            return Some(bare.to_string()).filter(|v| !v.is_empty());
        }
        let mut value = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += i + 1;
                    return Some(value);
                }
                '\\' => value.push(chars.next()?.1),
                c => value.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
