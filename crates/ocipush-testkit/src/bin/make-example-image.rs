//! Writes the repository's small example image: an OCI layout at the directory given as the
//! first argument, holding one image tagged `hello:latest` (ref name `hello:latest` in
//! `index.json`) with `/hello.txt` and `/etc/os-release`. Deterministic: every run writes the
//! same bytes and digests. Prints the manifest digest.

use ocipush_testkit::fixtures::{write_oci_layout, ImageSpec, LayerCompression, LayerSpec};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: make-example-image <output-dir>");
        return ExitCode::from(64);
    };
    let dir = PathBuf::from(dir);
    let image = ImageSpec::new(vec![
        LayerSpec::files(&[(
            "etc/os-release",
            b"NAME=\"ocipush example\"\nID=ocipush-example\nVERSION_ID=1\n\
              PRETTY_NAME=\"ocipush example image\"\n",
        )]),
        LayerSpec::files(&[("hello.txt", b"Hello from ocipush\n")]),
    ])
    .cmd(&["cat", "/hello.txt"])
    .label("org.opencontainers.image.title", "hello")
    .label(
        "org.opencontainers.image.description",
        "Example image for ocipush",
    );
    let expected = write_oci_layout(
        &dir,
        &[(image, Some("hello:latest"))],
        LayerCompression::Gzip,
    );
    let digest = expected[0]
        .manifest_digest
        .as_deref()
        .expect("OCI layouts have a manifest digest");
    println!("{digest}");
    ExitCode::SUCCESS
}
