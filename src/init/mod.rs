//! Init: `_HANDLER`, the `interpreters.toml` layers and the argv templates become a `Handler`,
//! the file, the interpreter that runs it, and the argv with every placeholder but the event
//! filled in. Every failure is a `Diagnostic` that bootstrap posts to `/runtime/init/error` (or
//! prints, under `check`). Init only reads files; it starts no process and knows no HTTP.
//!
//! - `handler_name`: `_HANDLER` split and checked, the same for every language;
//! - `handler_file`: the file it names, read per language as AWS's runtimes read it;
//! - `config`: `interpreters.toml`, layered and validated;
//! - `template`: the argv templates and their placeholders.

pub mod config;
mod entry;
pub mod handler_file;
pub mod handler_name;
mod interpreter;
pub mod template;

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use self::config::{
    CONFIG_FILE_NAME, Config, Interpreter, Isolation, PayloadVia, Protocol, ResponseMode,
};
use self::handler_file::Found;
use self::handler_name::HandlerName;
use self::template::{Placeholder, Template};
use crate::env::{
    ENV_HANDLER, ENV_RESPONSE_CONTENT_TYPE, ENV_RESPONSE_MODE, ENV_RUNNERS, ENV_TASK_ROOT,
    LambdaEnv,
};
use crate::invocation::Diagnostic;
use crate::invocation::error_type::{
    HANDLER_NOT_FOUND, INTERPRETER_NOT_FOUND, INVALID_CONFIG, INVALID_TASK_ROOT,
    MALFORMED_HANDLER_NAME,
};

/// The runners directory, relative to the directory holding `bootstrap` (the layer, `/opt`).
const RUNNERS_DIR: &str = "layers";
/// Cargo's build directory: a bootstrap run from `target/…/` in a source checkout finds the
/// checkout's `layers/` beside it.
const CARGO_TARGET_DIR: &str = "target";

/// A resolved handler: what to run for every event.
#[derive(Debug, Clone)]
pub struct Handler {
    pub name: HandlerName,
    /// The handler file, absolute. It may be missing when the runner is left to report that.
    pub file: PathBuf,
    /// The method as the interpreter's handler syntax reads the name (`{method}`).
    pub method: String,
    pub task_root: PathBuf,
    /// The interpreter entry, or `None` when the file is an executable run directly.
    pub interpreter: Option<Interpreter>,
    /// The program, as found on `PATH`.
    pub program: PathBuf,
    /// The arguments after the program, with only `{event}`/`{event_file}` left to fill.
    pub args: Vec<Template>,
    pub payload: PayloadVia,
    /// Whether children need `HOME` set (Lambda leaves it unset).
    pub needs_home: bool,
    /// The interpreter's `syntax_check` argv, its program found on `PATH`; empty when it has
    /// none or the program is missing.
    pub syntax_check: Vec<OsString>,
    /// The Content-Type of the response stream, when the response is streamed.
    pub stream_content_type: Option<String>,
    pub config_sources: Vec<String>,
}

impl Handler {
    /// How bootstrap talks to the handler's process; executables are always plain.
    pub fn protocol(&self) -> Protocol {
        self.interpreter.as_ref().map_or(Protocol::Plain, |i| i.protocol)
    }

    /// Whether events run in children forked from one loaded runner (framed only).
    pub fn isolation(&self) -> Isolation {
        self.interpreter.as_ref().map_or(Isolation::Process, |i| i.isolation)
    }

    /// Events one framed worker serves before it is replaced (0: no limit).
    pub fn events_per_process(&self) -> u32 {
        self.interpreter.as_ref().map_or(1, |i| i.events_per_process)
    }

    /// The resident-memory limit of a framed worker, in MiB.
    pub fn max_rss_mb(&self) -> Option<u64> {
        self.interpreter.as_ref().and_then(|i| i.max_rss_mb)
    }

    /// Whether the handler runs through one of bootstrap's language runners (`{runners}`),
    /// which report load and syntax errors themselves.
    pub fn uses_runner(&self) -> bool {
        self.interpreter
            .as_ref()
            .is_some_and(|i| i.command.iter().any(|t| t.uses(Placeholder::Runners)))
    }

    /// Where to change how this handler is run, for hints: the interpreter's config entry.
    pub fn setting(&self) -> String {
        match &self.interpreter {
            Some(i) => i.location(),
            None => format!("the executable {}", self.file.display()),
        }
    }
}

