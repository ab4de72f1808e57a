//! Asking the registries what they hold, before anything is written: each registry of the plan
//! is connected once (`GET /v2/`, and where it has a token server one token for every
//! repository the run reads or writes there); then each tag of an image whose manifest digest is known is
//! asked what it points at (`HEAD manifests/TAG`), and a repository where one already points
//! at that manifest is known to hold all its blobs; then every other blob whose digest the
//! plan knows is asked about (`HEAD blobs/DIGEST`) in each repository the plan puts it into —
//! each pair once, many at a time. The answers feed `decide`; the dry run is this and nothing
//! more.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use ocipush_oci::Digest;
use ocipush_registry::retry_count::counting_retries;
use ocipush_registry::{Access, ClientOptions, Reference, RegistryClient, Repository};
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
    // Requests the probe's first round sends to each registry, at most `PROBES_IN_FLIGHT` at
    // once: a manifest HEAD per reference of an image whose manifest digest is known (an
    // unchanged image needs nothing more), else a HEAD per blob. That many connections are
    // opened while the registry answers its first `GET /v2/`.
    let mut requests: Vec<(String, usize)> = Vec::new();
    // And every repository the run pushes into or mounts from there, for one token for all.
    let mut access: HashMap<String, HashSet<(String, Access)>> = HashMap::new();
    for image in images {
        for reference in &image.references {
            let wanted = if image.manifest.is_some() {
                1
            } else {
                image.blobs.len()
            };
            match requests.iter_mut().find(|(r, _)| *r == reference.registry) {
                Some((_, count)) => *count += wanted,
                None => requests.push((reference.registry.clone(), wanted)),
            }
            let repositories = access.entry(reference.registry.clone()).or_default();
            repositories.insert((reference.repository.clone(), Access::PullPush));
            if let Some(origin) = image
                .source
                .origin
                .as_ref()
                .filter(|o| o.registry == reference.registry)
            {
                repositories.insert((origin.repository.clone(), Access::Pull));
            }
        }
    }
    // Registries are connected to all at once; each answers in its own time.
    let connects = requests.into_iter().map(|(registry, wanted)| {
        let repositories = access.remove(&registry).unwrap_or_default();
        async move {
            let options = ClientOptions {
                connections: wanted.min(PROBES_IN_FLIGHT),
                ..options.clone()
            };
            let started = Instant::now();
            let retries = Arc::new(AtomicU64::new(0));
            let connect = counting_retries(retries.clone(), async {
                let client = RegistryClient::connect(&registry, &options).await?;
                client
                    .authorize_ahead(repositories.iter().map(|(name, a)| (name.as_str(), *a)))
                    .await;
                Ok(client)
            });
            // Ctrl-C while a registry keeps not answering: stop now, not after the retries.
            let client = tokio::select! {
                client = connect => client.map_err(|e| Arc::new(PushError::Registry(e))),
                _ = cancel.cancelled() => Err(Arc::new(PushError::Interrupted)),
            };
            let cost = ConnectCost {
                retries: retries.load(Ordering::Relaxed),
                took: started.elapsed(),
            };
            (registry, client, cost)
        }
    });
    let mut clients = Clients::new();
    let mut costs = HashMap::new();
    for (registry, client, cost) in futures_util::future::join_all(connects).await {
        clients.insert(registry.clone(), client);
        costs.insert(registry, cost);
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
    /// References that already point at the manifest their image will have: nothing is
    /// written for them.
    pub current: HashSet<Reference>,
    /// Per image: retries its requests took (each request counts for the first image asking).
    pub retries: Vec<u64>,
    /// Per image: why it cannot be pushed, found before anything was written.
    pub failures: Vec<Option<Arc<PushError>>>,
}

