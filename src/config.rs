//! The command line: hand-rolled argument parsing into `Config` and the usage
//! text. Pure (the arguments in, a `Command` or one sentence of error out);
//! `run` does what it says.

use crate::engine;
use crate::mime::Overrides;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
Usage: ranged [OPTIONS] [DIR]
       ranged hash-password            (reads a password on stdin, prints a $6$ hash)
       ranged link [--read] [--write] [--pin] [--expires 24h] [--url BASE] [--dir DIR] PATH

Serves DIR (default: the current folder) over HTTP/1.1, built for resumable
transfers: byte ranges, strong validators, conditional requests, digests,
and (with --upload) atomic, resumable uploads.

Options:
  -l, --listen ADDR:PORT     where to listen, repeatable (IPv4 and IPv6 together); a host
                             name or a bare PORT works too [default: 0.0.0.0:8080]
  -t, --threads N            worker threads, each with its own event loop [default: CPUs]
      --max-connections N    open connections at most; more get 503 [default: 1000]
      --head-timeout SECS    time allowed to send a request head [default: 10]
      --idle-timeout SECS    keep-alive connections idle longer are closed [default: 15]
      --send-timeout SECS    a client that reads nothing for this long is dropped [default: 30]
      --body-timeout SECS    a request body that sends nothing for this long is cut off,
                             as is one slower than 1 KiB/s after it [default: 30]
      --max-requests N       requests per connection [default: 1000]
      --rate-limit RATE      bytes/s per connection for answers, e.g. 500K, 2MB, 1MiB [default: none]
      --rate-limit-total RATE  bytes/s for all answers together [default: none]
      --follow-symlinks      serve symlinks that lead outside DIR
      --dotfiles             serve files and folders whose names start with '.'
      --no-listing           answer 404 for folders without index.html
      --mime EXT=TYPE        serve files ending in .EXT as TYPE, repeatable
      --user NAME            after binding, switch to this user (from /etc/passwd)
Access:
      --auth USER:PASS[:ro|rw[@/PATH]]  an account, repeatable; PASS may be a crypt(3)
                             hash ($6$, $5$, $2y$); rw@/PATH limits it to PATH [default: ro]
      --auth-file FILE       accounts, one per line in the same form (keeps them out of ps)
      --private              reads need an account or a link too
      --anonymous-upload     with --upload, anyone may write
Uploads:
      --upload               accept PUT and tus 1.0 uploads (needs an rw account or
                             --anonymous-upload)
      --max-upload-size SIZE largest upload, e.g. 4G [default: none]
      --upload-expiry SECS   unfinished uploads idle this long are removed [default: 86400]
      --max-uploads N        request bodies received at once (a thread each); 8 more
                             wait their turn, beyond that 503 [default: 4]
      --state-dir PATH       unfinished uploads and the link secret, on DIR's file system
                             [default: DIR/.ranged, never served]
      --cors ORIGIN          allow browser uploads from this origin (or *), repeatable
Integrity:
      --digests MODE         off, on-demand or eager: SHA-256 of files, computed in the
                             background, sent as Repr-Digest/Digest [default: on-demand]
Logging:
      --log-level LEVEL      off, error, warn, info, debug or trace [default: info]
  -q, --quiet                log only warnings and errors (same as --log-level warn)
      --log-timestamps       put a UTC time on every log line
      --syslog               log to the local syslog (/dev/log) instead of stderr
      --syslog-socket PATH   log to this syslog socket instead
  -h, --help                 print this help
  -V, --version              print the version

Sizes and rates: K, M, G are powers of 1024 (KiB, MiB, GiB also), KB, MB, GB
powers of 1000.
";

/// Everything the command line decides.
#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub listen: Vec<SocketAddr>,
    pub log_level: log::LevelFilter,
    pub log_timestamps: bool,
    pub syslog: Option<PathBuf>,
    pub follow_symlinks: bool,
    pub dotfiles: bool,
    pub listing: bool,
    pub mime: Overrides,
    pub user: Option<String>,
    pub engine: engine::Config,
    pub auth: Vec<String>,
    pub auth_file: Option<PathBuf>,
    pub private: bool,
    pub anonymous_upload: bool,
    pub upload: bool,
    pub max_upload_size: Option<u64>,
    pub upload_expiry: Duration,
    pub state_dir: Option<PathBuf>,
    pub cors: Vec<String>,
    pub digests: crate::digest::Mode,
}

