//! Opening the sources named on the command line: files, build directories and daemon images
//! through `ocipush-source`; `docker://` images through a connection to their registry, with
//! that registry's own credentials and TLS settings (never the destination's). Sources open
//! several at a time, in the order given; one connection per source registry.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::stream::{self, StreamExt as _};
use ocipush_engine::registry_source::{self, OpenOptions};
use ocipush_engine::PushError;
use ocipush_registry::{Access, ClientOptions, Reference, RegistryClient, RetryPolicy, TlsOptions};
use ocipush_source::discover::Broken;
use ocipush_source::{open_source, DaemonSettings, Source, SourceKind, SourceSpec};
use tokio::sync::OnceCell;

use crate::cli::SourceRegistryArgs;
use crate::connection;
use crate::failure::CliError;

/// Sources opened at once (registry sources wait on round trips, not on this machine).
const OPENING_AT_ONCE: usize = 8;

/// How `docker://` sources are reached, resolved from the `--src-*` flags.
#[derive(Debug, Clone, Default)]
pub struct RegistrySourceSettings {
    /// `--src-creds USER:PASSWORD`, unparsed until a registry source needs it.
    src_creds: Option<connection::Redacted>,
    tls: TlsOptions,
    plain_http: bool,
    retry: RetryPolicy,
}

impl RegistrySourceSettings {
    /// From the `--src-*` flags, with the push's retry policy.
    pub fn new(args: SourceRegistryArgs, retry: RetryPolicy) -> Self {
        RegistrySourceSettings {
            src_creds: args.src_creds.map(connection::Redacted),
            tls: TlsOptions {
                insecure: args.src_insecure,
                ca_files: args.src_ca_file,
                certs_dirs: connection::certs_dirs(),
            },
            plain_http: args.src_plain_http,
            retry,
        }
    }

    /// Whether `--src-insecure` turned verification off.
    pub fn insecure(&self) -> bool {
        self.tls.insecure
    }
}

/// Every source argument, opened.
#[derive(Debug, Default)]
pub struct OpenedSources {
    /// In the order given (a build directory's images in the order found).
    pub sources: Vec<Source>,
    /// Images under build directories that could not be opened, with why.
    pub broken: Vec<Broken>,
    /// Warnings met on the way (stored credentials that could not be read, …).
    pub warnings: Vec<String>,
}

/// Opens every argument; registry images are read as `reading` says.
pub async fn open_all(
    args: &[String],
    daemon: &DaemonSettings,
    registries: &RegistrySourceSettings,
    reading: &OpenOptions,
) -> Result<OpenedSources, CliError> {
    let specs: Vec<_> = args
        .iter()
        .map(|arg| (arg, SourceSpec::parse(arg)))
        .collect();
    let clients = Clients {
        repositories: repositories_read(specs.iter().filter_map(|(_, s)| s.as_ref().ok())),
        ..Clients::default()
    };
    let warnings = Mutex::new(Vec::new());
    let results: Vec<Result<ocipush_source::Opened, CliError>> =
        stream::iter(specs.into_iter().map(|(arg, spec)| {
            let clients = &clients;
            let warnings = &warnings;
            async move {
                let spec = spec.map_err(|e| CliError::from(PushError::from(e)))?;
                if spec.transport != Some(SourceKind::Registry) {
                    return open_source(arg, daemon)
                        .await
                        .map_err(|e| CliError::from(PushError::from(e)));
                }
                let source = open_registry(&spec, registries, clients, warnings, reading).await?;
                Ok(ocipush_source::Opened {
                    sources: vec![source],
                    broken: Vec::new(),
                })
            }
        }))
        .buffered(OPENING_AT_ONCE)
        .collect()
        .await;
    let mut opened = OpenedSources {
        warnings: warnings.into_inner().unwrap_or_else(|p| p.into_inner()),
        ..OpenedSources::default()
    };
    for result in results {
        let found = result?;
        opened.sources.extend(found.sources);
        opened.broken.extend(found.broken);
    }
    Ok(opened)
}

