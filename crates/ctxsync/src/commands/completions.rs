//! `ctxsync completions SHELL`: the shell's completion script, generated from the same command
//! definition the binary parses, so it never lists a flag the binary lacks.

use std::io::Write;

use clap::CommandFactory;

use crate::Cli;
use crate::settings::CompletionsArgs;

pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    std::io::stdout().write_all(&script(args.shell))?;
    Ok(())
}

/// Generated into memory first: clap_complete panics when its writer fails, and a closed
/// standard output is an error `main` already handles.
fn script(shell: clap_complete::Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ctxsync", &mut script);
    script
}

#[cfg(test)]
mod tests {
    use clap_complete::Shell;

    use super::*;

    #[test]
    fn every_shell_gets_the_subcommands_and_their_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(script(shell)).unwrap();
            // Flags without their dashes: fish writes `-l data-dir`.
            for word in ["serve", "sync", "holds", "healthcheck", "completions", "man", "data-dir", "listen"]
            {
                assert!(script.contains(word), "{shell} completion lacks {word}");
            }
        }
    }
}