/// What the arguments ask for.
#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
    HashPassword,
    /// `ranged link …`, with the arguments after `link`.
    Link(Vec<OsString>),
    Help,
    Version,
}

const DEFAULT_PORT: u16 = 8080;

/// Parses the arguments after the program name. `Err` is one sentence.
pub fn parse<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    match args.peek().and_then(|a| a.to_str()) {
        Some("hash-password") => {
            args.next();
            return match args.next() {
                None => Ok(Command::HashPassword),
                Some(_) => {
                    Err("hash-password takes no arguments (the password comes on stdin)".into())
                }
            };
        }
        Some("link") => {
            args.next();
            return Ok(Command::Link(args.collect()));
        }
        _ => {}
    }
    let mut cfg = Config {
        dir: PathBuf::from("."),
        listen: Vec::new(),
        log_level: log::LevelFilter::Info,
        log_timestamps: false,
        syslog: None,
        follow_symlinks: false,
        dotfiles: false,
        listing: true,
        mime: Overrides::default(),
        user: None,
        engine: engine::Config::default(),
        auth: Vec::new(),
        auth_file: None,
        private: false,
        anonymous_upload: false,
        upload: false,
        max_upload_size: None,
        upload_expiry: Duration::from_secs(86_400),
        state_dir: None,
        cors: Vec::new(),
        digests: crate::digest::Mode::OnDemand,
    };
    let mut dir: Option<PathBuf> = None;
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        let arg = match arg.into_string() {
            Ok(s) => s,
            // A non-UTF-8 argument can only be the folder.
            Err(os) if dir.is_none() => {
                dir = Some(PathBuf::from(os));
                continue;
            }
            Err(_) => return Err("an argument is not UTF-8".into()),
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
        let flag = matches!(
            name.as_str(),
            "--follow-symlinks"
                | "--dotfiles"
                | "--no-listing"
                | "-q"
                | "--quiet"
                | "--log-timestamps"
                | "--syslog"
                | "--private"
                | "--anonymous-upload"
                | "--upload"
        );
        if flag && inline.is_some() {
            return Err(format!("{name} takes no value"));
        }
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
                cfg.listen.extend(listen_addrs(&v)?);
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
            "--body-timeout" => cfg.engine.body_timeout = seconds(&name, &value("SECS")?)?,
            "--max-requests" => {
                cfg.engine.max_requests = number(&name, &value("N")?, 1, u32::MAX as u64)? as u32
            }
            "--rate-limit" => cfg.engine.rate_limit = Some(size(&name, &value("RATE")?)?),
            "--rate-limit-total" => {
                cfg.engine.rate_limit_total = Some(size(&name, &value("RATE")?)?)
            }
            "--log-level" => {
                let v = value("LEVEL")?;
                // `log`'s own names, in any case.
                cfg.log_level = v.parse().map_err(|_| {
                    format!("--log-level: '{v}' is not one of off, error, warn, info, debug, trace")
                })?;
            }
            "-q" | "--quiet" => cfg.log_level = log::LevelFilter::Warn,
            "--log-timestamps" => cfg.log_timestamps = true,
            "--syslog" => cfg.syslog = Some(PathBuf::from("/dev/log")),
            "--syslog-socket" => cfg.syslog = Some(PathBuf::from(value("PATH")?)),
            "--follow-symlinks" => cfg.follow_symlinks = true,
            "--dotfiles" => cfg.dotfiles = true,
            "--no-listing" => cfg.listing = false,
            "--mime" => cfg.mime.add(&value("EXT=TYPE")?)?,
            "--user" => cfg.user = Some(value("NAME")?),
            "--auth" => cfg.auth.push(value("USER:PASS[:ro|rw]")?),
            "--auth-file" => cfg.auth_file = Some(PathBuf::from(value("FILE")?)),
            "--private" => cfg.private = true,
            "--anonymous-upload" => cfg.anonymous_upload = true,
            "--upload" => cfg.upload = true,
            "--max-upload-size" => cfg.max_upload_size = Some(size(&name, &value("SIZE")?)?),
            "--upload-expiry" => cfg.upload_expiry = seconds(&name, &value("SECS")?)?,
            "--max-uploads" => {
                cfg.engine.body_threads = number(&name, &value("N")?, 1, 256)? as usize
            }
            "--state-dir" => cfg.state_dir = Some(PathBuf::from(value("PATH")?)),
            "--cors" => {
                let v = value("ORIGIN")?;
                if v != "*" && !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(format!(
                        "--cors: '{v}' is not an origin like https://example.org (or *)"
                    ));
                }
                cfg.cors.push(v.trim_end_matches('/').to_owned());
            }
            "--digests" => {
                let v = value("MODE")?;
                cfg.digests = match v.as_str() {
                    "off" => crate::digest::Mode::Off,
                    "on-demand" => crate::digest::Mode::OnDemand,
                    "eager" => crate::digest::Mode::Eager,
                    _ => {
                        return Err(format!(
                            "--digests: '{v}' is not one of off, on-demand, eager"
                        ));
                    }
                };
            }
            _ => return Err(format!("unknown option '{name}'")),
        }
    }
    if let Some(d) = dir {
        cfg.dir = d;
    }
    if cfg.listen.is_empty() {
        cfg.listen
            .push(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)));
    }
    cfg.listen.dedup();
    Ok(Command::Serve(Box::new(cfg)))
}

