//! The harness: a task root per test, the real `bootstrap` binary started against the mock
//! Runtime API with a clean environment, and a guard that kills it when the test ends. Tests
//! are written with `harness::Lambda`; the pieces here are what it is built from.

pub mod harness;
pub mod mock_api;

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

pub use harness::{Lambda, Outcome, Run, Served};
pub use mock_api::{ARN, Event, MockApi, PATIENCE, Post};

/// Where the posts for the request id `r1` go, and an init error (`Post::path`).
pub const RESPONSE: &str = "/2018-06-01/runtime/invocation/r1/response";
pub const EVENT_ERROR: &str = "/2018-06-01/runtime/invocation/r1/error";
pub const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

/// The function-level variables Lambda sets: name, version, memory size, log group and stream.
pub const FUNCTION_VARIABLES: [(&str, Option<&str>); 5] = [
    ("AWS_LAMBDA_FUNCTION_NAME", Some("fn")),
    ("AWS_LAMBDA_FUNCTION_VERSION", Some("$LATEST")),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("512")),
    ("AWS_LAMBDA_LOG_GROUP_NAME", Some("/aws/lambda/fn")),
    ("AWS_LAMBDA_LOG_STREAM_NAME", Some("2024/01/01/[$LATEST]abc")),
];

/// The binary cargo built for this host.
pub const BIN: &str = env!("CARGO_BIN_EXE_bootstrap");
pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// `tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests/fixtures").join(rel)
}

pub fn find_on_path(program: &std::ffi::OsStr) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

/// Whether `program` is on PATH. A missing interpreter skips its tests (see `skip`).
pub fn have(program: &str) -> bool {
    let found = find_on_path(program.as_ref()).is_some();
    if !found {
        skip(&format!("{program} not on PATH"));
    }
    found
}

/// Something a test needs is missing (`reason` says what): the test is skipped with a printed
/// reason, unless `BOOTSTRAP_TEST_REQUIRE_ALL=1` (as in CI), where it fails.
pub fn skip(reason: &str) {
    if std::env::var_os("BOOTSTRAP_TEST_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{reason}, and BOOTSTRAP_TEST_REQUIRE_ALL=1");
    }
    eprintln!("skipped: {reason}");
}

/// A fresh directory standing in for `LAMBDA_TASK_ROOT`, removed on drop.
pub struct TaskRoot {
    pub path: PathBuf,
}

impl TaskRoot {
    pub fn new() -> TaskRoot {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("bootstrap-it-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create task root");
        TaskRoot { path }
    }

    /// Copies `tests/fixtures/<rel>` in as `name`.
    pub fn copy(self, rel: &str, name: &str) -> TaskRoot {
        self.put_fixture(rel, name);
        self
    }

    pub fn write(self, name: &str, content: &str) -> TaskRoot {
        self.put(name, content.as_bytes());
        self
    }

    /// Writes an executable file.
    pub fn script(self, name: &str, content: &str) -> TaskRoot {
        self.put_script(name, content.as_bytes());
        self
    }

