use std::env;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let dst = PathBuf::from(env::var_os("OUT_DIR").unwrap());

    #[cfg(feature = "dynamic")]
    if pkg_config::Config::new()
        .print_system_libs(false)
        .cargo_metadata(true)
        .atleast_version("1.23")
        .probe("libdeflate")
        .is_ok()
    {
        return;
    }
    else {
        println!("cargo:warning=Dynamic linking failed; falling back to static build.");
    }

    let mut build = cc::Build::new();

    // ocipush: on x86-64 (with gcc or clang), compression runs on one of two copies of
    // deflate_compress.c chosen at run time, the second built for BMI2: see ocipush/dispatch.c
    // and OCIPUSH.md. Elsewhere, the one upstream build.
    // cc prints rerun-if-env-changed lines, after which Cargo no longer reruns this script when
    // a source file changes: name the sources, or edits to the C would link stale objects.
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=libdeflate");
    println!("cargo:rerun-if-changed=ocipush");

    let compiler = build.get_compiler();
    let bmi2_dispatch = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && !compiler.is_like_msvc()
        && (compiler.is_like_gnu() || compiler.is_like_clang());
    if bmi2_dispatch {
        build.files(&["ocipush/dispatch.c", "ocipush/deflate_compress_base.c"]);
        // Compiled on its own for its own flag, then archived with the rest: one library.
        let mut bmi2 = cc::Build::new();
        bmi2.file("ocipush/deflate_compress_bmi2.c")
            .include("libdeflate")
            .warnings(false)
            .flag("-mbmi2")
            .out_dir(dst.join("lib-bmi2"));
        freestanding_if_asked(&mut bmi2);
        build.objects(bmi2.compile_intermediates());
    } else {
        build.file("libdeflate/lib/deflate_compress.c");
    }

    build
        .files(&[
            "libdeflate/lib/arm/cpu_features.c",
            "libdeflate/lib/x86/cpu_features.c",
            "libdeflate/lib/adler32.c",
            "libdeflate/lib/crc32.c",
            "libdeflate/lib/deflate_decompress.c",
            "libdeflate/lib/gzip_compress.c",
            "libdeflate/lib/gzip_decompress.c",
            "libdeflate/lib/utils.c",
            "libdeflate/lib/zlib_compress.c",
            "libdeflate/lib/zlib_decompress.c",
        ])
        .include("libdeflate")
        .warnings(false)
        .out_dir(dst.join("lib"));

    if !build.get_compiler().is_like_msvc() {
        freestanding_if_asked(&mut build);
    }

    build.compile("deflate");

    let src = Path::new("libdeflate");
    let include = dst.join("include");
    fs::create_dir_all(&include).unwrap();
    fs::copy(src.join("libdeflate.h"), include.join("libdeflate.h")).unwrap();
    println!("cargo:root={}", dst.display());
    println!("cargo:include={}", include.display());
}

/// The `freestanding` feature's flags, for each of the builds.
fn freestanding_if_asked(build: &mut cc::Build) {
    if cfg!(feature = "freestanding") {
        build
            .flag("-ffreestanding")
            .flag("-nostdlib")
            .define("FREESTANDING", None);
    }
}
