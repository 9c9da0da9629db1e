use std::process::ExitCode;

use clap::Parser;
use ctxsync::commands::{demo, events, export, holds, keys, serve, sync};
use ctxsync::{Cli, Command, KeysCommand, config_file};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(path) = config_file::locate(&args) {
        match config_file::read(&path) {
            Ok(pairs) => {
                for (name, value) in pairs.into_iter().filter(|(name, _)| std::env::var_os(name).is_none()) {
                    // SAFETY: no other thread exists yet; the runtime is built below.
                    unsafe { std::env::set_var(name, value) };
                }
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sync(args) => return sync::run(*args).await,
            Command::Serve(args) => serve::run(*args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Holds(args) => holds::run(args).await,
            Command::Export(args) => export::run(args).await,
            Command::Events(args) => events::run(args).await,
            Command::Keys { command: KeysCommand::Create(args) } => keys::create(args).await,
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
