//! Which request gets which fault: a deterministic schedule of rules such as "every 3rd PATCH
//! of an upload is cut off after 40 000 body bytes", counted per request kind, and a seeded
//! generator of such schedules so a failing run can be replayed from the seed it printed.

use std::collections::HashMap;
use std::fmt;

use crate::fixtures::prng::SplitMix64;

/// What a request does in the distribution API, judged from its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// `GET /v2/`.
    Ping,
    /// `HEAD /v2/<name>/blobs/<digest>`.
    BlobHead,
    /// `POST /v2/<name>/blobs/uploads/` (a new session, or a mount).
    UploadStart,
    /// `PATCH` of an upload session: the blob's bytes.
    UploadPatch,
    /// `PUT` of an upload session with `?digest=`: the commit (or a monolithic upload).
    UploadCommit,
    /// `DELETE` of an upload session.
    UploadCancel,
    /// `PUT /v2/<name>/manifests/<reference>`.
    ManifestPut,
    /// `GET` or `HEAD` of a manifest.
    ManifestGet,
    /// `GET /v2/<name>/blobs/<digest>`: a blob's bytes, read (a registry as a source).
    BlobGet,
    /// Anything else (token requests do not pass through the proxy).
    Other,
}

impl RequestKind {
    /// Classifies a request by its method and the path of its target (query ignored).
    pub fn classify(method: &str, target: &str) -> Self {
        let path = target.split('?').next().unwrap_or(target);
        let in_uploads = path.contains("/blobs/uploads/");
        match method {
            "GET" if path == "/v2/" || path == "/v2" => RequestKind::Ping,
            "HEAD" if path.contains("/blobs/") => RequestKind::BlobHead,
            "POST" if in_uploads => RequestKind::UploadStart,
            "PATCH" if in_uploads => RequestKind::UploadPatch,
            "PUT" if in_uploads => RequestKind::UploadCommit,
            "DELETE" if in_uploads => RequestKind::UploadCancel,
            "PUT" if path.contains("/manifests/") => RequestKind::ManifestPut,
            "GET" | "HEAD" if path.contains("/manifests/") => RequestKind::ManifestGet,
            "GET" if path.contains("/blobs/") => RequestKind::BlobGet,
            _ => RequestKind::Other,
        }
    }
}

/// One way to break one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward the head and at most this many bytes of the request body, then drop both
    /// connections: the registry sees a cut-off request, the client a reset.
    ResetRequest { after_body_bytes: u64 },
    /// Forward the whole request and wait for the registry's answer, then drop the client's
    /// connection without a byte of it: the request took effect, the client cannot know.
    ResetResponse,
    /// Forward the request, then send only the first half of the response's bytes (head and
    /// body together) and close: a short body or a cut-off head.
    TruncateResponse,
    /// Answer this status (with `Retry-After: retry_after` seconds when given) without
    /// forwarding; the request body is read and thrown away first.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Wait this long before forwarding the request.
    Stall { millis: u64 },
    /// Answer 413 and close, as a size-limited proxy does, when the body is larger than
    /// `limit` bytes or of unknown length (chunked); smaller bodies pass.
    RejectLarge { limit: u64 },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ResetRequest { after_body_bytes } => {
                write!(f, "reset after {after_body_bytes} request-body bytes")
            }
            Fault::ResetResponse => f.write_str("reset before the response"),
            Fault::TruncateResponse => f.write_str("truncate the response"),
            Fault::Status {
                status,
                retry_after: Some(s),
            } => write!(f, "answer {status} with Retry-After: {s}"),
            Fault::Status { status, .. } => write!(f, "answer {status}"),
            Fault::Stall { millis } => write!(f, "stall {millis} ms"),
            Fault::RejectLarge { limit } => write!(f, "413 for bodies over {limit} bytes"),
        }
    }
}

/// "The `n`-th request of `kind` (1-based) gets `fault` when `n % every == phase`", at most
/// `limit` times when a limit is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub kind: RequestKind,
    pub every: u32,
    pub phase: u32,
    pub limit: Option<u32>,
    pub fault: Fault,
}

