//! The `earshot` command line: `serve`, `worker`, `transcribe`, `model`.

fn main() -> anyhow::Result<()> {
    Ok(())
}
