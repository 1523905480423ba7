//! Third-party clients (curl, wget, aria2c, tuspy, tus-js-client, tools) as
//! child processes: output to files (no pipe can fill up and block them),
//! every wait bounded, killed by their own PID when dropped; and the rule
//! that a missing client fails its test with the package to install.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A client process this test started.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub out: PathBuf,
    pub err: PathBuf,
    pub started: Instant,
}

impl Proc {
    /// Starts `cmd` in `work`, its stdout and stderr in `work/TAG.stdout`
    /// and `.stderr`, stdin empty.
    pub fn start(cmd: Command, work: &Path, tag: &str) -> Proc {
        Proc::start_with(cmd, work, tag, Stdio::null())
    }

    pub fn start_with(mut cmd: Command, work: &Path, tag: &str, stdin: Stdio) -> Proc {
        let out = work.join(format!("{tag}.stdout"));
        let err = work.join(format!("{tag}.stderr"));
        let name = format!("{cmd:?}");
        let child = cmd
            .current_dir(work)
            .stdin(stdin)
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            name,
            child,
            out,
            err,
            started: Instant::now(),
        }
    }

    /// `program ARGS` in `work`.
    pub fn spawn(work: &Path, tag: &str, program: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Proc::start(cmd, work, tag)
    }

    /// `program ARGS` in `work` with extra environment variables.
    pub fn spawn_env(
        work: &Path,
        tag: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args).envs(env.iter().copied());
        Proc::start(cmd, work, tag)
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn output(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout(), self.stderr())
    }

    /// Waits for the exit, up to `limit` from the start; past it the process
    /// is killed and the test fails.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            if self.started.elapsed() > limit {
                self.kill9();
                panic!(
                    "`{}` still running after {limit:?}; killed\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to this PID only, then waits (bounded) for the exit;
    /// SIGKILL if it ignores the signal.
    pub fn stop(&mut self, signal: &str) -> ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-s", signal, &pid]).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(15) {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        self.child.wait().expect("wait after SIGKILL")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// SIGKILL to this process only; waits for it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill9();
        }
    }
}

/// Fails (never skips) when a program is not installed.
pub fn require(program: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "`{program}` is not installed: install the Debian package `{package}` \
         (apt-get install {package}; .ci/run does this)"
    );
}

/// The checkout (the test tools are installed inside it).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// tuspy, installed by `make tools` into `.tools/python`; that folder, for
/// `PYTHONPATH`.
pub fn require_tuspy() -> PathBuf {
    require("python3", "python3");
    let lib = repo().join(".tools/python");
    assert!(
        lib.join("tusclient").is_dir(),
        "tuspy is not installed in {}: run `make tools`",
        lib.display()
    );
    lib
}

/// tus-js-client, installed by `make tools` into `tests/node_modules`.
pub fn require_tus_js() {
    require("node", "nodejs");
    let lib = repo().join("tests/node_modules/tus-js-client");
    assert!(
        lib.is_dir(),
        "tus-js-client is not installed in {}: run `make tools`",
        lib.display()
    );
}

/// The sha256 of a file as coreutils' `sha256sum` prints it (hex): an
/// implementation independent of the server's.
pub fn sha256sum(path: &Path) -> String {
    require("sha256sum", "coreutils");
    let out = Command::new("sha256sum")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = text.split_whitespace().next().unwrap_or("").to_owned();
    assert_eq!(hex.len(), 64, "sha256sum output {text:?}");
    hex
}

/// The length of a file, 0 when it does not exist (yet).
pub fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// aria2c's arguments for one download of `u` into `dir/name`, quiet and
/// reproducible (no user config, no renaming, two tries), `extra` before
/// the URL.
pub fn aria2_args<'a>(dir: &'a str, name: &'a str, u: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--no-conf=true",
        "--async-dns=false",
        "--allow-overwrite=true",
        "--auto-file-renaming=false",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--download-result=hide",
        "--max-tries=2",
        "--retry-wait=1",
        "-d",
        dir,
        "-o",
        name,
    ];
    v.extend_from_slice(extra);
    v.push(u);
    v
}
