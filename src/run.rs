//! `main`'s body: parse the arguments, set up logging, check the folder and
//! the state folder, load accounts, bind, drop privileges, start the
//! background work and serve — each failure one sentence and an exit code
//! (0 done, 1 cannot serve, 2 bad arguments).

use crate::config::{self, Command, Config, USAGE};
use crate::digest::{Digests, Mode};
use crate::engine;
use crate::serve::{FileServer, Options};
use std::ffi::OsString;
use std::sync::Arc;

/// The whole program; returns the process exit code.
pub fn main<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let cfg = match config::parse(args) {
        Ok(Command::Serve(cfg)) => cfg,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return 0;
        }
        Ok(Command::Version) => {
            println!("ranged {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Ok(Command::HashPassword) | Ok(Command::Link(_)) => {
            eprintln!("ranged: AUTH-PENDING");
            return 2;
        }
        Err(msg) => {
            // One line and a hint, as command-line tools do.
            eprintln!("ranged: {msg}\nTry 'ranged --help' for more information.");
            return 2;
        }
    };
    serve(*cfg)
}

fn serve(cfg: Config) -> i32 {
    let settings = crate::logging::Settings {
        level: cfg.log_level,
        timestamps: cfg.log_timestamps,
        syslog: cfg.syslog.clone(),
    };
    if let Err(e) = crate::logging::init(settings) {
        let at = cfg
            .syslog
            .as_deref()
            .map_or("stderr".into(), |p| p.display().to_string());
        eprintln!("ranged: cannot log to {at}: {e}");
        return 1;
    }
    let root = match std::fs::canonicalize(&cfg.dir) {
        Ok(r) if r.is_dir() => r,
        Ok(_) => return fail(&format!("cannot serve {}: not a folder", cfg.dir.display())),
        Err(e) => return fail(&format!("cannot serve {}: {e}", cfg.dir.display())),
    };
    if let Err(e) = std::fs::read_dir(&root) {
        return fail(&format!("cannot serve {}: {e}", root.display()));
    }
    let server = match engine::Server::bind_all(&cfg.listen, cfg.engine.clone()) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen on {e}")),
    };
    let addrs = server.local_addrs().unwrap_or_else(|_| cfg.listen.clone());
    // Binding a port below 1024 needs root; nothing after it does.
    if let Some(user) = &cfg.user {
        if let Err(e) = crate::privileges::drop_to(user) {
            return fail(&format!("--user {user}: {e}"));
        }
    }
    let root_dir = match crate::fs_path::Root::new(root.clone()) {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot serve {}: {e}", cfg.dir.display())),
    };
    let digests = (cfg.digests != Mode::Off).then(|| Arc::new(Digests::new(cfg.digests, &root)));
    let handler = FileServer::new(Options {
        root: root_dir,
        follow_symlinks: cfg.follow_symlinks,
        dotfiles: cfg.dotfiles,
        listing: cfg.listing,
        mime: cfg.mime.clone(),
        digests,
    });
    // Always printed, whatever the log level: it is how a user learns the
    // port of `--listen …:0`, and it is not an access line.
    for addr in &addrs {
        crate::logging::notice(format_args!(
            "listening on http://{} serving {}",
            url_authority(addr),
            root.display()
        ));
    }
    crate::logging::notice(format_args!("settings: {}", summary(&cfg)));
    match server.run(handler) {
        Ok(()) => {
            log::info!("stopped");
            0
        }
        Err(e) => fail(&format!("server stopped: {e}")),
    }
}

/// `127.0.0.1:8080/` or `[::1]:8080/`.
fn url_authority(addr: &std::net::SocketAddr) -> String {
    format!("{addr}/")
}

/// The settings in effect, in one line, for the start-up log.
fn summary(cfg: &Config) -> String {
    let e = &cfg.engine;
    let rate = |r: Option<u64>| r.map_or("none".to_owned(), |r| format!("{r} B/s"));
    format!(
        "{} threads, {} connections at most, listing {}, uploads {}, digests {}, rate limit {} per connection and {} in total, timeouts head {} s idle {} s send {} s body {} s",
        e.threads,
        e.max_connections,
        if cfg.listing { "on" } else { "off" },
        if cfg.upload { "on" } else { "off" },
        match cfg.digests {
            Mode::Off => "off",
            Mode::OnDemand => "on demand",
            Mode::Eager => "eager",
        },
        rate(e.rate_limit),
        rate(e.rate_limit_total),
        e.head_timeout.as_secs(),
        e.idle_timeout.as_secs(),
        e.send_timeout.as_secs(),
        e.body_timeout.as_secs(),
    )
}

fn fail(msg: &str) -> i32 {
    log::error!("{msg}");
    // The logger may be off (--log-level off); the reason must still reach a person.
    if !log::log_enabled!(log::Level::Error) {
        eprintln!("ranged: {msg}");
    }
    1
}
