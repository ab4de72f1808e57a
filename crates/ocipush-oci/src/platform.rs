//! Platforms as `--platform` spells them (`os/arch[/variant]`) and how a requested platform
//! matches the one an image declares. Matching follows docker and containerd, so a user's
//! habits carry over: architecture aliases are normalised (`x86_64` is `amd64`, `aarch64` is
//! `arm64`), `arm64` and `arm64/v8` are one platform, a bare `arm` image is `arm/v7`, and a
//! request without a variant takes every variant (`linux/arm64` matches `linux/arm64/v8`).

use std::fmt;

use oci_spec::image::Platform;

/// A platform, as requested or as an image declares it; compared only through [`Self::matches`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlatformSpec {
    /// Operating system, lowercase (`linux`, `windows`).
    pub os: String,
    /// Architecture, lowercase, as written (`amd64`, `x86_64`); aliases are resolved only when
    /// matching.
    pub architecture: String,
    /// CPU variant, lowercase (`v7`, `v8`); never `Some` of an empty string.
    pub variant: Option<String>,
}

/// Why a `--platform` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid platform `{text}`: {reason}")]
pub struct PlatformError {
    /// The value as given.
    pub text: String,
    /// What is wrong with it, and the expected form.
    pub reason: &'static str,
}

impl PlatformSpec {
    /// Lowercases every part; an empty variant counts as none.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        PlatformSpec {
            os: os.to_ascii_lowercase(),
            architecture: architecture.to_ascii_lowercase(),
            variant: variant
                .filter(|v| !v.is_empty())
                .map(|v| v.to_ascii_lowercase()),
        }
    }

    /// `os/arch` or `os/arch/variant`, e.g. `linux/amd64`, `linux/arm64/v8`.
    pub fn parse(text: &str) -> Result<Self, PlatformError> {
        let error = |reason| PlatformError {
            text: text.to_string(),
            reason,
        };
        let parts: Vec<&str> = text.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(error("empty part; use os/arch[/variant], e.g. linux/arm64"));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Self::new(os, arch, None)),
            [os, arch, variant] => Ok(Self::new(os, arch, Some(variant))),
            _ => Err(error(
                "use os/arch[/variant], e.g. linux/amd64 or linux/arm/v7",
            )),
        }
    }

    /// The platform of an index entry.
    pub fn from_oci(platform: &Platform) -> Self {
        Self::new(
            &platform.os().to_string(),
            &platform.architecture().to_string(),
            platform.variant().as_deref(),
        )
    }

    /// Does an image declaring `image` satisfy this requested platform?
    pub fn matches(&self, image: &PlatformSpec) -> bool {
        if self.os != image.os {
            return false;
        }
        let (want_arch, want_variant) = normalize(&self.architecture, self.variant.as_deref());
        let (have_arch, have_variant) = normalize(&image.architecture, image.variant.as_deref());
        if want_arch != have_arch {
            return false;
        }
        // No variant asked for: any variant will do (docker's `--platform linux/arm`).
        if self.variant.is_none() && !implies_variant(&self.architecture) {
            return true;
        }
        want_variant == have_variant.or_else(|| default_variant(&have_arch))
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// containerd's normalisation: one spelling per architecture, and the variants that mean
/// "the baseline" dropped (`arm64/v8`, `amd64/v1`) so they equal the bare architecture.
fn normalize(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(str::to_string);
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "i386" | "386" => ("386".into(), None),
        "aarch64" | "arm64" => {
            let variant = match variant.as_deref() {
                Some("8" | "v8" | "v8.0") => None,
                Some("9" | "9.0" | "v9.0") => Some("v9".into()),
                _ => variant,
            };
            ("arm64".into(), variant)
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let variant = match variant.as_deref() {
                Some(v @ ("5" | "6" | "7" | "8")) => Some(format!("v{v}")),
                _ => variant,
            };
            ("arm".into(), variant)
        }
        other => (other.to_string(), variant),
    }
}

/// The variant an image means when it names none: 32-bit `arm` images are `v7`.
fn default_variant(normalized_arch: &str) -> Option<String> {
    (normalized_arch == "arm").then(|| "v7".into())
}

/// Architecture spellings that name a variant themselves (`armhf` is `arm/v7`).
fn implies_variant(arch: &str) -> bool {
    matches!(arch, "armhf" | "armel")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> PlatformSpec {
        PlatformSpec::parse(text).unwrap()
    }

    #[test]
    fn parses_two_or_three_parts() {
        assert_eq!(p("linux/amd64"), PlatformSpec::new("linux", "amd64", None));
        assert_eq!(p("Linux/ARM64/v8").to_string(), "linux/arm64/v8");
        for bad in ["linux", "linux/", "/amd64", "linux/arm/v7/x", ""] {
            assert!(PlatformSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn variant_is_optional_in_the_request() {
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64").matches(&p("linux/arm64")));
        assert!(p("linux/arm").matches(&p("linux/arm/v6")));
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm64").matches(&p("linux/amd64")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
    }

    #[test]
    fn baseline_variants_and_aliases_are_one_platform() {
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(p("linux/aarch64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/x86_64").matches(&p("linux/amd64")));
        assert!(p("linux/arm/v7").matches(&p("linux/arm")));
        assert!(p("linux/armhf").matches(&p("linux/arm/v7")));
        assert!(!p("linux/armhf").matches(&p("linux/arm/v6")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").matches(&p("linux/arm")));
        assert!(!p("linux/arm64/v9").matches(&p("linux/arm64/v8")));
    }
}
