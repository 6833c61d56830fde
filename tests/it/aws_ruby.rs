//! AWS's Ruby programming model, as aws_lambda_ric (AWS's Ruby runtime interface client) runs
//! it, through the real binary in every mode: `file.method` and `file.Module::Klass.method`
//! handlers called with `event:` and `context:`, results through to_json (or a user's own
//! marshaller), the LambdaContext accessors, `Init<Class>` and `Function<Class>` errors with
//! the client's log lines, Logger in its format, and output that never reaches the response.
//! The fixtures under `tests/fixtures/ruby/aws/` include aws_lambda_ric's own test handlers.

use serde_json::{Value, json};

use crate::support::*;

/// A task root in `mode` holding each `(fixture under tests/fixtures/ruby, name)`.
fn task_root(mode: Mode, files: &[(&str, &str)]) -> Lambda {
    Lambda::new().mode(mode).fixtures("ruby", files)
}

/// The error of a handler that does not load, and the log. Plain mode loads the file for each
/// event, so it is that event's error; a framed worker reports it before `ready`, which
/// bootstrap posts as the init error or as the event's.
#[track_caller]
fn load_error(mode: Mode, root: &Lambda, handler: &str) -> (Post, String) {
    let run = root.start(handler);
    let post = run.invoke(Event::new("r1", "{}"));
    let framed_init = mode != Mode::Plain && post.path == INIT_ERROR;
    assert!(
        post.path == EVENT_ERROR || framed_init,
        "{handler} {mode:?}: posted to {}: {}",
        post.path,
        post.body_text()
    );
    run.wait_for_log("Init error when loading handler");
    (post, run.stop())
}

/// The stack trace of an error post, as strings.
fn frames(post: &Post) -> Vec<String> {
    let body = post.json();
    let frames = body["stackTrace"].as_array().cloned().unwrap_or_default();
    frames.iter().map(|f| f.as_str().unwrap_or("<not a string>").to_string()).collect()
}

#[test]
fn a_keyword_handler_gets_the_decoded_event_and_its_result_is_json_encoded() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/core.rb", "core.rb")]);
        let got = root.response_json("core.ping", r#"{"msg":"x"}"#, mode);
        assert_eq!(got, json!({"msg": "pong[x]"}), "{mode:?}");
        let got = root.response_json("core.ping", "null", mode);
        assert_eq!(got, json!({"event_nil": true}), "{mode:?}");
        let got = root.response_json("core.str_ping", r#""abc""#, mode);
        assert_eq!(got, json!({"msg": "pong[abc]"}), "{mode:?}");
        let got = root.response_json("core.string", r#"{"msg":"héllo"}"#, mode);
        assert_eq!(got, json!("Message: 'héllo'"), "{mode:?}");
    }
}

#[test]
fn a_class_method_is_named_file_dot_module_path_dot_method() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/core.rb", "core.rb"), ("aws/app.rb", "app.rb")]);
        assert_eq!(root.response_json("app.App::Handler.process", "{}", mode), json!("success"));
        let event = r#"{"msg":"m"}"#;
        let got = root.response_json("core.HandlerClass.ping", event, mode);
        assert_eq!(got, json!("Module Message: 'm'"), "{mode:?}");
        let got = root.response_json("core.DeepModule::Handler.ping", event, mode);
        assert_eq!(got, json!("Deep Module Message: 'm'"), "{mode:?}");
    }
}

#[test]
fn a_handler_file_in_a_subdirectory_or_with_underscores_is_found() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(
            mode,
            &[("aws/underscore_file.rb", "underscore_file.rb"), ("aws/app.rb", "lib/app.rb")],
        );
        let got = root.response_json("underscore_file.underscore_method", "{}", mode);
        assert_eq!(got, json!("Success!"), "{mode:?}");
        let got = root.response_json("lib/app.App::Handler.process", "{}", mode);
        assert_eq!(got, json!("success"), "{mode:?}");
    }
}

#[test]
fn a_handler_without_keywords_gets_event_and_context_as_one_hash() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/positional.rb", "positional.rb")]);
        let got = root.response_json("positional.one", r#"{"k":1}"#, mode);
        let want =
            json!({"keys": ["context", "event"], "event": {"k": 1}, "context": "LambdaContext"});
        assert_eq!(got, want, "{mode:?}");
        let post = root.post_for("positional.two", "{}");
        assert_error(&post, "Function<ArgumentError>", &["wrong number of arguments"]);
    }
}

