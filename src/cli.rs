//! The command line: `wemaster [--config PATH] [COMMAND]`; `wemaster --help`
//! lists the commands.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::{Application, shutdown_signal};
use crate::auth::accounts::{self, NewAccount};
use crate::auth::model::{Role, normalize_email};
use crate::auth::password::PasswordHasher;
use crate::auth::repo as users;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Db;
use crate::error::Error;
use crate::text::Text;

/// WeMaster marketplace backend: one binary, one TOML file, SQLite.
#[derive(Debug, Parser)]
#[command(name = "wemaster", version, about)]
pub struct Cli {
    /// Configuration file; `./wemaster.toml` when omitted (built-in defaults
    /// apply when that file does not exist).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Load the demo accounts and offerings; running it twice changes nothing.
    Seed,
    /// Print the OpenAPI document.
    Openapi {
        #[arg(long, value_enum, default_value_t = SpecFormat::Json)]
        format: SpecFormat,
    },
    /// Print the effective configuration, secrets masked.
    Config,
    /// Write an online, consistent copy of the database to PATH (safe while
    /// the server runs).
    Backup {
        /// The backup file to create; it must not exist.
        path: PathBuf,
    },
    /// Replace the database with the backup at PATH, after checking it.
    /// Refuses while a server is using the database.
    Restore {
        /// A file written by `wemaster backup`.
        path: PathBuf,
    },
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account of any role (the only way to create an ADMIN). The
    /// password comes from WEMASTER_NEW_PASSWORD or, if unset, from a prompt
    /// that does not echo (on a terminal) or the first line of stdin (in a
    /// script); never from the command line.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, ignore_case = true, default_value_t = CliRole::Student)]
        role: CliRole,
        #[arg(long)]
        name: Option<String>,
    },
    /// Lift every sign-in lockout of an account (after failed passwords)
    /// at once, as a password reset does.
    Unlock {
        /// The account's email.
        email: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum CliRole {
    Student,
    Tutor,
    Admin,
}

impl From<CliRole> for Role {
    fn from(role: CliRole) -> Self {
        match role {
            CliRole::Student => Role::Student,
            CliRole::Tutor => Role::Tutor,
            CliRole::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SpecFormat {
    Json,
    Yaml,
}

/// Exit status for a configuration that cannot be used.
const EXIT_CONFIG: u8 = 2;
/// Exit status for any other failure.
const EXIT_FAILURE: u8 = 1;

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    owner_only_files();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    match configuration(cli.config, &command) {
        Ok(config) => report(execute(command, config)),
        Err(why) => {
            eprintln!("wemaster: {why}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// The configuration `command` runs with (from the file named, else
/// `wemaster.toml` if there is one), or why it cannot run.
fn configuration(named: Option<PathBuf>, command: &Command) -> Result<Config, String> {
    let path = named
        .clone()
        .unwrap_or_else(|| PathBuf::from("wemaster.toml"));
    if named.is_some() && !path.exists() {
        return Err(format!("configuration file {} not found", path.display()));
    }
    if path.is_dir() {
        return Err(format!(
            "configuration file {} is a folder; name the file, such as {}",
            path.display(),
            path.join("wemaster.toml").display()
        ));
    }
    let config = Config::load(&path).map_err(|e| e.to_string())?;
    if matches!(command, Command::Serve | Command::Config) {
        config.validate_serving().map_err(|e| e.to_string())?;
    }
    Ok(config)
}

fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Openapi { format } => match format {
            SpecFormat::Json => print(&format!("{}\n", crate::api::spec_json())),
            SpecFormat::Yaml => print(&crate::api::spec_yaml()),
        },
        Command::Config => print(&config.to_masked_toml()),
        Command::Migrate => {
            let _log = crate::logging::init(&config.log);
            migrate(&config)
        }
        Command::Seed => {
            let _log = crate::logging::init(&config.log);
            seed(&config)
        }
        Command::Backup { path } => backup(&config, &path),
        Command::Restore { path } => restore(&config, &path),
        Command::User(UserCommand::Create { email, role, name }) => {
            let _log = crate::logging::init(&config.log);
            create_user(&config, &email, role.into(), name)
        }
        Command::User(UserCommand::Unlock { email }) => unlock_user(&config, &email),
        Command::Serve => {
            let _log = crate::logging::init(&config.log);
            serve(config)
        }
    }
}

fn migrate(config: &Config) -> anyhow::Result<()> {
    let (_, r) = Db::open(&config.database)?;
    print(&format!(
        "database {} at schema version {} (was {})\n",
        config.database.path.display(),
        r.to,
        r.from
    ))
}

fn seed(config: &Config) -> anyhow::Result<()> {
    let (db, _) = Db::open(&config.database)?;
    let r = PasswordHasher::new(&config.auth)
        .and_then(|hasher| crate::demo::seed(&db, &hasher))
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    print(&format!(
        "seeded {} accounts and {} offerings into {}\n",
        r.users_added,
        r.offerings_added,
        config.database.path.display()
    ))
}

fn backup(config: &Config, path: &Path) -> anyhow::Result<()> {
    let r = crate::ops::backup::backup(&config.database.path, path)?;
    print(&format!(
        "backed up {} to {} ({} bytes, {} pages) in {} ms\n",
        config.database.path.display(),
        path.display(),
        r.bytes,
        r.pages,
        r.elapsed.as_millis()
    ))
}

fn restore(config: &Config, path: &Path) -> anyhow::Result<()> {
    let r = crate::ops::backup::restore(path, &config.database.path)?;
    let undo = match r.kept {
        Some(kept) => format!(
            "the database it replaced is kept as {}; restore that file to undo",
            kept.display()
        ),
        None => "there was no database to replace".to_string(),
    };
    print(&format!(
        "restored {} from {} ({} bytes) in {} ms; integrity check ok\n{undo}\n",
        config.database.path.display(),
        path.display(),
        r.copy.bytes,
        r.copy.elapsed.as_millis()
    ))
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = shutdown_signal();
        let app = Application::build(config).await?;
        app.run_until_forced(shutdown, crate::app::second_signal())
            .await?;
        Ok(())
    })
}

/// Files and folders this process creates (the database, its WAL and
/// shared-memory files, backups, their folders) are its owner's only: 0600
/// and 0700, whatever looser umask it was started with. They hold password
/// hashes and tokens.
fn owner_only_files() {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        let inherited = rustix::process::umask(Mode::from_raw_mode(0o077));
        rustix::process::umask(inherited | Mode::from_raw_mode(0o077));
    }
}

/// One line on stderr for a failure (with its causes), no backtrace.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(e) => {
            // `eprintln!` would panic when stderr is closed too.
            let _ = writeln!(std::io::stderr(), "wemaster: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Whoever read stdout stopped reading (`wemaster openapi | head -1`). The
/// output was not wanted any more, which is no failure of the command.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed")]
struct StdoutClosed;

/// Writes a command's output to stdout. Unlike `print!`, which panics,
/// a closed stdout comes back as [`StdoutClosed`].
fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        result => Ok(result?),
    }
}

/// Environment variable `wemaster user create` reads the password from.
const NEW_PASSWORD_ENV: &str = "WEMASTER_NEW_PASSWORD";

fn create_user(
    config: &Config,
    email: &str,
    role: Role,
    name: Option<String>,
) -> anyhow::Result<()> {
    let detail = |e: Error| anyhow::anyhow!("{}", e.detail());
    let email = normalize_email(email).map_err(detail)?;
    let secret = new_password(&email)?;
    let account = NewAccount::check(&email, secret, name.map(Text::from), role).map_err(detail)?;
    let (db, _) = Db::open(&config.database)?;
    let password_hash = PasswordHasher::new(&config.auth)
        .and_then(|hasher| hasher.hash_blocking(vec![account.password().to_string()]))
        .map(|mut hashes| hashes.remove(0))
        .map_err(detail)?;
    // An operator made it: the address is taken as verified.
    let user = account.hashed(password_hash, &Clock::system()).verified();
    db.write_blocking(|conn| accounts::insert(conn, &user))
        .map_err(detail)?;
    print(&format!(
        "created {} account {} ({}) in {}\n",
        role.as_str(),
        user.email,
        user.id,
        config.database.path.display()
    ))
}

fn unlock_user(config: &Config, email: &str) -> anyhow::Result<()> {
    let email = normalize_email(email).map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    let (db, _) = Db::open(&config.database)?;
    let clock = Clock::system();
    let (exists, locked) = db
        .write_blocking(|conn| {
            let exists = users::id_by_email(conn, &email)?.is_some();
            Ok((exists, crate::auth::lockout::clear(conn, &clock, &email)?))
        })
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    let database = config.database.path.display();
    if !exists {
        anyhow::bail!("no account has the email {email} (database {database})");
    }
    print(&format!(
        "unlocked {email}: {locked} locked-out address(es) cleared (database {database})\n"
    ))
}

/// The password for `user create`: [`NEW_PASSWORD_ENV`] when set; else
/// typed twice at a prompt that does not echo, when stdin is a terminal;
/// else the first line of stdin, for scripts.
fn new_password(email: &str) -> anyhow::Result<String> {
    let secret = match std::env::var(NEW_PASSWORD_ENV) {
        Ok(secret) => secret,
        Err(_) if std::io::stdin().is_terminal() => {
            // rpassword writes the prompt to the terminal itself, not to
            // stdout, and turns echo off while the password is typed.
            let secret = rpassword::prompt_password(format!("password for {email}: "))?;
            if !secret.is_empty() && rpassword::prompt_password("the same again: ")? != secret {
                anyhow::bail!("the two passwords differ; nothing was created");
            }
            secret
        }
        Err(_) => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if secret.is_empty() {
        anyhow::bail!(
            "no password given: type it at the prompt, send it as the first line of stdin \
             or set {NEW_PASSWORD_ENV}"
        );
    }
    Ok(secret)
}
