//! What a leased service is to its binary and to the runner: its settings type
//! ([`ServiceConfig`]: its name, its own flags, its per-match fold, its readiness check)
//! and the whole `main` of its binary ([`main`]): parse the flags, load the rules, set
//! up, serve the ops endpoint and run until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, FromArgMatches};

use crate::args::{ServiceArgs, ServiceSetup};
use crate::fold::MatchFold;
use crate::ops;
use crate::runner::{progress_check, run, Progress, RunnerConfig};

/// `/ready` fails when no match loop has made progress for this long (ms).
pub const MAX_READY_STALL_MS: u64 = 5_000;

/// A leased service's settings, and through them the service: what it is called, the
/// flags its binary adds to [`ServiceArgs`], and the fold it runs per match.
pub trait ServiceConfig: Send + Sync + Sized + 'static {
    /// The service's name: its consumer group on the matches stream, the `service` of
    /// its ops endpoint and metrics, its binary's name.
    const NAME: &'static str;
    /// One line on what the binary does (`--help`).
    const ABOUT: &'static str;
    /// The ops endpoint's address unless `--ops-addr` says otherwise.
    const DEFAULT_OPS_ADDR: &'static str;
    /// The name of its progress check on `/ready`.
    const READY_CHECK: &'static str;
    /// Entries it may lag behind its input and still report ready (none: not checked).
    const MAX_READY_LAG: Option<u64> = None;

    /// The binary's own flags, next to the shared [`ServiceArgs`].
    type Flags: Args;
    /// One match of the service.
    type Fold: MatchFold<Config = Self>;

    /// The settings of a binary started with these arguments.
    fn from_args(args: &ServiceArgs, flags: Self::Flags) -> Self;

    /// How it takes its matches.
    fn runner(&self) -> RunnerConfig;

    /// Registers its metrics so they are exported before their first event.
    fn register_metrics();

    /// Says at start (logging is set up by then) what an operator must know.
    fn announce(&self) {}
}

/// The shared and the service's own arguments of the command line.
fn parse<C: ServiceConfig>() -> (ServiceArgs, C::Flags) {
    let command = C::Flags::augment_args(ServiceArgs::augment_args(clap::Command::new(C::NAME)));
    // After the flattened arguments, whose doc comments would otherwise be the about text.
    let command = command
        .version(env!("CARGO_PKG_VERSION"))
        .about(C::ABOUT)
        .long_about(None);
    let matches = command.get_matches();
    let parsed = ServiceArgs::from_arg_matches(&matches)
        .and_then(|args| Ok((args, C::Flags::from_arg_matches(&matches)?)));
    parsed.unwrap_or_else(|e| e.exit())
}

/// The `main` of a leased service binary: parse the command line, load the rules,
/// connect to Redis, serve the ops endpoint (`/health`, `/ready` with the Redis and
/// progress checks, `/metrics`) and run the service until Ctrl-C or SIGTERM.
pub async fn main<C: ServiceConfig>() -> anyhow::Result<()> {
    let (args, flags) = parse::<C>();
    let rules = rules::load(args.rules.as_deref())?;
    let ServiceSetup {
        bus,
        keys,
        listener,
        metrics,
    } = args.setup(C::DEFAULT_OPS_ADDR).await?;
    let config = C::from_args(&args, flags);
    config.announce();
    C::register_metrics();
    let progress = Arc::new(Progress::default());
    let checks = vec![
        ops::redis_check(bus.clone()),
        progress_check(
            C::READY_CHECK,
            progress.clone(),
            MAX_READY_STALL_MS,
            C::MAX_READY_LAG,
        ),
    ];
    ops::run_with_ops(C::NAME, listener, metrics, checks, |shutdown| {
        run(bus, keys, Arc::new(rules), config, progress, shutdown)
    })
    .await
    .with_context(|| format!("{} service failed", C::NAME))?;
    tracing::info!("{} stopped", C::NAME);
    Ok(())
}
