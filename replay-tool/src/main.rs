//! `replay-tool`: list, export and import matches, audit them for desyncs and for their
//! delivery guarantees, print the state at any tick, benchmark re-simulation and compute
//! match statistics. The commands live in `cli/`, one file each.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
