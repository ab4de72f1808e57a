//! Pushes through a fault-injecting proxy in front of a real docker-registry (issue 4, point
//! 7): connections reset while bodies stream, 5xx/429 with Retry-After, stalls, truncated
//! responses, 413 for big bodies. Every push must either succeed with exactly the source's
//! digests (read back with skopeo from the registry itself, not through the proxy) or fail with
//! one `error:` line — and a tag that exists after a failure must name a whole image.
//!
//! The faults of push `i` come from the seed `BASE + i` (`FaultPlan::from_seed`); most pushes
//! run with `-j 1`, so their requests, and so their faults, come in the same order on every
//! run; every 3rd runs with `-j 3` (same schedule, but which blob it hits may vary).
//! Replay: `OCIPUSH_FAULT_SEED=<seed> OCIPUSH_FAULT_PUSHES=1 cargo test -p ocipush --test
//! faults`. Other seeds explore other schedules.

mod common;

use std::process::Output;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use ocipush_testkit::fault_proxy::{Fault, FaultPlan, FaultProxy, RequestKind, Rule};
use ocipush_testkit::fixtures::{
    write_docker_archive, write_oci_archive, write_oci_layout, DockerArchiveOptions, ExpectedImage,
    ImageSpec, LayerCompression, LayerSpec,
};
use ocipush_testkit::registry::{DockerRegistry, RegistryOptions};
use ocipush_testkit::skopeo::{self, ManifestView, SkopeoAuth};

const DEFAULT_SEED: u64 = 4_000;
const DEFAULT_PUSHES: u64 = 208;
/// Registries (each with its proxy) pushed to side by side; pushes to one are sequential,
/// since a proxy counts one push's requests at a time.
const WORKERS: usize = 4;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// A test image in one of the source formats.
struct Case {
    source: String,
    expected: ExpectedImage,
    /// OCI sources are pushed byte for byte: the manifest digest is known beforehand.
    oci: bool,
    /// Pushed with `--chunk-size 64k` (every 4th seed), so chunked uploads and their resume
    /// meet the faults too.
    chunked: bool,
    /// Pushed with `-j 3`.
    parallel: bool,
    /// Every blob streamed (POST, PATCH, PUT) even when small (`OCIPUSH_SMALL_BLOB=0`, every
    /// other seed); the others send small blobs from memory as POST + PUT with the body.
    streamed: bool,
    _dir: tempfile::TempDir,
}

/// Small, distinct per seed (so no blob is already in the registry), in three formats.
fn make_case(seed: u64) -> Case {
    let dir = tempfile::tempdir().unwrap();
    let layers = (0..1 + seed % 3)
        .map(|n| {
            LayerSpec::random(
                8 * 1024 + (seed * 7919 + n * 104_729) % (160 * 1024),
                seed * 4 + n,
            )
        })
        .collect();
    let spec = ImageSpec::new(layers).label("org.ocipush.test.seed", &seed.to_string());
    match seed % 5 {
        0..=2 => {
            let expected =
                write_oci_layout(dir.path(), &[(spec, Some("1"))], LayerCompression::Gzip)
                    .remove(0);
            Case {
                source: dir.path().display().to_string(),
                expected,
                oci: true,
                chunked: seed % 4 == 1,
                parallel: seed % 3 == 2,
                streamed: seed % 2 == 0,
                _dir: dir,
            }
        }
        3 => {
            // Uncompressed layers: ocipush compresses them and streams the body chunked.
            let path = dir.path().join("image.tar");
            let expected = write_docker_archive(
                &path,
                &[(spec, vec!["faults:1"])],
                DockerArchiveOptions::default(),
            )
            .remove(0);
            Case {
                source: path.display().to_string(),
                expected,
                oci: false,
                chunked: seed % 4 == 1,
                parallel: seed % 3 == 2,
                streamed: seed % 2 == 0,
                _dir: dir,
            }
        }
        _ => {
            let path = dir.path().join("image.oci.tar");
            let expected =
                write_oci_archive(&path, &[(spec, Some("1"))], LayerCompression::Gzip).remove(0);
            Case {
                source: format!("oci-archive:{}", path.display()),
                expected,
                oci: true,
                chunked: seed % 4 == 1,
                parallel: seed % 3 == 2,
                streamed: seed % 2 == 0,
                _dir: dir,
            }
        }
    }
}

