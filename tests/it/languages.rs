use serde_json::json;

use crate::support::*;

/// (interpreter, fixture directory, extension) of every built-in runner.
const ALL_LANGUAGES: [(&str, &str, &str); 5] = [
    ("perl", "perl", "pl"),
    ("python3", "python", "py"),
    ("node", "node", "js"),
    ("bash", "shell", "sh"),
    ("ruby", "ruby", "rb"),
];

/// The runners whose echo fixture decodes JSON and adds `reply`.
const LANGUAGES: [(&str, &str, &str); 4] = [
    ("perl", "perl", "pl"),
    ("python3", "python", "py"),
    ("node", "node", "js"),
    ("ruby", "ruby", "rb"),
];

/// What the echo fixtures print, which must reach the log and never the response.
const ECHO_LOG_LINE: &str = "log line from handler";

/// A task root in `mode` with `tests/fixtures/<lang>/<fixture>.<ext>` as `<name>.<ext>`.
fn language(lang: &str, ext: &str, fixture: &str, name: &str, mode: Mode) -> Lambda {
    Lambda::new().fixture(&format!("{lang}/{fixture}.{ext}"), &format!("{name}.{ext}")).mode(mode)
}

/// Serves one event with `fixture` in every mode; returns the post and the log of each. The
/// echo fixtures' log line is waited for: a framed worker's output reaches the log on its own
/// thread, maybe after the answer.
fn serve_each_mode(
    lang: &str,
    ext: &str,
    fixture: &str,
    event: Event,
) -> Vec<(Mode, Post, String)> {
    let log_has: &[&str] = if fixture == "echo" { &[ECHO_LOG_LINE] } else { &[] };
    ALL_MODES
        .into_iter()
        .map(|mode| {
            let lambda = language(lang, ext, fixture, "handler", mode);
            let Served { mut posts, log, .. } =
                lambda.serve("handler.handler", vec![event.clone()], log_has);
            (mode, posts.remove(0), log)
        })
        .collect()
}

