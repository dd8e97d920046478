//! The `gatehouse` command line: parses arguments and calls into the library.

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}