fn push_through(proxy: &FaultProxy, case: &Case, tag: &str) -> Output {
    let dest = proxy.reference(tag);
    // Every 3rd push sends its blobs side by side: which blob meets a fault may then differ
    // between runs of the same seed, but races between blobs get their share of faults.
    let jobs = if case.parallel { "3" } else { "1" };
    let mut args = vec!["push", "--plain-http", "-j", jobs, "--retries", "3"];
    args.extend_from_slice(&["--timeout", "60s"]);
    if case.chunked {
        args.extend_from_slice(&["--chunk-size", "64k"]);
    }
    args.extend_from_slice(&[&case.source, &dest]);
    let small_blob = if case.streamed { "0" } else { "8MiB" };
    ocipush_env(
        &args,
        None,
        &[
            ("OCIPUSH_RETRY_BASE_MS", "5".as_ref()),
            ("OCIPUSH_SMALL_BLOB", small_blob.as_ref()),
        ],
    )
}

/// What the registry holds under `tag` is exactly `case`'s image: manifest (for OCI sources),
/// config, and every layer readable by skopeo with the right diffID.
fn check_image(
    registry: &DockerRegistry,
    tag: &str,
    case: &Case,
    digest: Option<&str>,
) -> Result<(), String> {
    let auth = SkopeoAuth::insecure();
    let reference = registry.docker_ref(tag);
    let raw = skopeo::try_inspect_raw(&reference, &auth)?;
    let held = skopeo::manifest_digest(&raw);
    if let Some(digest) = digest {
        if held != digest {
            return Err(format!(
                "ocipush printed {digest}, the registry holds {held}"
            ));
        }
    }
    if case.oci && case.expected.manifest_digest.as_deref() != Some(held.as_str()) {
        return Err(format!(
            "manifest {held}, expected {:?}",
            case.expected.manifest_digest
        ));
    }
    let view = ManifestView::parse(&raw);
    if view.config_digest.as_deref() != Some(case.expected.config_digest.as_str()) {
        return Err(format!(
            "config {:?}, expected {}",
            view.config_digest, case.expected.config_digest
        ));
    }
    let copy = tempfile::tempdir().unwrap();
    skopeo::try_copy(
        &reference,
        &format!("oci:{}:copy", copy.path().display()),
        &auth,
        &SkopeoAuth::default(),
        &[],
    )
    .map_err(|e| format!("the image is incomplete: {e}"))?;
    let diff_ids = layout_diff_ids(copy.path());
    if diff_ids != case.expected.diff_ids {
        return Err(format!(
            "layers decompress to {diff_ids:?}, expected {:?}",
            case.expected.diff_ids
        ));
    }
    Ok(())
}

/// The contract for one push; `Err` says how it was broken.
fn judge(registry: &DockerRegistry, tag: &str, case: &Case, out: &Output) -> Result<bool, String> {
    if out.status.success() {
        let digest = pushed_digest(out);
        check_image(registry, tag, case, Some(&digest))?;
        return Ok(true);
    }
    let code = out.status.code();
    if !matches!(code, Some(1..=5)) {
        return Err(format!("exit {code:?} (a crash, a timeout or a signal)"));
    }
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    if errors.len() != 1 || errors[0].len() <= "error: ".len() || err.contains("panicked") {
        return Err(format!("not one clear error line: {errors:?}"));
    }
    // A tag may exist only if it names the whole image.
    if skopeo::try_inspect_raw(&registry.docker_ref(tag), &SkopeoAuth::insecure()).is_ok() {
        check_image(registry, tag, case, None)
            .map_err(|e| format!("failed push left a tag on a broken image: {e}"))?;
    }
    Ok(false)
}

#[derive(Default)]
struct Tally {
    pushed: u64,
    failed: u64,
    faults: u64,
    violations: Vec<String>,
    lines: Vec<String>,
}

