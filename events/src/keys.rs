//! Stream key names, built in one place. Every key of one match shares the `{m:ID}` hash
//! tag so a Redis Cluster keeps a match on one slot.

use crate::ids::MatchId;

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "cnit";

/// Builds stream keys under a prefix (tests use a unique prefix per run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new(DEFAULT_PREFIX)
    }
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Match lifecycle events; its consumer groups hold the match leases.
    pub fn matches(&self) -> String {
        format!("{}:matches", self.prefix)
    }

    /// The dead-letter stream.
    pub fn dlq(&self) -> String {
        format!("{}:dlq", self.prefix)
    }

    fn per_match(&self, m: &MatchId, what: &str) -> String {
        format!("{}:{{m:{}}}:{}", self.prefix, m, what)
    }

    /// Commands of a match.
    pub fn cmd(&self, m: &MatchId) -> String {
        self.per_match(m, "cmd")
    }

    /// The engine's committed ticks.
    pub fn tick(&self, m: &MatchId) -> String {
        self.per_match(m, "tick")
    }

    /// The economy's committed steps.
    pub fn eco(&self, m: &MatchId) -> String {
        self.per_match(m, "eco")
    }

    /// View frames for clients (capped).
    pub fn view(&self, m: &MatchId) -> String {
        self.per_match(m, "view")
    }

    /// Snapshots (capped).
    pub fn snap(&self, m: &MatchId) -> String {
        self.per_match(m, "snap")
    }

    /// Engine states kept for the whole match (one every [`SEEK_STATE_EVERY`] ticks, under
    /// the tick's id) so replays seek fast from their first seek; not capped.
    pub fn seek(&self, m: &MatchId) -> String {
        self.per_match(m, "seek")
    }

    /// Every durable stream of a match, for export and cleanup.
    pub fn match_streams(&self, m: &MatchId) -> [String; 6] {
        [
            self.cmd(m),
            self.tick(m),
            self.eco(m),
            self.view(m),
            self.snap(m),
            self.seek(m),
        ]
    }
}

/// Ticks between the engine states kept for the whole match in the `seek` stream (one a
/// minute at 20 Hz, ~25 KB each late in a match): a replay's first seek anywhere re-runs
/// at most this many ticks, although the capped `snap` stream keeps only the last few.
pub const SEEK_STATE_EVERY: u64 = 1_200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_match_hash_tag() {
        let k = Keys::default();
        let m = MatchId::new("abc").unwrap();
        assert_eq!(k.cmd(&m), "cnit:{m:abc}:cmd");
        assert_eq!(k.tick(&m), "cnit:{m:abc}:tick");
        for key in k.match_streams(&m) {
            assert!(key.contains("{m:abc}"));
        }
        assert_eq!(Keys::new("t1").matches(), "t1:matches");
    }
}
