//! `propsync-server`: the relay binary; everything it does is in [`server::cli`].

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::cli::run().await
}
