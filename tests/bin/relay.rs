//! The relay's own command line, built inside the test package so tests can
//! run it as a child process (`CARGO_BIN_EXE_propsync-test-relay`) and kill it.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    harness::server::cli::run().await
}
