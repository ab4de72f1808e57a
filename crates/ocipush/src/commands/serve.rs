//! `ocipush serve`: the embedded registry in the foreground until Ctrl-C.

use std::net::SocketAddr;

use ocipush_server::{Server, ServerConfig, TlsFiles};

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
    let root = args.root.unwrap_or_else(default_root);
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
    let server = Server::bind(ServerConfig {
        root: root.clone(),
        addr,
        tls,
        htpasswd: args.htpasswd,
    })
    .await
    .map_err(|e| {
        CliError::with_code(
            e.to_string(),
            Some("is another registry already listening there? pick one with --addr".into()),
            EXIT_GENERAL,
        )
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
