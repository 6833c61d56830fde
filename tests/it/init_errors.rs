use crate::support::*;

/// Starts bootstrap, expects one post to /runtime/init/error and a non-zero exit.
#[track_caller]
fn init_error(root: &TaskRoot, handler: &str, env: &[(&str, Option<&str>)]) -> (Post, String) {
    let api = MockApi::start();
    let mut bootstrap = Bootstrap::start_with(&api, root, handler, env);
    let post = api.expect_post("/runtime/init/error");
    let status = bootstrap.wait_exit();
    assert!(!status.success(), "init failure must exit non-zero");
    assert_eq!(api.next_requests_made(), 0, "no /next after an init error");
    (post, bootstrap.log())
}

#[test]
fn malformed_handler_names() {
    let root = TaskRoot::new().script("h", "#!/bin/sh\n");
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
        let (post, _) = init_error(&root, bad, &[]);
        assert_error(&post, "Runtime.MalformedHandlerName", &["hint:"]);
    }
}

#[test]
fn a_missing_handler_file_names_what_was_looked_for() {
    let root = TaskRoot::new();
    let (post, log) = init_error(&root, "lambda_script.handler", &[]);
    let expected = root.file("lambda_script");
    assert_error(
        &post,
        "Runtime.HandlerNotFound",
        &[&expected.display().to_string(), "pl", "py", "hint:"],
    );
    assert!(log.contains("Runtime.HandlerNotFound"), "{log}");
}

#[test]
fn two_matching_files_are_ambiguous_and_both_are_named() {
    let root = TaskRoot::new().write("h.pl", "1;\n").write("h.py", "\n");
    let (post, _) = init_error(&root, "h.handler", &[]);
    assert_error(&post, "Runtime.HandlerNotFound", &["ambiguous", "h.pl", "h.py"]);
}

#[test]
fn a_file_without_extension_must_be_executable() {
    let root = TaskRoot::new().write("run", "#!/bin/sh\n");
    let (post, _) = init_error(&root, "run.handler", &[]);
    assert_error(&post, "Runtime.HandlerNotFound", &["not executable", "chmod +x"]);
}

#[test]
fn a_missing_interpreter_names_it_the_path_and_the_config_entry() {
    let root = TaskRoot::new().write("h.pl", "1;\n");
    let empty = TaskRoot::new();
    let path = empty.path.display().to_string();
    let (post, _) = init_error(&root, "h.handler", &[("PATH", Some(&path))]);
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
    let root = TaskRoot::new().write("h.pl", "1;\n").write("interpreters.toml", config);
    let (post, _) = init_error(&root, "h.handler", &[]);
    let file = root.file("interpreters.toml").display().to_string();
    assert_error(&post, "Runtime.InvalidConfig", &[&file, "line 4", "interpeter"]);
}

#[test]
fn config_errors_for_wrong_types_and_empty_commands() {
    for (config, expected) in [
        ("[interpreters.x]\nextensions = \"x\"\ncommand = [\"x\"]\n", "line 2"),
        ("[interpreters.x]\nextensions = [\"x\"]\ncommand = []\n", "command: is empty"),
        ("[interpreters.x\n", "line 1"),
    ] {
        let root = TaskRoot::new().write("h.pl", "1;\n").write("interpreters.toml", config);
        let (post, _) = init_error(&root, "h.handler", &[]);
        assert_error(&post, "Runtime.InvalidConfig", &[expected]);
    }
}

#[test]
fn a_bootstrap_config_that_does_not_exist_is_an_error() {
    let root = TaskRoot::new().write("h.pl", "1;\n");
    let missing = root.file("nope.toml").display().to_string();
    let (post, _) = init_error(&root, "h.handler", &[("BOOTSTRAP_CONFIG", Some(&missing))]);
    assert_error(&post, "Runtime.InvalidConfig", &[&missing, "BOOTSTRAP_CONFIG"]);
}

#[test]
fn missing_runners_are_an_init_error() {
    let root = TaskRoot::new().write("h.pl", "1;\n");
    let (post, _) =
        init_error(&root, "h.handler", &[("BOOTSTRAP_RUNNERS", Some("/nonexistent/layers"))]);
    assert_error(&post, "Runtime.InterpreterNotFound", &["/nonexistent/layers", "layer"]);
}

#[test]
fn an_unset_handler_or_task_root_is_an_error() {
    let root = TaskRoot::new().script("h", "#!/bin/sh\n");
    let (post, _) = init_error(&root, "h.handler", &[("_HANDLER", None)]);
    assert_error(&post, "Runtime.MalformedHandlerName", &["_HANDLER is not set"]);
    let (post, _) = init_error(&root, "h.handler", &[("LAMBDA_TASK_ROOT", None)]);
    assert_error(&post, "Runtime.InvalidTaskRoot", &["LAMBDA_TASK_ROOT is not set"]);
    let (post, _) =
        init_error(&root, "h.handler", &[("LAMBDA_TASK_ROOT", Some("/nonexistent/task"))]);
    assert_error(&post, "Runtime.InvalidTaskRoot", &["/nonexistent/task"]);
}

/// A plain program that is not one of bootstrap's runners would only exit non-zero for every
/// event; its entry's syntax check makes a syntax error one init error in its own words.
#[test]
fn a_language_added_by_config_gets_its_syntax_check_at_init() {
    let config = "[interpreters.sh2]\nextensions = [\"sh2\"]\ncommand = [\"/bin/sh\", \"{file}\"]\n\
                  syntax_check = [\"/bin/sh\", \"-n\", \"{file}\"]\n";
    let root = TaskRoot::new().write("interpreters.toml", config).write("h.sh2", "if then fi\n");
    let (post, _) = init_error(&root, "h.handler", &[]);
    assert_error(&post, "Runtime.UserCodeSyntaxError", &["h.sh2", "/bin/sh -n"]);
}

#[test]
fn the_language_runners_report_their_own_syntax_errors_not_an_init_check() {
    if !have("perl") {
        return;
    }
    // perl -c would not see the runner's @INC: a handler that uses a module beside it must load.
    let root = TaskRoot::new()
        .mode(Mode::Plain)
        .write("Helper.pm", "package Helper; sub greet { 'hi' } 1;\n")
        .write("h.pl", "use Helper;\nsub handler { Helper::greet() }\n1;\n");
    let api = MockApi::start();
    let _bootstrap = Bootstrap::start(&api, &root, "h.handler");
    api.push(Event::new("r1", "{}"));
    assert_eq!(api.expect_post("/runtime/invocation/r1/response").body_text(), "hi");
}

#[test]
fn a_framed_runner_that_cannot_load_the_handler_is_an_init_error() {
    if !have("python3") {
        return;
    }
    let root = TaskRoot::new().write("h.py", "import no_such_module_here\n");
    let (post, _) = init_error(&root, "h.handler", &[]);
    assert_error(&post, "Runtime.ImportModuleError", &["Unable to import module 'h'"]);
}
