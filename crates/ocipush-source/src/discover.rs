//! Build-directory discovery: a directory that is not itself an OCI layout is walked for every
//! image it holds — `docker save` tarballs (`.tar`, `.tar.gz`, `.tgz`), oci-archives and OCI
//! layout directories. Symlinks are followed, each real directory visited once, so links can
//! neither loop nor make an image count twice. Files that are not images are passed over with a
//! debug note; images that are broken are set aside with the reason, and the rest go on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::spec::{SourceKind, SourceSpec};
use crate::Source;

/// Deeper than any build tree; stops a pathological tree, not a real one.
const MAX_DEPTH: usize = 32;

/// What a walk found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// The images that opened: one source per archive or layout directory.
    pub sources: Vec<Source>,
    /// Images that could not be opened, with why.
    pub broken: Vec<Broken>,
    /// Tarballs that turned out to hold no image (sources, a rootfs), passed over.
    pub passed_over: Vec<PathBuf>,
}

/// An image found but not usable.
#[derive(Debug)]
pub struct Broken {
    /// The archive or directory.
    pub path: PathBuf,
    /// Why it could not be opened.
    pub error: SourceError,
}

/// Does this directory hold an OCI layout (rather than a tree to search)?
pub fn is_layout(dir: &Path) -> bool {
    dir.join("index.json").is_file()
}

/// Walks `root` for images, in sorted path order.
pub fn discover(root: &Path) -> Result<Discovery, SourceError> {
    let mut found = Discovery::default();
    let mut visited = HashSet::new();
    walk(root, 0, &mut visited, &mut found)?;
    Ok(found)
}

fn walk(
    dir: &Path,
    depth: usize,
    visited: &mut HashSet<PathBuf>,
    found: &mut Discovery,
) -> Result<(), SourceError> {
    let real = std::fs::canonicalize(dir).map_err(|e| SourceError::io(dir, e))?;
    if depth > MAX_DEPTH || !visited.insert(real) {
        tracing::debug!(dir = %dir.display(), "already visited (a symlink loop or a second link)");
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SourceError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        // metadata follows symlinks; a dangling one is noted and passed over.
        let Ok(meta) = std::fs::metadata(&path) else {
            tracing::debug!(path = %path.display(), "dangling symlink, passed over");
            continue;
        };
        if meta.is_dir() {
            if is_layout(&path) {
                let real = std::fs::canonicalize(&path).map_err(|e| SourceError::io(&path, e))?;
                if visited.insert(real) {
                    open_found(&path, SourceKind::OciLayout, found);
                }
            } else {
                walk(&path, depth + 1, visited, found)?;
            }
        } else if meta.is_file() && has_image_extension(&path) {
            let real = std::fs::canonicalize(&path).map_err(|e| SourceError::io(&path, e))?;
            if visited.insert(real) {
                open_found(&path, SourceKind::DockerArchive, found);
            }
        } else {
            tracing::debug!(path = %path.display(), "not an image file name, passed over");
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".tar", ".tar.gz", ".tgz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Opens what the walk found; `kind` only says whether it is a directory or an archive (the
/// archive's own content decides docker-archive or oci-archive).
fn open_found(path: &Path, kind: SourceKind, found: &mut Discovery) {
    let spec = SourceSpec {
        original: path.display().to_string(),
        transport: (kind == SourceKind::OciLayout).then_some(SourceKind::OciLayout),
        path: path.to_path_buf(),
        reference: None,
    };
    match crate::spec::open(&spec) {
        Ok(source) => found.sources.push(source),
        // A tarball of something else (sources, a rootfs): not an image, not a problem.
        Err(SourceError::NotAnImage { reason, .. }) => {
            tracing::debug!(path = %path.display(), %reason, "not an image, passed over");
            found.passed_over.push(path.to_path_buf());
        }
        Err(error) => found.broken.push(Broken {
            path: path.to_path_buf(),
            error,
        }),
    }
}
