//! The archive readers on arbitrary bytes written to a temporary file: opened as a
//! docker-archive, as an oci-archive and auto-detected, they either refuse the file with an
//! error or list images whose blobs can be read — never a panic, a hang, or a read outside
//! the file.
//!
//! The first input byte extends the file with a sparse tail of zeros (`byte × 8 MiB`, up to
//! 2 GiB, costing no disk), so that a header claiming a huge entry (a GNU long name or PAX
//! header of 1 GiB) has the bytes to back it: a reader that trusts such a header runs into
//! libFuzzer's RSS limit (2 GiB by default) and the run stops with the input that did it.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use ocipush_source::{open_path, ImageContent};

/// Blob bytes read per image at most: enough to reach every code path of the readers.
const READ_LIMIT: u64 = 1 << 20;

/// One step of the sparse tail chosen by the first input byte.
const TAIL_STEP: u64 = 8 << 20;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("input.tar");
    let Some((&tail, data)) = data.split_first() else {
        return;
    };
    std::fs::write(&path, data).expect("writing the input");
    if tail > 0 {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("reopening the input");
        file.set_len(data.len() as u64 + u64::from(tail) * TAIL_STEP)
            .expect("a sparse tail");
    }
    let path = path.display().to_string();
    for arg in [
        format!("docker-archive:{path}"),
        format!("oci-archive:{path}"),
        path.clone(),
    ] {
        let Ok(source) = open_path(&arg) else {
            continue;
        };
        for image in &source.images {
            let blobs: Vec<String> = match &image.content {
                ImageContent::Stored { blob_paths, .. } => {
                    blob_paths.iter().map(|(_, p)| p.clone()).collect()
                }
                ImageContent::Assembled(assembled) => {
                    assembled.layers.iter().map(|l| l.path.clone()).collect()
                }
                // A file never opens as a daemon image.
                ImageContent::Daemon(_) => unreachable!("a file opened as a daemon image"),
            };
            for blob in blobs {
                if let Ok(reader) = source.open_blob(&blob) {
                    let _ = std::io::copy(&mut reader.take(READ_LIMIT), &mut std::io::sink());
                }
            }
        }
    }
});
