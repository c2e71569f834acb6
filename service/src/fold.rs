//! The per-match fold of a leased service and the one loop that drives it: read the
//! inputs of a step, step, commit the step fenced under its explicit id through the
//! instance's group commit, publish what follows a written commit. The engine (commands →
//! tick + view frame) and the economy (committed tick + production commands → economy
//! step + its commands) are each one [`MatchFold`]; cancellation, the commit's outcome
//! (fenced, cancelled, written), the commit metrics and progress live here, once.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use events::commit::Commit;
use events::group_commit::{GroupCommitter, MatchCommits, Settled};
use events::{Append, Bus, BusError, Keys, MatchCreated, MatchId};
use rules::Rules;
use tokio_util::sync::CancellationToken;

use crate::runner::{MatchOutcome, Progress};

/// What one match's fold works with: the bus, the stream keys, the rules, the match's
/// setup, the token that stops it (shutdown or a lost lease) and the instance's progress
/// (for `/ready`).
pub struct MatchIo<B> {
    pub bus: B,
    pub keys: Keys,
    pub rules: Arc<Rules>,
    pub setup: MatchCreated,
    pub cancel: CancellationToken,
    pub progress: Arc<Progress>,
}

impl<B> MatchIo<B> {
    /// The match's id.
    pub fn match_id(&self) -> &MatchId {
        &self.setup.match_id
    }
}

/// How a fold's match starts.
pub enum Start<F> {
    /// Recovered (or new): run the fold.
    Run(F),
    /// The log shows the match over already.
    Finished,
    /// Cancelled while recovering.
    Cancelled,
}

/// What follows a step's publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The next step.
    Continue,
    /// The match is over for this service: its lease is acknowledged.
    Finished,
}

/// One match of a leased service as a fold over its input streams. [`drive`] calls, per
/// step: [`inputs`](MatchFold::inputs), [`step`](MatchFold::step), then (once the
/// previous step's commit is settled) [`commit`](MatchFold::commit), which it submits to
/// the instance's group commit, and [`publish`](MatchFold::publish) (after that commit
/// is settled too when [`settle_before_publish`](MatchFold::settle_before_publish)).
/// The commit of one step may be in flight while the next one steps; a refused commit
/// stops the match before anything of the next step is written.
pub trait MatchFold: Sized + Send + 'static {
    /// The service's settings, shared by all its matches.
    type Config: Send + Sync + 'static;
    /// What one step folds (the engine: a tick's commands; the economy: one committed
    /// tick and the production commands that arrived by then).
    type Input: Send;
    /// A step's result, from its stepping to its publishing.
    type Step: Send;
    /// Why the match gave up (its lease goes idle for another attempt).
    type Error: std::fmt::Display + From<BusError> + Send;

    /// Histogram (milliseconds): a step's fold and commit, from its stepping to its
    /// commit's answer.
    const STEP_TIME_METRIC: &'static str;
    /// Counter: steps committed.
    const STEPS_METRIC: &'static str;

    /// Rebuilds the match's state from its snapshot and log (or starts it new).
    fn start<B: Bus>(
        config: &Arc<Self::Config>,
        io: &MatchIo<B>,
    ) -> impl Future<Output = Result<Start<Self>, Self::Error>> + Send;

    /// Waits for and reads the next step's inputs; `None` when cancelled meanwhile.
    fn inputs<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
    ) -> impl Future<Output = Result<Option<Self::Input>, Self::Error>> + Send;

    /// Folds the inputs into the state (pure: the commit is not written yet).
    fn step<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        input: Self::Input,
    ) -> Result<Self::Step, Self::Error>;

    /// The step's commit: its first entry under the step's explicit id (the fence), the
    /// others written only with it. Called once the previous commit is settled.
    fn commit<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        step: &mut Self::Step,
    ) -> Result<Vec<Append>, Self::Error>;

    /// A commit of this fold's was written; `settled` says how completely.
    fn written(&mut self, settled: &Settled) {
        let _ = settled;
    }

    /// Whether [`publish`](MatchFold::publish) must wait for this step's commit (it
    /// writes what may only follow a written commit, or ends the match).
    fn settle_before_publish(&self, step: &Self::Step) -> bool {
        let _ = step;
        true
    }

    /// What follows the step: snapshots, the match's end, commands for others.
    fn publish<B: Bus>(
        &mut self,
        io: &MatchIo<B>,
        step: Self::Step,
    ) -> impl Future<Output = Result<Flow, Self::Error>> + Send;
}

/// Runs one match's fold to its end and says how, for its lease.
pub async fn drive<F: MatchFold, B: Bus>(
    config: Arc<F::Config>,
    io: MatchIo<B>,
    committer: GroupCommitter,
) -> MatchOutcome {
    match fold_match::<F, B>(&config, &io, committer).await {
        Ok(outcome) => outcome,
        Err(e) => MatchOutcome::Failed(e.to_string()),
    }
}

async fn fold_match<F: MatchFold, B: Bus>(
    config: &Arc<F::Config>,
    io: &MatchIo<B>,
    committer: GroupCommitter,
) -> Result<MatchOutcome, F::Error> {
    let progress = &io.progress;
    let mut fold = match F::start(config, io).await? {
        Start::Run(fold) => fold,
        Start::Finished => return Ok(MatchOutcome::Finished),
        Start::Cancelled => return Ok(MatchOutcome::Cancelled),
    };
    let mut commits = MatchCommits::new(committer, io.cancel.clone());
    loop {
        if io.cancel.is_cancelled() {
            return Ok(MatchOutcome::Cancelled);
        }
        let Some(input) = fold.inputs(io).await? else {
            return Ok(MatchOutcome::Cancelled);
        };
        let started = Instant::now();
        let mut step = fold.step(io, input)?;
        // The previous step's commit went to the instance's group commit while this one
        // stepped; a refused one stops the match before anything of this step is written.
        if let Some(exit) = settle(&mut fold, &mut commits, progress).await? {
            return Ok(exit);
        }
        let batch = fold.commit(io, &mut step)?;
        commits.submit(started, batch);
        if fold.settle_before_publish(&step) {
            if let Some(exit) = settle(&mut fold, &mut commits, progress).await? {
                return Ok(exit);
            }
        }
        if fold.publish(io, step).await? == Flow::Finished {
            return Ok(MatchOutcome::Finished);
        }
    }
}

/// Accounts for the commit in flight, if any; the match's exit when it was not written.
async fn settle<F: MatchFold>(
    fold: &mut F,
    commits: &mut MatchCommits,
    progress: &Progress,
) -> Result<Option<MatchOutcome>, BusError> {
    let Some(done) = commits.settle().await? else {
        return Ok(None);
    };
    Ok(match done.commit {
        Commit::Cancelled => Some(MatchOutcome::Cancelled),
        Commit::Fenced => Some(MatchOutcome::Fenced),
        Commit::Written => {
            metrics::histogram!(F::STEP_TIME_METRIC).record(done.elapsed.as_secs_f64() * 1000.0);
            metrics::counter!(F::STEPS_METRIC).increment(1);
            progress.advanced();
            fold.written(&done);
            None
        }
    })
}
