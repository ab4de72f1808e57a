//! `ocipush man`: the manual page, generated from the clap definition (clap_mangen) so it
//! cannot drift from `--help`. One self-contained page, ocipush(1): the usual sections for the
//! program, then a section per subcommand with its synopsis, options and examples (what
//! `man ocipush` readers look for), then the environment and the exit codes scripts rely on.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use crate::cli::Cli;
use crate::failure::{
    CliError, EXIT_AUTH, EXIT_GENERAL, EXIT_IMAGE, EXIT_INTERRUPTED, EXIT_NETWORK, EXIT_OK,
    EXIT_REGISTRY, EXIT_TIMEOUT, EXIT_USAGE,
};

pub fn run() -> Result<u8, CliError> {
    let page = render().map_err(|e| {
        CliError::with_code(
            format!("cannot render the man page: {e}"),
            None,
            EXIT_GENERAL,
        )
    })?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&page)
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            CliError::with_code(format!("cannot write to stdout: {e}"), None, EXIT_GENERAL)
        })?;
    Ok(EXIT_OK)
}

/// The whole page, as roff.
pub fn render() -> std::io::Result<Vec<u8>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = Man::new(cmd.clone()).title("OCIPUSH");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let subcommands: Vec<&clap::Command> =
        cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    for sub in &subcommands {
        list.control("TP", []);
        list.text([bold(format!("ocipush {}", sub.get_name()))]);
        if let Some(about) = sub.get_about() {
            list.text([roman(about.to_string())]);
        }
    }
    list.to_writer(&mut out)?;
    examples(&cmd, "SH").to_writer(&mut out)?;

    for sub in subcommands {
        out.extend(subcommand_section(sub)?);
    }
    trailer().to_writer(&mut out)?;
    Ok(out)
}

/// `.SH "OCIPUSH PUSH"` with the subcommand's own synopsis, description and options as
/// subsections (clap_mangen writes them as sections of a page of their own), and its examples
/// kept as typed (no-fill), where man would otherwise run the lines together.
fn subcommand_section(sub: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = Man::new(sub.clone());
    let mut own = Vec::new();
    man.render_synopsis_section(&mut own)?;
    man.render_description_section(&mut own)?;
    man.render_options_section(&mut own)?;
    let own = String::from_utf8_lossy(&own).replace("\n.SH ", "\n.SS ");
    let own = own
        .strip_prefix(".SH ")
        .map_or(own.clone(), |rest| format!(".SS {rest}"));

    let mut heading = Roff::new();
    heading.control(
        "SH",
        [format!("OCIPUSH {}", sub.get_name().to_uppercase()).as_str()],
    );
    let mut out = Vec::new();
    heading.to_writer(&mut out)?;
    out.extend(own.into_bytes());
    examples(sub, "SS").to_writer(&mut out)?;
    Ok(out)
}

/// A command's `after_help` examples under a `heading` macro (`SH` or `SS`), kept as typed
/// (no-fill), where man would otherwise run the lines together. Empty without examples.
fn examples(cmd: &clap::Command, heading: &str) -> Roff {
    let mut roff = Roff::new();
    if let Some(after) = cmd.get_after_help() {
        roff.control(heading, ["EXAMPLES"]);
        roff.control("nf", []);
        for line in after
            .to_string()
            .lines()
            .filter(|l| l.trim() != "Examples:")
        {
            roff.text([roman(line.to_string())]);
        }
        roff.control("fi", []);
    }
    roff
}

/// ENVIRONMENT and EXIT STATUS, as the README documents them (the codes are the constants
/// the binary exits with).
fn trailer() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, what) in [
        ("OCIPUSH_USERNAME, OCIPUSH_PASSWORD", "registry credentials (IDPBUILDER_REGISTRY_USER and IDPBUILDER_REGISTRY_PASSWORD also work)"),
        ("OCIPUSH_REGISTRY", "the -r destination when no DEST is given"),
        ("OCIPUSH_INSECURE", "skip TLS verification, as --insecure (IDPBUILDER_REGISTRY_INSECURE also works)"),
        ("OCIPUSH_TIMEOUT", "the --timeout of a push (IDPBUILDER_PUSH_TIMEOUT also works)"),
        ("OCIPUSH_CACHE_DIR", "the digest cache (default $XDG_CACHE_HOME/ocipush or ~/.cache/ocipush)"),
        ("OCIPUSH_LOCAL_REGISTRY", "the embedded registry's data (default ~/.local/share/ocipush/registry)"),
        ("OCIPUSH_LOCAL_ADDR", "the embedded registry's address for push and serve (default 127.0.0.1:5000)"),
        ("OCIPUSH_CERTS_D", "colon-separated certs.d folders replacing docker's and containers' defaults"),
        ("OCIPUSH_LOG", "a tracing filter for the logs on stderr"),
        ("DOCKER_CONFIG, REGISTRY_AUTH_FILE", "where docker's config.json and containers' auth.json are"),
        ("DOCKER_HOST, CONTAINER_HOST", "the Docker or Podman API for daemon sources: unix:///path or plain tcp://HOST[:PORT]"),
        ("HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY", "proxies (never used for loopback registries)"),
    ] {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(what)]);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in [
        (EXIT_OK, "everything pushed"),
        (EXIT_GENERAL, "general error, or some images failed"),
        (EXIT_AUTH, "authentication failed"),
        (EXIT_NETWORK, "network or TLS: registry unreachable"),
        (
            EXIT_IMAGE,
            "image not found or invalid (corrupt archive, digest mismatch)",
        ),
        (EXIT_REGISTRY, "registry error or incompatibility"),
        (EXIT_TIMEOUT, "--timeout reached"),
        (
            EXIT_USAGE,
            "usage error (bad flags, bad reference, a --platform matching nothing)",
        ),
        (EXIT_INTERRUPTED, "interrupted (Ctrl-C or SIGTERM)"),
    ] {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(what)]);
    }
    roff
}
