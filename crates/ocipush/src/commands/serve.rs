//! `ocipush serve`: the embedded registry in the foreground until Ctrl-C.

use std::net::SocketAddr;

use ocipush_server::{Server, ServerConfig, ServerError, TlsFiles};

use crate::cli::ServeArgs;
use crate::failure::{CliError, EXIT_GENERAL, EXIT_OK};
use crate::local::{default_root, ADDR_FILE};

pub async fn run(args: ServeArgs, quiet: bool) -> Result<u8, CliError> {
    let addr: SocketAddr = args.addr.parse().map_err(|e| {
        CliError::usage(
            format!("invalid --addr `{}`: {e}", args.addr),
            Some("use HOST:PORT, e.g. 127.0.0.1:5000".into()),
        )
    })?;
    let root = match args.root {
        Some(root) => root,
        None => default_root()?,
    };
    std::fs::create_dir_all(&root).map_err(|e| {
        CliError::with_code(
            format!("cannot create {}: {e}", root.display()),
            None,
            EXIT_GENERAL,
        )
    })?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut config = ServerConfig::new(root.clone(), addr);
    config.tls = tls;
    config.htpasswd = args.htpasswd;
    config.allow_plain_http_auth = args.allow_plain_http_auth;
    config.allow_delete = args.delete;
    config.connections.max_connections = args.max_connections;
    // What a flag does not say stays as the server's defaults have it.
    let connections = &mut config.connections;
    connections.idle_timeout = args.idle_timeout.unwrap_or(connections.idle_timeout);
    let uploads = &mut config.uploads;
    uploads.max_blob_bytes = args.upload_max_size.unwrap_or(uploads.max_blob_bytes);
    uploads.max_total_bytes = args.upload_max_total.unwrap_or(uploads.max_total_bytes);
    uploads.max_sessions_per_repository = args
        .upload_max_sessions
        .unwrap_or(uploads.max_sessions_per_repository);
    uploads.purge_after = args.upload_purge_after.unwrap_or(uploads.purge_after);
    let server = Server::bind(config).await.map_err(|e| {
        let hint = hint_for(&e);
        CliError::with_code(e.to_string(), hint, EXIT_GENERAL)
    })?;
    let bound = server.local_addr();
    let addr_file = root.join(ADDR_FILE);
    let _ = std::fs::write(&addr_file, bound.to_string());
    if !quiet {
        eprintln!(
            "serving {} on {scheme}://{bound} (Ctrl-C to stop)",
            root.display()
        );
    }
    let result = server.run_until(shutdown_signal()).await;
    let _ = std::fs::remove_file(&addr_file);
    result.map_err(|e| CliError::with_code(e.to_string(), None, EXIT_GENERAL))?;
    Ok(EXIT_OK)
}

/// What to do about a server that would not start, by the kind of failure.
fn hint_for(error: &ServerError) -> Option<String> {
    let hint = match error {
        ServerError::Bind { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse => {
            "is another registry already listening there? pick another port with --addr"
        }
        ServerError::Bind { .. } => "check the address given with --addr (HOST:PORT of this machine)",
        ServerError::Storage { .. } => "choose a writable directory with --root",
        ServerError::ReadFile { .. } => "check the path and its permissions",
        ServerError::Tls { .. } => {
            "--tls-cert takes a PEM certificate chain, leaf first; --tls-key its PEM private key"
        }
        ServerError::Htpasswd { .. } => "create entries with `htpasswd -Bbn USER PASSWORD`",
        ServerError::PlainHttpAuth { .. } => {
            "add --tls-cert and --tls-key, listen on 127.0.0.1, or, behind a proxy that terminates TLS, pass --allow-plain-http-auth"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