#[test]
fn results_are_encoded_with_to_json_as_aws_encodes_them() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/results.rb", "results.rb"), ("aws/unicode.rb", "u.rb")]);
        assert_eq!(root.post_for("results.nothing", "{}").body_text(), "null", "{mode:?}");
        assert_eq!(root.post_for("results.text", "{}").body_text(), r#""say \"hi\"""#);
        assert_eq!(root.response_json("results.point", "{}", mode), json!({"x": 1, "y": 2}));
        let opaque = root.response_json("results.opaque", "{}", mode);
        let opaque = opaque.as_str().unwrap_or_default();
        assert!(opaque.starts_with("#<Opaque"), "{mode:?}: an object is its to_s: {opaque}");
        let want = r#"{"sym":"abc","int":1,"float":1.5,"big":1180591620717411303424,"yes":true,"list":[null,"x"]}"#;
        assert_eq!(root.post_for("results.mixed", "{}").body_text(), want, "{mode:?}");
        let hello = root.post_for("u.hello", "{}");
        assert_eq!(hello.body_text(), r#"{"hello":"今日はラムダ!"}"#, "{mode:?}");
    }
}

#[test]
fn a_result_to_json_refuses_is_the_handlers_generator_error() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/results.rb", "results.rb")]);
        for method in ["not_a_number", "not_utf8"] {
            let post = root.post_for(&format!("results.{method}"), "{}");
            assert_eq!(post.path, EVENT_ERROR, "{method} {mode:?}");
            assert_error(&post, "Function<JSON::GeneratorError>", &[]);
        }
    }
}

#[test]
fn an_io_result_is_sent_as_its_bytes() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/core.rb", "core.rb")]);
        let post = root.post_for("core.io", "{}");
        assert_eq!(post.body_text(), "This is IO!", "{mode:?}: {}", post.path);
    }
}

#[test]
fn a_handler_file_may_replace_the_marshaller_as_on_aws() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(
            mode,
            &[
                ("aws/user_marshaller.rb", "user_marshaller.rb"),
                ("aws/user_input_marshaller.rb", "user_input_marshaller.rb"),
            ],
        );
        let want = json!({"body": "Simple response.",
                          "metadata": "Marshaller brought to you by Test Harness Industries."});
        assert_eq!(
            root.response_json("user_marshaller.add_metadata", "{}", mode),
            want,
            "{mode:?}"
        );
        let event = r#"{"numbers":[1,2,3]}"#;
        let got = root.response_json("user_input_marshaller.squared_input", event, mode);
        assert_eq!(got, json!([1, 4, 9]), "{mode:?}");
    }
}

#[test]
fn the_context_has_aws_lambda_rics_accessors() {
    if !have("ruby") {
        return;
    }
    let env = FUNCTION_VARIABLES;
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/ctx.rb", "ctx.rb")]);
        let deadline = "4102444800000"; // 2100-01-01
        let event = Event::new("ctx-1", "{}")
            .header("Lambda-Runtime-Deadline-Ms", deadline)
            .header("Lambda-Runtime-Aws-Tenant-Id", "blue");
        let Served { posts, .. } =
            root.clone().envs(&env).serve("ctx.get_context", vec![event], &[]);
        let got = posts[0].json();
        assert_eq!(got["function_name"], "fn", "{mode:?}: {got}");
        assert_eq!(got["function_version"], "$LATEST", "{mode:?}");
        assert_eq!(got["memory_limit_in_mb"], "512", "{mode:?}: a String, as on AWS");
        assert_eq!(got["log_group_name"], "/aws/lambda/fn", "{mode:?}");
        assert_eq!(got["log_stream_name"], "2024/01/01/[$LATEST]abc", "{mode:?}");
        assert_eq!(got["aws_request_id"], "ctx-1", "{mode:?}");
        assert_eq!(got["invoked_function_arn"], ARN, "{mode:?}");
        assert_eq!(got["tenant_id"], "blue", "{mode:?}");
        assert_eq!(got["deadline_ms"], json!(4_102_444_800_000_u64), "{mode:?}: an Integer");
        let remaining = got["remaining_ms"].as_u64().unwrap_or(0);
        assert!(remaining > 1_000_000_000, "{mode:?}: remaining {remaining} ms to 2100");
    }
}