#[test]
fn faulted_pushes_succeed_exactly_or_fail_cleanly() {
    let base = env_u64("OCIPUSH_FAULT_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_u64("OCIPUSH_FAULT_PUSHES").unwrap_or(DEFAULT_PUSHES);
    eprintln!(
        "fault seeds {base}..{}: replay push i with OCIPUSH_FAULT_SEED={base}+i OCIPUSH_FAULT_PUSHES=1",
        base + count
    );
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(count as usize) {
            scope.spawn(|| {
                let registry = DockerRegistry::start(RegistryOptions::default());
                let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= count {
                        break;
                    }
                    let seed = base + i;
                    let case = make_case(seed);
                    let plan = FaultPlan::from_seed(seed);
                    proxy.set_plan(plan.clone());
                    let tag = format!("faults/s{seed}:t");
                    let out = push_through(&proxy, &case, &tag);
                    let injected = proxy.injected();
                    proxy.set_plan(FaultPlan::none());
                    let verdict = judge(&registry, &tag, &case, &out);
                    let mut t = tally.lock().unwrap();
                    t.faults += injected.len() as u64;
                    let status = match &verdict {
                        Ok(true) => {
                            t.pushed += 1;
                            "pushed".to_string()
                        }
                        Ok(false) => {
                            t.failed += 1;
                            let err = stderr(&out);
                            let line = err.lines().find(|l| l.starts_with("error: "));
                            format!(
                                "failed cleanly (exit {:?}, {})",
                                out.status.code(),
                                line.unwrap_or_default()
                            )
                        }
                        Err(why) => {
                            t.violations.push(format!(
                                "{plan}\n  injected: {injected:?}\n  source: {}\n  broken: {why}\n  exit: {:?}\n  stderr:\n{}",
                                case.source,
                                out.status.code(),
                                stderr(&out)
                            ));
                            "CONTRACT BROKEN".to_string()
                        }
                    };
                    let mode = match (case.chunked, case.parallel) {
                        (true, true) => "chunked, -j 3",
                        (true, false) => "chunked",
                        (false, true) => "streamed, -j 3",
                        (false, false) => "streamed",
                    };
                    t.lines
                        .push(format!("{plan} ({mode}) -> {status}; injected {injected:?}"));
                }
            });
        }
    });
    let t = tally.into_inner().unwrap();
    for line in &t.lines {
        eprintln!("{line}");
    }
    eprintln!(
        "{} pushes in {:.1}s: {} pushed, {} failed cleanly, {} faults injected",
        count,
        started.elapsed().as_secs_f64(),
        t.pushed,
        t.failed,
        t.faults
    );
    assert!(
        t.violations.is_empty(),
        "{} of {count} pushes broke the contract:\n{}",
        t.violations.len(),
        t.violations.join("\n\n")
    );
    assert_eq!(t.pushed + t.failed, count);
    if count >= 100 {
        // The schedules must really break things, and retries must really save some.
        assert!(t.faults >= count, "only {} faults injected", t.faults);
        assert!(t.pushed > count / 2, "only {} of {count} pushed", t.pushed);
        assert!(t.failed > 0, "no push failed: the faults are too gentle");
    }
}