    /// The path of `name` under the root, its folders made.
    fn place(&self, name: &str) -> PathBuf {
        let to = self.path.join(name);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).expect("create dir");
        }
        to
    }

    fn put(&self, name: &str, content: &[u8]) {
        fs::write(self.place(name), content).expect("write file");
    }

    fn put_script(&self, name: &str, content: &[u8]) {
        let path = self.place(name);
        fs::write(&path, content).expect("write file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    fn put_fixture(&self, rel: &str, name: &str) {
        fs::copy(fixture(rel), self.place(name))
            .unwrap_or_else(|e| panic!("copy fixture {rel}: {e}"));
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TaskRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The binary under test: `BIN`, or `BOOTSTRAP_TEST_BIN` (a cross build, e.g. arm64) run
/// through `BOOTSTRAP_TEST_EMULATOR` (e.g. `qemu-aarch64-static`) when that is set.
pub fn bootstrap_command() -> Command {
    let bin = std::env::var_os("BOOTSTRAP_TEST_BIN").unwrap_or_else(|| BIN.into());
    match std::env::var_os("BOOTSTRAP_TEST_EMULATOR") {
        Some(emulator) => {
            // Found on our PATH now: some tests give the binary a PATH without it.
            let mut command = Command::new(find_on_path(&emulator).unwrap_or(emulator.into()));
            command.arg(bin);
            command
        }
        None => Command::new(bin),
    }
}

/// Whether the binary runs under a user-mode emulator, which lacks some process controls
/// (qemu-user refuses `PR_SET_CHILD_SUBREAPER`). Tests of those skip with a printed reason.
pub fn emulated(what: &str) -> bool {
    let emulated = std::env::var_os("BOOTSTRAP_TEST_EMULATOR").is_some();
    if emulated {
        eprintln!("skipped: {what} is not available under BOOTSTRAP_TEST_EMULATOR");
    }
    emulated
}

/// The environment every run of the binary gets: nothing of the test process's but `PATH`.
fn clean_command(root: &TaskRoot) -> Command {
    clean_environment(bootstrap_command(), root)
}

fn clean_environment(mut command: Command, root: &TaskRoot) -> Command {
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
        .env("LAMBDA_TASK_ROOT", &root.path)
        .env("BOOTSTRAP_RUNNERS", Path::new(MANIFEST_DIR).join("layers"))
        .current_dir(&root.path);
    command
}

/// The binary serving a mock Runtime API. Killed and reaped on drop.
pub struct Bootstrap {
    pid: u32,
    exit: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    /// Everything it has logged, and a signal for each new piece.
    stderr: Arc<(Mutex<Vec<u8>>, Condvar)>,
    stderr_reader: Option<thread::JoinHandle<()>>,
    /// The task root it runs in, kept until it is gone.
    _root: Arc<TaskRoot>,
}

impl Bootstrap {
    /// Starts `command`, which runs in `root`, its log collected.
    fn spawn(mut command: Command, root: Arc<TaskRoot>) -> Bootstrap {
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("start bootstrap");
        let pid = child.id();
        let stderr = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.0.lock().expect("stderr lock").extend_from_slice(&buf[..n]);
                sink.1.notify_all();
            }
        });
        let (tx, exit) = mpsc::channel();
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        let stderr_reader = Some(stderr_reader);
        Bootstrap { pid, exit, status: None, stderr, stderr_reader, _root: root }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits for the binary to exit by itself (it should, promptly).
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let status = self.exit.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("bootstrap did not exit within {PATIENCE:?}; log:\n{}", self.log())
        });
        self.status = Some(status);
        self.join_stderr();
        status
    }

    /// Stops the binary and returns everything it logged.
    pub fn stop(mut self) -> String {
        self.kill();
        self.log()
    }

    fn kill(&mut self) {
        if self.status.is_none() {
            // SAFETY: kill takes two integers; the pid is our child, not reaped until the
            // waiter thread's wait() returns after this signal.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
            self.status = self.exit.recv_timeout(PATIENCE).ok();
        }
        self.join_stderr();
    }

    fn join_stderr(&mut self) {
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.stderr.0.lock().expect("stderr lock")).into_owned()
    }

    /// Blocks until the log contains `text` (e.g. a line a handler wrote to stderr), and
    /// returns the log so far.
    #[track_caller]
    pub fn wait_for_log(&self, text: &str) -> String {
        let (lock, changed) = &*self.stderr;
        let log = lock.lock().expect("stderr lock");
        let (log, timeout) = changed
            .wait_timeout_while(log, PATIENCE, |log| !String::from_utf8_lossy(log).contains(text))
            .expect("stderr lock");
        let log = String::from_utf8_lossy(&log).into_owned();
        assert!(
            !timeout.timed_out(),
            "{text:?} did not appear in the log within {PATIENCE:?}:\n{log}"
        );
        log
    }
}

impl Drop for Bootstrap {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs the binary once with `args` (for `invoke`, `check`, `--help`), stdin from `input`.
pub fn run_cli(
    root: &TaskRoot,
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&[u8]>,
) -> Output {
    let mut command = clean_command(root);
    command.args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    run_to_end(command, input)
}

/// Runs `command` to its end with `input` on its stdin (none: /dev/null), its output collected.
fn run_to_end(mut command: Command, input: Option<&[u8]>) -> Output {
    command.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("run bootstrap");
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&input);
        });
    }
    child.wait_with_output().expect("wait for bootstrap")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts an error post: error type, message parts, a stack (`stackTrace`, or Node's `trace`)
/// and the error-type header.
#[track_caller]
pub fn assert_error(post: &Post, error_type: &str, message_has: &[&str]) {
    let body = post.json();
    let header = post.header("Lambda-Runtime-Function-Error-Type");
    let got_type = body["errorType"].as_str().unwrap_or("<missing>");
    let message = body["errorMessage"].as_str().unwrap_or("<missing>");
    let missing: Vec<&&str> = message_has.iter().filter(|s| !message.contains(**s)).collect();
    assert!(
        got_type == error_type
            && missing.is_empty()
            // AWS's Node runtime posts its frames as `trace`.
            && (body["stackTrace"].is_array() || body["trace"].is_array())
            && header.is_some_and(|h| h.starts_with("Runtime.") || h.starts_with("Function.")),
        "error post mismatch\n  path:      {}\n  type:      {got_type:?} (want {error_type:?})\n  header:    {header:?}\n  message:   {message:?}\n  missing:   {missing:?}\n  body:      {}",
        post.path,
        post.body_text()
    );
}

/// Asserts that bootstrap's log shows no panic.
#[track_caller]
pub fn assert_no_panic(log: &str) {
    assert!(!log.contains("panicked"), "bootstrap panicked:\n{log}");
}

/// Serves the `misbehave` fixture three events it fails, a hang past a near deadline, a SIGSEGV
/// and exit 3, asserting each error, then an ordinary one. Returns that one's answer once
/// bootstrap has asked for the next event: a worker that served its events is retired, and the
/// next readied, before that request. `lang` prefixes the request ids.
#[track_caller]
pub fn misbehave_then_serve(run: &Run, lang: &str) -> String {
    let expected = [
        ("sleep", "Runtime.Timeout", "timed out"),
        ("segv", "Runtime.ExitError", "SIGSEGV"),
        ("exit", "Runtime.ExitError", "status 3"),
    ];
    for (i, (what, error_type, message)) in expected.into_iter().enumerate() {
        let mut event = Event::new(&format!("{lang}-{i}"), format!("{{\"do\":\"{what}\"}}"));
        if what == "sleep" {
            // Only the hang needs a near deadline; the others keep 30 s, so a slow
            // interpreter start on a loaded machine cannot turn them into timeouts.
            event = event.deadline_in(std::time::Duration::from_millis(1500));
        }
        assert_error(&run.error_for(event), error_type, &[message]);
    }
    let body = run.response_to(Event::new("ok", "{\"do\":\"nothing\"}")).body_text();
    run.api.wait_for_polls(5);
    body
}

/// Whether a process is gone (or only a zombie waiting for its reaper).
pub fn is_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        }
    }
}

