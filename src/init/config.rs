//! `interpreters.toml`: which program runs a handler file, by its extension, layered.
//!
//! Two stages, as ripgrep does with its flags: `entry` reads what a file wrote (unknown keys
//! are errors) and validates each entry into an `Interpreter`; `Config` layers them: the
//! built-in defaults, then each file that exists, a later entry changing the keys it sets of an
//! earlier one of the same name. Finding the interpreter program on `PATH` is left to `init`,
//! which resolves only the one interpreter actually used.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

pub use super::interpreter::{
    BUILTIN_CONFIG, ConfigError, HandlerSyntax, Interpreter, Isolation, P5_CONVENTION, PayloadVia,
    Protocol, ResponseMode, Source,
};
use crate::env::ENV_CONFIG;

/// The file name looked for beside the executable and in the task root.
pub const CONFIG_FILE_NAME: &str = "interpreters.toml";

/// The content type of a plain stream of bytes.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// The content type of a stream that opens with a JSON prelude and 8 NUL bytes, as function
/// URLs and API Gateway read it.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str =
    "application/vnd.awslambda.http-integration-response";

/// All interpreters after layering, and the files that were read.
#[derive(Debug, Clone)]
pub struct Config {
    interpreters: BTreeMap<String, Interpreter>,
    pub sources: Vec<Source>,
}

