//! `bootstrap check`: what init resolves for a handler, then what would break it: the handler
//! file's syntax as its interpreter reads it and CRLF line endings; with `--opt`, a function
//! and layer as they would be deployed (`doctor`).

use std::path::Path;

use super::doctor::{self, Finding};
use crate::cli::Target;
use crate::env::LambdaEnv;

/// Prints what init resolved and each problem with its fix; `Ok(false)` when there were
/// problems (they are printed), an error when init itself failed.
pub fn run(env: &LambdaEnv, target: &Target, opt: Option<&Path>) -> anyhow::Result<bool> {
    if let Some(opt) = opt {
        return deployment(env, target, opt);
    }
    let handler = super::resolve(env, target)?;
    println!("{handler}");
    let findings = doctor::file_findings(&handler);
    print_findings(&findings);
    Ok(findings.is_empty())
}

fn deployment(env: &LambdaEnv, target: &Target, opt: &Path) -> anyhow::Result<bool> {
    let name = super::handler_name(env, target)?;
    let task_root = super::task_root(env, target);
    let report = doctor::check(name, &task_root, opt, env);
    if let Some(handler) = &report.handler {
        println!("{handler}");
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    print_findings(&report.findings);
    match report.findings.len() {
        0 => println!(
            "ok: {name} in {} with {} as /opt is ready to deploy",
            task_root.display(),
            opt.display()
        ),
        n => println!("{n} problem{} found", if n == 1 { "" } else { "s" }),
    }
    Ok(report.findings.is_empty())
}

fn print_findings(findings: &[Finding]) {
    for finding in findings {
        println!("problem: {}\n  fix: {}", finding.problem, finding.fix);
    }
}