#[test]
fn identity_and_client_context_are_decoded_and_absent_ones_are_nil() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/ctx.rb", "ctx.rb")]);
        let identity = r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#;
        let with_identity =
            || Event::new("r1", "{}").header("Lambda-Runtime-Cognito-Identity", identity);
        let Served { posts, .. } =
            root.serve("ctx.get_cognito_pool_id", vec![with_identity()], &[]);
        assert_eq!(posts[0].json(), json!({"cognito_pool_id": "pool-1"}), "{mode:?}");
        let Served { posts, .. } =
            root.serve("ctx.get_cognito_identity_id", vec![with_identity()], &[]);
        assert_eq!(posts[0].json(), json!({"cognito_identity_id": "id-1"}), "{mode:?}");
        let client = r#"{"custom":{"k":"v"},"env":{"make":"x"}}"#;
        let event = Event::new("r1", "{}").header("Lambda-Runtime-Client-Context", client);
        let Served { posts, .. } = root.serve("ctx.echo_context", vec![event], &[]);
        assert_eq!(posts[0].json(), json!({"custom": {"k": "v"}, "env": {"make": "x"}}));
        let Served { posts, .. } =
            root.serve("ctx.echo_context", vec![Event::new("r1", "{}")], &[]);
        assert_eq!(posts[0].body_text(), "null", "{mode:?}: no client context is nil");
        let got = root.response_json("ctx.get_context", "{}", mode);
        assert_eq!(got["tenant_id"], Value::Null, "{mode:?}: no tenant is nil");
    }
}

#[test]
fn each_event_sets_its_own_request_and_trace_ids_and_the_runner_leaves_no_trace_of_itself() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/env.rb", "env.rb")]);
        let events = vec![
            Event::new("r1", "{}").header("Lambda-Runtime-Trace-Id", "Root=1-a"),
            Event::new("r2", "{}"),
        ];
        let env = [("BOOTSTRAP_CONVENTION", Some("x"))];
        let Served { posts, .. } = root.clone().envs(&env).serve("env.handler", events, &[]);
        let (first, second) = (posts[0].json(), posts[1].json());
        for (got, id) in [(&first, "r1"), (&second, "r2")] {
            assert_eq!(got["request_id"], id, "{mode:?}: {got}");
            assert_eq!(got["global_request_id"], id, "{mode:?}");
            assert_eq!(got["env_request_id"], id, "{mode:?}");
            assert_eq!(got["handler"], "env.handler", "{mode:?}");
            assert_eq!(got["convention"], false, "{mode:?}: BOOTSTRAP_CONVENTION is removed");
            assert_eq!(got["framed"], false, "{mode:?}: BOOTSTRAP_FRAMED is removed");
            assert_eq!(got["argv"], json!([]), "{mode:?}: ARGV is empty, as on AWS");
            let cwd = std::fs::canonicalize(root.root()).unwrap();
            let cwd = cwd.display().to_string();
            assert_eq!(got["cwd"], cwd.as_str(), "{mode:?}");
            assert_eq!(got["load_path_head"], cwd.as_str(), "{mode:?}: the task root heads it");
        }
        assert_eq!(first["trace_id"], "Root=1-a", "{mode:?}");
        assert_eq!(second["trace_id"], Value::Null, "{mode:?}: the last trace id is gone");
    }
}

#[test]
fn a_handlers_exception_is_function_class_with_its_message_its_frames_and_the_rics_log_lines() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/core.rb", "core.rb")]);
        let logged =
            ["Error raised from handler method", "\"errorType\": \"Function<ArgumentError>\""];
        let Served { posts, log, .. } =
            root.serve("core.broken", vec![Event::new("r1", "{}")], &logged);
        let post = &posts[0];
        assert_eq!(post.path, EVENT_ERROR, "{mode:?}");
        assert_error(post, "Function<ArgumentError>", &["My error message."]);
        assert_eq!(post.json()["errorMessage"], "My error message.", "{mode:?}");
        let frames = frames(post);
        let top = frames.first().cloned().unwrap_or_default();
        assert!(top.contains("core.rb:") && top.contains("broken"), "{mode:?}: {frames:?}");
        assert!(frames.iter().all(|f| !f.contains("runner.rb")), "{mode:?}: {frames:?}");
        // The pretty-printed document is one log record: its lines joined by carriage returns.
        let record = log.lines().find(|l| l.contains("\"errorType\": \"Function<ArgumentError>\""));
        assert!(record.is_some_and(|r| r.starts_with('{') && r.contains('\r')), "{mode:?}: {log}");
    }
}

