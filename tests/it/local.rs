use crate::support::*;

#[test]
fn invoke_prints_the_response_for_an_event_file() {
    if !have("perl") {
        return;
    }
    let event = fixture("events/hello.json").display().to_string();
    let out = Lambda::new()
        .fixture("perl/seed.pl", "lambda_script.pl")
        .cli(&["invoke", "--handler", "lambda_script.handler", &event])
        .run();
    assert!(out.success(), "{}", out.stderr);
    let body = out.json();
    assert_eq!(body["request"], "Hey perl lambda!!");
    assert_eq!(body["reply"], "Thanks AWS custom lambda runtime!!");
}

#[test]
fn invoke_reads_stdin_and_defaults_to_an_empty_object() {
    let lambda = Lambda::new().script("cat", "#!/bin/sh\nexec cat\n");
    let out = lambda.cli(&["invoke", "--handler", "cat.h", "-"]).stdin("from stdin").run();
    assert_eq!(out.stdout, "from stdin");
    let out = lambda.env("_HANDLER", "cat.h").cli(&["invoke"]).run();
    assert_eq!(out.stdout, "{}");
    assert!(out.success());
}

#[test]
fn invoke_prints_the_error_json_and_exits_non_zero() {
    let out = Lambda::new()
        .script("fail", "#!/bin/sh\necho oops >&2\nexit 4\n")
        .cli(&["invoke", "--handler", "fail.h"])
        .run();
    assert_eq!(out.code(), Some(1));
    let body = out.json();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(body["errorMessage"].as_str().unwrap().contains("status 4"));
    assert!(out.stderr.contains("oops"), "handler stderr goes to the log");
}

#[test]
fn invoke_enforces_its_timeout() {
    let out = Lambda::new()
        .script("slow", "#!/bin/sh\nsleep 1000\n")
        .cli(&["invoke", "--handler", "slow.h", "--timeout", "0.3"])
        .run();
    assert_eq!(out.code(), Some(1));
    assert!(out.stdout.contains("Runtime.Timeout"), "{}", out.stdout);
}

#[test]
fn invoke_reports_init_errors_like_the_loop() {
    let out = Lambda::new().cli(&["invoke", "--handler", "missing.handler"]).run();
    assert_eq!(out.code(), Some(1));
    assert!(out.stdout.contains("Runtime.HandlerNotFound"), "{}", out.stdout);
}

#[test]
fn check_prints_the_resolved_file_interpreter_and_argv() {
    if !have("python3") {
        return;
    }
    let out = Lambda::new().fixture("python/echo.py", "app/main.py").check("app/main.handler");
    assert!(out.success(), "{}", out.stderr);
    let shown = &out.stdout;
    for expected in [
        "app/main.py",
        "interpreter: python",
        "python/runner.py",
        "\"handler\"",
        "event via:   stdin",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in:\n{shown}");
    }
}

#[test]
fn check_fails_with_the_init_message() {
    let out = Lambda::new()
        .write("h.pl", "1;\n")
        .write("h.py", "\n")
        .cli(&["check", "--handler", "h.handler"])
        .run();
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("ambiguous"), "{}", out.stderr);
}

#[test]
fn runners_are_found_beside_the_checkout_build_without_configuration() {
    if !have("bash") {
        return;
    }
    // BOOTSTRAP_RUNNERS empty means unset: the binary finds ../../layers from target/<profile>.
    let out = Lambda::new()
        .fixture("shell/echo.sh", "echo.sh")
        .env("BOOTSTRAP_RUNNERS", "")
        .cli(&["invoke", "--handler", "echo.handler", "-"])
        .stdin("{\"k\":1}")
        .run();
    assert_eq!(out.stdout, "{\"k\":1}", "{}", out.stderr);
}

