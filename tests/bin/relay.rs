//! The relay's own command line, built inside the test package so tests can
//! run it as a child process (`CARGO_BIN_EXE_propsync-test-relay`) and kill it.

/// The same allocator as `propsync-server`'s.
#[global_allocator]
static GLOBAL: harness::server::Allocator = harness::server::Allocator;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    harness::server::cli::run().await
}
