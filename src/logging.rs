//! Log output through tracing: human-readable text or JSON lines.
//!
//! Lines are written by a thread of their own (tracing-appender): a request
//! only hands its line to a bounded in-memory queue, so a slow reader of
//! stderr (a terminal, a pipe into a log collector) never stalls the async
//! runtime. Should that queue ever fill, new lines are dropped rather than
//! waited for.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Keeps the writer thread; dropping it writes out the lines still queued.
#[must_use = "dropping the guard stops log output"]
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the global subscriber. Later calls are ignored (and return an
/// empty guard), so tests that start several servers in one process do not
/// fail.
pub fn init(config: &LogConfig) -> LogGuard {
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("wemaster-log")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_wanted())
        .with_writer(writer);
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    LogGuard(installed.is_ok().then_some(guard))
}

/// Colour only for a person at a terminal: a file, a pipe or a log collector
/// gets plain text, and `NO_COLOR` (https://no-color.org) turns it off.
fn colour_wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
