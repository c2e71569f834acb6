//! Economy benchmarks (being written).

fn main() {}
