//! Progress reporting for long work, without tying the library to a terminal: the binary
//! draws bars, the gateway and tests pass [`NoProgress`].

/// Told how long work goes (from any thread).
pub trait Progress: Sync {
    /// A task of `total` units starts.
    fn begin(&self, _task: &str, _total: u64) {}
    /// `n` more units of a task are done.
    fn advance(&self, _task: &str, _n: u64) {}
    /// A task is over.
    fn end(&self, _task: &str) {}
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {}

/// Units between two progress reports in tight loops (a report is cheap, not free).
pub const REPORT_EVERY: u64 = 512;
