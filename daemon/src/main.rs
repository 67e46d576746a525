//! `twofactord`: serve `org.twofactor.Daemon1` on the system bus.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use twofactor_config::Config;
use twofactord::accounts::{Accounts, SystemAccounts};
use twofactord::config_check;
use twofactord::dbus::Daemon;
use twofactord::fleet::{self, Stores};
use twofactord::log::{EventLog, Line, SyslogLog};
use twofactord::memory;
use twofactord::reload;
use twofactord::service::Service;
use twofactord::storage_command::{self, StorageCommand};
use twofactord::store::FileStore;

/// The twofactor daemon: owns TOTP secrets, backup codes, replay and lockout state.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// D-Bus address to serve on; default: $DBUS_SYSTEM_BUS_ADDRESS, else the system bus.
    #[arg(long, value_name = "ADDR")]
    bus_address: Option<String>,
    /// Where user state lives (made 0700, root only).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/twofactor")]
    state_dir: PathBuf,
    /// Policy and parameters.
    #[arg(long, value_name = "FILE", default_value = twofactor_config::DEFAULT_PATH)]
    config: PathBuf,
    /// Check the configuration and exit: 2 if it is invalid, else 0; warnings (users and
    /// groups this machine does not know, the old "local") are printed one per line.
    #[arg(long)]
    check_config: bool,
    /// With --check-config: also connect to the fleet's database and check TLS, the schema
    /// and the fleet key (the unit's ExecStartPre does not: a database down at boot must not
    /// keep the daemon from starting).
    #[arg(long, requires = "check_config")]
    connect: bool,
    /// syslog socket instead of /dev/log (for tests).
    #[arg(long, value_name = "PATH", hide = true)]
    syslog_socket: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Storage commands: run on the host, next to the files; no running daemon needed.
    #[command(subcommand)]
    Storage(StorageCommand),
}

/// How often freed memory is given back to the system.
const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn main() -> ExitCode {
    memory::give_large_buffers_back();
    let args = Args::parse();
    if let Some(Command::Storage(command)) = args.command {
        return storage_command::run(command);
    }
    // First, so that a SIGHUP while the daemon starts is a reload, not its end.
    let hangups = match reload::catch_sighup() {
        Ok(hangups) => hangups,
        Err(error) => {
            eprintln!("twofactord: cannot catch SIGHUP: {error}");
            return ExitCode::from(1);
        }
    };
    let log = Arc::new(SyslogLog::connect(args.syslog_socket.as_deref()));
    let accounts: Arc<dyn Accounts> = Arc::new(SystemAccounts);
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            // A bad policy must not silently become a weaker one: refuse to start.
            eprintln!("twofactord: {error}");
            log.warning(Line::new("config-invalid").field("error", &error).as_str());
            return ExitCode::from(2);
        }
    };
    if args.check_config {
        return check_config(&args, &config, accounts.as_ref());
    }
    reload::log_warnings(&config, accounts.as_ref(), log.as_ref());
    let files = match FileStore::open(&args.state_dir) {
        Ok(store) => store,
        Err(error) => {
            eprintln!("twofactord: {error}");
            log.warning(
                Line::new("state-dir-unusable")
                    .field("error", &error)
                    .as_str(),
            );
            return ExitCode::from(2);
        }
    };
    let host = fleet::host_name(&config.storage);
    let stores = Arc::new(Stores::new(Arc::new(files), &config.storage, log.clone()));
    let notifier = reload::notifier_for(&config, log.clone());
    let service = Arc::new(
        Service::new(config, stores.clone(), accounts.clone(), log.clone(), host)
            .with_notifier(notifier),
    );
    if let Err(error) = reload::reload_on_sighup(
        hangups,
        service.clone(),
        args.config.clone(),
        accounts,
        log.clone(),
        Box::new(move |config: &Config| stores.reconfigure(&config.storage)),
    ) {
        eprintln!("twofactord: {error}");
        return ExitCode::from(1);
    }
    // A flood leaves freed memory in the heaps; hand it back while the daemon is quiet.
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(TRIM_INTERVAL);
            memory::trim();
        }
    });
    match zbus::block_on(serve(args.bus_address, Daemon::new(service), log.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("twofactord: {error}");
            log.warning(Line::new("bus-error").field("error", &error).as_str());
            ExitCode::from(1)
        }
    }
}

/// `--check-config [--connect]`: 2 if the file (or its `[storage]` section) is invalid, 1 if
/// the database cannot be used, else 0.
fn check_config(args: &Args, config: &Config, accounts: &dyn Accounts) -> ExitCode {
    for warning in config_check::warnings(config, accounts) {
        println!("warning: {warning}");
    }
    let problems = config.storage.problems();
    if !problems.is_empty() {
        for problem in problems {
            eprintln!(
                "twofactord: {}: [storage]: {problem}",
                args.config.display()
            );
        }
        return ExitCode::from(2);
    }
    println!("{}: valid", args.config.display());
    if !args.connect || !config.storage.is_fleet() {
        return ExitCode::SUCCESS;
    }
    match fleet::check_connection(&config.storage) {
        Ok(report) => {
            for line in report {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("twofactord: fleet database: {problem}");
            ExitCode::from(1)
        }
    }
}

async fn serve(
    bus_address: Option<String>,
    daemon: Daemon,
    log: Arc<SyslogLog>,
) -> zbus::Result<()> {
    let builder = match bus_address {
        Some(address) => zbus::connection::Builder::address(address.as_str()),
        None => zbus::connection::Builder::system(),
    };
    let connection = builder
        .serve_at(twofactor_proto::OBJECT_PATH, daemon.clone())
        .name(twofactor_proto::BUS_NAME)
        .build()
        .await?;
    log.info(
        Line::new("started")
            .field("name", twofactor_proto::BUS_NAME)
            .field("version", env!("CARGO_PKG_VERSION"))
            .as_str(),
    );
    daemon.watch_departures(&connection).await?;
    Err(zbus::Error::Failure("the bus connection closed".into()))
}
