//! The `gatehouse` command line: parses arguments and calls into the library.
//!
//! The binary allocates with jemalloc, which hands freed memory back to the system (a
//! background thread purges pages unused for a second; `.cargo/config.toml`). With glibc's
//! malloc, what a gate freed after loading its permits stayed resident in per-thread arenas —
//! 282 MiB for a 192 MiB index against 234 MiB now, measured by `cargo bench --bench
//! gate_latency`. The library leaves the choice of allocator to the binary.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}
