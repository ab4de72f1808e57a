//! `WWW-Authenticate` header values from arbitrary text: parsing never panics, and a bearer
//! challenge always has a realm.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipush_registry::Challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(Challenge::Bearer { realm, .. }) = Challenge::parse(text) {
        assert!(!realm.is_empty());
    }
});