/// Asks the registries, in two rounds. First, for every image whose manifest digest the plan
/// knows, what each of its tags points at (`HEAD manifests/TAG`): where a tag already points
/// at that manifest, the repository holds every blob it names, so none is asked about. Then
/// every other (repository, known digest) pair the images need (`HEAD blobs/DIGEST`), each
/// once.
pub(crate) async fn probe(
    images: &[PlannedImage],
    clients: &Clients,
    mut failures: Vec<Option<Arc<PushError>>>,
    cancel: &CancellationToken,
) -> Probed {
    for (image, failure) in images.iter().zip(failures.iter_mut()) {
        if failure.is_none() {
            *failure = image
                .repositories()
                .iter()
                .find_map(|(repository, _)| client_for(clients, &repository.registry).err());
        }
    }
    let mut retries = vec![0; images.len()];
    let mut errors: HashMap<Asked, Arc<PushError>> = HashMap::new();
    let mut holdings = Holdings::default();
    let mut current = HashSet::new();

    // Round 1: tags of images whose manifest is known.
    let mut tags = Vec::new();
    for (index, (image, failure)) in images.iter().zip(&failures).enumerate() {
        if let (None, Some(manifest)) = (failure, &image.manifest) {
            for reference in &image.references {
                tags.push((Asked::Tag(reference.clone()), manifest.clone(), index));
            }
        }
    }
    for (asked, answer, index, retried) in ask_all(tags, clients, cancel).await {
        retries[index] += retried;
        match (answer, asked) {
            (Ok(Answer::Points(true)), Asked::Tag(reference)) => {
                current.insert(reference);
            }
            (Ok(_), _) => {}
            (Err(e), asked) => {
                errors.insert(asked, e);
            }
        }
    }
    // A repository where one tag already points at the manifest holds all its blobs.
    for image in images {
        for (repository, references) in image.repositories() {
            if references.iter().any(|r| current.contains(*r)) {
                for blob in &image.blobs {
                    if let Some(digest) = blob.digest() {
                        holdings.insert(repository.clone(), digest.clone(), blob.size);
                    }
                }
            }
        }
    }

    // An image read from a registry: its own repository there holds every blob its manifests
    // name, so a destination on the same registry mounts them rather than copying — without a
    // HEAD first: the mount's answer says the same (201 whether it mounted or the blob was
    // there), one round trip sooner.
    let mut mountable: HashSet<(String, Digest)> = HashSet::new();
    for image in images {
        if let Some(origin) = &image.source.origin {
            let home = RepoKey {
                registry: origin.registry.clone(),
                repository: origin.repository.clone(),
            };
            for blob in &image.blobs {
                if let Some(digest) = blob.digest() {
                    holdings.insert(home.clone(), digest.clone(), blob.size);
                    mountable.insert((home.registry.clone(), digest.clone()));
                }
            }
        }
    }

    // Round 2: blobs the first round could not settle.
    let mut blobs = Vec::new();
    let mut seen = HashSet::new();
    for (index, (image, failure)) in images.iter().zip(&failures).enumerate() {
        if failure.is_some() {
            continue;
        }
        for (repository, _) in image.repositories() {
            for digest in image.blobs.iter().filter_map(|b| b.digest()) {
                if holdings.holds(&repository, digest)
                    || mountable.contains(&(repository.registry.clone(), digest.clone()))
                    || !seen.insert((repository.clone(), digest.clone()))
                {
                    continue;
                }
                let asked = Asked::Blob(repository.clone(), digest.clone());
                blobs.push((asked, digest.clone(), index));
            }
        }
    }
    for (asked, answer, index, retried) in ask_all(blobs, clients, cancel).await {
        retries[index] += retried;
        match (answer, asked) {
            (Ok(Answer::Held(Some(size))), Asked::Blob(repository, digest)) => {
                holdings.insert(repository, digest, size)
            }
            (Ok(_), _) => {}
            (Err(e), asked) => {
                errors.insert(asked, e);
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
        let tag_error = image
            .references
            .iter()
            .find_map(|r| errors.get(&Asked::Tag(r.clone())).cloned());
        *failure = tag_error.or_else(|| {
            image
                .repositories()
                .into_iter()
                .find_map(|(repository, _)| {
                    image
                        .blobs
                        .iter()
                        .filter_map(|b| b.digest())
                        .find_map(|digest| {
                            errors
                                .get(&Asked::Blob(repository.clone(), digest.clone()))
                                .cloned()
                        })
                })
        });
    }
    Probed {
        holdings,
        current,
        retries,
        failures,
    }
}

/// One question to a registry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Asked {
    /// Does this tag (or digest reference) point at the manifest?
    Tag(Reference),
    /// Does this repository hold the blob?
    Blob(RepoKey, Digest),
}

/// A question's answer.
enum Answer {
    /// The tag points at the manifest (or not).
    Points(bool),
    /// The blob is held, with this size (or not).
    Held(Option<u64>),
}

/// One request: `HEAD manifests/TAG` or `HEAD blobs/DIGEST`.
async fn ask(
    repository: Repository,
    asked: &Asked,
    expected: &Digest,
) -> Result<Answer, ocipush_registry::RegistryError> {
    match asked {
        Asked::Tag(reference) => {
            let target = reference
                .api_reference()
                .unwrap_or_else(|| expected.to_string());
            let found = repository.manifest_digest(&target).await?;
            Ok(Answer::Points(found.as_deref() == Some(expected.as_ref())))
        }
        Asked::Blob(_, digest) => Ok(Answer::Held(repository.blob_exists(digest).await?)),
    }
}

/// Asks every question, many at a time, each counting its retries; stops on Ctrl-C.
async fn ask_all(
    questions: Vec<(Asked, Digest, usize)>,
    clients: &Clients,
    cancel: &CancellationToken,
) -> Vec<(Asked, Result<Answer, Arc<PushError>>, usize, u64)> {
    let asks = stream::iter(
        questions
            .into_iter()
            .map(|(asked, expected, index)| async move {
                let repository = match &asked {
                    Asked::Tag(reference) => RepoKey::of(reference),
                    Asked::Blob(repository, _) => repository.clone(),
                };
                let retries = Arc::new(AtomicU64::new(0));
                let answer = match client_for(clients, &repository.registry) {
                    Ok(client) => counting_retries(
                        retries.clone(),
                        ask(
                            Repository::new(client, &repository.repository),
                            &asked,
                            &expected,
                        ),
                    )
                    .await
                    .map_err(|e| Arc::new(PushError::Registry(e))),
                    Err(e) => Err(e),
                };
                (asked, answer, index, retries.load(Ordering::Relaxed))
            }),
    )
    .buffer_unordered(PROBES_IN_FLIGHT)
    .collect::<Vec<_>>();
    tokio::select! {
        answers = asks => answers,
        _ = cancel.cancelled() => Vec::new(),
    }
}