/// A summary, as `bootstrap check` prints it.
impl fmt::Display for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let argv: Vec<String> = self.args.iter().map(|a| format!("{:?}", a.to_string())).collect();
        writeln!(f, "handler:     {}", self.name.text())?;
        writeln!(f, "file:        {}", self.file.display())?;
        writeln!(f, "task root:   {}", self.task_root.display())?;
        match &self.interpreter {
            Some(i) => writeln!(f, "interpreter: {} ({})", i.name, i.location())?,
            None => writeln!(f, "interpreter: none, the file is run as an executable")?,
        }
        writeln!(f, "program:     {}", self.program.display())?;
        writeln!(
            f,
            "argv:        [{:?}, {}]",
            self.program.display().to_string(),
            argv.join(", ")
        )?;
        let payload = match self.payload {
            PayloadVia::Stdin => "stdin",
            PayloadVia::Argument => "argument {event}",
            PayloadVia::File => "temporary file {event_file}",
        };
        writeln!(f, "event via:   {payload}")?;
        write!(f, "config:      {}", self.config_sources.join(", "))
    }
}

/// Init as the Lambda loop runs it: `_HANDLER` and `LAMBDA_TASK_ROOT` must be set.
pub fn for_lambda(env: &LambdaEnv) -> Result<Handler, Diagnostic> {
    let Some(name) = &env.handler else {
        return Err(Diagnostic::new(MALFORMED_HANDLER_NAME, format!("{ENV_HANDLER} is not set"))
            .with_hint("set the function's handler, e.g. lambda_script.handler"));
    };
    let Some(task_root) = &env.task_root else {
        return Err(Diagnostic::new(INVALID_TASK_ROOT, format!("{ENV_TASK_ROOT} is not set"))
            .with_hint(
                "set it to the directory holding the function code (Lambda sets /var/task)",
            ));
    };
    let exe_dir = exe_dir();
    resolve(&Settings { handler: name, task_root, env, exe_dir: exe_dir.as_deref() })
}

/// The longest Content-Type a streamed response may have (as for a framed runner's stream).
const MAX_CONTENT_TYPE: usize = 256;

/// The directory holding the running executable: where the layer's config and runners are.
pub fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe().ok()?.parent().map(Path::to_path_buf)
}

/// What init needs besides the config files.
pub struct Settings<'a> {
    pub handler: &'a str,
    pub task_root: &'a Path,
    pub env: &'a LambdaEnv,
    /// The directory holding the running `bootstrap`, when known.
    pub exe_dir: Option<&'a Path>,
}

/// Init: config, file, interpreter, program. The one place that touches the file system
/// before the first event.
pub fn resolve(settings: &Settings) -> Result<Handler, Diagnostic> {
    let name = HandlerName::parse(settings.handler)?;
    let task_root = absolute_task_root(settings.task_root)?;
    let config = load_config(settings, &task_root)?;
    let Found { file, interpreter, method } = handler_file::find(&task_root, &config, &name)?;
    let streaming = response_mode(settings.env, interpreter.as_ref())?;
    let stream_content_type = streaming.then(|| stream_content_type(settings.env)).transpose()?;
    let (command, payload) = match &interpreter {
        Some(i) => (i.command.clone(), i.payload),
        None => {
            check_executable(&file)?;
            let command = vec![Template::parse("{file}"), Template::parse("{method}")];
            let command =
                command.into_iter().map(|t| t.expect("BUG: constant templates parse")).collect();
            (command, PayloadVia::Stdin)
        }
    };
    let runners = if command.iter().any(|t| t.uses(Placeholder::Runners)) {
        Some(find_runners(settings)?)
    } else {
        None
    };
    let fill = |p| match p {
        Placeholder::File => Some(file.display().to_string()),
        Placeholder::Method => Some(method.clone()),
        Placeholder::TaskRoot => Some(task_root.display().to_string()),
        Placeholder::Runners => runners.as_ref().map(|r| r.display().to_string()),
        Placeholder::Event | Placeholder::EventFile => None,
    };
    let mut filled: Vec<Template> = command.iter().map(|t| t.fill(fill)).collect();
    let program_template = filled.remove(0);
    let program_name =
        program_template.as_literal().expect("BUG: the program has no per-event placeholder");
    let program = find_program(program_name, &task_root, settings.env, interpreter.as_ref())?;
    if let Some(runners) = &runners {
        check_runner_files(&command[1..], &filled, runners)?;
    }
    let syntax_check = interpreter
        .as_ref()
        .and_then(|i| i.syntax_check.as_ref())
        .and_then(|check| syntax_check_argv(check, &fill, &task_root, settings.env))
        .unwrap_or_default();
    Ok(Handler {
        name,
        file,
        method,
        task_root,
        interpreter,
        program,
        args: filled,
        payload,
        needs_home: !settings.env.has_home,
        syntax_check,
        stream_content_type,
        config_sources: config.sources.iter().map(ToString::to_string).collect(),
    })
}

