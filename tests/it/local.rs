use crate::support::*;

#[test]
fn invoke_prints_the_response_for_an_event_file() {
    if !have("perl") {
        return;
    }
    let root = TaskRoot::new().copy("perl/seed.pl", "lambda_script.pl");
    let event = fixture("events/hello.json").display().to_string();
    let out = run_cli(&root, &["invoke", "--handler", "lambda_script.handler", &event], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["request"], "Hey perl lambda!!");
    assert_eq!(body["reply"], "Thanks AWS custom lambda runtime!!");
}

#[test]
fn invoke_reads_stdin_and_defaults_to_an_empty_object() {
    let root = TaskRoot::new().script("cat", "#!/bin/sh\nexec cat\n");
    let out = run_cli(&root, &["invoke", "--handler", "cat.h", "-"], &[], Some(b"from stdin"));
    assert_eq!(text(&out.stdout), "from stdin");
    let out = run_cli(&root, &["invoke"], &[("_HANDLER", "cat.h")], None);
    assert_eq!(text(&out.stdout), "{}");
    assert!(out.status.success());
}

#[test]
fn invoke_prints_the_error_json_and_exits_non_zero() {
    let root = TaskRoot::new().script("fail", "#!/bin/sh\necho oops >&2\nexit 4\n");
    let out = run_cli(&root, &["invoke", "--handler", "fail.h"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["errorType"], "Runtime.ExitError");
    assert!(body["errorMessage"].as_str().unwrap().contains("status 4"));
    assert!(text(&out.stderr).contains("oops"), "handler stderr goes to the log");
}

#[test]
fn invoke_enforces_its_timeout() {
    let root = TaskRoot::new().script("slow", "#!/bin/sh\nsleep 1000\n");
    let out = run_cli(&root, &["invoke", "--handler", "slow.h", "--timeout", "0.3"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("Runtime.Timeout"), "{}", text(&out.stdout));
}

#[test]
fn invoke_reports_init_errors_like_the_loop() {
    let root = TaskRoot::new();
    let out = run_cli(&root, &["invoke", "--handler", "missing.handler"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("Runtime.HandlerNotFound"), "{}", text(&out.stdout));
}

#[test]
fn check_prints_the_resolved_file_interpreter_and_argv() {
    if !have("python3") {
        return;
    }
    let root = TaskRoot::new().copy("python/echo.py", "app/main.py");
    let out = run_cli(
        &root,
        &[
            "check",
            "--handler",
            "app/main.handler",
            "--task-root",
            &root.path.display().to_string(),
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
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
    let root = TaskRoot::new().write("h.pl", "1;\n").write("h.py", "\n");
    let out = run_cli(&root, &["check", "--handler", "h.handler"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("ambiguous"), "{}", text(&out.stderr));
}

#[test]
fn runners_are_found_beside_the_checkout_build_without_configuration() {
    if !have("bash") {
        return;
    }
    let root = TaskRoot::new().copy("shell/echo.sh", "echo.sh");
    // BOOTSTRAP_RUNNERS empty means unset: the binary finds ../../layers from target/<profile>.
    let out = run_cli(
        &root,
        &["invoke", "--handler", "echo.handler", "-"],
        &[("BOOTSTRAP_RUNNERS", "")],
        Some(b"{\"k\":1}"),
    );
    assert_eq!(text(&out.stdout), "{\"k\":1}", "{}", text(&out.stderr));
}

#[test]
fn help_and_version() {
    let root = TaskRoot::new();
    let out = run_cli(&root, &["--version"], &[], None);
    assert!(text(&out.stdout).starts_with("bootstrap "), "{}", text(&out.stdout));
    let out = run_cli(&root, &["--help"], &[], None);
    let help = text(&out.stdout);
    for word in ["invoke", "check", "AWS_LAMBDA_RUNTIME_API"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
}

#[test]
fn without_a_runtime_api_it_explains_how_to_run_locally() {
    let root = TaskRoot::new();
    let out = run_cli(&root, &[], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bootstrap invoke"), "{}", text(&out.stderr));
}

/// An unzipped layer: `bootstrap`, `interpreters.toml` and the shell runner.
fn layer_dir(root: &TaskRoot) -> std::path::PathBuf {
    let opt = root.file("opt");
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

fn check_deploy(root: &TaskRoot, handler: &str) -> (bool, String) {
    let opt = layer_dir(root).display().to_string();
    let task = root.file("task").display().to_string();
    let out = run_cli(
        root,
        &["check", "--opt", &opt, "--task-root", &task, "--handler", handler],
        &[],
        None,
    );
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn check_opt_passes_a_good_deployment() {
    let root = TaskRoot::new().copy("shell/echo.sh", "task/echo.sh");
    let (ok, shown) = check_deploy(&root, "echo.handler");
    assert!(ok, "{shown}");
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
        let root = TaskRoot::new().write(file, content);
        let (ok, shown) = check_deploy(&root, handler);
        assert!(!ok, "{file}: the check should fail:\n{shown}");
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
    let root = TaskRoot::new().write("task/interpreters.toml", config).write("task/h.x", "");
    let opt = layer_dir(&root);
    std::fs::set_permissions(
        opt.join("bootstrap"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let task = root.file("task").display().to_string();
    let out = run_cli(
        &root,
        &[
            "check",
            "--opt",
            &opt.display().to_string(),
            "--task-root",
            &task,
            "--handler",
            "h.handler",
        ],
        &[],
        None,
    );
    let shown = text(&out.stdout);
    assert!(!out.status.success());
    let bin = format!("{}/bin", opt.display());
    for e in
        ["x-not-installed", "/usr/bin", &bin, "bootstrap is not executable", "2 problems found"]
    {
        assert!(shown.contains(e), "missing {e:?} in:\n{shown}");
    }
}

/// `bootstrap check` on `file` (written with `content`) as `handler`: (passed, stdout + stderr).
fn check_file(file: &str, content: &str, handler: &str) -> (bool, String) {
    let root = TaskRoot::new().write(file, content);
    let task_root = root.path.display().to_string();
    let out =
        run_cli(&root, &["check", "--handler", handler, "--task-root", &task_root], &[], None);
    (out.status.success(), format!("{}{}", text(&out.stdout), text(&out.stderr)))
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
        let (ok, shown) = check_file(file, content, "h.handler");
        assert!(!ok, "{file}: a syntax error must fail the check:\n{shown}");
        for expected in ["Runtime.UserCodeSyntaxError", file, says, "fix:"] {
            assert!(shown.contains(expected), "{file}: want {expected:?} in:\n{shown}");
        }
    }
}

#[test]
fn check_passes_clean_files_and_reports_crlf_line_endings() {
    let (ok, shown) = check_file("h.sh", "handler() {\n  echo ok\n}\n", "h.handler");
    assert!(ok && !shown.contains("problem:"), "{shown}");
    let (ok, shown) = check_file("h.sh", "handler() {\r\n  echo ok\r\n}\r\n", "h.handler");
    assert!(!ok, "{shown}");
    for expected in ["CRLF", "h.sh", "sed -i"] {
        assert!(shown.contains(expected), "want {expected:?} in:\n{shown}");
    }
}
