//! Locating the external programs the kit drives (docker-registry, skopeo, umoci, curl).
//!
//! Tests that need one call [`require_tool`], which panics (never skips) when it is missing,
//! naming the Debian package that provides it.

use std::env;
use std::path::PathBuf;

/// The first executable named `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// `name` on `PATH`, or a panic: "`name` not found on PATH: install the Debian package
/// `debian_package` (bash .ci/run does)".
pub fn require_tool(name: &str, debian_package: &str) -> PathBuf {
    find_on_path(name).unwrap_or_else(|| {
        panic!(
            "{name} not found on PATH: install the Debian package {debian_package} \
             (bash .ci/run does)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sh_and_not_nonsense() {
        assert!(find_on_path("sh").is_some());
        assert!(find_on_path("definitely-not-a-tool-ocipush").is_none());
    }

    #[test]
    #[should_panic(expected = "not found on PATH: install the Debian package nope")]
    fn require_tool_panics_with_hint() {
        require_tool("definitely-not-a-tool-ocipush", "nope");
    }
}