/// The `syntax_check` argv filled in, its program found on `PATH`; `None` when the program is
/// not there (the check is then skipped: it is advice, not a requirement).
fn syntax_check_argv(
    check: &[Template],
    fill: &impl Fn(Placeholder) -> Option<String>,
    task_root: &Path,
    env: &LambdaEnv,
) -> Option<Vec<OsString>> {
    let argv: Vec<OsString> = check.iter().map(|t| t.fill(fill).render(|_| Vec::new())).collect();
    let search = env.path.clone().unwrap_or_default();
    let program = which::which_in(&argv[0], Some(&search), task_root).ok()?;
    Some(std::iter::once(program.into_os_string()).chain(argv.into_iter().skip(1)).collect())
}

/// Whether the response is streamed: `BOOTSTRAP_RESPONSE_MODE`, else the interpreter's
/// `response_mode`.
fn response_mode(env: &LambdaEnv, interpreter: Option<&Interpreter>) -> Result<bool, Diagnostic> {
    let configured = interpreter.map(|i| i.response_mode).unwrap_or_default();
    let mode = match env.response_mode.as_deref() {
        None => configured,
        Some(value) => ResponseMode::parse(value).ok_or_else(|| {
            Diagnostic::new(
                INVALID_CONFIG,
                format!("{ENV_RESPONSE_MODE}={value:?} is not a response mode"),
            )
            .with_hint("use streaming or buffered")
        })?,
    };
    Ok(mode == ResponseMode::Streaming)
}

/// The Content-Type of a streamed response: `BOOTSTRAP_RESPONSE_CONTENT_TYPE`, checked here
/// as a header value, so that a bad one is one init error rather than every event unanswered.
fn stream_content_type(env: &LambdaEnv) -> Result<String, Diagnostic> {
    let Some(value) = env.response_content_type.clone() else {
        return Ok(config::DEFAULT_CONTENT_TYPE.to_string());
    };
    let is_header_value = value.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if value.trim().is_empty() || !is_header_value || value.len() > MAX_CONTENT_TYPE {
        let shown: String = value.chars().take(80).collect();
        return Err(Diagnostic::new(
            INVALID_CONFIG,
            format!("{ENV_RESPONSE_CONTENT_TYPE}={shown:?} cannot be a Content-Type header"),
        )
        .with_hint(format!(
            "set it to a media type of at most {MAX_CONTENT_TYPE} printable ASCII characters, \
             such as {}, or unset it",
            config::HTTP_INTEGRATION_CONTENT_TYPE
        )));
    }
    Ok(value)
}

fn absolute_task_root(task_root: &Path) -> Result<PathBuf, Diagnostic> {
    let invalid = |why: String| {
        Diagnostic::new(INVALID_TASK_ROOT, format!("task root {}: {why}", task_root.display()))
            .with_hint(format!("set {ENV_TASK_ROOT} to the directory holding the function code"))
    };
    let absolute = std::path::absolute(task_root).map_err(|e| invalid(e.to_string()))?;
    match absolute.metadata() {
        Ok(m) if m.is_dir() => Ok(absolute),
        Ok(_) => Err(invalid("is not a directory".into())),
        Err(e) => Err(invalid(e.to_string())),
    }
}

fn load_config(settings: &Settings, task_root: &Path) -> Result<Config, Diagnostic> {
    let mut optional: Vec<PathBuf> = Vec::new();
    if let Some(dir) = settings.exe_dir {
        optional.push(dir.join(CONFIG_FILE_NAME));
    }
    let in_task_root = task_root.join(CONFIG_FILE_NAME);
    if !optional.contains(&in_task_root) {
        optional.push(in_task_root);
    }
    Config::load(&optional, settings.env.config.as_deref()).map_err(|e| {
        let hint = e.hint.clone();
        Diagnostic::new(INVALID_CONFIG, format!("invalid config: {e}")).with_hint(
            hint.unwrap_or_else(|| "fix the entry; the config reference is in the README".into()),
        )
    })
}

