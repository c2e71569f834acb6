//! Replays and desync audits of Command and Independent Thought, from the same event log a
//! live match writes: load a [`Recording`] from a bus or a replay file, re-run the engine
//! and the economy from their logged inputs ([`verify`]), seek to any tick ([`Seeker`],
//! [`Playback`]), time re-simulation ([`bench`]), compute match statistics ([`stats`])
//! and audit a log's delivery guarantees ([`audit`]).
//!
//! Architecture invariant: the re-run code reads only the log (matches entry, `cmd`,
//! `tick`, `eco`, `snap`), never the capped view stream or a clock, so a replay shows
//! what the match did, bit for bit. The library does no terminal I/O; the `replay-tool`
//! binary draws progress bars through [`progress::Progress`].
//!
//! Entity/component diffs read the engine's state through `engine::sim::Sim::state`
//! (read only; see [`inspect`]).

pub mod audit;
pub mod bench;
pub mod bus;
pub mod error;
pub mod file;
pub mod inspect;
pub mod progress;
pub mod record;
pub mod recording;
pub mod rerun;
pub mod seek;
pub mod stats;
pub mod stepper;
pub mod verify;

pub use error::{Error, Result, Service};
pub use file::FileHeader;
pub use recording::{Log, RawEntry, Recording, Streams};
pub use rerun::{EconomyRun, EngineRun, Machine};
pub use seek::{EngineSeeker, Playback, Seeker};
pub use verify::{verify, VerifyOptions, VerifyReport};

impl Recording {
    /// Reads a match from a bus.
    pub async fn from_bus<B: events::Bus>(
        bus: &B,
        keys: &events::Keys,
        match_id: &events::MatchId,
    ) -> Result<Recording> {
        bus::load(bus, keys, match_id).await
    }

    /// Reads a replay file.
    pub fn from_file(path: &std::path::Path) -> Result<Recording> {
        file::read(path).map(|(_, r)| r)
    }

    /// Writes a replay file; returns its size in bytes.
    pub fn to_file(&self, path: &std::path::Path, compress: bool) -> Result<u64> {
        file::write(path, self, compress)
    }
}
