//! The command line, as clap sees it. Only parsing lives here: defaults from the environment and
//! credentials are resolved in `settings`, so the engine never sees clap.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// A password given on the command line (`-p`), kept out of `Debug`.
#[derive(Clone)]
pub struct PasswordArg(pub String);

impl std::fmt::Debug for PasswordArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::str::FromStr for PasswordArg {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(PasswordArg(s.to_string()))
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "ocipush",
    version,
    about = "Push locally built container images to OCI registries — fast, resumable and correct.",
    propagate_version = true,
    after_help = ROOT_EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More logs on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but errors (and, for push, the pushed references).
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
// Parsed once per run: the size of the biggest variant costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Push images to a registry.
    #[command(
        after_help = PUSH_EXAMPLES,
        override_usage = "ocipush push [OPTIONS] SOURCE [DEST]\n       ocipush push [OPTIONS] -r REGISTRY[/NAMESPACE] SOURCE..."
    )]
    Push(PushArgs),
    /// List the images a source holds (what `push` would push).
    #[command(
        after_help = LIST_EXAMPLES,
        mut_arg("platforms", |arg| arg.help(LIST_PLATFORM_HELP))
    )]
    List(ListArgs),
    /// Run the embedded OCI registry.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Log in to a registry: check the credentials there, then keep them where docker does.
    #[command(after_help = LOGIN_EXAMPLES)]
    Login(LoginArgs),
    /// Log out of a registry: remove the credentials docker's config keeps for it.
    #[command(after_help = LOGOUT_EXAMPLES)]
    Logout(LogoutArgs),
    /// Print a shell completion script on stdout.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout.
    #[command(after_help = MAN_EXAMPLES)]
    Man,
}

/// `list --platform`: what the rows then show (push's help says what it writes).
const LIST_PLATFORM_HELP: &str = "Only this platform, OS/ARCH[/VARIANT] (repeatable or \
comma-separated), e.g. linux/arm64: the rows show what `push --platform` would push (a \
multi-platform image with its matching manifests' layers and size, and the digest of the index \
push would write for them); images of other platforms are left out. Default: every platform";

const LIST_EXAMPLES: &str = "\
Examples:
  ocipush list ./build/app.tar oci:./layout     # what these sources hold
  ocipush list                                  # the Docker/Podman daemon's tagged images
  ocipush list --include 'myapp*' --exclude '*:old'
  ocipush list --platform linux/arm64 oci:./layout   # the index push --platform would write
  ocipush list --json ./build/app.tar | jq -r '.[].digest'";

const SERVE_EXAMPLES: &str = "\
Examples:
  ocipush serve                          # 127.0.0.1:5000, the local registry's directory
  htpasswd -Bbn alice secret > users.htpasswd
  ocipush serve --addr 0.0.0.0:5000 --root /srv/registry \\
      --tls-cert cert.pem --tls-key key.pem --htpasswd users.htpasswd
  ocipush serve --delete --upload-max-size 8GiB --upload-purge-after 24h

On an address other than loopback, --htpasswd needs TLS (--tls-cert/--tls-key): basic auth over
plain HTTP sends passwords in the clear. Behind a proxy that terminates TLS, say so with
--allow-plain-http-auth.";

const LOGOUT_EXAMPLES: &str = "\
Examples:
  ocipush logout ghcr.io
  ocipush logout localhost:5000";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  ocipush completions bash > ~/.local/share/bash-completion/completions/ocipush
  ocipush completions zsh > ~/.zfunc/_ocipush     # with fpath+=(~/.zfunc) before compinit
  ocipush completions fish > ~/.config/fish/completions/ocipush.fish
  ocipush completions powershell | Out-String | Invoke-Expression
  ocipush completions elvish > ~/.config/elvish/lib/ocipush.elv   # then `use ocipush`";

const MAN_EXAMPLES: &str = "\
Examples:
  ocipush man | man -l -
  ocipush man > ~/.local/share/man/man1/ocipush.1 && man ocipush";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

const ROOT_EXAMPLES: &str = "\
Examples:
  ocipush push ./build/app.tar localhost:5000/team/app:dev
  ocipush list ./build/app.tar
  ocipush push --help                     # every push option, with examples
  ocipush man | man -l -                  # the whole manual";

