//! The command line: hand-rolled argument parsing into `Config`, the usage text,
//! and `main`'s body (`run` → exit code), so that all of it is testable.

use crate::engine;
use crate::serve::{FileServer, Options};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: ranged [OPTIONS] [DIR]

Serves DIR (default: the current folder) over HTTP/1.1, built for resumable
downloads: byte ranges, strong validators, conditional requests.

Options:
  -l, --listen ADDR:PORT     address to listen on [default: 0.0.0.0:8080]; port 0 picks a free one
  -t, --threads N            worker threads, each with its own event loop [default: CPUs]
      --max-connections N    open connections at most; more get 503 [default: 1000]
      --head-timeout SECS    time allowed to send a request head [default: 10]
      --idle-timeout SECS    keep-alive connections idle longer are closed [default: 15]
      --send-timeout SECS    a client that reads nothing for this long is dropped [default: 30]
      --max-requests N       requests per connection [default: 1000]
      --rate-limit RATE      bytes per second per connection for responses, e.g. 500K or 2M [default: unlimited]
      --log-level LEVEL      off, error, warn, info, debug or trace [default: info]
  -q, --quiet                log only warnings and errors (same as --log-level warn)
      --follow-symlinks      serve symlinks that lead outside DIR
      --dotfiles             serve files and folders whose names start with '.'
      --no-listing           answer 404 for folders without index.html
  -h, --help                 print this help
  -V, --version              print the version
";

/// Everything the command line decides.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub log_level: log::LevelFilter,
    pub follow_symlinks: bool,
    pub dotfiles: bool,
    pub listing: bool,
    pub engine: engine::Config,
}

/// What the arguments ask for.
#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
    Help,
    Version,
}

/// Parses the arguments after the program name. `Err` is one line for stderr.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, String> {
    let mut cfg = Config {
        dir: PathBuf::from("."),
        listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
        log_level: log::LevelFilter::Info,
        follow_symlinks: false,
        dotfiles: false,
        listing: true,
        engine: engine::Config::default(),
    };
    let mut dir: Option<PathBuf> = None;
    let mut args = args.into_iter();
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        let arg = match arg.into_string() {
            Ok(s) => s,
            // A non-UTF-8 argument can only be the folder.
            Err(os) if dir.is_none() => {
                dir = Some(PathBuf::from(os));
                continue;
            }
            Err(_) => return Err("unexpected argument".into()),
        };
        if only_positional || !arg.starts_with('-') || arg == "-" {
            if dir.replace(PathBuf::from(&arg)).is_some() {
                return Err(format!(
                    "unexpected argument '{arg}': only one DIR can be served"
                ));
            }
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next().and_then(|v| v.into_string().ok()))
                .ok_or_else(|| format!("{name} needs {what}"))
        };
        match name.as_str() {
            "--" => only_positional = true,
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-l" | "--listen" => {
                let v = value("ADDR:PORT")?;
                cfg.listen = v.parse().map_err(|_| {
                    format!("--listen: '{v}' is not ADDR:PORT (e.g. 0.0.0.0:8080 or [::1]:8080)")
                })?;
            }
            "-t" | "--threads" => {
                cfg.engine.threads = number(&name, &value("N")?, 1, 4096)? as usize
            }
            "--max-connections" => {
                cfg.engine.max_connections = number(&name, &value("N")?, 1, 1_000_000)? as usize
            }
            "--head-timeout" => cfg.engine.head_timeout = seconds(&name, &value("SECS")?)?,
            "--idle-timeout" => cfg.engine.idle_timeout = seconds(&name, &value("SECS")?)?,
            "--send-timeout" => cfg.engine.send_timeout = seconds(&name, &value("SECS")?)?,
            "--max-requests" => {
                cfg.engine.max_requests = number(&name, &value("N")?, 1, u32::MAX as u64)? as u32
            }
            "--rate-limit" => cfg.engine.rate_limit = Some(rate(&value("RATE")?)?),
            "--log-level" => {
                let v = value("LEVEL")?;
                cfg.log_level = v.parse().map_err(|_| {
                    format!("--log-level: '{v}' is not one of off, error, warn, info, debug, trace")
                })?;
            }
            "-q" | "--quiet" => cfg.log_level = log::LevelFilter::Warn,
            "--follow-symlinks" => cfg.follow_symlinks = true,
            "--dotfiles" => cfg.dotfiles = true,
            "--no-listing" => cfg.listing = false,
            _ => return Err(format!("unknown option '{name}'")),
        }
        if inline.is_some()
            && matches!(
                name.as_str(),
                "--follow-symlinks" | "--dotfiles" | "--no-listing" | "--quiet"
            )
        {
            return Err(format!("{name} takes no value"));
        }
    }
    if let Some(d) = dir {
        cfg.dir = d;
    }
    Ok(Command::Serve(Box::new(cfg)))
}

