//! `interpreters.toml`: the built-in layer, then the fuzz input as a user's file on top.
//!
//! A refused file is named at the start of the message (the user must know which file to
//! fix). An accepted config is usable as it stands: every interpreter can be chosen by some
//! extension (but see `emptied`) and has a program to run, every extension leads to exactly
//! one interpreter, and the argv templates mean what they say (payload mode, placeholders,
//! and `Display` reparses to the same template).

#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use bootstrap::init::config::{BUILTIN_CONFIG, Config, Interpreter, PayloadVia, Source};
use bootstrap::init::template::{Placeholder, Template};
use libfuzzer_sys::fuzz_target;

const USER_FILE: &str = "/var/task/interpreters.toml";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let user = Source::File(PathBuf::from(USER_FILE));
    let layers = vec![(Source::BuiltIn, BUILTIN_CONFIG.to_string()), (user.clone(), text.clone())];
    match Config::from_layers(layers) {
        Ok(config) => check_config(&config, &user, &text),
        Err(error) => {
            // The built-in layer is always valid, so the user's file is the one refused.
            assert_eq!(error.source, user, "{error}");
            let shown = error.to_string();
            assert!(shown.starts_with(&format!("{USER_FILE}: ")), "unnamed file: {shown}");
            assert!(shown.len() > USER_FILE.len() + 2, "no reason given: {shown:?}");
        }
    }
});

fn check_config(config: &Config, user: &Source, text: &str) {
    assert_eq!(config.sources, vec![Source::BuiltIn, user.clone()]);
    let builtin = builtin_extensions();
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    for interpreter in config.interpreters() {
        let name = interpreter.name.as_str();
        if interpreter.extensions.is_empty() {
            emptied(config, interpreter);
        }
        for ext in &interpreter.extensions {
            assert!(!ext.is_empty() && !ext.starts_with('.'), "{name}: extension {ext:?}");
            assert!(
                ext.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)),
                "{name}: extension {ext:?} holds characters a file name extension cannot"
            );
            if let Some(other) = owner.insert(ext, name) {
                panic!("extension {ext:?} belongs to both {other} and {name}");
            }
            let chosen = config.for_extension(ext).expect("a listed extension finds nothing");
            assert!(chosen.extensions.contains(ext), "{ext:?} chose {}", chosen.name);
        }
        check_command(interpreter);
        match &interpreter.source {
            Source::BuiltIn => {
                // Untouched by the user's file, except for extensions it took.
                let all = &builtin[name];
                assert!(interpreter.extensions.iter().all(|e| all.contains(e)), "{name}");
            }
            source => {
                assert_eq!(source, user, "{name}");
                let lines = text.split('\n').count();
                assert!((1..=lines).contains(&interpreter.line), "{name}: line {}", interpreter.line);
            }
        }
    }
    for ext in config.extensions() {
        assert!(owner.contains_key(ext), "extensions() yields {ext:?}, which no interpreter lists");
    }
}

fn check_command(interpreter: &Interpreter) {
    let name = &interpreter.name;
    let command = &interpreter.command;
    assert!(!command.is_empty(), "{name}: empty command");
    let program = &command[0];
    assert!(
        !program.placeholders().any(Placeholder::is_per_event),
        "{name}: the program {program} depends on the event"
    );
    // The program may still hold {runners} etc., but not be blank text.
    if let Some(literal) = program.as_literal() {
        assert!(!literal.trim().is_empty(), "{name}: blank program");
    }
    let uses = |p| command.iter().any(|t| t.uses(p));
    let expected = match (uses(Placeholder::Event), uses(Placeholder::EventFile)) {
        (false, false) => PayloadVia::Stdin,
        (true, false) => PayloadVia::Argument,
        (false, true) => PayloadVia::File,
        (true, true) => panic!("{name}: uses both {{event}} and {{event_file}}"),
    };
    assert_eq!(interpreter.payload, expected, "{name}");
    for template in command {
        let shown = template.to_string();
        let reparsed = Template::parse(&shown)
            .unwrap_or_else(|e| panic!("{name}: {shown:?} does not reparse: {e}"));
        assert_eq!(&reparsed, template, "{name}: {shown:?} reparses to something else");
    }
}

/// An interpreter that no extension selects: dead weight in the config, which `from_layers`
/// drops (a later layer that claims an extension takes it from earlier interpreters).
fn emptied(_config: &Config, interpreter: &Interpreter) {
    panic!("{} is left without extensions", interpreter.name);
}

/// Each built-in interpreter's extensions, as the built-in file lists them.
fn builtin_extensions() -> &'static BTreeMap<String, Vec<String>> {
    static BUILTIN: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    BUILTIN.get_or_init(|| {
        let config = Config::from_layers(vec![(Source::BuiltIn, BUILTIN_CONFIG.to_string())])
            .expect("the built-in config is valid");
        config.interpreters().map(|i| (i.name.clone(), i.extensions.clone())).collect()
    })
}