const LOGIN_EXAMPLES: &str = "\
Examples:
  echo \"$TOKEN\" | ocipush login -u ci --password-stdin ghcr.io
  ocipush login -u alice localhost:5000          # asks for the password on a terminal
  ocipush login idpbuilder                       # Gitea of a local idpbuilder platform";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry HOST[:PORT] (Docker Hub when left out), or `idpbuilder`.
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// How to reach and log in to a registry: shared by `push` and `login`.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Registry user name [env: OCIPUSH_USERNAME]
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Read the password (or token) from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Password on the command line (visible to other users: prefer --password-stdin).
    #[arg(short = 'p', long, hide = true)]
    pub password: Option<PasswordArg>,
    /// Skip TLS certificate verification [env: OCIPUSH_INSECURE]
    #[arg(long)]
    pub insecure: bool,
    /// Talk plain HTTP to the registry.
    #[arg(long)]
    pub plain_http: bool,
    /// Trust the CA certificates in this PEM file (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_file: Vec<PathBuf>,
}

/// How to read `docker://` sources: their registry's own settings, apart from the
/// destination's.
#[derive(Args, Default)]
pub struct SourceRegistryArgs {
    /// USER:PASSWORD for the registries of docker:// sources [default: what is stored for them
    /// in docker's config.json, credential helpers or auth.json; never the destination's]
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "OCIPUSH_SRC_CREDS",
        hide_env_values = true
    )]
    pub src_creds: Option<String>,
    /// Trust the CA certificates in this PEM file for docker:// sources (repeatable).
    #[arg(long, value_name = "FILE")]
    pub src_ca_file: Vec<PathBuf>,
    /// Talk plain HTTP to the registries of docker:// sources.
    #[arg(long)]
    pub src_plain_http: bool,
    /// Skip TLS certificate verification for docker:// sources.
    #[arg(long)]
    pub src_insecure: bool,
}

impl std::fmt::Debug for SourceRegistryArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRegistryArgs")
            .field("src_creds", &self.src_creds.as_ref().map(|_| "<redacted>"))
            .field("src_ca_file", &self.src_ca_file)
            .field("src_plain_http", &self.src_plain_http)
            .field("src_insecure", &self.src_insecure)
            .finish()
    }
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry HOST[:PORT] (Docker Hub when left out), or `idpbuilder`.
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}

const PUSH_EXAMPLES: &str = "\
Examples:
  ocipush push ./build/app.tar localhost:5000/team/app:dev
  ocipush push -r localhost:5000/team ./build/app.tar oci:./layout:1.0
  echo \"$TOKEN\" | ocipush push -u ci --password-stdin app.tar.gz ghcr.io/org/app:1.2
  ocipush push examples/hello-oci          # into the embedded local registry
  ocipush push myapp:dev -r localhost:5000/team     # straight from the Docker/Podman daemon
  ocipush push ghcr.io/org/app:1.2         # a daemon image, to the registry its name says
  ocipush push -r idpbuilder ./build       # idpbuilder's Gitea (gitea.cnoe.localtest.me:8443/giteaadmin)
  ocipush push daemon: -r localhost:5000/team --include 'myapp*'
  ocipush push --platform linux/amd64,linux/arm64 oci:./layout:1.0 localhost:5000/app:1.0
  ocipush push -r localhost:5000/team ./build --exclude '*-test*'   # every image under ./build
  ocipush push --dry-run -r localhost:5000/team ./build             # what would go up, nothing written
  ocipush push docker://docker.io/library/postgres:16 -r idpbuilder # copy from a registry (mirror)
  ocipush push -r idpbuilder --from-file images.txt                 # one source per line";