fn check_executable(file: &Path) -> Result<(), Diagnostic> {
    let mode = file.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
    if mode & 0o111 != 0 {
        return Ok(());
    }
    Err(Diagnostic::new(
        HANDLER_NOT_FOUND,
        format!("handler file {} has no known extension and is not executable", file.display()),
    )
    .with_hint(
        "chmod +x it (and keep the mode in the zip), or add its extension to an interpreters.toml",
    ))
}

/// The `layers/` directory: `$BOOTSTRAP_RUNNERS`, else beside the executable, else the
/// checkout's `layers/` when bootstrap runs from under its `target/`.
fn find_runners(settings: &Settings) -> Result<PathBuf, Diagnostic> {
    let mut tried: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &settings.env.runners {
        tried.push(dir.clone());
    } else if let Some(exe_dir) = settings.exe_dir {
        tried.push(exe_dir.join(RUNNERS_DIR));
        let checkout =
            exe_dir.ancestors().find(|dir| dir.file_name().is_some_and(|n| n == CARGO_TARGET_DIR));
        if let Some(checkout) = checkout.and_then(Path::parent) {
            tried.push(checkout.join(RUNNERS_DIR));
        }
    }
    if let Some(found) = tried.iter().find(|p| p.is_dir()) {
        return std::fs::canonicalize(found).map_err(|e| {
            Diagnostic::new(INTERPRETER_NOT_FOUND, format!("{}: {e}", found.display()))
        });
    }
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(Diagnostic::new(
        INTERPRETER_NOT_FOUND,
        format!(
            "the language runners directory was not found (looked in: {})",
            if tried.is_empty() {
                "nowhere: the bootstrap path is unknown".into()
            } else {
                tried.join(", ")
            },
        ),
    )
    .with_hint(format!(
        "deploy the whole layer zip, so layers/ sits beside bootstrap, or set {ENV_RUNNERS}"
    )))
}

/// Finds the interpreter program on `PATH` (or at its path, when it holds a `/`).
fn find_program(
    program: &str,
    task_root: &Path,
    env: &LambdaEnv,
    interpreter: Option<&Interpreter>,
) -> Result<PathBuf, Diagnostic> {
    let search = env.path.clone().unwrap_or_default();
    match which::which_in(program, Some(&search), task_root) {
        Ok(path) => Ok(path),
        Err(_) => {
            let (what, hint) = match interpreter {
                Some(i) => (
                    format!("interpreter {program:?} for {} ({})", i.name, i.location()),
                    format!(
                        "bring {program} in a layer (its bin/ lands in /opt/bin, which is on PATH), \
                         or point command at it, e.g. command = [\"/opt/bin/{}\", ...] under [interpreters.{}] \
                         in {}/{CONFIG_FILE_NAME}",
                        program.rsplit('/').next().unwrap_or(program),
                        i.name,
                        task_root.display()
                    ),
                ),
                None => (format!("handler executable {program:?}"), "chmod +x it".to_string()),
            };
            Err(Diagnostic::new(
                INTERPRETER_NOT_FOUND,
                format!("{what} not found; PATH searched: {}", search.to_string_lossy()),
            )
            .with_hint(hint))
        }
    }
}

/// Each argument that names a file under `{runners}` must exist, so a layer missing a
/// runner fails at init rather than at every event.
fn check_runner_files(
    templates: &[Template],
    filled: &[Template],
    runners: &Path,
) -> Result<(), Diagnostic> {
    for (template, filled) in templates.iter().zip(filled) {
        if !template.uses(Placeholder::Runners) {
            continue;
        }
        if let Some(path) = filled.as_literal().map(Path::new)
            && !path.is_file()
        {
            return Err(Diagnostic::new(
                INTERPRETER_NOT_FOUND,
                format!("language runner {} not found in {}", path.display(), runners.display()),
            )
            .with_hint(format!(
                "deploy the whole layer zip (bootstrap, interpreters.toml and layers/), or set \
                 {ENV_RUNNERS}"
            )));
        }
    }
    Ok(())
}
