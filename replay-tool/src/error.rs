//! The library's error type: one enum whose variants say what the caller can do about it.

use events::{BusError, DecodeError, StreamId};

/// Which service's log a step or a snapshot belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    Engine,
    Economy,
}

impl std::fmt::Display for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Service::Engine => "engine",
            Service::Economy => "economy",
        })
    }
}

/// What went wrong. Nothing here is a panic: every input (files, stream entries) is
/// external data and is checked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bus could not be read or written; transient ones may succeed on retry.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Not a replay file, or one this build cannot read.
    #[error("not a readable replay file: {0}")]
    Format(String),
    /// An entry of a stream does not decode (even after upcasting).
    #[error("{stream} entry {id} does not decode: {source}")]
    Decode {
        stream: &'static str,
        id: StreamId,
        source: DecodeError,
    },
    /// The log is not a usable recording (no match setup, gaps in the tick stream, an
    /// input named by a tick that is not in the `cmd` stream, ...).
    #[error("the log is incomplete or inconsistent: {0}")]
    Log(String),
    /// No such match in this Redis.
    #[error("no match {0} under this prefix")]
    NoMatch(String),
    /// The target of an import already holds entries of that match.
    #[error(
        "match {0} already has entries in the target; import under another id or delete it first"
    )]
    Exists(String),
    /// The engine refused the match setup.
    #[error("the engine refuses the match setup: {0}")]
    Setup(#[from] engine::SetupError),
    /// A snapshot of the log cannot be restored by this build.
    #[error("{service} snapshot at tick {tick} cannot be restored: {why}")]
    Snapshot {
        service: Service,
        tick: u64,
        why: String,
    },
    /// A tick beyond what the log holds was asked for.
    #[error("tick {asked} is outside the recording (ticks 0..={last})")]
    TickOutOfRange { asked: u64, last: u64 },
    /// Encoding an entry failed (a bug, never bad input).
    #[error("encode: {0}")]
    Encode(String),
    /// The seek index was cancelled ([`crate::seek::IndexCancel::cancel`]: its replay
    /// was closed) while a seek waited or re-ran on it.
    #[error("the seek was cancelled: its replay was closed")]
    Cancelled,
}

impl From<events::EncodeError> for Error {
    fn from(e: events::EncodeError) -> Self {
        Error::Encode(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