/// One connection per source registry, made by whichever source needs it first.
#[derive(Default)]
struct Clients {
    by_registry: Mutex<HashMap<String, Arc<OnceCell<Arc<RegistryClient>>>>>,
    /// The repositories read from each registry: one token is asked for all of them.
    repositories: HashMap<String, BTreeSet<String>>,
}

/// The repositories of every registry source, by registry.
fn repositories_read<'a>(
    specs: impl Iterator<Item = &'a SourceSpec>,
) -> HashMap<String, BTreeSet<String>> {
    let mut read: HashMap<String, BTreeSet<String>> = HashMap::new();
    for spec in specs.filter(|s| s.transport == Some(SourceKind::Registry)) {
        if let Ok(reference) = Reference::parse(spec.reference.as_deref().unwrap_or_default()) {
            read.entry(reference.registry)
                .or_default()
                .insert(reference.repository);
        }
    }
    read
}

async fn open_registry(
    spec: &SourceSpec,
    settings: &RegistrySourceSettings,
    clients: &Clients,
    warnings: &Mutex<Vec<String>>,
    reading: &OpenOptions,
) -> Result<Source, CliError> {
    let text = spec.reference.as_deref().unwrap_or_default();
    let reference = Reference::parse(text).map_err(|e| {
        CliError::usage(
            format!("docker://{text}: {e}"),
            Some("a registry source is docker://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST], e.g. docker://ghcr.io/org/app:1.2".into()),
        )
    })?;
    let cell = clients
        .by_registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(reference.registry.clone())
        .or_default()
        .clone();
    let client = cell
        .get_or_try_init(|| async {
            let mut found = Vec::new();
            let credentials = connection::source_credentials(
                settings.src_creds.as_ref().map(|c| c.0.as_str()),
                &reference.registry,
                &reference.repository,
                &mut found,
            )?;
            warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(found);
            let options = ClientOptions {
                tls: settings.tls.clone(),
                plain_http: settings.plain_http,
                credentials,
                retry: settings.retry.clone(),
                ..ClientOptions::default()
            };
            let client = RegistryClient::connect(&reference.registry, &options)
                .await
                .map_err(|e| CliError::from(PushError::from(e)))?;
            if let Some(names) = clients.repositories.get(&reference.registry) {
                client
                    .authorize_ahead(names.iter().map(|n| (n.as_str(), Access::Pull)))
                    .await;
            }
            Ok::<_, CliError>(client)
        })
        .await?
        .clone();
    registry_source::open(client, &reference, reading)
        .await
        .map_err(|e| CliError::from(PushError::from(e)))
}

/// `--from-file`: the sources a file lists, one per line; `-` reads standard input.
pub fn read_source_list(path: &Path, stdin: &mut dyn Read) -> Result<Vec<String>, CliError> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        stdin.read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    }
    .map_err(|e| {
        CliError::usage(
            format!("cannot read --from-file {}: {e}", shown(path)),
            Some("give a text file with one source per line, or - for standard input".into()),
        )
    })?;
    let sources: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if sources.is_empty() {
        return Err(CliError::usage(
            format!("--from-file {} lists no source", shown(path)),
            Some("one source per line, e.g. docker://docker.io/library/postgres:16".into()),
        ));
    }
    Ok(sources)
}

fn shown(path: &Path) -> String {
    if path == Path::new("-") {
        "- (standard input)".into()
    } else {
        PathBuf::from(path).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_lists_skip_blanks_and_comments() {
        let mut input =
            "# mirrors\n\ndocker://a.example/x:1\n  docker://b.example/y@sha256:00  \n#x\n"
                .as_bytes();
        let sources = read_source_list(Path::new("-"), &mut input).unwrap();
        assert_eq!(
            sources,
            ["docker://a.example/x:1", "docker://b.example/y@sha256:00"]
        );
        let mut empty = "# nothing\n\n".as_bytes();
        let err = read_source_list(Path::new("-"), &mut empty).unwrap_err();
        assert!(err.message.contains("lists no source"), "{}", err.message);
    }
}
