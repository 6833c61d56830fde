//! The builder tests are written with, in the style of just's `Test` and ripgrep's
//! `TestCommand`. A `Lambda` is a task root and the environment bootstrap gets on top of the
//! clean one; `start` runs bootstrap against a fresh mock Runtime API and gives a `Run` (what it
//! posted and logged), `cli` runs it once as a command and gives an `Outcome` (what it printed).
//!
//! ```ignore
//! let run = Lambda::new().fixture("python/echo.py", "h.py").mode(Mode::Warm).start("h.handler");
//! assert_eq!(run.response_to(Event::new("r1", "{}")).json()["reply"], "python ok");
//! let out = Lambda::new().write("h.pl", "1;\n").cli(["check", "--handler", "h.handler"]).run();
//! ```

use std::ffi::OsString;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;

use serde_json::Value;

use super::mock_api::{Event, MockApi, Post};
use super::{
    Bootstrap, Mode, RESPONSE, TaskRoot, bootstrap_command, children, clean_environment, run_to_end,
};

/// A function as Lambda would run it: a task root of its own, removed once the last `Lambda`,
/// `Run` or `Cli` that shares it is gone, and the environment of every run of it. Cloning it
/// shares the task root; an environment added to a clone is the clone's alone.
#[derive(Clone)]
pub struct Lambda {
    root: Arc<TaskRoot>,
    /// Set (`Some`) or removed (`None`), in order, after the clean environment.
    env: Vec<(String, Option<String>)>,
    /// The program run instead of the binary under test, with its arguments.
    program: Option<Vec<OsString>>,
}

impl Default for Lambda {
    fn default() -> Lambda {
        Lambda::new()
    }
}

impl Lambda {
    /// An empty task root of its own.
    pub fn new() -> Lambda {
        Lambda { root: Arc::new(TaskRoot::new()), env: Vec::new(), program: None }
    }

    /// Writes `content` to `name`, a path under the task root (its folders are made).
    pub fn write(self, name: &str, content: impl AsRef<[u8]>) -> Lambda {
        self.root.put(name, content.as_ref());
        self
    }

    /// Writes an executable file.
    pub fn script(self, name: &str, content: &str) -> Lambda {
        self.root.put_script(name, content.as_bytes());
        self
    }

    /// Copies `tests/fixtures/<rel>` in as `name`.
    pub fn fixture(self, rel: &str, name: &str) -> Lambda {
        self.root.put_fixture(rel, name);
        self
    }

    /// Copies each `(from, to)`: `tests/fixtures/<dir>/<from>` in as `to` (`dir` may be "").
    pub fn fixtures(self, dir: &str, files: &[(&str, &str)]) -> Lambda {
        for (from, to) in files {
            let rel = Path::new(dir).join(from);
            self.root.put_fixture(rel.to_str().expect("a UTF-8 fixture path"), to);
        }
        self
    }

    /// Makes the folder `name`.
    pub fn dir(self, name: &str) -> Lambda {
        std::fs::create_dir_all(self.file(name)).expect("create dir");
        self
    }

    /// Makes the named pipe `name`: a handler that opens it waits until the test opens it too.
    pub fn fifo(self, name: &str) -> Lambda {
        let made = Command::new("mkfifo").arg(self.file(name)).status().expect("run mkfifo");
        assert!(made.success(), "mkfifo {name}");
        self
    }

    /// An interpreters.toml that runs the built-in runners in `mode`.
    pub fn mode(self, mode: Mode) -> Lambda {
        self.config(&mode.config())
    }

    /// `toml` as the task root's interpreters.toml.
    pub fn config(self, toml: &str) -> Lambda {
        self.write("interpreters.toml", toml)
    }

    /// Sets a variable for every run.
    pub fn env(mut self, name: &str, value: &str) -> Lambda {
        self.env.push((name.into(), Some(value.into())));
        self
    }

    /// Removes a variable the harness would set (e.g. `_HANDLER`, `LAMBDA_TASK_ROOT`).
    pub fn env_remove(mut self, name: &str) -> Lambda {
        self.env.push((name.into(), None));
        self
    }