#[test]
fn help_and_version() {
    let lambda = Lambda::new();
    let out = lambda.cli(&["--version"]).run();
    assert!(out.stdout.starts_with("bootstrap "), "{}", out.stdout);
    let help = lambda.cli(&["--help"]).run().stdout;
    for word in ["invoke", "check", "AWS_LAMBDA_RUNTIME_API"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn without_a_runtime_api_it_explains_how_to_run_locally() {
    let out = Lambda::new().cli(&[]).run();
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("bootstrap invoke"), "{}", out.stderr);
}

/// An unzipped layer: `bootstrap`, `interpreters.toml` and the shell runner.
fn layer_dir(lambda: &Lambda) -> std::path::PathBuf {
    let opt = lambda.file("opt");
    std::fs::create_dir_all(opt.join("layers/shell")).unwrap();
    std::fs::copy(BIN, opt.join("bootstrap")).unwrap();
    std::fs::copy(
        std::path::Path::new(MANIFEST_DIR).join("interpreters.toml"),
        opt.join("interpreters.toml"),
    )
    .unwrap();
    std::fs::copy(
        std::path::Path::new(MANIFEST_DIR).join("layers/shell/runner.sh"),
        opt.join("layers/shell/runner.sh"),
    )
    .unwrap();
    opt
}

/// `bootstrap check --opt` on an unzipped layer (`layer_dir`), with `<root>/task` as the task root.
fn check_deploy(lambda: &Lambda, handler: &str) -> Outcome {
    let opt = layer_dir(lambda).display().to_string();
    let task = lambda.file("task").display().to_string();
    lambda.cli(&["check", "--opt", &opt, "--task-root", &task, "--handler", handler]).run()
}

#[test]
fn check_opt_passes_a_good_deployment() {
    let out = check_deploy(&Lambda::new().fixture("shell/echo.sh", "task/echo.sh"), "echo.handler");
    let shown = out.printed();
    assert!(out.success(), "{shown}");
    assert!(shown.contains("ready to deploy"), "{shown}");
}

#[test]
fn check_opt_reports_each_deployment_problem_with_its_fix() {
    let cases: [(&str, &str, &str, &[&str]); 4] = [
        ("task/run", "#!/bin/sh\ncat\n", "run.handler", &["not executable", "chmod +x"]),
        (
            "task/h.sh",
            "handler() {\r\n  printf ok\r\n}\r\n",
            "h.handler",
            &["CRLF", "h.sh", "sed -i"],
        ),
        (
            "task/interpreters.toml",
            "[interpreters.x]\r\nextensions = [\"x\"]\r\ncommand = [\"x-not-installed\", \"{file}\"]\r\n",
            "h.handler",
            &["CRLF", "interpreters.toml"],
        ),
        (
            "task/other.sh",
            "handler() { :; }\n",
            "missing.handler",
            &["Runtime.HandlerNotFound", "missing"],
        ),
    ];
    for (file, content, handler, expected) in cases {
        let out = check_deploy(&Lambda::new().write(file, content), handler);
        let shown = out.printed();
        assert!(!out.success(), "{file}: the check should fail:\n{shown}");
        for e in expected {
            assert!(shown.contains(e), "{file}: missing {e:?} in:\n{shown}");
        }
        assert!(shown.contains("fix: "), "{shown}");
    }
}

#[test]
fn check_opt_reports_an_interpreter_missing_from_lambdas_path_and_a_lost_run_bit() {
    let config =
        "[interpreters.x]\nextensions = [\"x\"]\ncommand = [\"x-not-installed\", \"{file}\"]\n";
    let lambda = Lambda::new().write("task/interpreters.toml", config).write("task/h.x", "");
    let opt = layer_dir(&lambda);
    std::fs::set_permissions(
        opt.join("bootstrap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let task = lambda.file("task").display().to_string();
    let opt_arg = opt.display().to_string();
    let out = lambda
        .cli(&["check", "--opt", &opt_arg, "--task-root", &task, "--handler", "h.handler"])
        .run();
    let shown = &out.stdout;
    assert!(!out.success());
    let bin = format!("{}/bin", opt.display());
    for e in
        ["x-not-installed", "/usr/bin", &bin, "bootstrap is not executable", "2 problems found"]
    {
        assert!(shown.contains(e), "missing {e:?} in:\n{shown}");
    }
}

/// `bootstrap check` on `file` (written with `content`) as `handler`.
fn check_file(file: &str, content: &str, handler: &str) -> Outcome {
    Lambda::new().write(file, content).check(handler)
}

#[test]
fn check_reports_syntax_errors_in_each_interpreters_own_words() {
    let cases = [
        ("perl", "h.pl", "sub handler {\n  my $x = ;\n}\n1;\n", "syntax error"),
        ("python3", "h.py", "def handler(e, c)\n    return 1\n", "SyntaxError"),
        ("node", "h.js", "exports.handler = async (e) => {\n", "SyntaxError"),
        ("ruby", "h.rb", "def handler(event:, context:)\n  if\nend\n", "syntax error"),
        ("bash", "h.sh", "handler() {\n  echo (\n}\n", "syntax error"),
    ];
    for (program, file, content, says) in cases {
        if !have(program) {
            continue;
        }
        let out = check_file(file, content, "h.handler");
        let shown = out.printed();
        assert!(!out.success(), "{file}: a syntax error must fail the check:\n{shown}");
        for expected in ["Runtime.UserCodeSyntaxError", file, says, "fix:"] {
            assert!(shown.contains(expected), "{file}: want {expected:?} in:\n{shown}");
        }
    }
}

#[test]
fn check_passes_clean_files_and_reports_crlf_line_endings() {
    let out = check_file("h.sh", "handler() {\n  echo ok\n}\n", "h.handler");
    let shown = out.printed();
    assert!(out.success() && !shown.contains("problem:"), "{shown}");
    let out = check_file("h.sh", "handler() {\r\n  echo ok\r\n}\r\n", "h.handler");
    let shown = out.printed();
    assert!(!out.success(), "{shown}");
    for expected in ["CRLF", "h.sh", "sed -i"] {
        assert!(shown.contains(expected), "want {expected:?} in:\n{shown}");
    }
}
