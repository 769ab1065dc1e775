//! The `binance-extractor` binary: parse, resolve, run, exit with a meaningful code
//! (0 ok, 1 some work failed, 2 usage error, 130/143 stopped by SIGINT/SIGTERM).

use binance_extractor::{
    app::{self, Stop},
    cli::Cli,
    logging,
    settings::Settings,
};
use clap::Parser;

fn main() {
    let cli = Cli::parse(); // exits 2 with clap's message on bad usage
    let settings = match Settings::resolve(cli) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    logging::init(settings.log.format, &settings.log.filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let exit = runtime.block_on(async {
        let stop = Stop::default();
        listen_for_signals(stop.clone());
        app::run(settings, stop).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    std::process::exit(exit.code());
}

/// SIGINT/SIGTERM ask the run to finish its current page and stop; a second one exits at once.
fn listen_for_signals(stop: Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
        else {
            tracing::warn!("Cannot listen for signals; SIGINT/SIGTERM will stop the process at once.");
            return;
        };
        let first = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        tracing::warn!(
            signal = first,
            "Stopping: finishing the current page, then flushing events."
        );
        stop.request(first);
        let second = tokio::select! {
            _ = int.recv() => 2,
            _ = term.recv() => 15,
        };
        tracing::error!(signal = second, "Second signal: exiting now.");
        std::process::exit(128 + second);
    });
}
