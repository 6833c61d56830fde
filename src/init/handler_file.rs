//! Finds the file `_HANDLER` names, per language. Each interpreter reads the name with its own
//! `HandlerSyntax`, as AWS's runtime for that language does (`pkg.module.handler` for Python,
//! `app.nested.handler` for Node, `app.Module::Klass.method` for Ruby, `<path>.<method>` for
//! the rest), and exactly one interpreter, or an executable, must claim an existing file.
//!
//! A name that no file matches is the runner's to report when the task root holds files of one
//! AWS language only: its runner then says what AWS's runtime says for a module that is not
//! there. Everything else that cannot be resolved is a `Diagnostic` here.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::config::{Config, HandlerSyntax, Interpreter};
use super::handler_name::HandlerName;
use crate::env::ENV_HANDLER;
use crate::invocation::Diagnostic;
use crate::invocation::error_type::HANDLER_NOT_FOUND;

/// How many directory entries the task root scan for a missing handler's language reads.
const LANGUAGE_SCAN_LIMIT: usize = 1000;
/// How deep below the task root that scan looks (packages hold the code of many functions).
const LANGUAGE_SCAN_DEPTH: usize = 3;

/// What `_HANDLER` resolved to.
#[derive(Debug)]
pub struct Found {
    /// The handler file, absolute. It may not exist when `interpreter`'s runner is left to
    /// report the missing module.
    pub file: PathBuf,
    /// `None`: the file is an executable, run directly.
    pub interpreter: Option<Interpreter>,
    /// The method part as the interpreter's syntax reads it (`{method}`).
    pub method: String,
}

/// One interpreter's reading of the name.
struct Reading<'a> {
    interpreter: &'a Interpreter,
    /// Files the name can mean, in the language's order of precedence.
    candidates: Vec<PathBuf>,
    method: String,
}

/// Resolves the handler file for `name` under `task_root`.
pub fn find(task_root: &Path, config: &Config, name: &HandlerName) -> Result<Found, Diagnostic> {
    let readings: Vec<Reading> =
        config.interpreters().filter_map(|i| read(i, task_root, name)).collect();
    let mut matches: Vec<Found> = Vec::new();
    let mut ambiguous: Vec<PathBuf> = Vec::new();
    for reading in &readings {
        let existing: Vec<&PathBuf> = reading.candidates.iter().filter(|p| p.is_file()).collect();
        let Some(first) = existing.first() else { continue };
        // `<path>.<method>` has no precedence between extensions: two files are ambiguous.
        if reading.interpreter.handler_syntax == HandlerSyntax::FileMethod && existing.len() > 1 {
            ambiguous.extend(existing.iter().map(|p| (*p).clone()));
            continue;
        }
        matches.push(Found {
            file: (*first).clone(),
            interpreter: Some(reading.interpreter.clone()),
            method: reading.method.clone(),
        });
    }
    if let Some(executable) = executable_candidate(task_root, config, name, &matches) {
        matches.push(executable);
    }
    ambiguous.extend(matches.iter().map(|m| m.file.clone()));
    ambiguous.dedup();
    if ambiguous.len() > 1 {
        return Err(ambiguity(task_root, name, &ambiguous));
    }
    if let Some(found) = matches.pop() {
        return Ok(found);
    }
    if let Some(found) = left_to_the_runner(task_root, config, &readings) {
        return Ok(found);
    }
    Err(not_found(name, &readings))
}