/// One directed schedule per kind of fault, each survivable: the push must succeed.
#[test]
fn each_fault_kind_is_survived() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let patch_reset = Fault::ResetRequest {
        after_body_bytes: 10_000,
    };
    let plans = [
        Rule::nth(RequestKind::UploadPatch, 1, patch_reset),
        Rule::nth(RequestKind::UploadPatch, 2, Fault::ResetResponse),
        Rule::nth(RequestKind::UploadPatch, 1, Fault::TruncateResponse),
        Rule::nth(
            RequestKind::UploadStart,
            1,
            Fault::Status {
                status: 503,
                retry_after: Some(0),
            },
        ),
        Rule::nth(RequestKind::BlobHead, 1, Fault::TruncateResponse),
        Rule::nth(RequestKind::Ping, 1, Fault::TruncateResponse),
        Rule::nth(RequestKind::UploadCommit, 1, Fault::ResetResponse),
        Rule::nth(RequestKind::UploadCommit, 1, Fault::TruncateResponse),
        // Every answer to the commit lost: the blob is there all the same.
        Rule::every(RequestKind::UploadCommit, 1, Fault::ResetResponse),
        Rule::nth(RequestKind::ManifestPut, 1, Fault::ResetResponse),
        Rule::nth(RequestKind::ManifestPut, 1, patch_reset),
        Rule::nth(RequestKind::UploadPatch, 1, Fault::Stall { millis: 300 }),
    ];
    let mut broken = Vec::new();
    for (n, rule) in plans.into_iter().enumerate() {
        for (m, seed) in [90_000 + n as u64 * 10, 90_003 + n as u64 * 10]
            .into_iter()
            .enumerate()
        {
            // One OCI layout and one docker archive (chunked body) per rule; a PATCH's fault
            // needs a streamed upload to meet it.
            let mut case = make_case(seed);
            case.streamed |= rule.kind == RequestKind::UploadPatch;
            proxy.set_plan(FaultPlan::rules(vec![rule]));
            let tag = format!("directed/r{n}-{m}:t");
            let out = push_through(&proxy, &case, &tag);
            let injected = proxy.injected();
            if injected.is_empty() {
                broken.push(format!("{rule}: never fired"));
                continue;
            }
            if !out.status.success() {
                broken.push(format!(
                    "{rule} ({}): push failed:\n{}",
                    case.source,
                    stderr(&out)
                ));
                continue;
            }
            let digest = pushed_digest(&out);
            if let Err(e) = check_image(&registry, &tag, &case, Some(&digest)) {
                broken.push(format!("{rule}: {e}"));
            }
            // Whatever was sent again is in the summary (a stall is waited out, not retried).
            let stall = matches!(rule.fault, Fault::Stall { .. });
            match retries_in_summary(&stderr(&out)) {
                Some(0) if !stall => broken.push(format!(
                    "{rule} ({}): the summary counts no retry:\n{}",
                    case.source,
                    stderr(&out)
                )),
                None => broken.push(format!("{rule}: no summary:\n{}", stderr(&out))),
                _ => {}
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n\n"));
}

/// `N` of the summary's `…; N retries; …`.
fn retries_in_summary(stderr: &str) -> Option<u64> {
    let summary = stderr.lines().find(|l| l.contains("image(s) pushed"))?;
    summary
        .split("; ")
        .find_map(|part| {
            part.strip_suffix(" retries")
                .or_else(|| part.strip_suffix(" retry"))
        })?
        .parse()
        .ok()
}

/// `Retry-After` is waited out, and 429 is retried.
#[test]
fn retry_after_is_honoured() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let case = make_case(95_000);
    proxy.set_plan(FaultPlan::rules(vec![Rule::nth(
        RequestKind::ManifestPut,
        1,
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    )]));
    let started = Instant::now();
    let out = push_through(&proxy, &case, "slow/down:t");
    let digest = pushed_digest(&out);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(proxy.injected().len(), 1);
    check_image(&registry, "slow/down:t", &case, Some(&digest)).unwrap();
}

/// A proxy refusing even the smallest chunks ocipush falls back to (64 KiB): a clear error
/// naming the 413, and no tag. (Limits above that are worked around: tests/chunked_uploads.rs.)
#[test]
fn payload_too_large_fails_clearly() {
    let registry = DockerRegistry::start(RegistryOptions::default());
    let proxy = FaultProxy::start(([127, 0, 0, 1], registry.port()).into());
    let case = make_case(95_010);
    proxy.set_plan(FaultPlan::rules(vec![Rule::every(
        RequestKind::UploadPatch,
        1,
        Fault::RejectLarge { limit: 1024 },
    )]));
    let out = push_through(&proxy, &case, "too/big:t");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(stderr(&out).contains("413"), "{}", stderr(&out));
    assert!(
        skopeo::try_inspect_raw(&registry.docker_ref("too/big:t"), &SkopeoAuth::insecure())
            .is_err()
    );
}
