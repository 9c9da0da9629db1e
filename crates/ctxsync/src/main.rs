use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use ctxsync::commands::{
    completions, demo, events, export, healthcheck, holds, keys, man, master_key, serve, sync,
};
use ctxsync::setting_errors::{self, FileSource};
use ctxsync::{Cli, Command, KeysCommand, MasterKeyCommand, config_file};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut file = None;
    if let Some(path) = config_file::locate(&args) {
        match config_file::read(&path) {
            Ok(settings) => {
                let applied: Vec<_> =
                    settings.into_iter().filter(|s| std::env::var_os(&s.variable).is_none()).collect();
                for setting in &applied {
                    // SAFETY: no other thread exists yet; the runtime is built below.
                    unsafe { std::env::set_var(&setting.variable, &setting.value) };
                }
                file = Some((path, applied));
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let file = file.as_ref().map(|(path, applied)| FileSource { path, applied });
            match setting_errors::describe(&e, &Cli::command(), &args, file) {
                Some(message) => {
                    eprintln!("error: {message}");
                    return ExitCode::from(2);
                }
                None => e.exit(),
            }
        }
    };
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
            Command::Keys { command: KeysCommand::List(args) } => keys::list(args).await,
            Command::Keys { command: KeysCommand::Revoke(args) } => keys::revoke(args).await,
            Command::Keys { command: KeysCommand::Rotate(args) } => keys::rotate(args).await,
            Command::MasterKey { command: MasterKeyCommand::Rotate(args) } => master_key::rotate(args).await,
            Command::Healthcheck(args) => healthcheck::run(args).await,
            Command::Completions(args) => completions::run(&args),
            Command::Man(args) => man::run(&args),
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        // The reader of the output went away (`ctxsync export | head`): it has what it wanted.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether a write to a closed pipe caused `error`, at any depth of its chain. (Rust ignores
/// SIGPIPE, so such writes fail with `BrokenPipe` instead of ending the process.)
fn broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