fn number(name: &str, v: &str, min: u64, max: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) && v.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "{name}: '{v}' is not a whole number from {min} to {max}"
        )),
    }
}

fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    number(name, v, 1, 86_400).map(Duration::from_secs)
}

/// `500000`, `500K`, `2M`, `1G` (powers of 1024) bytes per second.
fn rate(v: &str) -> Result<u64, String> {
    let (digits, mult) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1024),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1024 * 1024),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    number("--rate-limit", digits, 1, u64::MAX / mult)
        .map(|n| n * mult)
        .map_err(|_| format!("--rate-limit: '{v}' is not a rate like 500000, 500K or 2M"))
}

/// The whole program: parse, set up logging, check the folder, bind, serve.
/// Returns the process exit code: 0 done, 1 cannot serve, 2 bad arguments.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let cfg = match parse(args) {
        Ok(Command::Serve(cfg)) => cfg,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return 0;
        }
        Ok(Command::Version) => {
            println!("ranged {}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Err(msg) => {
            eprintln!("ranged: {msg}\n\n{USAGE}");
            return 2;
        }
    };
    let _ = crate::logging::init(crate::logging::Settings {
        level: cfg.log_level,
        timestamps: false,
        syslog: None,
    });
    let root = match std::fs::canonicalize(&cfg.dir) {
        Ok(r) if r.is_dir() => r,
        Ok(_) => return fail(&format!("cannot serve {}: not a folder", cfg.dir.display())),
        Err(e) => return fail(&format!("cannot serve {}: {e}", cfg.dir.display())),
    };
    if let Err(e) = std::fs::read_dir(&root) {
        return fail(&format!("cannot serve {}: {e}", root.display()));
    }
    let server = match engine::Server::bind(cfg.listen, cfg.engine.clone()) {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot listen on {}: {e}", cfg.listen)),
    };
    let addr = server.local_addr().unwrap_or(cfg.listen);
    // Always printed, whatever the log level: it is how a user learns the
    // port of `--listen …:0`, and it is not an access line.
    crate::logging::notice(format_args!(
        "listening on http://{addr}/ serving {}",
        root.display()
    ));
    let root = match crate::fs_path::Root::new(root) {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot serve {}: {e}", cfg.dir.display())),
    };
    let handler = FileServer::new(Options {
        root,
        follow_symlinks: cfg.follow_symlinks,
        dotfiles: cfg.dotfiles,
        listing: cfg.listing,
    });
    match server.run(handler) {
        Ok(()) => {
            log::info!("stopped");
            0
        }
        Err(e) => fail(&format!("server stopped: {e}")),
    }
}

fn fail(msg: &str) -> i32 {
    log::error!("{msg}");
    // The logger may be off (--log-level off); the reason must still reach a person.
    if !log::log_enabled!(log::Level::Error) {
        eprintln!("ranged: {msg}");
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn accepted_arguments() {
        let Command::Serve(c) = parse(args(
            "--listen 127.0.0.1:0 -t 3 --rate-limit=2M --no-listing -q /srv",
        ))
        .unwrap() else {
            panic!("not serve");
        };
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.engine.threads, 3);
        assert_eq!(c.engine.rate_limit, Some(2 * 1024 * 1024));
        assert!(!c.listing);
        assert_eq!(c.log_level, log::LevelFilter::Warn);
        assert_eq!(c.dir, PathBuf::from("/srv"));
        let Command::Serve(d) = parse(args("")).unwrap() else {
            panic!()
        };
        assert_eq!(d.dir, PathBuf::from("."));
        assert_eq!(d.listen, "0.0.0.0:8080".parse().unwrap());
        assert!(matches!(parse(args("-h")), Ok(Command::Help)));
        assert!(matches!(parse(args("--version")), Ok(Command::Version)));
        let Command::Serve(e) = parse(args("-- -dir-with-dash")).unwrap() else {
            panic!()
        };
        assert_eq!(e.dir, PathBuf::from("-dir-with-dash"));
    }

    #[test]
    fn refused_arguments() {
        for bad in [
            "--listen",
            "--listen nowhere",
            "--threads 0",
            "--threads +3",
            "--threads x",
            "--bogus",
            "a b",
            "--rate-limit 5T",
            "--log-level loud",
            "--dotfiles=yes",
            "--head-timeout 0",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(rate("1000"), Ok(1000));
        assert_eq!(rate("500K"), Ok(500 * 1024));
        assert_eq!(rate("1g"), Ok(1 << 30));
        assert!(rate("K").is_err());
        assert!(rate("0").is_err());
    }
}