/// `--listen`: `ADDR:PORT`, `[V6]:PORT`, `HOST:PORT` or a bare `PORT` (all
/// IPv4 addresses). A host name is looked up in `/etc/hosts` — where a
/// router or a board names its own addresses; `localhost` is 127.0.0.1 and
/// ::1 wherever the hosts file says nothing. No DNS: a server must not wait
/// for the network to start, and musl's resolver would be a tenth of the
/// binary.
fn listen_addrs(v: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(port) = v.parse::<u16>() {
        return Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))]);
    }
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(vec![a]);
    }
    let bad = || {
        format!(
            "--listen: '{v}' is not ADDR:PORT (e.g. 0.0.0.0:8080, [::]:8080, localhost:8080 or 8080)"
        )
    };
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut ips = hosts_lookup(&hosts, host);
    if ips.is_empty() && host.eq_ignore_ascii_case("localhost") {
        ips = vec![
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from(Ipv6Addr::LOCALHOST),
        ];
    }
    if ips.is_empty() {
        return Err(format!(
            "--listen: '{host}' is not an address, and /etc/hosts does not name it"
        ));
    }
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

/// The addresses `/etc/hosts` (hosts(5): `address name [aliases…]`, `#`
/// comments) gives `name`, in file order, without repeats.
fn hosts_lookup(text: &str, name: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some(Ok(ip)) = words.next().map(str::parse::<IpAddr>) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(name)) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
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
    number(name, v, 1, 365 * 86_400).map(Duration::from_secs)
}