#[derive(Debug, Args)]
pub struct PushArgs {
    /// SOURCE [DEST], or with -r: SOURCE... . A source is a path (OCI layout directory,
    /// oci-archive, `docker save` tarball, plain or gzipped), TRANSPORT:PATH[:REF] with
    /// oci, oci-archive or docker-archive, an image of the Docker/Podman daemon:
    /// NAME[:TAG] (a name that is no existing path), `daemon:NAME[:TAG]`, or `daemon:` for all,
    /// or an image in a registry: docker://HOST/REPO[:TAG|@DIGEST].
    #[arg(required_unless_present = "from_file", value_name = "SOURCE")]
    pub args: Vec<String>,
    /// Read sources from FILE, one per line (blank lines and # comments skipped; `-` for
    /// standard input), after those given as arguments. Without -r, the only argument left
    /// is DEST.
    #[arg(long, value_name = "FILE")]
    pub from_file: Option<PathBuf>,
    #[command(flatten)]
    pub source_registry: SourceRegistryArgs,
    /// With docker:// sources, copy what refers to each image too (signatures, SBOMs,
    /// attestations), found through the referrers API or the sha256-DIGEST tag, and list them
    /// at the destination the same way. (What an OCI layout's index.json holds with a
    /// `subject` always goes up with its image.)
    #[arg(long)]
    pub referrers: bool,
    /// With docker:// sources, copy foreign (non-distributable) layers too, where the source
    /// registry serves them; by default the copy names them and leaves them where their URLs
    /// point, as docker push does.
    #[arg(long)]
    pub foreign_layers: bool,
    /// Push every source to REGISTRY[/NAMESPACE], named after the images' own names and tags
    /// (`idpbuilder` for idpbuilder's Gitea) [env: OCIPUSH_REGISTRY, when no DEST is given]
    #[arg(short = 'r', long = "registry", value_name = "REGISTRY[/NAMESPACE]")]
    pub registry: Option<String>,
    /// Tag to push (repeatable); replaces the source's own tags.
    #[arg(short = 't', long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Big blobs uploaded in parallel (blobs up to 16 MiB go alongside them, sent from memory).
    /// Into a registry on this machine, blobs of 4 MiB and up from OCI layouts and
    /// oci-archives stream at most one per core at once.
    #[arg(short = 'j', long = "jobs", visible_alias = "concurrency", default_value_t = 4, allow_negative_numbers = true, value_parser = parse_jobs)]
    pub jobs: u16,
    /// Retries of a failed request or upload.
    #[arg(long, default_value_t = ocipush_registry::RetryPolicy::default().retries, allow_negative_numbers = true, value_parser = parse_count)]
    pub retries: u32,
    /// Upload each blob in PATCH requests of at most SIZE bytes (e.g. 5MiB, 512k) instead of
    /// one streamed request. A chunk stays in memory until the registry has it (so a failed
    /// one can resume): memory grows with SIZE x --jobs. Without it, chunks are used only
    /// once a proxy answers 413.
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true)]
    pub chunk_size: Option<String>,
    /// Upload at most RATE bytes per second in all (e.g. 500k, 10M), all blobs together; manifests
    /// and small configs are not counted.
    #[arg(long, value_name = "RATE", allow_negative_numbers = true, value_parser = parse_size)]
    pub limit_rate: Option<u64>,
    /// Give up after this long (e.g. 90s, 10m) [env: OCIPUSH_TIMEOUT]
    #[arg(long, value_name = "DURATION", allow_negative_numbers = true)]
    pub timeout: Option<String>,
    /// Print one JSON document on stdout instead of references.
    #[arg(long)]
    pub json: bool,
    /// Write the manifest digest of each pushed image to FILE, one per line (as skopeo's and
    /// podman's --digestfile, for scripts).
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,
    /// Show what would be uploaded, mounted or skipped (asking the registry with HEADs) and
    /// write nothing: no blob, no manifest, no tag.
    #[arg(long)]
    pub dry_run: bool,
    /// How layers stored uncompressed are compressed (already compressed ones are sent as they
    /// are). zstd layers make an OCI manifest, which older docker versions cannot pull.
    #[arg(long, value_enum, default_value_t = CompressionArg::Gzip)]
    pub compression: CompressionArg,
    /// Compression level: gzip 1-9 (default 1), zstd 1-19 (default 3). Part of what decides
    /// a compressed layer's digest.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = parse_level)]
    pub compression_level: Option<u32>,
    /// Do not read or write the digest cache: every uncompressed layer is compressed again,
    /// and uploaded again even if the registry has it (its digest is only known once it is
    /// compressed, which happens while it is sent); nothing is remembered for the next push.
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

/// Which platforms of the images to take.
#[derive(Debug, Args, Default)]
pub struct PlatformArgs {
    /// Only this platform, OS/ARCH[/VARIANT] (repeatable or comma-separated), e.g. linux/arm64.
    /// A multi-platform image keeps only the matching manifests, under a rewritten index (new
    /// digest); single-platform images of other platforms are left out. A variant may be left
    /// out: linux/arm64 matches linux/arm64/v8. Default: every platform.
    #[arg(
        long = "platform",
        value_name = "OS/ARCH[/VARIANT]",
        value_delimiter = ','
    )]
    pub platforms: Vec<String>,
}

/// Which images of the sources to take, by name and size.
#[derive(Debug, Args, Default)]
pub struct FilterArgs {
    /// Only images with a name matching GLOB (repeatable), e.g. 'myapp*', 'team/*:dev'.
    /// Names are matched in full (`localhost/team/app:dev`) and by their last path part (`app:dev`),
    /// with and without the tag.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Leave out images with a name matching GLOB (repeatable); wins over --include.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Only images at least this big (bytes as stored; 500k, 10MiB, 1G…).
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true, value_parser = parse_size)]
    pub min_size: Option<u64>,
    /// Only images at most this big.
    #[arg(long, value_name = "SIZE", allow_negative_numbers = true, value_parser = parse_size)]
    pub max_size: Option<u64>,
}

