//! `propsync-server`: the relay binary; everything it does is in [`server::cli`].

/// jemalloc, not glibc's malloc: documents leave memory when idle, and
/// jemalloc gives the freed pages back to the system (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: server::Allocator = server::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    server::cli::run().await
}
