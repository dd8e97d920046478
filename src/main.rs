//! The `gatehouse` command line: parses arguments and calls into the library.

fn main() {}
