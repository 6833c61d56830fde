use crate::support::*;

/// The init error of `lambda` with `handler` (see `Run::expect_init_error`).
#[track_caller]
fn init_error(lambda: &Lambda, handler: &str) -> Post {
    lambda.start(handler).expect_init_error()
}

#[test]
fn malformed_handler_names() {
    let lambda = Lambda::new().script("h", "#!/bin/sh\n");
    for bad in [
        "nodot",
        "h.",
        "h.a-b",
        "h.$(id)",
        "../h.handler",
        "/etc/h.handler",
        "h.handler;rm",
        "h.\nx",
        "h.system('x')",
    ] {
        assert_error(&init_error(&lambda, bad), "Runtime.MalformedHandlerName", &["hint:"]);
    }
}

#[test]
fn a_missing_handler_file_names_what_was_looked_for() {
    let lambda = Lambda::new();
    let mut run = lambda.start("lambda_script.handler");
    let post = run.expect_init_error();
    let log = run.log();
    let expected = lambda.file("lambda_script");
    assert_error(
        &post,
        "Runtime.HandlerNotFound",
        &[&expected.display().to_string(), "pl", "py", "hint:"],
    );
    assert!(log.contains("Runtime.HandlerNotFound"), "{log}");
}

#[test]
fn two_matching_files_are_ambiguous_and_both_are_named() {
    let lambda = Lambda::new().write("h.pl", "1;\n").write("h.py", "\n");
    let post = init_error(&lambda, "h.handler");
    assert_error(&post, "Runtime.HandlerNotFound", &["ambiguous", "h.pl", "h.py"]);
}

#[test]
fn a_file_without_extension_must_be_executable() {
    let post = init_error(&Lambda::new().write("run", "#!/bin/sh\n"), "run.handler");
    assert_error(&post, "Runtime.HandlerNotFound", &["not executable", "chmod +x"]);
}

#[test]
fn a_missing_interpreter_names_it_the_path_and_the_config_entry() {
    let empty = Lambda::new();
    let path = empty.root().display().to_string();
    let post = init_error(&Lambda::new().write("h.pl", "1;\n").env("PATH", &path), "h.handler");
    assert_error(
        &post,
        "Runtime.InterpreterNotFound",
        &[
            "\"perl\"",
            &path,
            "[interpreters.perl]",
            "built-in interpreters.toml",
            "hint:",
            "/opt/bin",
        ],
    );
}

#[test]
fn a_bad_config_file_names_the_file_the_line_and_the_key() {
    let config =
        "[interpreters.ruby]\nextensions = [\"rb\"]\ncommand = [\"ruby\"]\ninterpeter = \"x\"\n";
    let lambda = Lambda::new().write("h.pl", "1;\n").config(config);
    let post = init_error(&lambda, "h.handler");
    let file = lambda.file("interpreters.toml").display().to_string();
    assert_error(&post, "Runtime.InvalidConfig", &[&file, "line 4", "interpeter"]);
}

#[test]
fn config_errors_for_wrong_types_and_empty_commands() {
    for (config, expected) in [
        ("[interpreters.x]\nextensions = \"x\"\ncommand = [\"x\"]\n", "line 2"),
        ("[interpreters.x]\nextensions = [\"x\"]\ncommand = []\n", "command: is empty"),
        ("[interpreters.x\n", "line 1"),
    ] {
        let post = init_error(&Lambda::new().write("h.pl", "1;\n").config(config), "h.handler");
        assert_error(&post, "Runtime.InvalidConfig", &[expected]);
    }
}

#[test]
fn a_bootstrap_config_that_does_not_exist_is_an_error() {
    let lambda = Lambda::new().write("h.pl", "1;\n");
    let missing = lambda.file("nope.toml").display().to_string();
    let post = init_error(&lambda.env("BOOTSTRAP_CONFIG", &missing), "h.handler");
    assert_error(&post, "Runtime.InvalidConfig", &[&missing, "BOOTSTRAP_CONFIG"]);
}

#[test]
fn missing_runners_are_an_init_error() {
    let lambda =
        Lambda::new().write("h.pl", "1;\n").env("BOOTSTRAP_RUNNERS", "/nonexistent/layers");
    let post = init_error(&lambda, "h.handler");
    assert_error(&post, "Runtime.InterpreterNotFound", &["/nonexistent/layers", "layer"]);
}

#[test]
fn an_unset_handler_or_task_root_is_an_error() {
    let lambda = Lambda::new().script("h", "#!/bin/sh\n");
    let post = init_error(&lambda.clone().env_remove("_HANDLER"), "h.handler");
    assert_error(&post, "Runtime.MalformedHandlerName", &["_HANDLER is not set"]);
    let post = init_error(&lambda.clone().env_remove("LAMBDA_TASK_ROOT"), "h.handler");
    assert_error(&post, "Runtime.InvalidTaskRoot", &["LAMBDA_TASK_ROOT is not set"]);
    let post = init_error(&lambda.env("LAMBDA_TASK_ROOT", "/nonexistent/task"), "h.handler");
    assert_error(&post, "Runtime.InvalidTaskRoot", &["/nonexistent/task"]);
}

/// A plain program that is not one of bootstrap's runners would only exit non-zero for every
/// event; its entry's syntax check makes a syntax error one init error in its own words.
#[test]
fn a_language_added_by_config_gets_its_syntax_check_at_init() {
    let config = "[interpreters.sh2]\nextensions = [\"sh2\"]\ncommand = [\"/bin/sh\", \"{file}\"]\n\
                  syntax_check = [\"/bin/sh\", \"-n\", \"{file}\"]\n";
    let post =
        init_error(&Lambda::new().config(config).write("h.sh2", "if then fi\n"), "h.handler");
    assert_error(&post, "Runtime.UserCodeSyntaxError", &["h.sh2", "/bin/sh -n"]);
}

#[test]
fn the_language_runners_report_their_own_syntax_errors_not_an_init_check() {
    if !have("perl") {
        return;
    }
    // perl -c would not see the runner's @INC: a handler that uses a module beside it must load.
    let run = Lambda::new()
        .mode(Mode::Plain)
        .write("Helper.pm", "package Helper; sub greet { 'hi' } 1;\n")
        .write("h.pl", "use Helper;\nsub handler { Helper::greet() }\n1;\n")
        .start("h.handler");
    assert_eq!(run.response_to(Event::new("r1", "{}")).body_text(), "hi");
}

#[test]
fn a_framed_runner_that_cannot_load_the_handler_is_an_init_error() {
    if !have("python3") {
        return;
    }
    let post =
        init_error(&Lambda::new().write("h.py", "import no_such_module_here\n"), "h.handler");
    assert_error(&post, "Runtime.ImportModuleError", &["Unable to import module 'h'"]);
}