#[test]
fn a_missing_method_is_a_no_method_error_when_the_event_runs_not_an_init_error() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/core.rb", "core.rb")]);
        let logged = ["Critical exception from handler"];
        let Served { posts, .. } = root.serve("core.nosuch", vec![Event::new("r1", "{}")], &logged);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}: {}", posts[0].body_text());
        assert_error(&posts[0], "Function<NoMethodError>", &["undefined method", "nosuch"]);
        let Served { posts, .. } = root.serve("core.Nope.ping", vec![Event::new("r1", "{}")], &[]);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}: {}", posts[0].body_text());
        assert_error(&posts[0], "Function<NameError>", &["uninitialized constant", "Nope"]);
        let Served { posts, .. } =
            root.serve("core.HandlerClass.nosuch", vec![Event::new("r1", "{}")], &[]);
        assert_error(&posts[0], "Function<NoMethodError>", &["nosuch", "HandlerClass"]);
    }
}

#[test]
fn exit_and_endless_recursion_are_the_handlers_errors_and_the_next_event_still_runs() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/pandoras_box.rb", "pandoras_box.rb")]);
        for (method, error_type, message) in [
            ("hard_exit", "Function<SystemExit>", "exit"),
            ("stack_overflow", "Function<SystemStackError>", "stack level too deep"),
        ] {
            let handler = format!("pandoras_box.{method}");
            let events = vec![Event::new("r1", "{}"), Event::new("r2", "{}")];
            let Served { posts, .. } = root.serve(&handler, events, &[]);
            for (post, id) in posts.iter().zip(["r1", "r2"]) {
                let path = format!("/2018-06-01/runtime/invocation/{id}/error");
                assert_eq!(post.path, path, "{method} {mode:?}: {}", post.body_text());
                assert_error(post, error_type, &[message]);
                assert!(frames(post).len() <= 100, "{method} {mode:?}: at most 100 frames");
            }
        }
    }
}

#[test]
fn code_that_does_not_load_is_an_init_error_named_after_its_class() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/bad_dependency.rb", "bad_dependency.rb")])
            .write("name_error.rb", "Undefined::Thing\n\ndef handler(event:, context:)\n  1\nend\n")
            .write("exits.rb", "exit 3\n");
        let (post, _) = load_error(mode, &root, "bad_dependency.handler");
        assert_error(&post, "Init<LoadError>", &["cannot load such file -- there_is_no_cow_file"]);
        let top = frames(&post).into_iter().find(|f| f.contains("bad_dependency.rb"));
        assert!(top.is_some(), "{mode:?}: the require's frame: {}", post.body_text());
        let (post, _) = load_error(mode, &root, "name_error.handler");
        assert_error(&post, "Init<NameError>", &["uninitialized constant Undefined"]);
        let (post, _) = load_error(mode, &root, "exits.handler");
        assert_error(&post, "Init<SystemExit>", &["exit"]);
    }
}

/// The error for `syntax.rb`, which does not compile: `Init<SyntaxError>` from the runner, in
/// every mode (bootstrap leaves syntax errors to the language runners).
#[track_caller]
fn syntax_error(mode: Mode, root: &Lambda) -> Post {
    let (post, log) = load_error(mode, root, "syntax.handler");
    assert_error(&post, "Init<SyntaxError>", &["syntax.rb:"]);
    assert!(log.contains("\"errorType\": \"Init<SyntaxError>\""), "{mode:?}: {log}");
    post
}

#[test]
fn a_syntax_error_is_init_syntax_error_with_the_line_where_the_runner_loads_the_file() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let post = syntax_error(mode, &task_root(mode, &[("syntax.rb", "syntax.rb")]));
        assert!(post.body_text().contains("syntax error"), "{mode:?}: {}", post.body_text());
    }
}

#[test]
fn a_missing_handler_file_is_the_load_error_aws_reports() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/core.rb", "other.rb")]);
        let (post, _) = load_error(mode, &root, "app.handler");
        assert_error(&post, "Init<LoadError>", &["cannot load such file -- app"]);
    }
}

