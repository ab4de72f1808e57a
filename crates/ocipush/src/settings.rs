//! Settings resolved from flags, then `OCIPUSH_*` variables, then idpbuilder's names for them,
//! before anything runs: the engine receives finished values and never looks at the
//! environment or at clap itself.

use std::io::Read;
use std::time::Duration;

use std::path::PathBuf;

use clap::ValueEnum as _;

use ocipush_engine::registry_source::OpenOptions;
use ocipush_engine::{Algorithm, CompressionSettings, Destination, DigestCache};
use ocipush_registry::{
    lowercased_repository, ClientOptions, Reference, RegistryTarget, RetryPolicy,
};
use ocipush_source::DaemonSettings;

use ocipush_oci::PlatformSpec;

use crate::cli::{PlatformArgs, PushArgs};
use crate::connection::{self, env_first};
use crate::failure::CliError;
use crate::filter::ImageFilter;
use crate::sources::{read_source_list, RegistrySourceSettings};

/// Where the user asked images to go.
#[derive(Debug, Clone)]
pub enum Target {
    Remote(Destination),
    /// Neither DEST nor -r: the embedded local registry.
    Local,
}

/// Everything `push` needs, resolved.
#[derive(Debug)]
pub struct PushSettings {
    pub sources: Vec<String>,
    pub target: Target,
    pub tags: Vec<String>,
    pub jobs: usize,
    pub client: ClientOptions,
    pub timeout: Option<Duration>,
    pub json: bool,
    /// `--digestfile`: where the pushed images' digests go.
    pub digestfile: Option<PathBuf>,
    /// Plan only: nothing is written.
    pub dry_run: bool,
    /// Upload bytes per second for the whole run.
    pub limit_rate: Option<u64>,
    /// Blobs up to this size are sent from memory in two requests (`OCIPUSH_SMALL_BLOB`, hidden;
    /// 0 streams every blob).
    pub small_blob: u64,
    pub compression: CompressionSettings,
    pub cache: DigestCache,
    /// Where the Docker or Podman daemon is, for daemon sources.
    pub daemon: DaemonSettings,
    /// How `docker://` sources are reached.
    pub source_registries: RegistrySourceSettings,
    /// What is read of registry sources' images besides their manifests: configs for
    /// `--platform`, `--referrers`, `--foreign-layers`.
    pub source_reading: OpenOptions,
    /// Which images of the sources to push.
    pub filter: ImageFilter,
    /// Which platforms of them (`--platform`); empty: all.
    pub platforms: Vec<PlatformSpec>,
    /// Warnings to show once settings are final (e.g. a password given on the command line).
    pub warnings: Vec<String>,
}

