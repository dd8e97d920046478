//! The `gatehouse` command line: parses arguments and calls into the library.
//!
//! The binary allocates with jemalloc, which hands freed memory back to the system (a
//! background thread purges pages unused for a second; `.cargo/config.toml`). With glibc's
//! malloc, what a gate frees after loading its permits stays resident in per-thread arenas
//! (figures: benches/README.md). The library leaves the choice of allocator to the binary.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}
