//! `ocipush push`: open the sources, plan destinations, push, and report.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use ocipush_engine::{
    dry_run, plan, push, select_platforms, Destination, Failure, FailureKind, ImageReport,
    ImageStatus, PushOptions, PushReport, Reporter, SilentReporter, SkippedImage,
};
use ocipush_registry::RegistryTarget;
use ocipush_source::discover::Broken;
use ocipush_source::Source;
use tokio_util::sync::CancellationToken;

use crate::failure::{exit_code, CliError, EXIT_GENERAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_TIMEOUT};
use crate::local::{default_addr, default_root, LocalRegistry};
use crate::printer;
use crate::progress::{BarReporter, LineReporter};
use crate::settings::{PushSettings, Target};
use crate::sources::open_all;

pub async fn run(settings: PushSettings, quiet: bool) -> Result<u8, CliError> {
    if !quiet {
        for warning in &settings.warnings {
            eprintln!("warning: {warning}");
        }
    }
    let found = open_all(
        &settings.sources,
        &settings.daemon,
        &settings.source_registries,
        &settings.source_reading,
    )
    .await?;
    if !quiet {
        for warning in &found.warnings {
            eprintln!("warning: {warning}");
        }
    }
    let broken = found.broken;
    let mut opened: Vec<Source> = found.sources;
    for source in &mut opened {
        source.images.retain(|image| settings.filter.accepts(image));
    }
    if settings.filter.is_active() && opened.iter().all(|s| s.images.is_empty()) {
        return Err(CliError::usage(
            "no image of the sources matches --include/--exclude",
            Some("`ocipush list SOURCE...` shows the images and their names".into()),
        ));
    }
    let skipped = select_platforms(&mut opened, &settings.platforms).map_err(CliError::from)?;
    if !quiet {
        for image in &skipped {
            eprintln!("note: {}", platform_note(image));
        }
    }
    let sources: Vec<Arc<Source>> = opened.into_iter().map(Arc::new).collect();

    let mut client = settings.client.clone();
    let (destination, local) = match &settings.target {
        Target::Remote(d) => (d.clone(), None),
        Target::Local => {
            let local = LocalRegistry::attach_or_start(&default_root()?, default_addr()?).await?;
            client.plain_http = true;
            let target = RegistryTarget::parse(&local.addr.to_string())
                .map_err(|e| CliError::with_code(e.to_string(), None, EXIT_GENERAL))?;
            (Destination::Registry(target), Some(local))
        }
    };
    let options = PushOptions::default()
        .with_jobs(settings.jobs)
        .with_client(client)
        .with_compression(settings.compression)
        .with_cache(settings.cache.clone())
        .with_limit_rate(settings.limit_rate)
        .with_small_blob(settings.small_blob);
    let planned = plan(
        &sources,
        &destination,
        &settings.tags,
        &options.plan_settings(),
    )
    .map_err(CliError::from)?;
    if !quiet {
        for repeat in &planned.repeats {
            eprintln!(
                "note: {} is the same image as {}, bound for the same references: pushed once",
                repeat.label, repeat.same_as
            );
        }
    }

    let reporter: Arc<dyn Reporter> = if quiet || settings.json {
        Arc::new(SilentReporter)
    } else if std::io::stderr().is_terminal() {
        Arc::new(BarReporter::new())
    } else {
        Arc::new(LineReporter::new())
    };
    if settings.dry_run {
        let plans = dry_run(planned, &options).await;
        if let Some(local) = local {
            local.shutdown().await;
        }
        let mut stdout = std::io::stdout().lock();
        let _ = if settings.json {
            writeln!(stdout, "{}", printer::dry_run_json(&plans, &broken))
        } else {
            write!(stdout, "{}", printer::dry_run(&plans, &broken))
        };
        let failed = plans.iter().any(|p| p.error.is_some()) || !broken.is_empty();
        return Ok(if failed { EXIT_GENERAL } else { EXIT_OK });
    }
    tokio::spawn(cancel_on_signal(options.cancel.clone()));
    let pushing = push(planned, &options, reporter);
    let report = with_broken(
        match settings.timeout {
            Some(limit) => match tokio::time::timeout(limit, pushing).await {
                Ok(report) => report,
                Err(_) => {
                    return Err(CliError::with_code(
                        format!("the push did not finish within {}s", limit.as_secs_f64()),
                        Some("raise --timeout, or check the network to the registry".into()),
                        EXIT_TIMEOUT,
                    ))
                }
            },
            None => pushing.await,
        },
        broken,
    );
    if let Some(local) = local {
        if !quiet && !settings.json {
            explain_local(&report, &local);
        }
        local.shutdown().await;
    }
    emit(&report, settings.json, quiet);
    if let Some(path) = &settings.digestfile {
        write_digestfile(path, &report)?;
    }
    Ok(report_exit_code(&report))
}

