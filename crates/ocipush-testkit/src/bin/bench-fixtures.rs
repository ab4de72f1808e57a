//! Writes the benchmark's images into the directory given as the first argument (used by
//! `bench/run.sh`): 1 GiB in 4 layers of compressible text and of random bytes, each as an OCI
//! layout (gzip layers, as a build tool writes them) and as a `docker save` tarball
//! (uncompressed layers), plus one `docker save` tarball holding 30 small images that share a
//! base layer and a directory `independent/` of 30 `docker save` tarballs of about 3 MiB with
//! no layer in common (the latency bench's two sets). Deterministic: the same bytes on every run. `BENCH_LAYER_MIB` shrinks the big
//! layers for a quick trial (default 256).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_layout, DockerArchiveOptions, ImageSpec, LayerCompression,
    LayerSpec,
};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: bench-fixtures <output-dir>");
        return ExitCode::from(64);
    };
    let dir = PathBuf::from(dir);
    let layer_mib: u64 = std::env::var("BENCH_LAYER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let layer = layer_mib * 1024 * 1024;
    std::fs::create_dir_all(&dir).expect("output directory");

    let text = ImageSpec::new((0..4).map(|i| LayerSpec::text(layer, 100 + i)).collect());
    let random = ImageSpec::new((0..4).map(|i| LayerSpec::random(layer, 200 + i)).collect());
    for (name, image) in [("text", text), ("random", random)] {
        write_oci_layout(
            &dir.join(format!("{name}-oci")),
            &[(image.clone(), Some(&format!("bench-{name}:1")))],
            LayerCompression::Gzip,
        );
        write_docker_archive(
            &dir.join(format!("{name}.tar")),
            &[(image, vec![&format!("bench-{name}:1")])],
            DockerArchiveOptions::default(),
        );
        eprintln!("wrote {name}");
    }
    write_small_images(&dir.join("small.tar"));
    eprintln!("wrote small");
    write_independent_images(&dir.join("independent"));
    eprintln!("wrote independent");
    ExitCode::SUCCESS
}

fn write_small_images(path: &Path) {
    let base = LayerSpec::text(8 * 1024 * 1024, 7);
    let tags: Vec<String> = (0..30).map(|i| format!("small-{i:02}:1")).collect();
    let images: Vec<(ImageSpec, Vec<&str>)> = tags
        .iter()
        .enumerate()
        .map(|(i, tag)| {
            let own = LayerSpec::text(2 * 1024 * 1024, 1000 + i as u64);
            (ImageSpec::new(vec![base.clone(), own]), vec![tag.as_str()])
        })
        .collect();
    write_docker_archive(path, &images, DockerArchiveOptions::default());
}

/// 30 tarballs, one image each: a 2 MiB and a 1 MiB layer of text of their own.
fn write_independent_images(dir: &Path) {
    std::fs::create_dir_all(dir).expect("independent/");
    for i in 0..30u64 {
        let tag = format!("solo-{i:02}:1");
        let image = ImageSpec::new(vec![
            LayerSpec::text(2 * 1024 * 1024, 3000 + 2 * i),
            LayerSpec::text(1024 * 1024, 3001 + 2 * i),
        ]);
        write_docker_archive(
            &dir.join(format!("solo-{i:02}.tar")),
            &[(image, vec![tag.as_str()])],
            DockerArchiveOptions::default(),
        );
    }
}