impl Config {
    /// Reads the layers in order: built-in, then each path that exists. `required` paths
    /// (`BOOTSTRAP_CONFIG`) must exist; the others are skipped when absent.
    pub fn load(optional: &[PathBuf], required: Option<&Path>) -> Result<Config, ConfigError> {
        let mut layers = vec![(Source::BuiltIn, BUILTIN_CONFIG.to_string())];
        for path in optional {
            match fs::read_to_string(path) {
                Ok(text) => layers.push((Source::File(path.clone()), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(read_error(path, &e)),
            }
        }
        if let Some(path) = required {
            let text = fs::read_to_string(path).map_err(|e| ConfigError {
                hint: Some(format!(
                    "{ENV_CONFIG} names a file that cannot be read; fix the path or unset it"
                )),
                ..read_error(path, &e)
            })?;
            layers.push((Source::File(path.to_path_buf()), text));
        }
        Config::from_layers(layers)
    }

    /// Merges layers of TOML text; pure, for tests and fuzzing. Linear in the number of
    /// entries: each extension has one owner, looked up rather than searched for.
    pub fn from_layers(layers: Vec<(Source, String)>) -> Result<Config, ConfigError> {
        let mut config = Config { interpreters: BTreeMap::new(), sources: Vec::new() };
        let mut owner: BTreeMap<String, String> = BTreeMap::new();
        for (source, text) in layers {
            let interpreters = super::entry::parse_layer(&source, &text, &config.interpreters)?;
            for interpreter in interpreters {
                // An extension claimed by this entry is taken from whichever had it before.
                for ext in &interpreter.extensions {
                    let Some(previous) = owner.insert(ext.clone(), interpreter.name.clone()) else {
                        continue;
                    };
                    if previous == interpreter.name {
                        continue;
                    }
                    if let Some(other) = config.interpreters.get_mut(&previous) {
                        other.extensions.retain(|e| e != ext);
                        // One left with no extension can never be chosen.
                        if other.extensions.is_empty() {
                            config.interpreters.remove(&previous);
                        }
                    }
                }
                // Extensions this entry had before and no longer lists are free again.
                if let Some(before) = config.interpreters.get(&interpreter.name) {
                    for ext in &before.extensions {
                        if !interpreter.extensions.contains(ext) {
                            owner.remove(ext);
                        }
                    }
                }
                config.interpreters.insert(interpreter.name.clone(), interpreter);
            }
            config.sources.push(source);
        }
        Ok(config)
    }

    /// The interpreter for a file extension (no dot).
    pub fn for_extension(&self, extension: &str) -> Option<&Interpreter> {
        self.interpreters.values().find(|i| i.extensions.iter().any(|e| e == extension))
    }

    /// Every configured extension, in a stable order.
    pub fn extensions(&self) -> impl Iterator<Item = &str> {
        self.interpreters.values().flat_map(|i| i.extensions.iter().map(String::as_str))
    }

    pub fn interpreters(&self) -> impl Iterator<Item = &Interpreter> {
        self.interpreters.values()
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError {
        source: Source::File(path.to_path_buf()),
        message: format!("cannot read the file: {e}"),
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Source {
        Source::File(PathBuf::from(name))
    }

    fn layer(text: &str) -> Result<Config, ConfigError> {
        Config::from_layers(vec![
            (Source::BuiltIn, BUILTIN_CONFIG.into()),
            (file("/t/i.toml"), text.into()),
        ])
    }

    #[test]
    fn builtin_config_has_the_four_languages() {
        let config = Config::from_layers(vec![(Source::BuiltIn, BUILTIN_CONFIG.into())]).unwrap();
        for (ext, name) in [
            ("pl", "perl"),
            ("pm", "perl"),
            ("py", "python"),
            ("sh", "shell"),
            ("js", "node"),
            ("mjs", "node"),
        ] {
            assert_eq!(config.for_extension(ext).map(|i| i.name.as_str()), Some(name), "{ext}");
        }
    }

    #[test]
    fn the_awk_example_from_the_docs_works() {
        let config = layer(
            "[interpreters.awk]\nextensions = [\"awk\"]\ncommand = [\"awk\", \"-f\", \"{file}\"]\n",
        )
        .unwrap();
        let awk = config.for_extension("awk").unwrap();
        assert_eq!(awk.payload, PayloadVia::Stdin);
        assert_eq!(awk.line, 1);
        assert_eq!(awk.command.len(), 3);
    }

    #[test]
    fn later_layers_replace_by_name_and_take_extensions() {
        let config = layer("[interpreters.myperl]\nextensions = [\"pl\"]\ncommand = [\"/opt/bin/perl\", \"{file}\"]\n").unwrap();
        assert_eq!(config.for_extension("pl").unwrap().name, "myperl");
        assert_eq!(config.for_extension("pm").unwrap().name, "perl");
        let replaced = layer(
            "[interpreters.perl]\nextensions = [\"perl\"]\ncommand = [\"perl\", \"{file}\"]\n",
        )
        .unwrap();
        assert!(replaced.for_extension("pl").is_none());
        assert_eq!(replaced.for_extension("perl").unwrap().source, file("/t/i.toml"));
    }

    #[test]
    fn payload_follows_the_placeholders() {
        let arg = layer("[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{event}\"]\n")
            .unwrap();
        assert_eq!(arg.for_extension("x").unwrap().payload, PayloadVia::Argument);
        let file_ = layer(
            "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"--in={event_file}\"]\n",
        )
        .unwrap();
        assert_eq!(file_.for_extension("x").unwrap().payload, PayloadVia::File);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let cases = [
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\"]\ninterpeter = 1\n",
                "unknown field `interpeter`",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\n\ncommand = []\n",
                "line 4: [interpreters.x] command: is empty",
            ),
            (
                "[interpreters.x]\nextensions = [\".x\"]\ncommand = [\"x\"]\n",
                "line 2: [interpreters.x] extensions: \".x\" starts with a dot",
            ),
            ("[interpreters.x]\nextensions = \"x\"\ncommand = [\"x\"]\n", "invalid type"),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{fiel}\"]\n",
                "unknown placeholder {fiel}",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"{event}\"]\n",
                "program position",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{event}\", \"{event_file}\"]\n",
                "both",
            ),
            (
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\"]\n[interpreters.y]\nextensions = [\"x\"]\ncommand = [\"y\"]\n",
                "already claimed",
            ),
            ("[interpreters.x\n", "TOML parse error at line 1"),
            ("[interpreter.x]\n", "unknown field `interpreter`"),
        ];
        for (text, expected) in cases {
            let err = layer(text).unwrap_err();
            assert_eq!(err.source, file("/t/i.toml"), "{text}");
            let shown = err.to_string();
            assert!(shown.starts_with("/t/i.toml: "), "{shown}");
            assert!(shown.contains(expected), "expected {expected:?} in:\n{shown}");
        }
    }

    #[test]
    fn framed_settings_are_checked() {
        let entry = |extra: &str| {
            format!(
                "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{{file}}\"]\n{extra}\n"
            )
        };
        let warm = layer(&entry("protocol = \"framed\"\nevents_per_process = 0\nmax_rss_mb = 512"))
            .unwrap();
        let x = warm.for_extension("x").unwrap();
        assert_eq!(
            (x.protocol, x.events_per_process, x.max_rss_mb),
            (Protocol::Framed, 0, Some(512))
        );
        let default = layer(&entry("protocol = \"framed\"")).unwrap();
        assert_eq!(default.for_extension("x").unwrap().events_per_process, 1);
        for (extra, expected) in [
            ("protocol = \"fremed\"", "unknown variant `fremed`"),
            (
                "events_per_process = 3",
                "line 4: [interpreters.x] events_per_process: only applies to protocol = \"framed\"",
            ),
            ("protocol = \"framed\"\nmax_rss_mb = 0", "max_rss_mb: must be at least 1"),
            ("protocol = \"framed\"\nevents_per_process = -1", "events_per_process"),
        ] {
            let err = layer(&entry(extra)).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in:\n{err}");
        }
        let arg = "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x\", \"{event}\"]\nprotocol = \"framed\"\n";
        assert!(layer(arg).unwrap_err().to_string().contains("passes the event in frames"));
    }

    #[test]
    fn type_errors_carry_a_line_number() {
        let err = layer("[interpreters.x]\nextensions = [\"x\"]\ncommand = \"x\"\n").unwrap_err();
        assert!(err.message.contains("line 3"), "{}", err.message);
    }
}