#[test]
fn a_handler_name_aws_splits_into_four_parts_is_an_init_argument_error() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        // AWS splits the whole name at every dot, directories included.
        let root = task_root(mode, &[("aws/app.rb", "dir.v1/app.rb")]);
        let (post, _) = load_error(mode, &root, "dir.v1/app.App.process");
        let parts = r#"Invalid handler ["dir", "v1/app", "App", "process"], must be of form"#;
        assert_error(&post, "Init<ArgumentError>", &[parts, "FILENAME.CLASS.METHOD"]);
    }
}

#[test]
fn puts_print_stdout_stderr_and_subprocesses_go_to_the_log_never_the_response() {
    if !have("ruby") {
        return;
    }
    let lines = [
        "at load: $stdout.puts",
        "puts line",
        "print line",
        "$stdout.write line",
        "STDOUT.write line",
        "STDOUT.syswrite line",
        "$stderr.puts line",
        "STDERR.write line",
        "warn line",
        "\"p line\"",
        "subprocess line",
    ];
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/output.rb", "output.rb")]);
        let Served { posts, log, .. } =
            root.serve("output.handler", vec![Event::new("r1", "{}")], &lines);
        assert_eq!(posts[0].body_text(), "\"ok\"", "{mode:?}: only the result is the response");
        for line in lines {
            assert!(log.contains(line), "{mode:?}: {line:?} is not in the log:\n{log}");
        }
    }
}

#[test]
fn loggers_on_stdout_and_stderr_write_the_rics_format_with_the_request_id() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/log.rb", "log.rb")]);
        let event = || Event::new("req-7", r#"{"messages":["first","two\nlines"]}"#);
        let Served { posts, log, .. } = root.serve("log.log_to_stdout", vec![event()], &["first"]);
        assert_eq!(posts[0].body_text(), "\"ok\"", "{mode:?}");
        let line = log.lines().find(|l| l.ends_with("-- : first")).unwrap_or_default();
        assert!(
            line.starts_with("I, [") && line.contains(" #") && line.contains("]  INFO req-7 -- : "),
            "{mode:?}: {line:?} in\n{log}"
        );
        // One record per message: its own line break is a carriage return.
        assert!(log.contains("INFO req-7 -- : two\rlines\n"), "{mode:?}: {log:?}");
        let Served { log, .. } = root.serve("log.log_to_stderr", vec![event()], &["first"]);
        assert!(log.contains("] ERROR req-7 -- prog: first\n"), "{mode:?}: {log}");
    }
}

#[test]
fn puts_of_an_array_or_a_frozen_string_logs_each_line() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/log.rb", "log.rb")]);
        let event = Event::new("r1", r#"{"messages":["alpha-line","beta-line"]}"#);
        let waits = ["alpha-line", "beta-line"];
        let Served { posts, log, .. } = root.serve("log.put_message", vec![event], &waits);
        assert_eq!(posts[0].body_text(), "\"ok\"", "{mode:?}");
        assert!(log.contains("alpha-line\n") && log.contains("beta-line\n"), "{mode:?}: {log}");
        let event = Event::new("r1", r#"{"messages":"frozen-line"}"#);
        let Served { posts, .. } =
            root.serve("log.put_frozen_string", vec![event], &["frozen-line"]);
        assert_eq!(posts[0].body_text(), "\"ok\"", "{mode:?}");
    }
}

#[test]
fn a_logger_on_a_file_is_left_alone() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/log.rb", "log.rb")]);
        let file = root.file("app.log").display().to_string();
        let body = json!({"messages": ["into-the-file"], "file_path": file}).to_string();
        let Served { posts, log, .. } =
            root.serve("log.log_to_file_and_read_back", vec![Event::new("r1", body)], &[]);
        let content = posts[0].json();
        let content = content.as_str().unwrap_or_default();
        assert!(
            content.contains("INFO -- : into-the-file"),
            "{mode:?}: Logger's own format: {content}"
        );
        assert!(!log.contains("into-the-file"), "{mode:?}: {log}");
    }
}

#[test]
fn libraries_aws_loads_before_the_handler_need_no_require() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/stdlib.rb", "stdlib.rb")]);
        let want = json!({"uri": "/a", "net_http": "Net::HTTP", "secure_random": 8,
                          "logger": "Logger", "json": "[1]", "string_io": "x", "time": 2020,
                          "timeout": "Timeout"});
        assert_eq!(root.response_json("stdlib.handler", "{}", mode), want, "{mode:?}");
    }
}