/// The files `interpreter` would take `name` to mean, or `None` when its syntax cannot read
/// the name (a Node property path that is not one, say).
fn read<'a>(
    interpreter: &'a Interpreter,
    task_root: &Path,
    name: &HandlerName,
) -> Option<Reading<'a>> {
    let extensions = &interpreter.extensions;
    let (method, candidates) = match interpreter.handler_syntax {
        HandlerSyntax::FileMethod => {
            let stem = task_root.join(&name.path);
            let own = stem.extension().and_then(|e| e.to_str());
            let mut candidates = Vec::new();
            if own.is_some_and(|own| extensions.iter().any(|e| e == own)) {
                candidates.push(stem.clone());
            }
            candidates.extend(extensions.iter().map(|ext| with_extension_added(&stem, ext)));
            (name.method.clone(), candidates)
        }
        HandlerSyntax::Python => {
            // awslambdaric imports the module path with `/` read as `.`: a package's
            // `__init__` comes before a module of the same name, as Python's import does.
            let module = task_root.join(name.path.replace('.', "/"));
            let mut candidates: Vec<PathBuf> =
                extensions.iter().map(|ext| module.join(format!("__init__.{ext}"))).collect();
            candidates.extend(extensions.iter().map(|ext| with_extension_added(&module, ext)));
            (name.method.clone(), candidates)
        }
        HandlerSyntax::Node | HandlerSyntax::Ruby | HandlerSyntax::FirstDot => {
            let text = name.text();
            let (dir, base) = text.rsplit_once('/').map_or(("", text.as_str()), |(d, b)| (d, b));
            let (module, method) = base.split_once('.')?;
            let valid = match interpreter.handler_syntax {
                HandlerSyntax::Node => is_property_path(method),
                HandlerSyntax::Ruby => is_ruby_method(method),
                // A name the runner looks up; a dotted one is its to refuse, in its words.
                _ => method.split('.').all(|part| is_property_path(&part.replace("::", "_"))),
            };
            if module.is_empty() || !valid {
                return None;
            }
            let stem = task_root.join(dir).join(module);
            let mut candidates = Vec::new();
            // AWS's Node runtime takes a file without extension first; one that starts like
            // an executable (`#!`, ELF) is left to be run as one.
            if interpreter.handler_syntax == HandlerSyntax::Node && !looks_executable(&stem) {
                candidates.push(stem.clone());
            }
            candidates.extend(extensions.iter().map(|ext| with_extension_added(&stem, ext)));
            (method.to_string(), candidates)
        }
    };
    Some(Reading { interpreter, candidates, method })
}

/// `<path>` itself, when no interpreter claims its extension: run directly if it may be.
fn executable_candidate(
    task_root: &Path,
    config: &Config,
    name: &HandlerName,
    matches: &[Found],
) -> Option<Found> {
    let file = task_root.join(&name.path);
    let claimed = file.extension().and_then(|e| e.to_str()).and_then(|e| config.for_extension(e));
    let taken = matches.iter().any(|m| m.file == file);
    (file.is_file() && claimed.is_none() && !taken).then(|| Found {
        file,
        interpreter: None,
        method: name.method.clone(),
    })
}

/// When no file matches and the task root's files are all of one AWS language, that
/// language's runner reports the missing module in its own words.
fn left_to_the_runner(task_root: &Path, config: &Config, readings: &[Reading]) -> Option<Found> {
    let languages = languages_in(task_root, config);
    let [language] = languages.as_slice() else { return None };
    let reading = readings.iter().find(|r| r.interpreter.name == *language)?;
    if reading.interpreter.handler_syntax == HandlerSyntax::FileMethod {
        return None;
    }
    // The file the runtime would have loaded first: the plain module for Python, the
    // extension-less path for Node, `<file>.rb` for Ruby.
    let file = match reading.interpreter.handler_syntax {
        HandlerSyntax::Python => reading.candidates.last()?.clone(),
        _ => reading.candidates.first()?.clone(),
    };
    Some(Found {
        file,
        interpreter: Some(reading.interpreter.clone()),
        method: reading.method.clone(),
    })
}

/// The interpreters whose files the task root holds, looking `LANGUAGE_SCAN_DEPTH` levels deep
/// and at `LANGUAGE_SCAN_LIMIT` entries at most; dependency folders (`node_modules`, hidden
/// ones) are not the function's own code.
fn languages_in<'a>(task_root: &Path, config: &'a Config) -> Vec<&'a str> {
    let mut languages: Vec<&str> = Vec::new();
    let mut dirs = vec![(task_root.to_path_buf(), 0)];
    let mut seen = 0;
    while let Some((dir, depth)) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > LANGUAGE_SCAN_LIMIT {
                return languages;
            }
            let (path, name) = (entry.path(), entry.file_name());
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                let skipped = name.to_string_lossy().starts_with('.') || name == "node_modules";
                if depth + 1 < LANGUAGE_SCAN_DEPTH && !skipped {
                    dirs.push((path, depth + 1));
                }
                continue;
            }
            let ext = path.extension().and_then(|e| e.to_str());
            if let Some(interpreter) = ext.and_then(|e| config.for_extension(e))
                && !languages.contains(&interpreter.name.as_str())
            {
                languages.push(&interpreter.name);
            }
        }
    }
    languages
}

