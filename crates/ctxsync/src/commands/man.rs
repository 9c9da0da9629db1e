//! `ctxsync man`: the manual pages, generated from the command definition (with each option's
//! CTXSYNC_ variable), so they describe the binary they come with.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::Cli;
use crate::settings::ManArgs;

pub fn run(args: &ManArgs) -> anyhow::Result<()> {
    match &args.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .with_context(|| format!("could not write the manual pages into {}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command().disable_help_subcommand(true)).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
            Ok(())
        }
    }
}