/// `--digestfile`: the digest of every image pushed, one per line, in the report's order. Not
/// written when nothing was pushed, so a script's `cat` fails rather than reads nothing.
fn write_digestfile(path: &std::path::Path, report: &PushReport) -> Result<(), CliError> {
    let digests: Vec<&str> = report
        .images
        .iter()
        .filter(|image| image.status == ImageStatus::Pushed)
        .filter_map(|image| image.digest.as_deref())
        .collect();
    if digests.is_empty() {
        return Ok(());
    }
    std::fs::write(path, format!("{}\n", digests.join("\n"))).map_err(|e| {
        CliError::with_code(
            format!("cannot write --digestfile {}: {e}", path.display()),
            Some("the images were pushed; give a writable path".into()),
            EXIT_GENERAL,
        )
    })
}

/// Broken images found in a build directory count as skipped images, with their error, so
/// the summary, `--json` and the exit code tell of them.
fn with_broken(report: PushReport, broken: Vec<Broken>) -> PushReport {
    if broken.is_empty() {
        return report;
    }
    let elapsed = Duration::from_millis(report.summary.duration_ms);
    let mut images = report.images;
    for b in broken {
        let error = ocipush_engine::PushError::from(b.error);
        images.push(ImageReport::skipped(
            b.path.display().to_string(),
            Failure::from(&error),
        ));
    }
    let abandoned = report.summary.bytes_abandoned;
    let mut report = PushReport::new(images, elapsed);
    report.summary.bytes_abandoned = abandoned;
    report
}

fn emit(report: &PushReport, json: bool, quiet: bool) {
    let mut stdout = std::io::stdout().lock();
    if json {
        let _ = writeln!(stdout, "{}", printer::json(report));
    } else {
        let _ = printer::references(report, &mut stdout);
    }
    let _ = stdout.flush();
    // With --json the summary is in the document; the errors still go to stderr, for a person.
    eprint!("{}", printer::closing(report, quiet || json));
}

/// Why `--platform` left an image out.
pub fn platform_note(image: &SkippedImage) -> String {
    let platforms: Vec<String> = image.platforms.iter().map(|p| p.to_string()).collect();
    if platforms.is_empty() {
        format!(
            "{} left out: its platform is unknown, so it matches no --platform",
            image.label
        )
    } else {
        format!(
            "{} left out: it is {}, not a --platform",
            image.label,
            platforms.join(", ")
        )
    }
}

fn explain_local(report: &PushReport, local: &LocalRegistry) {
    if report.summary.pushed == 0 {
        return;
    }
    eprintln!("pushed into the local registry at {}", local.root.display());
    if local.is_in_process() {
        eprintln!(
            "to pull: run `{}` (it serves that directory on {addr}), then `docker pull {addr}/{}`",
            serve_command(local.addr),
            first_path(report),
            addr = local.addr,
        );
    } else {
        eprintln!(
            "to pull: `docker pull {}`",
            report
                .images
                .iter()
                .find_map(|i| i.references.first())
                .cloned()
                .unwrap_or_default()
        );
    }
}

/// The `ocipush serve` command serving the local registry where this push put it.
fn serve_command(addr: std::net::SocketAddr) -> String {
    if addr.to_string() == crate::local::DEFAULT_ADDR {
        "ocipush serve".into()
    } else {
        format!("ocipush serve --addr {addr}")
    }
}

fn first_path(report: &PushReport) -> String {
    report
        .images
        .iter()
        .find(|i| i.status == ImageStatus::Pushed)
        .and_then(|i| i.references.first())
        .and_then(|r| r.split_once('/').map(|(_, path)| path.to_string()))
        .unwrap_or_default()
}

/// 0 when everything was pushed; the failure's own code when all failed alike; 1 otherwise.
/// The first SIGINT or SIGTERM cancels the push (open uploads are cancelled, no manifest is
/// written); a second one exits at once.
async fn cancel_on_signal(cancel: CancellationToken) {
    wait_for_signal().await;
    cancel.cancel();
    wait_for_signal().await;
    eprintln!("error: interrupted again, exiting without cleaning up");
    std::process::exit(i32::from(EXIT_INTERRUPTED));
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn report_exit_code(report: &PushReport) -> u8 {
    let failures: Vec<FailureKind> = report
        .images
        .iter()
        .filter_map(|i| i.error.as_ref().map(|e| e.kind))
        .collect();
    if failures.contains(&FailureKind::Interrupted) {
        return EXIT_INTERRUPTED;
    }
    match failures.first() {
        None => EXIT_OK,
        Some(first) if report.summary.pushed == 0 && failures.iter().all(|k| k == first) => {
            exit_code(*first)
        }
        Some(_) => EXIT_GENERAL,
    }
}