    /// Each `(name, Some(value))` set and each `(name, None)` removed.
    pub fn envs(mut self, env: &[(&str, Option<&str>)]) -> Lambda {
        let env = env.iter().map(|(name, value)| (name.to_string(), value.map(str::to_string)));
        self.env.extend(env);
        self
    }

    /// Runs `argv` instead of the binary under test (e.g. an unzipped layer's bootstrap, or
    /// `chroot DIR /bootstrap`), with the same clean environment.
    pub fn program<S: Into<OsString>>(mut self, argv: impl IntoIterator<Item = S>) -> Lambda {
        self.program = Some(argv.into_iter().map(Into::into).collect());
        self
    }

    /// The task root.
    pub fn root(&self) -> &Path {
        &self.root.path
    }

    /// The path of `name` under the task root.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.file(name)
    }

    /// bootstrap with `_HANDLER=handler`, serving a fresh mock Runtime API.
    pub fn start(&self, handler: &str) -> Run {
        self.start_on(MockApi::start(), handler)
    }

    /// bootstrap with `_HANDLER=handler`, serving `api` (one with a path prefix, 204s on an
    /// idle `/next`, or only a digest of streams kept).
    pub fn start_on(&self, api: MockApi, handler: &str) -> Run {
        let bootstrap = self.spawn(handler, Some(&api.address()));
        Run { bootstrap, api, root: Arc::clone(&self.root) }
    }

    /// bootstrap with `_HANDLER=handler` and no mock API: the environment names the Runtime
    /// API (`env("AWS_LAMBDA_RUNTIME_API", ...)`), or there is none.
    pub fn launch(&self, handler: &str) -> Bootstrap {
        self.spawn(handler, None)
    }

    fn spawn(&self, handler: &str, api: Option<&str>) -> Bootstrap {
        let api = api.map(|address| ("AWS_LAMBDA_RUNTIME_API", address));
        let vars: Vec<(&str, &str)> = api.into_iter().chain([("_HANDLER", handler)]).collect();
        Bootstrap::spawn(self.command(&vars), Arc::clone(&self.root))
    }

    /// Starts bootstrap with `handler`, pushes each event once the one before was answered,
    /// and stops it once each of `log_has` is in its log (a framed worker's output reaches the
    /// log on its own thread, maybe after the answer).
    pub fn serve(&self, handler: &str, events: Vec<Event>, log_has: &[&str]) -> Served {
        let run = self.start(handler);
        let posts = events.into_iter().map(|event| run.invoke(event)).collect();
        for text in log_has {
            run.wait_for_log(text);
        }
        Served { posts, log: run.stop(), root: self.clone() }
    }

    /// The post for one event `r1` with `body`, through a bootstrap with `handler`.
    pub fn post_for(&self, handler: &str, body: &str) -> Post {
        self.serve(handler, vec![Event::new("r1", body)], &[]).posts.remove(0)
    }

    /// The response to one event `r1` with `body`, as JSON, asserting it was a response; `case`
    /// names the case (e.g. the mode) in a failure.
    #[track_caller]
    pub fn response_json(&self, handler: &str, body: &str, case: impl Debug) -> Value {
        let post = self.post_for(handler, body);
        assert_eq!(post.path, RESPONSE, "{handler} {case:?}: {}", post.body_text());
        post.json()
    }

    /// bootstrap as a command (`invoke`, `check`, `--help`): `run` it for its `Outcome`.
    pub fn cli(&self, args: &[&str]) -> Cli {
        let mut command = self.command(&[]);
        command.args(args);
        Cli { command, stdin: None, _root: Arc::clone(&self.root) }
    }

    /// `bootstrap check --handler <handler> --task-root <the task root>`, run.
    pub fn check(&self, handler: &str) -> Outcome {
        let task_root = self.root().display().to_string();
        self.cli(&["check", "--handler", handler, "--task-root", &task_root]).run()
    }

    /// The program in the clean environment, then `vars`, then this Lambda's environment.
    fn command(&self, vars: &[(&str, &str)]) -> Command {
        let program = match self.program.as_deref() {
            Some([program, args @ ..]) => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
            _ => bootstrap_command(),
        };
        let mut command = clean_environment(program, &self.root);
        command.envs(vars.iter().copied());
        for (name, value) in &self.env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
    }
}