impl Rule {
    /// Every `every`-th request of `kind`, starting with the first.
    pub fn every(kind: RequestKind, every: u32, fault: Fault) -> Self {
        let every = every.max(1);
        Rule {
            kind,
            every,
            phase: 1 % every,
            limit: None,
            fault,
        }
    }

    /// Only the `n`-th request of `kind` (1-based).
    pub fn nth(kind: RequestKind, n: u32, fault: Fault) -> Self {
        Rule {
            kind,
            every: u32::MAX,
            phase: n,
            limit: Some(1),
            fault,
        }
    }

    fn matches(&self, kind: RequestKind, n: u32) -> bool {
        self.kind == kind && n % self.every == self.phase % self.every
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.every == u32::MAX {
            write!(
                f,
                "request {} of {:?}: {}",
                self.phase, self.kind, self.fault
            )
        } else {
            write!(
                f,
                "{:?} n%{}=={}: {}",
                self.kind,
                self.every,
                self.phase % self.every,
                self.fault
            )?;
            if let Some(limit) = self.limit {
                write!(f, " (at most {limit}x)")?;
            }
            Ok(())
        }
    }
}

/// A set of rules; the first rule matching a request decides its fault.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub rules: Vec<Rule>,
    /// The seed it was generated from, if any (printed with the plan).
    pub seed: Option<u64>,
}

/// Kinds a push sends, weighted towards the ones that carry blob bytes.
const KINDS: [RequestKind; 9] = [
    RequestKind::Ping,
    RequestKind::BlobHead,
    RequestKind::UploadStart,
    RequestKind::UploadPatch,
    RequestKind::UploadPatch,
    RequestKind::UploadPatch,
    RequestKind::UploadCommit,
    RequestKind::UploadCommit,
    RequestKind::ManifestPut,
];

impl FaultPlan {
    /// No faults: a transparent proxy.
    pub fn none() -> Self {
        Self::default()
    }

    /// A plan of the given rules.
    pub fn rules(rules: Vec<Rule>) -> Self {
        FaultPlan { rules, seed: None }
    }

    /// One or two rules derived from `seed` alone: the same seed always gives the same plan.
    /// Most rules fire on every 2nd to 4th request of their kind, some on every one (so some
    /// pushes must fail), some only a few times.
    pub fn from_seed(seed: u64) -> Self {
        Self::from_seed_among(seed, &KINDS)
    }

    /// As [`FaultPlan::from_seed`], with rules only for requests of `kinds` (e.g. what a
    /// registry serving as a source is sent: pings, manifest and blob GETs).
    pub fn from_seed_among(seed: u64, kinds: &[RequestKind]) -> Self {
        let mut rng = SplitMix64::new(seed);
        let count = 1 + rng.below(2) as usize;
        let rules = (0..count).map(|_| random_rule(&mut rng, kinds)).collect();
        FaultPlan {
            rules,
            seed: Some(seed),
        }
    }

    /// The fault for the `n`-th request (1-based) of `kind`, counting how often each rule fired.
    pub(crate) fn pick(
        &self,
        kind: RequestKind,
        n: u32,
        fired: &mut HashMap<usize, u32>,
    ) -> Option<Fault> {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(kind, n) {
                continue;
            }
            let count = fired.entry(i).or_default();
            if rule.limit.is_some_and(|limit| *count >= limit) {
                continue;
            }
            *count += 1;
            return Some(rule.fault);
        }
        None
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(seed) = self.seed {
            write!(f, "seed {seed}: ")?;
        }
        if self.rules.is_empty() {
            return f.write_str("no faults");
        }
        let rules: Vec<String> = self.rules.iter().map(Rule::to_string).collect();
        f.write_str(&rules.join("; "))
    }
}

fn random_rule(rng: &mut SplitMix64, kinds: &[RequestKind]) -> Rule {
    let kind = kinds[rng.below(kinds.len() as u64) as usize];
    let fault = random_fault(rng, kind);
    // 1 in 8 rules hits every request of its kind: such pushes exhaust their retries.
    let every = match rng.below(8) {
        0 => 1,
        n => 2 + (n as u32 % 3),
    };
    let limit = (rng.below(3) == 0).then(|| 1 + rng.below(3) as u32);
    Rule {
        kind,
        every,
        phase: rng.below(every as u64) as u32,
        limit,
        fault,
    }
}

