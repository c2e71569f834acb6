//! The plumbing every leased service binary shares (the engine and the economy; a third
//! service would be one more fold): command-line settings and set-up ([`args`]), the ops
//! endpoint with its checks, metrics and memory-growth detector ([`ops`]), the file that
//! reports the addresses bound ([`addr_file`]), the per-match fold and the one loop that
//! drives it ([`fold`]), the one runner that takes matches under leases and runs a fold
//! per match ([`runner`]), and a service binary's whole `main` ([`binary`]).
//!
//! The wire (types, codec, keys, the `Bus`, DLQ, leases, fenced commits) stays in
//! `events`; nothing here is part of a match's log.

pub mod addr_file;
pub mod args;
pub mod binary;
pub mod fold;
pub mod ops;
pub mod runner;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use args::{init_tracing, ServiceArgs, ServiceSetup, SetupError};
pub use binary::{main, ServiceConfig};
pub use fold::{Flow, MatchFold, MatchIo, Start};
pub use runner::{progress_check, run, MatchOutcome, Progress, RunnerConfig};