/// Processes whose parent is `pid`, with their state letter, read from `/proc`.
pub fn children(pid: u32) -> Vec<(u32, char)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            found.push((child, state));
        }
    }
    found
}

/// How the built-in language runners are run. Language tests run in every mode, so the framed
/// modes pass the same tests as the plain one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A process per event, event on stdin.
    Plain,
    /// Framed, a fresh runner per event, started ahead of it (the default for Perl, Python, Node).
    Ahead,
    /// Framed, one warm runner for every event.
    Warm,
    /// Framed, a child forked from one loaded runner per event (`isolation = "fork"`); Node,
    /// which cannot fork, runs ahead instead.
    Fork,
}

pub const MODES: [Mode; 3] = [Mode::Plain, Mode::Ahead, Mode::Warm];
/// Every mode, fork mode included (where Node runs ahead: it cannot fork).
pub const ALL_MODES: [Mode; 4] = [Mode::Plain, Mode::Ahead, Mode::Warm, Mode::Fork];

/// The five built-in runners: (name, extensions, program, runner under `layers/`).
const RUNNERS: [(&str, &str, &str, &str); 5] = [
    ("perl", "\"pl\", \"pm\"", "perl", "perl/runner.pl"),
    ("python", "\"py\"", "python3", "python/runner.py"),
    ("node", "\"js\", \"mjs\", \"cjs\"", "node", "node/runner.js"),
    ("shell", "\"sh\"", "bash", "shell/runner.sh"),
    ("ruby", "\"rb\"", "ruby", "ruby/runner.rb"),
];

impl Mode {
    /// An interpreters.toml that puts the five built-in runners in this mode.
    pub fn config(self) -> String {
        let settings = |name: &str| match self {
            Mode::Fork if name == "node" => Mode::Ahead.settings(),
            _ => self.settings(),
        };
        RUNNERS.iter().map(|(name, ..)| runner_entry(name, settings(name)) + "\n").collect()
    }

    /// The keys that put one framed-capable entry in this mode.
    pub fn settings(self) -> &'static str {
        match self {
            Mode::Plain => "protocol = \"plain\"\n",
            Mode::Ahead => "protocol = \"framed\"\nevents_per_process = 1\n",
            Mode::Warm => "protocol = \"framed\"\nevents_per_process = 0\n",
            Mode::Fork => "isolation = \"fork\"\n",
        }
    }
}

/// The whole interpreters.toml entry of the built-in runner `name` (e.g. "python"), as the
/// built-in file has it, then `keys`.
pub fn runner_entry(name: &str, keys: &str) -> String {
    let (_, extensions, program, runner) = RUNNERS
        .iter()
        .find(|(n, ..)| *n == name)
        .unwrap_or_else(|| panic!("{name} is not a built-in runner"));
    format!(
        "[interpreters.{name}]\nextensions = [{extensions}]\n\
         command = [\"{program}\", \"{{runners}}/{runner}\", \"{{file}}\", \"{{method}}\"]\n{keys}"
    )
}

/// Standard padded base64, decoded strictly, as the Runtime API decodes `Error-Body`.
pub fn decode_base64(encoded: &str) -> Vec<u8> {
    assert!(encoded.len().is_multiple_of(4), "base64 of a length not a multiple of 4: {encoded:?}");
    let value = |c: u8| -> u32 {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("{:?} is not standard base64, in {encoded:?}", char::from(c)),
        };
        u32::from(v)
    };
    let mut out = Vec::new();
    let quads = encoded.as_bytes().chunks(4);
    let last = quads.len().saturating_sub(1);
    for (i, quad) in quads.enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        assert!(pad <= 2 && (pad == 0 || i == last), "misplaced padding in {encoded:?}");
        let n = quad[..4 - pad].iter().fold(0, |n, &c| (n << 6) | value(c)) << (6 * pad);
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}
