//! `WWW-Authenticate` header values from arbitrary text, one header per line: parsing never
//! panics, every bearer challenge has a realm, and the preferred challenge is one of those
//! parsed (Bearer whenever there is one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipush_registry::Challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let headers: Vec<&str> = text.split('\n').collect();
    let all: Vec<Challenge> = headers.iter().flat_map(|h| Challenge::parse_all(h)).collect();
    for challenge in &all {
        if let Challenge::Bearer { realm, .. } = challenge {
            assert!(!realm.is_empty());
        }
    }
    let preferred = Challenge::preferred(headers.iter().copied());
    match &preferred {
        None => assert!(all.is_empty()),
        Some(chosen) => assert!(all.contains(chosen)),
    }
    let any_bearer = all.iter().any(|c| matches!(c, Challenge::Bearer { .. }));
    assert_eq!(
        any_bearer,
        matches!(preferred, Some(Challenge::Bearer { .. }))
    );
});