pub fn resolve_push(mut args: PushArgs, stdin: &mut dyn Read) -> Result<PushSettings, CliError> {
    let mut warnings = Vec::new();
    // `$OCIPUSH_REGISTRY` stands in for -r only where no DEST was given.
    let registry = args.registry.or_else(|| {
        (args.args.len() == 1)
            .then(|| env_first(&["OCIPUSH_REGISTRY"]))
            .flatten()
    });
    // `-r idpbuilder[/NS]`: the Gitea registry of a local idpbuilder platform.
    let registry = registry.map(|r| crate::idpbuilder::expand_target(&r).unwrap_or(r));
    let listed = match &args.from_file {
        Some(path) => {
            if path.as_os_str() == "-" && args.connection.password_stdin {
                return Err(CliError::usage(
                    "--from-file - and --password-stdin both read standard input",
                    Some("put the sources in a file, or pass the password another way (OCIPUSH_PASSWORD)".into()),
                ));
            }
            Some(read_source_list(path, stdin)?)
        }
        None => None,
    };
    let (sources, target) = match (registry, listed) {
        (Some(r), listed) => {
            let target = registry_target(&r)?;
            let mut sources = args.args;
            sources.extend(listed.unwrap_or_default());
            (sources, Target::Remote(Destination::Registry(target)))
        }
        // `--from-file` without -r: the sources are the file's; an argument is DEST.
        (None, Some(listed)) => match args.args.as_slice() {
            [] => (listed, Target::Local),
            [dest] => (
                listed,
                Target::Remote(Destination::Reference(destination(dest, &mut warnings)?)),
            ),
            more => {
                return Err(CliError::usage(
                    format!("{} arguments given with --from-file but no -r", more.len()),
                    Some("with --from-file, give at most DEST, or -r REGISTRY[/NAMESPACE]".into()),
                ))
            }
        },
        (None, None) => single_or_pair(args.args, &mut warnings)?,
    };

    let flags = args.connection.credential_flags();
    let credentials = match &target {
        Target::Remote(Destination::Registry(t)) => connection::resolve(
            flags,
            stdin,
            &t.registry,
            t.namespace.as_deref(),
            &mut warnings,
        )?,
        Target::Remote(Destination::Reference(r)) => connection::resolve(
            flags,
            stdin,
            &r.registry,
            Some(&r.repository),
            &mut warnings,
        )?,
        // The embedded registry asks for no credentials.
        Target::Local => None,
    };

    let tls = args.connection.tls_options();
    if tls.insecure {
        warnings.push(connection::INSECURE_WARNING.into());
    }
    let algorithm = match args.compression {
        crate::cli::CompressionArg::Gzip => Algorithm::Gzip,
        crate::cli::CompressionArg::Zstd => Algorithm::Zstd,
    };
    let level = args.compression_level.unwrap_or(algorithm.default_level());
    if !algorithm.levels().contains(&level) {
        return Err(CliError::usage(
            format!("compression level {level} is out of range"),
            Some(format!(
                "{} takes levels {} to {}",
                args.compression
                    .to_possible_value()
                    .map(|v| v.get_name().to_string())
                    .unwrap_or_default(),
                algorithm.levels().start(),
                algorithm.levels().end()
            )),
        ));
    }
    let compression = CompressionSettings { algorithm, level };
    // Where the timeout came from, for an error that names it.
    let timeout = args.timeout.map(|t| (t, "--timeout")).or_else(|| {
        ["OCIPUSH_TIMEOUT", "IDPBUILDER_PUSH_TIMEOUT"]
            .into_iter()
            .find_map(|name| env_first(&[name]).map(|t| (t, name)))
    });
    let timeout = match timeout {
        Some((t, from)) => Some(parse_duration(&t).ok_or_else(|| {
            CliError::usage(
                format!("invalid {from} `{t}`: not a duration"),
                Some("use e.g. 90s, 10m, 1h or a number of seconds".into()),
            )
        })?),
        None => None,
    };
    let chunk_size = match &args.chunk_size {
        Some(text) => {
            let hint = Some(format!(
                "use bytes or a size like 512k, 5MiB, 1M; at least {} KiB",
                ocipush_registry::MIN_CHUNK / 1024
            ));
            match parse_size(text) {
                Some(n) if n >= ocipush_registry::MIN_CHUNK => Some(n),
                Some(_) => {
                    return Err(CliError::usage(
                        format!("--chunk-size `{text}` is below the smallest chunk"),
                        hint,
                    ))
                }
                None => {
                    return Err(CliError::usage(
                        format!("invalid --chunk-size `{text}`: not a size"),
                        hint,
                    ))
                }
            }
        }
        None => None,
    };
    Ok(PushSettings {
        daemon: {
            let (daemon, context_warning) = daemon_settings();
            warnings.extend(context_warning);
            daemon
        },
        source_registries: {
            let settings =
                RegistrySourceSettings::new(args.source_registry, retry_policy(args.retries));
            if settings.insecure() {
                warnings.push(
                    "TLS certificate verification is off for docker:// sources (--src-insecure)"
                        .into(),
                );
            }
            settings
        },
        source_reading: OpenOptions::default()
            .with_configs(!args.platform.platforms.is_empty())
            .with_referrers(args.referrers)
            .with_foreign_layers(args.foreign_layers),
        filter: ImageFilter::new(&args.filter)?,
        platforms: resolve_platforms(&args.platform)?,
        sources,
        target,
        tags: args.tags,
        jobs: args.jobs as usize,
        client: ClientOptions {
            tls,
            plain_http: args.connection.plain_http,
            credentials,
            retry: retry_policy(args.retries),
            chunk_size,
            ..ClientOptions::default()
        },
        timeout,
        json: args.json,
        digestfile: args.digestfile,
        dry_run: args.dry_run,
        limit_rate: args.limit_rate,
        small_blob: env_first(&["OCIPUSH_SMALL_BLOB"])
            .and_then(|size| match size.trim() {
                "0" => Some(0),
                size => parse_size(size),
            })
            .unwrap_or(ocipush_engine::SMALL_BLOB),
        compression,
        cache: match (args.no_cache, cache_dir()) {
            (false, Some(dir)) => DigestCache::at(dir),
            _ => DigestCache::disabled(),
        },
        warnings,
    })
}

/// `-r REGISTRY[/NAMESPACE]`, parsed (idpbuilder's Gitea filled in).
fn registry_target(r: &str) -> Result<RegistryTarget, CliError> {
    let mut target = RegistryTarget::parse(r).map_err(|e| {
        CliError::usage(
            e.to_string(),
            Some(match lowercased_repository(r) {
                Some(lower) => format!("repository names are lower case: -r {lower}"),
                None => "-r takes HOST[:PORT][/NAMESPACE], e.g. localhost:5000/team".into(),
            }),
        )
    })?;
    crate::idpbuilder::complete_target(&mut target);
    Ok(target)
}

