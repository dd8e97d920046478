//! Lines to standard output for the command line and the demo's banner, where a reader that
//! has gone away (`gatehouse gate events | head -1`) is an ordinary end, not a panic. It never
//! writes anywhere but standard output.

/// Standard output was closed by the reader (a pipe into `head`): the command has nothing more
/// to do and ends quietly with exit status 0, as a command killed by SIGPIPE would in a shell
/// that ignores it. (Rust ignores SIGPIPE, so a write to a closed pipe is an error, and
/// `println!` panics on it.)
#[derive(Debug, thiserror::Error)]
#[error("standard output is closed")]
pub struct StdoutClosed;

/// Writes one line to standard output; a closed pipe is [`StdoutClosed`].
pub fn print_line(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
    }
}