fn random_fault(rng: &mut SplitMix64, kind: RequestKind) -> Fault {
    let has_body = matches!(kind, RequestKind::UploadPatch | RequestKind::ManifestPut);
    match rng.below(if has_body { 8 } else { 6 }) {
        0 => Fault::ResetResponse,
        1 => Fault::TruncateResponse,
        2 => Fault::Status {
            status: [500, 502, 503, 504, 408][rng.below(5) as usize],
            retry_after: None,
        },
        // Retry-After of 0 or 1 s: honoured, and cheap enough for hundreds of pushes.
        3 => Fault::Status {
            status: if rng.below(2) == 0 { 429 } else { 503 },
            retry_after: Some(rng.below(4) / 3),
        },
        4 => Fault::Stall {
            millis: 20 + rng.below(200),
        },
        5 => Fault::ResetRequest {
            after_body_bytes: 0,
        },
        6 => Fault::ResetRequest {
            after_body_bytes: 1 + rng.below(64 * 1024),
        },
        _ => Fault::RejectLarge {
            limit: 64 * 1024 + rng.below(256 * 1024),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_distribution_requests() {
        use RequestKind::*;
        let cases = [
            ("GET", "/v2/", Ping),
            ("HEAD", "/v2/a/b/blobs/sha256:00", BlobHead),
            ("POST", "/v2/a/blobs/uploads/", UploadStart),
            (
                "POST",
                "/v2/a/blobs/uploads/?mount=sha256:0&from=b",
                UploadStart,
            ),
            ("PATCH", "/v2/a/blobs/uploads/uuid?_state=x", UploadPatch),
            (
                "PUT",
                "/v2/a/blobs/uploads/uuid?_state=x&digest=sha256:0",
                UploadCommit,
            ),
            ("DELETE", "/v2/a/blobs/uploads/uuid", UploadCancel),
            ("PUT", "/v2/a/manifests/1.0", ManifestPut),
            ("HEAD", "/v2/a/manifests/1.0", ManifestGet),
            ("GET", "/v2/_catalog", Other),
        ];
        for (method, path, kind) in cases {
            assert_eq!(RequestKind::classify(method, path), kind, "{method} {path}");
        }
    }

    #[test]
    fn every_nth_with_phase_and_limit() {
        let mut rule = Rule::every(RequestKind::UploadPatch, 3, Fault::ResetResponse);
        rule.phase = 2;
        rule.limit = Some(2);
        let plan = FaultPlan::rules(vec![rule]);
        let mut fired = HashMap::new();
        let hits: Vec<u32> = (1..=12)
            .filter(|n| {
                plan.pick(RequestKind::UploadPatch, *n, &mut fired)
                    .is_some()
            })
            .collect();
        assert_eq!(hits, [2, 5]);
        assert!(plan
            .pick(RequestKind::BlobHead, 2, &mut HashMap::new())
            .is_none());
        let nth = FaultPlan::rules(vec![Rule::nth(RequestKind::Ping, 2, Fault::ResetResponse)]);
        let mut fired = HashMap::new();
        let hits: Vec<u32> = (1..=5)
            .filter(|n| nth.pick(RequestKind::Ping, *n, &mut fired).is_some())
            .collect();
        assert_eq!(hits, [2]);
        let first = Rule::every(RequestKind::Ping, 2, Fault::ResetResponse);
        let plan = FaultPlan::rules(vec![first]);
        assert!(plan
            .pick(RequestKind::Ping, 1, &mut HashMap::new())
            .is_some());
    }

    #[test]
    fn seeds_give_the_same_plan() {
        assert_eq!(FaultPlan::from_seed(42), FaultPlan::from_seed(42));
        let distinct: std::collections::HashSet<String> = (0..50)
            .map(|s| FaultPlan::from_seed(s).to_string())
            .collect();
        assert!(distinct.len() > 40, "{distinct:?}");
        assert!(FaultPlan::from_seed(7).to_string().starts_with("seed 7: "));
    }
}