#[test]
fn a_top_level_handler_runs_on_one_lambda_handler_object_per_process() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/state.rb", "state.rb")]);
        let events = vec![Event::new("r1", "{}"), Event::new("r2", "{}")];
        let Served { posts, .. } = root.serve("state.count", events, &[]);
        let second = if mode == Mode::Warm { 2 } else { 1 };
        assert_eq!(posts[0].json(), json!({"calls": 1, "self": "LambdaHandler"}), "{mode:?}");
        assert_eq!(posts[1].json(), json!({"calls": second, "self": "LambdaHandler"}), "{mode:?}");
    }
}

#[test]
fn an_event_that_is_not_json_stops_the_runtime_as_it_stops_aws_lambda_ric() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("echo.rb", "echo.rb")]);
        let events = vec![Event::new("r1", "{not json"), Event::new("r2", r#"{"a":1}"#)];
        let logged = ["\"errorType\": \"Init<JSON::ParserError>\""];
        let Served { posts, .. } = root.serve("echo.handler", events, &logged);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}");
        assert_error(&posts[0], "Runtime.ExitError", &["status 252"]);
        assert_eq!(posts[1].json(), json!({"a": 1, "reply": "ruby ok"}), "{mode:?}");
    }
}

#[test]
fn neither_an_event_nor_a_handler_name_ever_becomes_code() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &[("echo.rb", "echo.rb")]);
        let marker = root.file("pwned");
        let touch = format!("touch {}", marker.display());
        let event =
            json!({"s": format!("#{{`{touch}`}}"), "t": format!("\"; system('{touch}'); \"")});
        let got = root.response_json("echo.handler", &event.to_string(), mode);
        assert_eq!(got["s"], event["s"], "{mode:?}");
        assert_eq!(got["t"], event["t"], "{mode:?}");
        // Kernel methods as handler names are called with the keywords, as on AWS: none of
        // them can take a Hash for a command or code.
        for method in
            ["eval", "instance_eval", "system", "exec", "spawn", "require", "load", "open"]
        {
            let post = root.post_for(&format!("echo.{method}"), &json!({"cmd": touch}).to_string());
            assert_eq!(post.path, EVENT_ERROR, "{method} {mode:?}: {}", post.body_text());
            let error_type = post.json()["errorType"].as_str().unwrap_or_default().to_string();
            assert!(error_type.starts_with("Function<"), "{method} {mode:?}: {error_type}");
        }
        assert!(!marker.exists(), "{mode:?}: something ran the event's command");
    }
}

