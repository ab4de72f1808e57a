//! The tally of open upload sessions: how many each repository has and how many bytes each holds, so
//! that [`UploadLimits`] are checked on every request without walking `uploads/`. Rebuilt from
//! `uploads/` at start-up; kept in step by the session operations (start, append, discard, purge).
//!
//! Invariant: a session is counted from the moment its directory exists until it is discarded, and its
//! byte count is what its data file holds (bytes are counted before they are written and given back
//! when a failed chunk is cut off). Sessions opened by another server process sharing the root are not
//! counted by this one.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::UploadLimits;

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadLimit {
    /// [`UploadLimits::max_blob_bytes`].
    BlobBytes(u64),
    /// [`UploadLimits::max_total_bytes`].
    TotalBytes(u64),
    /// [`UploadLimits::max_sessions_per_repository`].
    RepositorySessions(usize),
    /// [`UploadLimits::max_sessions`].
    Sessions(usize),
}

#[derive(Debug)]
pub struct UploadLedger {
    limits: UploadLimits,
    tally: Mutex<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    /// Bytes held by each open session, by UUID.
    sessions: HashMap<String, Session>,
    /// The sum of the sessions' bytes, kept because every chunk checks it.
    total_bytes: u64,
}

#[derive(Debug)]
struct Session {
    repository: String,
    bytes: u64,
}

impl UploadLedger {
    pub fn new(limits: UploadLimits) -> UploadLedger {
        UploadLedger {
            limits,
            tally: Mutex::new(Tally::default()),
        }
    }

    pub fn limits(&self) -> &UploadLimits {
        &self.limits
    }

    /// Counts a new session of `repository`, unless that would pass a session limit. `existing` is
    /// for sessions found on disk at start-up, which are counted whatever the limits.
    pub fn open(
        &self,
        uuid: &str,
        repository: &str,
        bytes: u64,
        existing: bool,
    ) -> Result<(), UploadLimit> {
        let mut tally = self.tally();
        if tally.sessions.contains_key(uuid) {
            return Ok(());
        }
        if !existing {
            if tally.sessions.len() >= self.limits.max_sessions {
                return Err(UploadLimit::Sessions(self.limits.max_sessions));
            }
            let open_here = tally
                .sessions
                .values()
                .filter(|session| session.repository == repository)
                .count();
            if open_here >= self.limits.max_sessions_per_repository {
                return Err(UploadLimit::RepositorySessions(
                    self.limits.max_sessions_per_repository,
                ));
            }
        }
        tally.total_bytes += bytes;
        tally.sessions.insert(
            uuid.to_owned(),
            Session {
                repository: repository.to_owned(),
                bytes,
            },
        );
        Ok(())
    }

    /// Counts `more` bytes for the session before they are written, unless the session would then pass
    /// the per-blob limit or all sessions the total. `held` is what the session's file holds now.
    pub fn grow(&self, uuid: &str, held: u64, more: u64) -> Result<(), UploadLimit> {
        if held.saturating_add(more) > self.limits.max_blob_bytes {
            return Err(UploadLimit::BlobBytes(self.limits.max_blob_bytes));
        }
        let mut tally = self.tally();
        if tally.total_bytes.saturating_add(more) > self.limits.max_total_bytes {
            return Err(UploadLimit::TotalBytes(self.limits.max_total_bytes));
        }
        // Only counted sessions add to the total, so that closing them gives everything back.
        if let Some(session) = tally.sessions.get_mut(uuid) {
            session.bytes += more;
            tally.total_bytes += more;
        }
        Ok(())
    }

    /// Gives back bytes counted by [`grow`](Self::grow) that were cut off again (a failed chunk).
    pub fn shrink(&self, uuid: &str, fewer: u64) {
        let mut tally = self.tally();
        tally.total_bytes = tally.total_bytes.saturating_sub(fewer);
        if let Some(session) = tally.sessions.get_mut(uuid) {
            session.bytes = session.bytes.saturating_sub(fewer);
        }
    }

    /// Forgets a session that was committed, cancelled or purged.
    pub fn close(&self, uuid: &str) {
        let mut tally = self.tally();
        if let Some(session) = tally.sessions.remove(uuid) {
            tally.total_bytes = tally.total_bytes.saturating_sub(session.bytes);
        }
    }

    /// Open sessions counted, and the bytes they hold.
    pub fn totals(&self) -> (usize, u64) {
        let tally = self.tally();
        (tally.sessions.len(), tally.total_bytes)
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        // Every update is a handful of integer operations that cannot panic halfway.
        self.tally
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> UploadLedger {
        UploadLedger::new(UploadLimits {
            max_blob_bytes: 100,
            max_total_bytes: 150,
            max_sessions_per_repository: 2,
            max_sessions: 3,
            ..UploadLimits::default()
        })
    }

    #[test]
    fn sessions_are_capped_per_repository_and_in_all() {
        let ledger = ledger();
        ledger.open("a1", "a", 0, false).unwrap();
        ledger.open("a2", "a", 0, false).unwrap();
        assert_eq!(
            ledger.open("a3", "a", 0, false),
            Err(UploadLimit::RepositorySessions(2))
        );
        ledger.open("b1", "b", 0, false).unwrap();
        assert_eq!(
            ledger.open("c1", "c", 0, false),
            Err(UploadLimit::Sessions(3))
        );
        // Found on disk at start-up: counted whatever the limits.
        ledger.open("c2", "c", 10, true).unwrap();
        ledger.close("a1");
        ledger.close("c2");
        ledger.open("a3", "a", 0, false).unwrap();
        assert_eq!(ledger.totals(), (3, 0));
    }

    #[test]
    fn bytes_are_capped_per_blob_and_in_all() {
        let ledger = ledger();
        ledger.open("a", "r", 0, false).unwrap();
        ledger.open("b", "r", 0, false).unwrap();
        ledger.grow("a", 0, 100).unwrap();
        assert_eq!(ledger.grow("a", 100, 1), Err(UploadLimit::BlobBytes(100)));
        assert_eq!(ledger.grow("b", 0, 51), Err(UploadLimit::TotalBytes(150)));
        ledger.grow("b", 0, 50).unwrap();
        ledger.shrink("b", 20);
        assert_eq!(ledger.totals(), (2, 130));
        ledger.close("a");
        assert_eq!(ledger.totals(), (1, 30));
        ledger.grow("b", 30, 70).unwrap();
        assert_eq!(ledger.grow("b", 100, 1), Err(UploadLimit::BlobBytes(100)));
        // Opening a counted session again changes nothing.
        ledger.open("b", "r", 0, true).unwrap();
        assert_eq!(ledger.totals(), (1, 100));
    }
}
