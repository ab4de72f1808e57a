//! Asking the registries what they hold, before anything is written: each registry of the plan
//! is connected once (`GET /v2/`), then every blob whose digest the plan knows is asked about
//! (HEAD) in every repository the plan puts it into — each pair once, many at a time. The
//! answers feed `decide`; the dry run is this and nothing more.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use ocipush_oci::Digest;
use ocipush_registry::retry_count::counting_retries;
use ocipush_registry::{ClientOptions, RegistryClient, Repository};
use tokio_util::sync::CancellationToken;

use crate::decide::Holdings;
use crate::error::PushError;
use crate::keys::RepoKey;
use crate::plan::PlannedImage;

/// HEADs in flight at once while probing: small requests, so many, whatever `-j` is.
const PROBES_IN_FLIGHT: usize = 32;

/// The registries of the plan, each connected once; a registry that cannot be reached fails
/// only the images going there.
pub(crate) type Clients = HashMap<String, Result<Arc<RegistryClient>, Arc<PushError>>>;

/// What connecting to a registry cost: the `GET /v2/` ping, with its retries.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectCost {
    pub retries: u64,
    pub took: Duration,
}

impl ConnectCost {
    pub fn add(self, other: ConnectCost) -> ConnectCost {
        ConnectCost {
            retries: self.retries + other.retries,
            took: self.took + other.took,
        }
    }
}

/// Connects to every registry of the plan, once each.
pub(crate) async fn connect_all(
    images: &[PlannedImage],
    options: &ClientOptions,
    cancel: &CancellationToken,
) -> (Clients, HashMap<String, ConnectCost>) {
    let mut clients = Clients::new();
    let mut costs = HashMap::new();
    for reference in images.iter().flat_map(|i| &i.references) {
        if clients.contains_key(&reference.registry) {
            continue;
        }
        let started = Instant::now();
        let retries = Arc::new(AtomicU64::new(0));
        let connect = counting_retries(
            retries.clone(),
            RegistryClient::connect(&reference.registry, options),
        );
        // Ctrl-C while a registry keeps not answering: stop now, not after the retries.
        let client = tokio::select! {
            client = connect => client.map_err(|e| Arc::new(PushError::Registry(e))),
            _ = cancel.cancelled() => Err(Arc::new(PushError::Interrupted)),
        };
        clients.insert(reference.registry.clone(), client);
        let cost = ConnectCost {
            retries: retries.load(Ordering::Relaxed),
            took: started.elapsed(),
        };
        costs.insert(reference.registry.clone(), cost);
    }
    (clients, costs)
}

/// The client for a registry of the plan.
pub(crate) fn client_for(
    clients: &Clients,
    registry: &str,
) -> Result<Arc<RegistryClient>, Arc<PushError>> {
    clients.get(registry).cloned().unwrap_or_else(|| {
        Err(Arc::new(PushError::Internal(format!(
            "{registry} was not connected"
        ))))
    })
}

/// What the probe found, and the images it could not ask about (their first error).
pub(crate) struct Probed {
    pub holdings: Holdings,
    /// Per image: retries its HEADs took (each pair counts for the first image asking).
    pub retries: Vec<u64>,
    /// Per image: why it cannot be pushed, found before anything was written.
    pub failures: Vec<Option<Arc<PushError>>>,
}

/// HEADs every (repository, known digest) pair the included images need, each once.
pub(crate) async fn probe(
    images: &[PlannedImage],
    clients: &Clients,
    mut failures: Vec<Option<Arc<PushError>>>,
    cancel: &CancellationToken,
) -> Probed {
    let mut pairs: Vec<(RepoKey, Digest, usize)> = Vec::new();
    let mut seen = HashSet::new();
    for (index, (image, failure)) in images.iter().zip(failures.iter_mut()).enumerate() {
        if failure.is_some() {
            continue;
        }
        for (repository, _) in image.repositories() {
            if let Err(e) = client_for(clients, &repository.registry) {
                *failure = Some(e);
                break;
            }
            for digest in image.blobs.iter().filter_map(|b| b.digest()) {
                if seen.insert((repository.clone(), digest.clone())) {
                    pairs.push((repository.clone(), digest.clone(), index));
                }
            }
        }
    }
    let asks = stream::iter(
        pairs
            .into_iter()
            .map(|(repository, digest, index)| async move {
                let retries = Arc::new(AtomicU64::new(0));
                let found = match client_for(clients, &repository.registry) {
                    Ok(client) => counting_retries(
                        retries.clone(),
                        Repository::new(client, &repository.repository).blob_exists(&digest),
                    )
                    .await
                    .map_err(|e| Arc::new(PushError::Registry(e))),
                    Err(e) => Err(e),
                };
                (
                    repository,
                    digest,
                    found,
                    index,
                    retries.load(Ordering::Relaxed),
                )
            }),
    )
    .buffer_unordered(PROBES_IN_FLIGHT)
    .collect::<Vec<_>>();
    let answers = tokio::select! {
        answers = asks => answers,
        _ = cancel.cancelled() => Vec::new(),
    };
    let mut holdings = Holdings::default();
    let mut errors: HashMap<(RepoKey, Digest), Arc<PushError>> = HashMap::new();
    let mut retries = vec![0; images.len()];
    for (repository, digest, found, index, retried) in answers {
        retries[index] += retried;
        match found {
            Ok(Some(size)) => holdings.insert(repository, digest, size),
            Ok(None) => {}
            Err(e) => {
                errors.insert((repository, digest), e);
            }
        }
    }
    for (image, failure) in images.iter().zip(failures.iter_mut()) {
        if failure.is_some() {
            continue;
        }
        if cancel.is_cancelled() {
            *failure = Some(Arc::new(PushError::Interrupted));
            continue;
        }
        *failure = image
            .repositories()
            .into_iter()
            .find_map(|(repository, _)| {
                image
                    .blobs
                    .iter()
                    .filter_map(|b| b.digest())
                    .find_map(|digest| errors.get(&(repository.clone(), digest.clone())).cloned())
            });
    }
    Probed {
        holdings,
        retries,
        failures,
    }
}
