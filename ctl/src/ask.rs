//! Asking the person at the terminal before a change; never guessing on a pipe.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

/// Print `question` and read one answer line (trimmed). Off a terminal, refuse: `what`
/// names the action in the error, which points at `--yes`.
pub fn ask(question: &str, what: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("refusing to {what} without confirmation on a non-interactive input: pass --yes");
    }
    out!("{question} ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}
