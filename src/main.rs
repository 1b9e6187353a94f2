//! The `onepages` binary: parse the command line, start logging, run the command.

use clap::Parser;

/// mimalloc: the server and the import allocate many small, short-lived buffers from several
/// threads; glibc's allocator spent a third of the import's time in malloc, free and their
/// lock (measured with perf).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let filter = tracing_subscriber::EnvFilter::new(onepages::cli::log_directives(
        std::env::var("ONEPAGES_LOG").ok().as_deref(),
    ));
    // Colour codes only on a terminal: a log file or journal gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = onepages::cli::Cli::parse();
    if let Err(e) = onepages::cli::run(cli) {
        eprintln!("error: {}", onepages::cli::error_line(&e));
        // The command line's contract: 0 done, 1 done with refusals, 2 could not run.
        std::process::exit(2);
    }
}