fn not_found(name: &HandlerName, readings: &[Reading]) -> Diagnostic {
    let tried: Vec<String> = readings
        .iter()
        .flat_map(|r| r.candidates.iter().map(|p| p.display().to_string()))
        .collect();
    let exts: Vec<&str> =
        readings.iter().flat_map(|r| r.interpreter.extensions.iter().map(String::as_str)).collect();
    Diagnostic::new(
        HANDLER_NOT_FOUND,
        format!(
            "handler file not found for {}: no {} or {}.{{{}}}; looked for {}",
            name.text(),
            name.path,
            name.path,
            exts.join(","),
            tried.join(", "),
        ),
    )
    .with_hint(format!(
        "check {ENV_HANDLER} against the files in the zip; to run another extension, add it to \
         an interpreters.toml"
    ))
}

fn ambiguity(task_root: &Path, name: &HandlerName, files: &[PathBuf]) -> Diagnostic {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let first = files[0].strip_prefix(task_root).unwrap_or(&files[0]);
    Diagnostic::new(
        HANDLER_NOT_FOUND,
        format!("handler {} is ambiguous: it matches {}", name.text(), names.join(" and ")),
    )
    .with_hint(format!(
        "name the file with its extension in {ENV_HANDLER}, e.g. {}.{}, or remove one",
        first.display(),
        name.method,
    ))
}

/// `lambda_script` + `pl` → `lambda_script.pl` (appends, so `a.b` + `pl` → `a.b.pl`).
pub fn with_extension_added(base: &Path, ext: &str) -> PathBuf {
    let mut s: OsString = base.as_os_str().to_os_string();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Whether `file` is to be run directly: it has a run bit, or starts with `#!` or ELF's magic.
fn looks_executable(file: &Path) -> bool {
    let Ok(metadata) = file.metadata() else { return false };
    if metadata.permissions().mode() & 0o111 != 0 {
        return true;
    }
    let mut head = [0u8; 4];
    let read = File::open(file).and_then(|mut f| f.read(&mut head)).unwrap_or(0);
    head[..read].starts_with(b"#!") || head[..read].starts_with(b"\x7fELF")
}

/// `a.b.c`: dot-separated JavaScript identifiers, as AWS's Node runtime walks them.
fn is_property_path(path: &str) -> bool {
    path.split('.').all(|part| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    })
}

/// `method` or `Module::Klass.method`: constants joined by `::`, then a method name.
fn is_ruby_method(text: &str) -> bool {
    let (namespace, method) = text.rsplit_once('.').map_or((None, text), |(n, m)| (Some(n), m));
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let method_ok = {
        let bare = method.strip_suffix(['?', '!']).unwrap_or(method);
        word(bare) && !bare.as_bytes()[0].is_ascii_digit()
    };
    let namespace_ok = namespace
        .is_none_or(|n| n.split("::").all(|c| word(c) && c.as_bytes()[0].is_ascii_uppercase()));
    method_ok && namespace_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_property_paths_and_ruby_methods_are_names_only() {
        assert!(is_property_path("handler"));
        assert!(is_property_path("nested.export.$path"));
        for bad in ["", "a..b", "a.", "a(b)", "a[0]", "a b"] {
            assert!(!is_property_path(bad), "{bad:?}");
        }
        assert!(is_ruby_method("handler"));
        assert!(is_ruby_method("Module::Klass.process?"));
        for bad in ["", "Mod::.x", "mod::K.x", "K.", "K.1x", "K.x y", "system('id')"] {
            assert!(!is_ruby_method(bad), "{bad:?}");
        }
    }

    #[test]
    fn appends_extensions() {
        assert_eq!(with_extension_added(Path::new("/t/a.b"), "pl"), PathBuf::from("/t/a.b.pl"));
    }
}