#[test]
fn the_language_fixtures_echo_report_context_raise_and_fail_to_compile() {
    if !have("ruby") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(
            mode,
            &[
                ("echo.rb", "echo.rb"),
                ("context.rb", "context.rb"),
                ("raise.rb", "raise.rb"),
                ("syntax.rb", "syntax.rb"),
            ],
        );
        let events = vec![Event::new("r1", r#"{"a":[1,"x"]}"#)];
        let Served { posts, log, .. } =
            root.serve("echo.handler", events, &["log line from handler"]);
        assert_eq!(posts[0].json(), json!({"a": [1, "x"], "reply": "ruby ok"}), "{mode:?}");
        assert!(log.contains("log line from handler"), "{mode:?}");
        let event =
            Event::new("ctx-1", "{}").header("Lambda-Runtime-Trace-Id", "Root=1-abc;Sampled=1");
        let Served { posts, .. } = root.serve("context.handler", vec![event], &[]);
        let got = posts[0].json();
        assert_eq!(got["aws_request_id"], "ctx-1", "{mode:?}: {got}");
        assert_eq!(got["trace_id"], "Root=1-abc;Sampled=1", "{mode:?}");
        assert_eq!(got["invoked_function_arn"], ARN, "{mode:?}");
        let remaining = got["remaining_ms"].as_i64().unwrap_or(-1);
        assert!((1..=30_000).contains(&remaining), "{mode:?}: remaining_ms {remaining}");
        let post = root.post_for("raise.handler", "{}");
        assert_error(&post, "Function<ArgumentError>", &["bad input"]);
        syntax_error(mode, &root);
    }
}

#[test]
fn ruby_recovers_from_a_hang_a_crash_and_an_exit_in_every_mode() {
    if !have("ruby") {
        return;
    }
    let threads: Vec<_> = ALL_MODES
        .into_iter()
        .map(|mode| {
            std::thread::spawn(move || {
                let run = task_root(mode, &[("misbehave.rb", "m.rb")]).start("m.handler");
                assert_eq!(misbehave_then_serve(&run, "ruby"), "\"fine\"", "{mode:?}");
                run.assert_children_at_most(if mode == Mode::Plain { 0 } else { 1 });
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a mode failed; see its panic above");
    }
}

#[test]
fn bootstrap_invoke_runs_a_ruby_handler_by_its_aws_name() {
    if !have("ruby") {
        return;
    }
    let out = task_root(Mode::Ahead, &[("aws/core.rb", "core.rb")])
        .cli(&["invoke", "--handler", "core.DeepModule::Handler.ping", "-"])
        .stdin(r#"{"msg":"cli"}"#)
        .run();
    assert!(out.success(), "{}", out.stderr);
    assert_eq!(out.stdout, r#""Deep Module Message: 'cli'""#);
}

#[test]
fn the_frame_pipes_never_reach_the_handlers_subprocesses() {
    if !have("ruby") {
        return;
    }
    // Only a framed runner has them (fds 3 and 4); in plain mode Ruby's own descriptors, the
    // response's copy of stdout included, are close-on-exec already.
    for mode in [Mode::Ahead, Mode::Warm] {
        let root = task_root(mode, &[("aws/fds.rb", "fds.rb")]);
        let got = root.response_json("fds.handler", "{}", mode);
        let runner = got["runner"].as_array().cloned().unwrap_or_default();
        let subprocess = got["subprocess"].as_array().cloned().unwrap_or_default();
        assert_eq!(runner.len(), 2, "{mode:?}: {got}");
        for pipe in runner {
            assert!(pipe.as_str().is_some_and(|p| p.starts_with("pipe:")), "{mode:?}: {got}");
            assert!(!subprocess.contains(&pipe), "{mode:?}: {pipe} was inherited: {got}");
        }
    }
}

#[test]
fn under_the_json_log_format_logger_lines_keep_the_rics_text_as_their_message() {
    if !have("ruby") {
        return;
    }
    // aws_lambda_ric has no JSON format of its own: its lines become the records' messages.
    for mode in ALL_MODES {
        let root = task_root(mode, &[("aws/log.rb", "log.rb")]);
        let event = Event::new("req-8", r#"{"messages":["json-first"]}"#);
        let env = [("AWS_LAMBDA_LOG_FORMAT", Some("JSON"))];
        let Served { log, .. } =
            root.clone().envs(&env).serve("log.log_to_stdout", vec![event], &["json-first"]);
        let record = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| r["message"].as_str().is_some_and(|m| m.contains("json-first")));
        let record = record.unwrap_or_else(|| panic!("{mode:?}: no record for the line:\n{log}"));
        let message = record["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("I, ["), "{mode:?}: {record}");
        assert!(message.ends_with("INFO req-8 -- : json-first"), "{mode:?}: {record}");
        assert_eq!(record["requestId"], "req-8", "{mode:?}: {record}");
    }
}

#[test]
fn gems_vendored_into_the_function_load_as_on_lambda() {
    if !have("ruby") {
        return;
    }
    // Lambda's GEM_PATH starts with /var/task/vendor/bundle/ruby/<ruby_version>.
    let out = std::process::Command::new("ruby")
        .args(["-e", "print RbConfig::CONFIG['ruby_version']"])
        .output()
        .expect("run ruby");
    let gems = format!("vendor/bundle/ruby/{}", text(&out.stdout));
    for mode in ALL_MODES {
        let root = task_root(
            mode,
            &[
                ("aws/uses_gem.rb", "uses_gem.rb"),
                (
                    "aws/vendored_gem.gemspec",
                    &format!("{gems}/specifications/vendored_gem-1.2.3.gemspec"),
                ),
                (
                    "aws/vendored_gem.rb",
                    &format!("{gems}/gems/vendored_gem-1.2.3/lib/vendored_gem.rb"),
                ),
            ],
        );
        let want = json!({"greeting": "hello from vendor/bundle", "version": "1.2.3"});
        assert_eq!(root.response_json("uses_gem.handler", "{}", mode), want, "{mode:?}");
    }
}
