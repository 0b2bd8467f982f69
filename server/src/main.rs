//! `propsync-server`: the relay binary.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("propsync-server: the relay is not built yet (issue 4)")
}
