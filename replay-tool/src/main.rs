//! Replay tool of Command and Independent Thought (in progress).

fn main() {
    eprintln!("replay-tool: not built yet");
    std::process::exit(2);
}
