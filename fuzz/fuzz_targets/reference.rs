//! Image references and `-r` registry targets from arbitrary text: parsing never panics, and a
//! parsed reference prints as text that parses back to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipush_registry::{Reference, RegistryTarget};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = Reference::parse(text) {
        let printed = reference.to_string();
        let again = Reference::parse(&printed)
            .unwrap_or_else(|e| panic!("`{text}` parsed, its printed form `{printed}` not: {e}"));
        assert_eq!(again, reference, "`{text}` -> `{printed}`");
        let _ = reference.api_reference();
        let _ = reference.name();
    }
    if let Ok(target) = RegistryTarget::parse(text) {
        let _ = target.reference_for("app", Some("1.0"));
    }
});