/// DEST, parsed; a name without a registry host is said to mean Docker Hub's.
fn destination(dest: &str, warnings: &mut Vec<String>) -> Result<Reference, CliError> {
    let reference = Reference::parse(dest).map_err(|e| {
        CliError::usage(
            e.to_string(),
            Some(match lowercased_repository(dest) {
                Some(lower) => format!("repository names are lower case: did you mean `{lower}`?"),
                None => {
                    "DEST is HOST[:PORT]/REPOSITORY[:TAG], e.g. localhost:5000/team/app:1.0".into()
                }
            }),
        )
    })?;
    // docker reads a name without a registry host as Docker Hub's; say so before any request
    // goes there, as `docker push` names the repository.
    if names_a_registry(dest).is_none() && !dest.starts_with("docker.io/") {
        warnings.push(format!(
            "`{dest}` names no registry host: it means {reference} (Docker Hub), as docker reads it"
        ));
    }
    Ok(reference)
}

/// Without -r: `SOURCE` (to the registry its name says, else the local one) or `SOURCE DEST`.
fn single_or_pair(
    args: Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(Vec<String>, Target), CliError> {
    match args.as_slice() {
        [source] => Ok(match names_a_registry(source) {
            // `docker push ghcr.io/org/app:1`: the image's name says where it goes.
            Some(reference) => (args, Target::Remote(Destination::Reference(reference))),
            None => (args, Target::Local),
        }),
        [source, dest] => {
            let reference = destination(dest, warnings)?;
            Ok((
                vec![source.clone()],
                Target::Remote(Destination::Reference(reference)),
            ))
        }
        more => Err(CliError::usage(
            format!("{} arguments given but no -r", more.len()),
            Some(
                "push one SOURCE to one DEST, or many sources with -r REGISTRY[/NAMESPACE]".into(),
            ),
        )),
    }
}

/// An argument that, as `docker push NAME` reads it, names the registry it goes to: its first
/// path component holds a `.` or a `:` or is `localhost` (`ghcr.io/org/app:1`,
/// `localhost:5000/app`). A file or directory on disk, or a source with a transport prefix
/// (`oci:…`, `docker-archive:…`, `daemon:…`), never does; a bare name (`app:dev`) neither.
fn names_a_registry(arg: &str) -> Option<Reference> {
    if arg.contains("://") {
        return None;
    }
    let (first, _) = arg.split_once('/')?;
    let names_a_host = first.contains('.') || first.contains(':') || first == "localhost";
    if !names_a_host || first.starts_with('.') || std::path::Path::new(arg).exists() {
        return None;
    }
    Reference::parse(arg).ok()
}

/// `--retries` with the default backoff, whose first step `OCIPUSH_RETRY_BASE_MS` (hidden, not
/// in `--help`) replaces: the fault-injection tests push hundreds of times through failing
/// requests and cannot wait a quarter second per retry. The upper bound shrinks with it, so
/// a tiny base cannot grow back into long waits; a `Retry-After` from the registry still wins.
pub fn retry_policy(retries: u32) -> RetryPolicy {
    let default = RetryPolicy::default();
    let base = env_first(&["OCIPUSH_RETRY_BASE_MS"])
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    match base {
        Some(base) => RetryPolicy {
            retries,
            base_delay: base,
            max_delay: default.max_delay.min(base.saturating_mul(64)),
        },
        None => RetryPolicy { retries, ..default },
    }
}

/// `--platform` values, checked before anything is opened.
pub fn resolve_platforms(args: &PlatformArgs) -> Result<Vec<PlatformSpec>, CliError> {
    let mut platforms: Vec<PlatformSpec> = Vec::new();
    for text in &args.platforms {
        let platform = PlatformSpec::parse(text).map_err(|e| {
            CliError::usage(
                e.to_string(),
                Some("--platform takes OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7".into()),
            )
        })?;
        if !platforms.contains(&platform) {
            platforms.push(platform);
        }
    }
    Ok(platforms)
}

/// The digest cache's directory: `$OCIPUSH_CACHE_DIR`, else `$XDG_CACHE_HOME/ocipush`, else
/// `~/.cache/ocipush`.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = env_first(&["OCIPUSH_CACHE_DIR"]) {
        return Some(PathBuf::from(dir));
    }
    let base = env_first(&["XDG_CACHE_HOME"])
        .map(PathBuf::from)
        .or_else(|| env_first(&["HOME"]).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ocipush"))
}

/// `512k` -> (512, "k"): the leading digits and the unit after them, trimmed.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit.trim()))
}

/// `1048576`, `512k`, `512KiB`, `5M`, `5MiB`, `1G` (binary multiples, case-insensitive).
pub fn parse_size(text: &str) -> Option<u64> {
    let (n, unit) = number_and_unit(text)?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift).filter(|n| *n > 0)
}

