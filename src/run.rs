//! `main`'s body: parse the arguments, set up logging, check the folder and
//! the state folder, load accounts, bind, drop privileges, start the
//! background work and serve — each failure one sentence and an exit code
//! (0 done, 1 cannot serve, 2 bad arguments).

use crate::app::App;
use crate::auth::Policy;
use crate::auth::token::Secret;
use crate::config::{self, Command, Config, USAGE};
use crate::digest::{Digests, Mode};
use crate::engine;
use crate::serve::{FileServer, Options};
use crate::upload::http::Uploads;
use crate::upload::store::{Settings, Store, sweep_period};
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
        Ok(Command::HashPassword) => {
            use std::io::IsTerminal;
            // Echo stays on: say so, rather than look like a hang.
            if std::io::stdin().is_terminal() {
                eprint!("password (shown as you type; end with Enter): ");
            }
            return crate::auth::password::hash_password_command(
                std::io::stdin().lock(),
                std::io::stdout(),
            );
        }
        Ok(Command::Link(args)) => return crate::auth::link::link_command(args),
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
    let mut accounts = Vec::new();
    for spec in &cfg.auth {
        match crate::auth::accounts::parse_spec(spec) {
            Ok(a) => accounts.push(a),
            Err(e) => return usage_error(&format!("--auth: {e}")),
        }
    }
    if let Some(file) = &cfg.auth_file {
        match crate::auth::accounts::load_file(file) {
            Ok((more, warning)) => {
                if let Some(w) = warning {
                    log::warn!("{w}");
                }
                accounts.extend(more);
            }
            Err(e) => return fail(&format!("--auth-file: {e}")),
        }
    }
    if let Err(e) = crate::auth::accounts::check_unique(&accounts) {
        return usage_error(&e);
    }
    let any_account = !accounts.is_empty();
    if cfg.upload && !crate::auth::can_write_somewhere(&accounts, cfg.anonymous_upload) {
        return usage_error(
            "--upload needs someone who may write: an account with rw (--auth USER:PASS:rw) or --anonymous-upload",
        );
    }
    // Binding a port below 1024 needs root; nothing after it does, and the
    // files made from here on (the state folder, uploads) belong to --user.
    let server = match engine::Server::bind_all(&cfg.listen, cfg.engine.clone()) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen on {e}")),
    };
    let addrs = server.local_addrs().unwrap_or_else(|_| cfg.listen.clone());
    if let Some(user) = &cfg.user
        && let Err(e) = crate::privileges::drop_to(user)
    {
        return fail(&format!("--user {user}: {e}"));
    }
    let state_dir = cfg
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::auth::link::default_state_dir(&root));
    // The link secret: made when uploads are on (the state folder exists
    // then anyway), read if `ranged link` made it; a read-only deployment
    // without either never writes into the served folder.
    let secret = if cfg.upload {
        Secret::load_or_create(&state_dir).map(Some)
    } else {
        Secret::load(&state_dir)
    };
    let secret = match secret {
        Ok(s) => s,
        Err(e) => return fail(&format!("link secret in {}: {e}", state_dir.display())),
    };
    let mut policy = match Policy::new(accounts, secret.clone()) {
        Ok(p) => p,
        Err(e) => return usage_error(&e),
    };
    policy.private = cfg.private;
    policy.anonymous_upload = cfg.anonymous_upload;
    if cfg.private && !any_account && secret.is_none() {
        log::warn!("--private without accounts or links: every request will be refused");
    }
    let root_dir = match crate::fs_path::Root::new(root.clone()) {
        Ok(r) => Arc::new(r),
        Err(e) => return fail(&format!("cannot serve {}: {e}", cfg.dir.display())),
    };
    let digests = (cfg.digests != Mode::Off).then(|| Arc::new(Digests::new(cfg.digests, &root)));
    let uploads = if cfg.upload {
        match start_uploads(&cfg, &state_dir, &root, &root_dir, digests.clone()) {
            Ok(u) => Some(u),
            Err(e) => return fail(&e),
        }
    } else {
        None
    };
    // The state folder (unfinished uploads, the link secret) is never
    // served, under any name that leads to it.
    if let Ok(meta) = std::fs::metadata(&state_dir) {
        root_dir.fence(&meta);
    }
    let files = FileServer::new(Options {
        root: Arc::clone(&root_dir),
        follow_symlinks: cfg.follow_symlinks,
        dotfiles: cfg.dotfiles,
        listing: cfg.listing,
        mime: cfg.mime.clone(),
        digests,
    });
    let app = App::new(
        files,
        policy,
        uploads,
        secret,
        any_account,
        cfg.cors.clone(),
    );
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
    match server.run(app) {
        Ok(()) => {
            log::info!("stopped");
            0
        }
        Err(e) => fail(&format!("server stopped: {e}")),
    }
}

/// Opens the upload store (recovering what a crash left), publishes
/// uploads that were complete but not yet published, and starts the sweep.
fn start_uploads(
    cfg: &Config,
    state_dir: &std::path::Path,
    root: &std::path::Path,
    root_dir: &Arc<crate::fs_path::Root>,
    digests: Option<Arc<Digests>>,
) -> Result<Uploads, String> {
    let settings = Settings {
        expiry: cfg.upload_expiry,
        max_unfinished: MAX_UNFINISHED,
        max_active: cfg.engine.body_threads,
    };
    let (store, recovery) = Store::open(state_dir, root, settings).map_err(|e| e.to_string())?;
    log::info!("uploads in {}: {recovery}", state_dir.display());
    let store = Arc::new(store);
    Store::spawn_sweeper(Arc::clone(&store), sweep_period(cfg.upload_expiry))
        .map_err(|e| format!("cannot start the upload sweeper: {e}"))?;
    let uploads = Uploads {
        store,
        root: Arc::clone(root_dir),
        follow_symlinks: cfg.follow_symlinks,
        dotfiles: cfg.dotfiles,
        max_size: cfg.max_upload_size,
        digests,
    };
    for id in &recovery.unpublished {
        uploads.publish_recovered(id);
    }
    Ok(uploads)
}

/// Unfinished uploads kept at most: a bound on the state folder's size in
/// entries, not bytes (free space bounds those).
const MAX_UNFINISHED: usize = 1000;

fn usage_error(msg: &str) -> i32 {
    eprintln!("ranged: {msg}");
    2
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
