//! The parser on the header forms real registries and proxies send.

use super::*;

fn bearer(realm: &str, service: Option<&str>, scope: Option<&str>) -> Challenge {
    Challenge::Bearer {
        realm: realm.into(),
        service: service.map(Into::into),
        scope: scope.map(Into::into),
    }
}

#[test]
fn distribution_token_auth_with_a_quoted_comma_in_the_scope() {
    assert_eq!(
        Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        ),
        Some(bearer(
            "https://auth.docker.io/token",
            Some("registry.docker.io"),
            Some("repository:a/b:pull,push")
        ))
    );
}

#[test]
fn distribution_insufficient_scope_error_parameter_is_ignored() {
    let header = r#"Bearer realm="https://r.example/token",service="r",scope="repository:x:pull",error="insufficient_scope""#;
    assert_eq!(
        Challenge::parse_all(header),
        [bearer(
            "https://r.example/token",
            Some("r"),
            Some("repository:x:pull")
        )]
    );
}

#[test]
fn real_registries_single_challenges() {
    let cases = [
        // distribution with htpasswd
        (r#"Basic realm="Registry Realm""#, Challenge::Basic),
        // Nexus (scheme in capitals)
        (
            r#"BASIC realm="Sonatype Nexus Repository Manager""#,
            Challenge::Basic,
        ),
        // ECR: Basic with extra parameters
        (
            r#"Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com""#,
            Challenge::Basic,
        ),
        // Harbor
        (
            r#"Bearer realm="https://harbor.example/service/token",service="harbor-registry""#,
            bearer(
                "https://harbor.example/service/token",
                Some("harbor-registry"),
                None,
            ),
        ),
        // GHCR
        (
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull""#,
            bearer(
                "https://ghcr.io/token",
                Some("ghcr.io"),
                Some("repository:user/image:pull"),
            ),
        ),
        // Gitea
        (
            r#"Bearer realm="https://gitea.cnoe.localtest.me:8443/v2/token",service="container_registry",scope="*""#,
            bearer(
                "https://gitea.cnoe.localtest.me:8443/v2/token",
                Some("container_registry"),
                Some("*"),
            ),
        ),
        // Artifactory (no scope on /v2/)
        (
            r#"Bearer realm="https://art.example/artifactory/api/docker/docker-local/v2/token",service="art.example:443""#,
            bearer(
                "https://art.example/artifactory/api/docker/docker-local/v2/token",
                Some("art.example:443"),
                None,
            ),
        ),
        // Unquoted values, spaces around `=` and after commas
        (
            "bearer realm = http://x/token , service=x",
            bearer("http://x/token", Some("x"), None),
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(Challenge::parse(header), Some(expected), "{header}");
    }
}

#[test]
fn bearer_and_basic_in_one_header_prefers_bearer() {
    let header = r#"Bearer realm="https://auth.example/token",service="registry.example", Basic realm="Registry""#;
    let token = bearer("https://auth.example/token", Some("registry.example"), None);
    assert_eq!(
        Challenge::parse_all(header),
        [token.clone(), Challenge::Basic]
    );
    assert_eq!(Challenge::parse(header), Some(token.clone()));
    // Basic first in the same header: still Bearer.
    let header = r#"Basic realm="Registry", Bearer realm="https://auth.example/token",service="registry.example""#;
    assert_eq!(Challenge::parse(header), Some(token));
}

#[test]
fn several_headers_prefer_bearer_whatever_the_order() {
    let headers = [
        r#"Basic realm="Artifactory Realm""#,
        r#"Bearer realm="https://a/token",service="a""#,
    ];
    assert_eq!(
        Challenge::preferred(headers),
        Some(bearer("https://a/token", Some("a"), None))
    );
    assert_eq!(
        Challenge::preferred([r#"Negotiate"#, r#"Basic realm="x""#]),
        Some(Challenge::Basic)
    );
    assert_eq!(Challenge::preferred(["Negotiate", "NTLM"]), None);
}

#[test]
fn quoted_strings_keep_commas_escapes_and_spaces() {
    let header =
        r#"Bearer realm="https://a/token?x=1,y=2",service="my \"quoted\" service, with comma""#;
    assert_eq!(
        Challenge::parse(header),
        Some(bearer(
            "https://a/token?x=1,y=2",
            Some(r#"my "quoted" service, with comma"#),
            None
        ))
    );
}

#[test]
fn token68_challenges_are_passed_over_and_what_follows_is_read() {
    let header = r#"Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg==, Bearer realm="https://a/token""#;
    assert_eq!(
        Challenge::parse_all(header),
        [bearer("https://a/token", None, None)]
    );
    // A bare scheme with no parameters at all.
    assert_eq!(Challenge::parse_all("Negotiate, Basic"), [Challenge::Basic]);
}

#[test]
fn empty_list_items_are_allowed() {
    assert_eq!(
        Challenge::parse_all(r#" , Basic realm="x" ,, "#),
        [Challenge::Basic]
    );
}

#[test]
fn malformed_input_keeps_what_came_before_and_never_invents_a_realm() {
    assert_eq!(Challenge::parse("Negotiate abc"), None);
    assert_eq!(Challenge::parse("Bearer service=x"), None);
    assert_eq!(Challenge::parse(r#"Bearer realm="unterminated"#), None);
    assert_eq!(Challenge::parse("Bearer realm"), None);
    assert_eq!(Challenge::parse(r#"Bearer realm="""#), None);
    assert_eq!(Challenge::parse(r#"realm="x", Basic"#), None);
    assert_eq!(Challenge::parse(""), None);
    assert_eq!(
        Challenge::parse_all(r#"Basic realm="x", Bearer realm="y" junk"#),
        [Challenge::Basic]
    );
    assert_eq!(
        Challenge::parse_all(r#"Basic realm="x", Bearer realm="#),
        [Challenge::Basic]
    );
}

#[test]
fn the_first_of_repeated_parameters_wins() {
    assert_eq!(
        Challenge::parse(r#"Bearer realm="https://a/token", realm="https://evil/token""#),
        Some(bearer("https://a/token", None, None))
    );
}
