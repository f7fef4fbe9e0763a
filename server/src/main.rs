use clap::Parser;
use homeward_server::cli::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    homeward_server::telemetry::init();
    match homeward_server::admin::run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
