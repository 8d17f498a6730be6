pub(crate) fn run(_out: &mut String) -> anyhow::Result<()> {
    Ok(())
}
