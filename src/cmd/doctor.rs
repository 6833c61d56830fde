//! `bootstrap check --opt DIR`: a pre-deploy check of an unzipped function and layer.
//!
//! It runs init as Lambda would (the layer directory standing in for `/opt`, Lambda's `PATH`)
//! and looks for what breaks a deployment but not a local run: a lost run bit, CRLF line
//! endings, an interpreter that only this machine has. Each finding names the file and the fix.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::env::LambdaEnv;
use crate::init::config::CONFIG_FILE_NAME;
use crate::init::{self, Handler, Settings};
use crate::invocation::Diagnostic;
use crate::run::syntax_check::{self, Verdict};

/// Lambda's `PATH` on provided.al2023 after `/opt`, which is searched through the layer dir.
const SYSTEM_PATH: [&str; 4] = ["/var/lang/bin", "/usr/local/bin", "/usr/bin", "/bin"];
/// How much of a file we read to look for CRLF line endings.
const SCAN_BYTES: u64 = 1024 * 1024;

/// One thing that would break (or may break) the deployed function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub problem: String,
    pub fix: String,
}

/// What the check found, and what init resolved when it could.
pub struct Report {
    pub handler: Option<Handler>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
}

/// Checks `task_root` (the unzipped function) with `opt` (the unzipped layer) as `/opt`.
pub fn check(handler_name: &str, task_root: &Path, opt: &Path, env: &LambdaEnv) -> Report {
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    check_layer_bootstrap(opt, &mut findings);
    let layer_config = opt.join(CONFIG_FILE_NAME);
    if has_crlf(&layer_config) {
        findings.push(crlf_finding(&layer_config));
    }
    let lambda_env = LambdaEnv {
        path: Some(lambda_path(opt)),
        runners: None,
        config: env.config.clone(),
        has_home: false,
        ..env.clone()
    };
    let settings =
        Settings { handler: handler_name, task_root, env: &lambda_env, exe_dir: Some(opt) };
    let handler = match init::resolve(&settings) {
        Ok(handler) => Some(handler),
        Err(diagnostic) => {
            if has_crlf(&task_root.join(CONFIG_FILE_NAME)) {
                findings.push(crlf_finding(&task_root.join(CONFIG_FILE_NAME)));
            }
            findings.push(diagnostic_finding(&diagnostic));
            None
        }
    };
    if let Some(handler) = &handler {
        findings.extend(file_findings(handler));
        let program = &handler.program;
        let in_deployment = program.starts_with(opt) || program.starts_with(&handler.task_root);
        if !in_deployment && handler.interpreter.is_some() {
            notes.push(format!(
                "{} comes from this machine's {}; provided.al2023 ships no Perl, Python, Node or Ruby, \
                 so bring it in a layer (its bin/ is {}/bin here, /opt/bin on Lambda)",
                program.display(),
                program.parent().map(|p| p.display().to_string()).unwrap_or_default(),
                opt.display()
            ));
        }
    }
    Report { handler, findings, notes }
}

/// What `bootstrap check` finds in the function's own files: CRLF line endings in the handler
/// or the task root's `interpreters.toml`, and what the interpreter's syntax check says.
pub fn file_findings(handler: &Handler) -> Vec<Finding> {
    let mut findings = Vec::new();
    let config = handler.task_root.join(CONFIG_FILE_NAME);
    if has_crlf(&config) {
        findings.push(crlf_finding(&config));
    }
    if is_script(&handler.file) && has_crlf(&handler.file) {
        findings.push(crlf_finding(&handler.file));
    }
    if let Verdict::Failed(diagnostic) = syntax_check::run(handler) {
        findings.push(diagnostic_finding(&diagnostic));
    }
    findings
}

/// An error as a finding: its message, and its hint as the fix.
fn diagnostic_finding(diagnostic: &Diagnostic) -> Finding {
    Finding {
        problem: format!("{}: {}", diagnostic.error_type, diagnostic.error_message),
        fix: diagnostic.hint.clone().unwrap_or_else(|| "see the message above".to_string()),
    }
}

/// `/var/lang/bin:/usr/local/bin:/usr/bin:/bin:<opt>/bin`, Lambda's order.
fn lambda_path(opt: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = SYSTEM_PATH.iter().map(PathBuf::from).collect();
    dirs.push(opt.join("bin"));
    std::env::join_paths(dirs).unwrap_or_default()
}

fn check_layer_bootstrap(opt: &Path, findings: &mut Vec<Finding>) {
    let bootstrap = opt.join("bootstrap");
    match fs::metadata(&bootstrap) {
        Err(_) => findings.push(Finding {
            problem: format!(
                "no bootstrap at {}: Lambda would fail with Runtime.InvalidEntrypoint",
                bootstrap.display()
            ),
            fix: "put bootstrap at the root of the layer zip (make layer does)".into(),
        }),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => findings.push(Finding {
            problem: format!(
                "{} is not executable: Lambda would fail with Runtime.InvalidEntrypoint",
                bootstrap.display()
            ),
            fix: format!(
                "chmod +x {} and zip with a tool that keeps the mode (zip, not a Windows archiver)",
                bootstrap.display()
            ),
        }),
        Ok(_) => {}
    }
}

/// Scripts break with CRLF (`/bin/sh^M: not found`, `$'\r': command not found`).
fn is_script(file: &Path) -> bool {
    let mut head = [0u8; 2];
    let starts_with_shebang =
        File::open(file).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"#!";
    starts_with_shebang
        || file.extension().is_some_and(|e| {
            ["sh", "pl", "pm", "py", "rb", "js", "mjs", "cjs", "php"].iter().any(|s| e == *s)
        })
}

fn has_crlf(file: &Path) -> bool {
    let mut bytes = Vec::new();
    let read = File::open(file).and_then(|f| f.take(SCAN_BYTES).read_to_end(&mut bytes));
    read.is_ok() && bytes.windows(2).any(|w| w == b"\r\n")
}

fn crlf_finding(file: &Path) -> Finding {
    Finding {
        problem: format!("{} has CRLF (Windows) line endings", file.display()),
        fix: format!("convert it to LF: sed -i 's/\\r$//' {}", file.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_path_ends_with_the_layer_bin() {
        let path = lambda_path(Path::new("/x/opt"));
        assert_eq!(path, OsString::from("/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/x/opt/bin"));
    }
}
