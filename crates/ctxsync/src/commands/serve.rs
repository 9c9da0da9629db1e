use crate::settings::ServeArgs;
use crate::startup::{Application, shutdown_signal};
use crate::{demo_folder, telemetry};

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    telemetry::init(&args.log, args.log_format)?;
    telemetry::warn_unknown_variables();
    demo_folder::require_fakes(args.store.database_folder(), &args.sources.endpoints())?;
    let settings = args.resolve()?;
    args.store.warn_if_open_to_others();
    let app = Application::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}