/// bootstrap serving a mock Runtime API. Both end with it: bootstrap is killed and reaped
/// first, even when the test panics.
pub struct Run {
    bootstrap: Bootstrap,
    /// The mock Runtime API, for what the test scripts itself: faults, polls, chunks.
    pub api: MockApi,
    root: Arc<TaskRoot>,
}

impl Run {
    /// Queues `event` and returns the next post, wherever it went.
    #[track_caller]
    pub fn invoke(&self, event: Event) -> Post {
        self.api.push(event);
        self.api.next_post()
    }

    /// Queues `event` and returns the next post, which must be its response.
    #[track_caller]
    pub fn response_to(&self, event: Event) -> Post {
        let path = format!("/runtime/invocation/{}/response", event.id());
        self.api.push(event);
        self.api.expect_post(&path)
    }

    /// Queues `event` and returns the next post, which must be its error.
    #[track_caller]
    pub fn error_for(&self, event: Event) -> Post {
        let path = format!("/runtime/invocation/{}/error", event.id());
        self.api.push(event);
        self.api.expect_post(&path)
    }

    /// One more ordinary event, answered with `answer`: the loop is healthy.
    #[track_caller]
    pub fn assert_serves(&self, event: Event, answer: &str) {
        let post = self.response_to(event);
        assert_eq!(post.body_text(), answer, "the answer of an ordinary event");
    }

    /// The post to `/runtime/init/error`, then a non-zero exit without a single `/next`.
    #[track_caller]
    pub fn expect_init_error(&mut self) -> Post {
        let post = self.api.expect_post("/runtime/init/error");
        let status = self.wait_exit();
        assert!(!status.success(), "init failure must exit non-zero");
        assert_eq!(self.api.next_requests_made(), 0, "no /next after an init error");
        post
    }

    /// Asserts that bootstrap has no child processes (alive or zombie) between events.
    #[track_caller]
    pub fn assert_no_children(&self) {
        self.assert_children_at_most(0);
    }

    /// Asserts that bootstrap has at most `n` children: in framed modes, the worker started
    /// ahead for the next event may already be running.
    #[track_caller]
    pub fn assert_children_at_most(&self, n: usize) {
        let left = children(self.pid());
        let zombies = left.iter().any(|(_, state)| *state == 'Z');
        assert!(
            left.len() <= n && !zombies,
            "processes left behind by the last event (pid, state): {left:?}"
        );
    }

    /// The path of `name` under the task root.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.file(name)
    }

    /// The task root.
    pub fn root(&self) -> &Path {
        &self.root.path
    }

    pub fn pid(&self) -> u32 {
        self.bootstrap.pid()
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        self.bootstrap.log()
    }

    /// Blocks until the log contains `text`, and returns the log so far.
    #[track_caller]
    pub fn wait_for_log(&self, text: &str) -> String {
        self.bootstrap.wait_for_log(text)
    }

    /// Waits for bootstrap to exit by itself (it should, promptly).
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        self.bootstrap.wait_exit()
    }

    /// Stops bootstrap and returns everything it logged.
    pub fn stop(self) -> String {
        self.bootstrap.stop()
    }
}

/// What `Lambda::serve` saw: the post of each event, and the whole log.
pub struct Served {
    pub posts: Vec<Post>,
    pub log: String,
    /// Where it ran, for the paths in what it saw.
    pub root: Lambda,
}

/// bootstrap as a command, not yet run.
pub struct Cli {
    command: Command,
    stdin: Option<Vec<u8>>,
    /// The task root, kept until the command has run.
    _root: Arc<TaskRoot>,
}

impl Cli {
    /// What it reads on stdin (by default, nothing: /dev/null).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Cli {
        self.stdin = Some(input.into());
        self
    }

    /// Runs it to its end.
    pub fn run(self) -> Outcome {
        let output = run_to_end(self.command, self.stdin.as_deref());
        Outcome {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            stdout_bytes: output.stdout,
        }
    }
}

/// How a command ended and what it printed.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    stdout_bytes: Vec<u8>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// stdout, then stderr.
    pub fn printed(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout_bytes).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr)
        })
    }
}