/// A size flag: `1048576`, `500k`, `10MiB`, `1G` (binary units, as docker and du print sizes).
fn parse_size(text: &str) -> Result<u64, String> {
    crate::settings::parse_size(text)
        .ok_or_else(|| format!("`{text}` is not a size (examples: 500k, 10MiB, 1G)"))
}

/// `-j`: 1 to 64 blobs at once.
fn parse_jobs(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("`{text}` is not a number of jobs (1 to 64)")),
    }
}

/// A count such as `--retries 3`: a whole number, 0 or more.
fn parse_count(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| {
        format!(
            "`{text}` is not a count (a whole number from 0 to {})",
            u32::MAX
        )
    })
}

/// `--compression-level`: a whole number; which ones the algorithm takes is checked with it.
fn parse_level(text: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("`{text}` is not a level (gzip takes 1 to 9, zstd 1 to 19)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Sources to inspect; the Docker/Podman daemon's images (`daemon:`) when none is given.
    #[arg(value_name = "SOURCE")]
    pub sources: Vec<String>,
    #[command(flatten)]
    pub source_registry: SourceRegistryArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (the local registry's, where `push` without a destination puts images).
    #[arg(long, env = "OCIPUSH_LOCAL_ADDR", default_value = "127.0.0.1:5000")]
    pub addr: String,
    /// Directory holding the registry's data [default: the local registry's directory]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require basic auth against this htpasswd file (bcrypt entries).
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Accept --htpasswd without TLS on an address other than loopback (behind a TLS-terminating proxy).
    #[arg(long, requires = "htpasswd")]
    pub allow_plain_http_auth: bool,
    /// Answer DELETE on manifests, tags and blobs (off: 405 UNSUPPORTED). Something a manifest still
    /// uses is never deleted.
    #[arg(long)]
    pub delete: bool,
    /// Most connections at once; at the limit the longest-idle one is closed [default: half the
    /// open-file limit]
    #[arg(long, value_name = "N", value_parser = parse_connections)]
    pub max_connections: Option<usize>,
    // The limits below are the server's own (`ocipush_server::ConnectionLimits` and
    // `UploadLimits`): a flag left out keeps the library's default, decided there once.
    /// Close a connection with no request in flight after this long without a byte [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Largest blob one upload may hold [default: 64GiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub upload_max_size: Option<u64>,
    /// Most bytes all unfinished uploads together may hold [default: 256GiB]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub upload_max_total: Option<u64>,
    /// Most unfinished uploads per repository [default: 256]
    #[arg(long, value_name = "N", value_parser = parse_connections)]
    pub upload_max_sessions: Option<usize>,
    /// Remove an unfinished upload that received nothing for this long (checked at start and then
    /// periodically) [default: 168h]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub upload_purge_after: Option<Duration>,
}

/// A duration flag, in the one grammar every duration of ocipush takes
/// ([`crate::settings::parse_duration`]: `90`, `90s`, `500ms`, `30m`, `168h`, `7d`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::settings::parse_duration(text)
        .ok_or_else(|| format!("`{text}` is not a duration (examples: 90s, 30m, 168h, 7d)"))
}

/// A positive count of connections or sessions.
fn parse_connections(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("`{text}` is not a positive number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    /// The `[default: …]` that `serve --help` shows for a flag.
    fn shown_default(flag: &str) -> String {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(flag))
            .unwrap_or_else(|| panic!("--{flag}"));
        let help = arg.get_help().expect("help").to_string();
        let (_, rest) = help
            .split_once("[default: ")
            .expect("a default in the help");
        rest.trim_end_matches(']').to_owned()
    }

    /// The limits' defaults are the server's; the help text names them, and must name them right.
    #[test]
    fn serve_help_shows_the_servers_own_defaults() {
        let connections = ocipush_server::ConnectionLimits::default();
        let uploads = ocipush_server::UploadLimits::default();
        assert_eq!(
            parse_duration(&shown_default("idle-timeout")),
            Ok(connections.idle_timeout)
        );
        assert_eq!(
            parse_size(&shown_default("upload-max-size")),
            Ok(uploads.max_blob_bytes)
        );
        assert_eq!(
            parse_size(&shown_default("upload-max-total")),
            Ok(uploads.max_total_bytes)
        );
        assert_eq!(
            parse_connections(&shown_default("upload-max-sessions")),
            Ok(uploads.max_sessions_per_repository)
        );
        assert_eq!(
            parse_duration(&shown_default("upload-purge-after")),
            Ok(uploads.purge_after)
        );
    }
}