/// Every duration ocipush takes, flags and environment alike: a positive whole number with a
/// unit, `90` (seconds), `90s`, `500ms`, `10m`, `1h`, `7d`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let (n, unit) = number_and_unit(text)?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        _ => return None,
    };
    (!d.is_zero()).then_some(d)
}

/// The daemon's endpoint as docker and podman users name it: `DOCKER_HOST`, podman's
/// `CONTAINER_HOST`, else the current docker context (`DOCKER_CONTEXT`, or `currentContext` in
/// docker's config: see `docker_context`), else the usual sockets (which need `XDG_RUNTIME_DIR`
/// and `HOME`); TLS is asked for, as the docker CLI reads it, by a non-empty
/// `DOCKER_TLS_VERIFY` or `DOCKER_TLS`, or by a context's TLS material. A context that cannot
/// be read is said in the warning returned, and the usual sockets are tried.
pub fn daemon_settings() -> (DaemonSettings, Option<String>) {
    let mut settings = DaemonSettings {
        host: env_first(&["DOCKER_HOST", "CONTAINER_HOST"]),
        tls: env_first(&["DOCKER_TLS_VERIFY", "DOCKER_TLS"]).is_some(),
        runtime_dir: env_first(&["XDG_RUNTIME_DIR"]).map(PathBuf::from),
        home: env_first(&["HOME"]).map(PathBuf::from),
    };
    if settings.host.is_some() {
        return (settings, None);
    }
    // docker's config directory, found as for its credentials.
    let store = crate::connection::credential_store();
    let Some(config_dir) = store.docker_config_dir() else {
        return (settings, None);
    };
    match crate::docker_context::current(config_dir, env_first(&["DOCKER_CONTEXT"]).as_deref()) {
        Ok(Some(context)) => {
            tracing::info!(context = %context.name, host = %context.host, "using the docker context's endpoint");
            settings.host = Some(context.host);
            settings.tls |= context.tls;
            (settings, None)
        }
        Ok(None) => (settings, None),
        Err(why) => (settings, Some(format!("{why}; trying the usual sockets"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_argument_names_a_registry_as_docker_push_reads_it() {
        for (arg, registry) in [
            ("ghcr.io/org/app:1", Some("ghcr.io")),
            ("localhost:5000/team/app", Some("localhost:5000")),
            ("localhost/app:dev", Some("localhost")),
            ("127.0.0.1:5000/app@sha256:0000000000000000000000000000000000000000000000000000000000000000", Some("127.0.0.1:5000")),
            ("app:dev", None),
            ("team/app:dev", None),
            ("./build/app.tar", None),
            ("../app.tar", None),
            ("oci:./layout", None),
            ("docker-archive:/tmp/app.tar", None),
            ("daemon:ghcr.io/org/app:1", None),
        ] {
            let found = names_a_registry(arg);
            assert_eq!(
                found.as_ref().map(|r| r.registry.as_str()),
                registry,
                "{arg}"
            );
        }
    }

    fn push_settings(args: &[&str]) -> PushSettings {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(args).expect("valid arguments");
        let crate::cli::Command::Push(push) = cli.command else {
            panic!("not a push");
        };
        resolve_push(push, &mut std::io::empty()).expect("settings")
    }

    #[test]
    fn a_destination_without_a_host_is_named_in_full_before_anything_is_sent() {
        let settings = push_settings(&["ocipush", "push", "app.tar", "myapp:dev"]);
        assert!(
            settings
                .warnings
                .iter()
                .any(|w| w.contains("docker.io/library/myapp:dev")),
            "{:?}",
            settings.warnings
        );
        for dest in ["localhost:5000/myapp:dev", "docker.io/library/myapp:dev"] {
            let settings = push_settings(&["ocipush", "push", "app.tar", dest]);
            assert!(
                settings.warnings.is_empty(),
                "{dest}: {:?}",
                settings.warnings
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("5MiB"), Some(5 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("0"), None);
        assert_eq!(parse_size("5 parsecs"), None);
        assert_eq!(parse_size("99999999999999G"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), None);
        assert_eq!(parse_duration("ten"), None);
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("5w"), None);
    }

    #[test]
    fn platforms_are_parsed_and_deduplicated() {
        let args = |list: &[&str]| PlatformArgs {
            platforms: list.iter().map(|s| s.to_string()).collect(),
        };
        let got =
            resolve_platforms(&args(&["linux/amd64", "linux/arm64/v8", "linux/amd64"])).unwrap();
        let texts: Vec<String> = got.iter().map(|p| p.to_string()).collect();
        assert_eq!(texts, ["linux/amd64", "linux/arm64/v8"]);
        let err = resolve_platforms(&args(&["amd64"])).unwrap_err();
        assert_eq!(err.code, crate::failure::EXIT_USAGE);
        assert!(err.message.contains("amd64"), "{}", err.message);
    }
}