/// A size or a rate: digits with an optional unit. `K`, `M`, `G` (and
/// `KiB`, `MiB`, `GiB`) are powers of 1024, as in curl's `--limit-rate` and
/// nginx; `KB`, `MB`, `GB` are powers of 1000. Case-insensitive; a trailing
/// `/s` is allowed for rates.
fn size(name: &str, v: &str) -> Result<u64, String> {
    let t = v.strip_suffix("/s").unwrap_or(v);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => u64::MAX,
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && mult != u64::MAX => n
            .checked_mul(mult)
            .ok_or_else(|| format!("{name}: '{v}' is too large")),
        _ => Err(format!(
            "{name}: '{v}' is not a size like 500000, 500K, 2MB or 1GiB"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<OsString> {
        s.split_whitespace().map(OsString::from).collect()
    }

    fn serve(s: &str) -> Config {
        match parse(args(s)) {
            Ok(Command::Serve(c)) => *c,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn accepted_arguments() {
        let c = serve("--listen 127.0.0.1:0 -t 3 --rate-limit=2M --no-listing -q /srv");
        assert_eq!(c.listen, vec!["127.0.0.1:0".parse().unwrap()]);
        assert_eq!(c.engine.threads, 3);
        assert_eq!(c.engine.rate_limit, Some(2 * 1024 * 1024));
        assert!(!c.listing);
        assert_eq!(c.log_level, log::LevelFilter::Warn);
        assert_eq!(c.dir, PathBuf::from("/srv"));
        let d = serve("");
        assert_eq!(d.dir, PathBuf::from("."));
        assert_eq!(d.listen, vec!["0.0.0.0:8080".parse().unwrap()]);
        assert!(!d.upload && !d.private);
        assert!(matches!(parse(args("-h")), Ok(Command::Help)));
        assert!(matches!(parse(args("--version")), Ok(Command::Version)));
        assert!(matches!(
            parse(args("hash-password")),
            Ok(Command::HashPassword)
        ));
        assert!(matches!(parse(args("link --write /in/")), Ok(Command::Link(a)) if a.len() == 2));
        assert_eq!(
            serve("-- -dir-with-dash").dir,
            PathBuf::from("-dir-with-dash")
        );
        let u = serve(
            "--upload --auth a:b:rw --auth c:d --max-upload-size 4G --upload-expiry 3 --cors http://x.org/ --digests eager --log-level trace",
        );
        assert!(u.upload);
        assert_eq!(u.auth, vec!["a:b:rw", "c:d"]);
        assert_eq!(u.max_upload_size, Some(4 << 30));
        assert_eq!(u.upload_expiry, Duration::from_secs(3));
        assert_eq!(u.cors, vec!["http://x.org"]);
        assert_eq!(u.digests, crate::digest::Mode::Eager);
        assert_eq!(u.log_level, log::LevelFilter::Trace);
    }

    /// Several addresses, host names and bare ports (a router listens on
    /// its LAN address for IPv4 and IPv6 at once).
    #[test]
    fn listen_addresses() {
        let c = serve("--listen 127.0.0.1:1 --listen [::1]:2 -l 3");
        let want: Vec<SocketAddr> = ["127.0.0.1:1", "[::1]:2", "0.0.0.0:3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(c.listen, want);
        let l = serve("--listen localhost:8080");
        assert!(
            !l.listen.is_empty()
                && l.listen
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 8080)
        );
    }

    #[test]
    fn hosts_file_lookup() {
        let hosts = "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n# 10.0.0.1 router\n192.168.1.1 Router.lan router\nbogus line\n192.168.1.1 router\n";
        let ips = |n| hosts_lookup(hosts, n);
        assert_eq!(
            ips("localhost"),
            vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(ips("ROUTER"), vec![IpAddr::from([192, 168, 1, 1])]);
        assert_eq!(ips("router.lan"), vec![IpAddr::from([192, 168, 1, 1])]);
        assert!(ips("10.0.0.1").is_empty() && ips("nowhere").is_empty());
    }

    #[test]
    fn refused_arguments() {
        for bad in [
            "--listen",
            "--listen nowhere",
            "--listen 1.2.3.4:99999",
            "--threads 0",
            "--threads +3",
            "--threads x",
            "--bogus",
            "a b",
            "--rate-limit 5T",
            "--rate-limit 0",
            "--log-level loud",
            "--dotfiles=yes",
            "--upload=1",
            "--head-timeout 0",
            "--digests sometimes",
            "--cors example.org",
            "--mime x",
            "hash-password extra",
        ] {
            let e = parse(args(bad)).expect_err(bad);
            assert!(!e.contains('\n'), "{bad}: one line, got {e:?}");
        }
    }

    #[test]
    fn sizes_and_rates() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1000", Some(1000)),
            ("500K", Some(500 << 10)),
            ("500k", Some(500 << 10)),
            ("2M", Some(2 << 20)),
            ("2MiB", Some(2 << 20)),
            ("2MB", Some(2_000_000)),
            ("2mb/s", Some(2_000_000)),
            ("1g", Some(1 << 30)),
            ("1GB", Some(1_000_000_000)),
            ("3KiB", Some(3 << 10)),
            ("K", None),
            ("0", None),
            ("5T", None),
            ("1.5M", None),
            ("-1", None),
            ("99999999999999999999", None),
            ("17179869184G", None),
        ];
        for (v, want) in cases {
            assert_eq!(size("--x", v).ok(), *want, "{v}");
        }
    }
}
