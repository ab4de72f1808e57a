//! Pushes one image with default options, as a program using the library would:
//!
//! ```text
//! cargo run -p ocipush-engine --example push -- SOURCE DEST
//! cargo run -p ocipush-engine --example push -- build/app.tar localhost:5000/team/app:1.0
//! ```
//!
//! SOURCE is anything `ocipush push` takes as one source (a docker archive, an OCI layout or
//! archive, `daemon:NAME`); DEST a full reference. A registry on a loopback address is spoken
//! to over plain HTTP when it does not answer HTTPS, as the CLI does. Credentials come from
//! where docker and podman keep them (`~/.docker/config.json`, credential helpers,
//! containers' `auth.json`).

use std::process::ExitCode;

use ocipush_engine::{Destination, ImageStatus, Push, PushOptions};
use ocipush_registry::credentials::CredentialStore;
use ocipush_registry::{ClientOptions, Reference};
use ocipush_source::{open_source, DaemonSettings};

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, dest] = args.as_slice() else {
        eprintln!(
            "usage: push SOURCE DEST   (e.g. push build/app.tar localhost:5000/team/app:1.0)"
        );
        return ExitCode::from(64);
    };
    match run(source, dest).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(source: &str, dest: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let reference = Reference::parse(dest)?;
    let opened = open_source(source, &DaemonSettings::default()).await?;
    let credentials = CredentialStore::from_environment()
        .lookup(&reference.registry, Some(&reference.repository))
        .found
        .map(|found| found.credentials);
    let client = ClientOptions {
        credentials,
        ..ClientOptions::default()
    };
    let report = Push::to(Destination::Reference(reference))
        .sources_from(opened.sources)
        .options(PushOptions::default().with_client(client))
        .run()
        .await?;
    for image in &report.images {
        match (&image.status, &image.digest, &image.error) {
            (ImageStatus::Pushed, Some(digest), _) => {
                for reference in &image.references {
                    println!("{reference}@{digest}");
                }
            }
            (_, _, Some(error)) => eprintln!("error: {}: {}", image.source, error.message),
            _ => eprintln!("{}: {:?}", image.source, image.status),
        }
    }
    Ok(report.summary.failed == 0 && report.summary.pushed > 0)
}
