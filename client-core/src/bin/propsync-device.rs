//! `propsync-device`: act as an engineer's or patroller's phone from a shell.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("propsync-device: the device store is not built yet (issue 3)")
}