#[test]
fn echo_in_every_language_keeps_prints_out_of_the_response() {
    for (program, lang, ext) in LANGUAGES {
        if !have(program) {
            continue;
        }
        let event = Event::new("r1", &br#"{"a":[1,"x"]}"#[..]);
        for (mode, post, log) in serve_each_mode(lang, ext, "echo", event) {
            let path = "/2018-06-01/runtime/invocation/r1/response";
            assert_eq!(post.path, path, "{lang} {mode:?}: {}", post.body_text());
            let want = json!({"a": [1, "x"], "reply": format!("{lang} ok")});
            assert_eq!(post.json(), want, "{lang} {mode:?}");
            let in_log = log.contains(ECHO_LOG_LINE);
            assert!(in_log, "{lang} {mode:?}: handler prints belong in the log:\n{log}");
        }
    }
}

#[test]
fn shell_echo_gets_the_event_as_its_first_argument() {
    if !have("bash") {
        return;
    }
    let event = Event::new("r1", &br#"{"s":"$(touch /tmp/x) `id` ; rm -rf /"}"#[..]);
    for (mode, post, log) in serve_each_mode("shell", "sh", "echo", event) {
        assert_eq!(post.body_text(), r#"{"s":"$(touch /tmp/x) `id` ; rm -rf /"}"#, "{mode:?}");
        assert!(log.contains(ECHO_LOG_LINE), "{mode:?}: {log}");
    }
}

#[test]
fn context_reaches_every_language() {
    let cases = ALL_LANGUAGES;
    for (program, lang, ext) in cases {
        if !have(program) {
            continue;
        }
        let event =
            Event::new("ctx-1", "{}").header("Lambda-Runtime-Trace-Id", "Root=1-abc;Sampled=1");
        for (mode, post, _) in serve_each_mode(lang, ext, "context", event) {
            let body = post.json();
            assert_eq!(body["aws_request_id"], "ctx-1", "{lang} {mode:?}: {body}");
            assert_eq!(body["trace_id"], "Root=1-abc;Sampled=1", "{lang} {mode:?}: {body}");
            if lang != "shell" {
                assert_eq!(body["invoked_function_arn"], ARN, "{lang} {mode:?}");
                let remaining = body["remaining_ms"].as_i64().unwrap_or(-1);
                let plausible = (1..=30_000).contains(&remaining);
                assert!(plausible, "{lang} {mode:?}: remaining_ms {remaining}");
            }
        }
    }
}

#[test]
fn handler_errors_keep_their_class_name() {
    let cases = [
        ("perl", "perl", "pl", "Error", "Function.Error"),
        ("python3", "python", "py", "ValueError", "Function.ValueError"),
        ("node", "node", "js", "TypeError", "Function.TypeError"),
        // AWS's Ruby runtime names it so; Lambda keeps only PascalCase in the header.
        ("ruby", "ruby", "rb", "Function<ArgumentError>", "Function.Unhandled"),
    ];
    for (program, lang, ext, error_type, header) in cases {
        if !have(program) {
            continue;
        }
        for (mode, post, _) in serve_each_mode(lang, ext, "raise", Event::new("r1", "{}")) {
            assert_eq!(post.path, "/2018-06-01/runtime/invocation/r1/error", "{lang} {mode:?}");
            assert_error(&post, error_type, &["bad input"]);
            let got = post.header("Lambda-Runtime-Function-Error-Type");
            assert_eq!(got, Some(header), "{lang} {mode:?}");
            if lang == "python" {
                let trace = post.json()["stackTrace"].to_string();
                assert!(trace.contains("raise ValueError"), "{mode:?} python traceback: {trace}");
            }
        }
    }
}

#[test]
fn a_failing_shell_function_is_an_exit_error_with_its_stderr() {
    if !have("bash") {
        return;
    }
    for (mode, post, _) in serve_each_mode("shell", "sh", "raise", Event::new("r1", "{}")) {
        // Plain mode also shows the function's last stderr lines.
        let expected: &[&str] =
            if mode == Mode::Plain { &["status 3", "bad input"] } else { &["status 3"] };
        assert_error(&post, "Runtime.ExitError", expected);
    }
}

#[test]
fn code_that_does_not_compile_is_reported_per_language() {
    let cases = [
        ("perl", "perl", "pl", "Runtime.UserCodeSyntaxError"),
        ("python3", "python", "py", "Runtime.UserCodeSyntaxError"),
        ("node", "node", "js", "Runtime.UserCodeSyntaxError"),
        ("ruby", "ruby", "rb", "Init<SyntaxError>"),
    ];
    for (program, lang, ext, error_type) in cases {
        if !have(program) {
            continue;
        }
        for (_, post, _) in serve_each_mode(lang, ext, "syntax", Event::new("r1", "{}")) {
            assert_error(&post, error_type, &[]);
        }
    }
}

#[test]
fn a_missing_method_is_handler_not_found() {
    // Ruby looks the method up per event, as AWS's Ruby runtime does: `aws_ruby` tests it.
    let cases = ALL_LANGUAGES.into_iter().filter(|(_, lang, _)| *lang != "ruby");
    for (program, lang, ext) in cases {
        if !have(program) {
            continue;
        }
        for mode in ALL_MODES {
            let run = language(lang, ext, "echo", "h", mode).start("h.nosuchmethod");
            // A framed runner finds out at load, before any event: an init error, as on AWS;
            // a plain process loads the handler with each event, so it is that event's error.
            let post = if mode == Mode::Plain {
                run.error_for(Event::new("r1", "{}"))
            } else {
                run.api.expect_post("/runtime/init/error")
            };
            assert_error(&post, "Runtime.HandlerNotFound", &["nosuchmethod"]);
        }
    }
}

#[test]
fn perl_finds_methods_in_a_package_named_after_the_file() {
    if !have("perl") {
        return;
    }
    let run = Lambda::new().fixture("perl/Pkg.pm", "lib/Pkg.pm").start("lib/Pkg.handler");
    assert_eq!(run.response_to(Event::new("r1", "abc")).body_text(), "pkg:abc");
    drop(run);
    let run = Lambda::new().fixture("perl/Pkg.pm", "Pkg.pm").start("Pkg.Pkg::handler");
    assert_eq!(run.response_to(Event::new("r1", "q")).body_text(), "pkg:q");
}

#[test]
fn an_executable_gets_the_event_on_stdin_the_method_as_argument_and_the_task_root_as_cwd() {
    let run = Lambda::new()
        .script("bin/run", "#!/bin/sh\nprintf '%s|%s|' \"$1\" \"$(pwd)\"\ncat\n")
        .start("bin/run.go");
    let post = run.response_to(Event::new("r1", "EVENT"));
    let cwd = std::fs::canonicalize(run.root()).unwrap();
    assert_eq!(post.body_text(), format!("go|{}|EVENT", cwd.display()));
}

#[test]
fn per_event_variables_never_leak_into_the_next_event() {
    let script = "#!/bin/sh\nprintf '%s|%s|%s|%s|%s|%s' \"$HOME\" \"$LAMBDA_RUNTIME_AWS_REQUEST_ID\" \"${_X_AMZN_TRACE_ID-unset}\" \
                  \"${LAMBDA_RUNTIME_CLIENT_CONTEXT-unset}\" \"${LAMBDA_RUNTIME_COGNITO_IDENTITY-unset}\" \"${LAMBDA_RUNTIME_AWS_TENANT_ID-unset}\"\n";
    // The bootstrap's own environment holds a stale trace id: it must not reach a handler.
    let run =
        Lambda::new().script("env", script).env("_X_AMZN_TRACE_ID", "stale").start("env.handler");
    let event = Event::new("r1", "{}")
        .header("Lambda-Runtime-Trace-Id", "Root=1-a")
        .header("Lambda-Runtime-Client-Context", "{\"c\":1}")
        .header("Lambda-Runtime-Cognito-Identity", "{\"i\":2}")
        .header("Lambda-Runtime-Aws-Tenant-Id", "t-1");
    run.assert_serves(event, "/tmp|r1|Root=1-a|{\"c\":1}|{\"i\":2}|t-1");
    run.assert_serves(Event::new("r2", "{}"), "/tmp|r2|unset|unset|unset|unset");
}

#[test]
fn php_runs_from_the_example_entry() {
    for (program, file, code) in [(
        "php",
        "h.php",
        "<?php echo 'php:' . $argv[1] . ':' . file_get_contents('php://stdin');\n",
    )] {
        if !have(program) {
            continue;
        }
        let run = Lambda::new().write(file, code).start("h.handler");
        let post = run.response_to(Event::new("r1", "{}"));
        assert_eq!(post.body_text(), format!("{}:handler:{{}}", program), "{program}");
    }
}

#[test]
fn every_language_recovers_from_a_hang_a_crash_and_an_exit() {
    let cases = ALL_LANGUAGES;
    let threads: Vec<_> = cases
        .into_iter()
        .filter(|(program, _, _)| have(program))
        .flat_map(|(_, lang, ext)| ALL_MODES.map(|mode| (lang, ext, mode)))
        .map(|(lang, ext, mode)| {
            std::thread::spawn(move || {
                let run = language(lang, ext, "misbehave", "m", mode).start("m.handler");
                let body = misbehave_then_serve(&run, lang);
                assert!(body == "fine" || body == "\"fine\"", "{lang} {mode:?}: {body}");
                run.assert_children_at_most(if mode == Mode::Plain { 0 } else { 1 });
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a language failed; see its panic above");
    }
}
