//! AWS's Python programming model through the real binary, in every mode: what awslambdaric
//! (AWS's Python runtime interface client) does for a handler written for the managed runtime,
//! checked against what its own tests expect. Handler names as it resolves them, its error
//! types, messages and stack traces, its marshalling of events and results, the full
//! LambdaContext, and its log handler and formats. The fixtures under
//! `tests/fixtures/python/aws/` recreate awslambdaric's test handlers and AWS's documented
//! examples. A handler that cannot be loaded is an init error in the framed modes and that
//! event's error in plain mode.

use std::ffi::OsStr;

use serde_json::{Value, json};

use crate::support::*;

/// Where the fixtures live, under `tests/fixtures`.
const DIR: &str = "python/aws";

/// A task root in `mode` holding these fixtures, each at its own relative path.
fn task_root(mode: Mode, fixtures: &[&str]) -> Lambda {
    fixtures.iter().fold(Lambda::new().mode(mode), |root, f| root.fixture(&format!("{DIR}/{f}"), f))
}

/// An interpreters.toml that runs the Python runner in `mode`, behind `prefix` (e.g. `env
/// NAME=value`), with `extra` keys.
fn python_config(mode: Mode, prefix: &[&str], extra: &str) -> String {
    let entry = runner_entry("python", &format!("{}{extra}", mode.settings()));
    let prefix: String = prefix.iter().map(|p| format!("{p:?}, ")).collect();
    entry.replacen("command = [", &format!("command = [{prefix}"), 1)
}

/// Serves one `{}` event with `handler` from `fixtures`, in `mode`; returns once `wait_for`
/// is in the log (after the post, a framed worker's own lines may still be on their way).
fn serve_one(
    mode: Mode,
    fixtures: &[&str],
    handler: &str,
    env: &[(&str, Option<&str>)],
    wait_for: &str,
) -> Served {
    let events = vec![Event::new("r1", "{}")];
    task_root(mode, fixtures).envs(env).serve(handler, events, &[wait_for])
}

/// A handler that cannot be loaded: plain mode loads it for each event, so it is that event's
/// error; a framed runner reports it before `ready`, which bootstrap posts as the init error
/// (or, for a runner started ahead of an event it was to serve, as that event's). Returns the
/// post and the log once the runner's `[ERROR]` line is in it.
fn load_error(mode: Mode, root: Lambda, handler: &str) -> Served {
    let run = root.start(handler);
    let post = run.invoke(Event::new("r1", "{}"));
    let framed_init = mode != Mode::Plain && post.path == INIT_ERROR;
    assert!(
        post.path == EVENT_ERROR || framed_init,
        "{handler} {mode:?}: posted to {}: {}",
        post.path,
        post.body_text()
    );
    run.wait_for_log("[ERROR] ");
    Served { posts: vec![post], log: run.stop(), root }
}

/// Asserts that a load error posts exactly awslambdaric's document for it (an init error has
/// no request id: `requestId` is ""), with the matching header, and logs its `[ERROR]` line.
#[track_caller]
fn assert_load_error(served: &Served, mode: Mode, error_type: &str, message: &str) {
    let post = &served.posts[0];
    let want = json!({"errorType": error_type, "errorMessage": message, "requestId": "",
                      "stackTrace": []});
    assert_eq!(post.json(), want, "{mode:?}");
    assert_eq!(post.header("Lambda-Runtime-Function-Error-Type"), Some(error_type), "{mode:?}");
    let line = format!("[ERROR] {error_type}: {message}\rTraceback (most recent call last):\n");
    assert!(served.log.contains(&line), "{mode:?}: want {line:?} in the log:\n{}", served.log);
}

/// Whether `log` has the text record `[LEVEL]\t<UTC time with ms>Z\t<request id>\t<message>`.
fn has_record(log: &str, level: &str, request_id: &str, message: &str) -> bool {
    let head = format!("[{level}]\t");
    log.lines().any(|line| {
        let Some(rest) = line.strip_prefix(&head) else { return false };
        let Some((time, rest)) = rest.split_once('\t') else { return false };
        rest == format!("{request_id}\t{message}") && is_time(time, true)
    })
}

/// `2026-01-02T03:04:05.678Z` (with milliseconds) or `2026-01-02T03:04:05Z`.
fn is_time(text: &str, millis: bool) -> bool {
    let shape = if millis { "dddd-dd-ddTdd:dd:dd.dddZ" } else { "dddd-dd-ddTdd:dd:ddZ" };
    text.len() == shape.len()
        && text
            .chars()
            .zip(shape.chars())
            .all(|(c, s)| if s == 'd' { c.is_ascii_digit() } else { c == s })
}

/// The JSON records of `log` that carry `logger` (the ones Python's logging wrote).
fn python_records(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON record ({e}): {line:?}\n{log}"))
        })
        .filter(|record| record.get("logger").is_some())
        .collect()
}

/// The record with this message, without its timestamp (checked for AWS's shape).
#[track_caller]
fn record_with(records: &[Value], message: &str) -> Value {
    let mut record = records
        .iter()
        .find(|r| r["message"] == message)
        .unwrap_or_else(|| panic!("no record {message:?} in {records:#?}"))
        .clone();
    let time = record["timestamp"].as_str().unwrap_or_default().to_string();
    assert!(is_time(&time, false), "timestamp {time:?} of {record}");
    record.as_object_mut().unwrap().remove("timestamp");
    record
}

#[test]
fn a_module_that_is_not_there_is_an_import_module_error_naming_it() {
    if !have("python3") {
        return;
    }
    // (handler, the module as awslambdaric names it, the module as Python names it)
    let cases = [
        ("no_module.handler", "no_module", "no_module"),
        ("pkg.nothing.handler", "pkg.nothing", "pkg.nothing"),
        ("pkg/nothing.handler", "pkg/nothing", "pkg.nothing"),
    ];
    for mode in ALL_MODES {
        for (handler, named, python) in cases {
            // A Python file at the top lets bootstrap leave the missing module to the runner.
            let root = task_root(mode, &["context.py", "pkg/__init__.py", "pkg/helper.py"]);
            let served = load_error(mode, root, handler);
            let message = format!("Unable to import module '{named}': No module named '{python}'");
            assert_load_error(&served, mode, "Runtime.ImportModuleError", &message);
        }
    }
}

#[test]
fn a_missing_dependency_is_an_import_module_error_of_the_handler_module() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &["missing_dependency.py"]);
        let served = load_error(mode, root, "missing_dependency.handler");
        let message = "Unable to import module 'missing_dependency': \
                       No module named 'not_a_real_dependency_xyz'";
        assert_load_error(&served, mode, "Runtime.ImportModuleError", message);
    }
}

#[test]
fn a_syntax_error_is_a_user_code_syntax_error_with_its_file_and_line() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let root = task_root(mode, &["syntax_error.py"]);
        let served = load_error(mode, root, "syntax_error.syntax_error");
        let body = served.posts[0].json();
        assert_eq!(body["errorType"], "Runtime.UserCodeSyntaxError", "{mode:?}: {body}");
        // Python's own wording of the error varies by version ("invalid syntax", "expected ':'").
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("Syntax error in module 'syntax_error': ")
                && message.ends_with(" (syntax_error.py, line 1)"),
            "{mode:?}: {message:?}"
        );
        // awslambdaric's own trace: `File "<path>" Line <n>`, then the offending line.
        let file = served.root.file("syntax_error.py");
        let frame = format!("  File \"{}\" Line 1\n    def syntax_error()\n", file.display());
        assert_eq!(body["stackTrace"], json!([frame]), "{mode:?}");
        assert_eq!(body["requestId"], "", "{mode:?}");
        let logged = format!(
            "[ERROR] Runtime.UserCodeSyntaxError: {message}\rTraceback (most recent call last):\r\
             \u{a0}\u{a0}File \"{}\" Line 1\r\u{a0}\u{a0}\u{a0}\u{a0}def syntax_error()\n",
            file.display()
        );
        assert!(served.log.contains(&logged), "{mode:?}: {:?}", served.log);
    }
}

#[test]
fn a_function_the_module_does_not_have_is_handler_not_found() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = load_error(mode, task_root(mode, &["wrong_name.py"]), "wrong_name.my_handler");
        let message = "Handler 'my_handler' missing on module 'wrong_name'";
        assert_load_error(&served, mode, "Runtime.HandlerNotFound", message);
    }
}

#[test]
fn a_built_in_module_name_is_a_built_in_module_conflict() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = load_error(mode, task_root(mode, &["context.py"]), "sys.hello");
        let message = "Cannot use built-in module sys as a handler module";
        assert_load_error(&served, mode, "Runtime.BuiltInModuleConflict", message);
    }
}

#[test]
fn a_handler_name_without_a_dot_is_a_malformed_handler_name() {
    if !have("python3") {
        return;
    }
    // bootstrap refuses such a _HANDLER itself; `env` gives the runner one, as awslambdaric
    // would get it, to show what the runner says.
    for mode in ALL_MODES {
        let config = python_config(mode, &["env", "_HANDLER=bad_handler"], "");
        let root = task_root(mode, &["context.py"]).write("interpreters.toml", &config);
        let served = load_error(mode, root, "context.handler");
        let message = "Bad handler 'bad_handler': not enough values to unpack (expected 2, got 1)";
        assert_load_error(&served, mode, "Runtime.MalformedHandlerName", message);
    }
}

#[test]
fn an_exception_at_import_is_reported_with_its_class_and_the_import_traceback() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served =
            load_error(mode, task_root(mode, &["init_failure.py"]), "init_failure.handler");
        let body = served.posts[0].json();
        assert_eq!(body["errorType"], "KeyError", "{mode:?}: {body}");
        assert_eq!(body["errorMessage"], "'A_SETTING_THAT_IS_NOT_SET'", "{mode:?}");
        assert_eq!(body["requestId"], "", "{mode:?}");
        let header = served.posts[0].header("Lambda-Runtime-Function-Error-Type");
        assert_eq!(header, Some("Function.KeyError"), "{mode:?}");
        // As on Lambda: from importlib's import_module down to the module's own line, and
        // none of the runtime's frames.
        let frames: Vec<&str> =
            body["stackTrace"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(frames[0].contains("importlib"), "{mode:?}: {frames:?}");
        assert!(frames[0].contains(", in import_module\n"), "{mode:?}: {frames:?}");
        let own = format!(
            "  File \"{}\", line 5, in <module>\n    \
             SETTING = os.environ[\"A_SETTING_THAT_IS_NOT_SET\"]\n",
            served.root.file("init_failure.py").display()
        );
        assert!(frames.contains(&own.as_str()), "{mode:?}: {frames:?}");
        assert!(!frames.iter().any(|f| f.contains("runner.py")), "{mode:?}: {frames:?}");
        assert!(served.log.contains("[ERROR] KeyError: 'A_SETTING_THAT_IS_NOT_SET'\r"), "{mode:?}");
    }
}

#[test]
fn dotted_slashed_and_package_handler_names_import_as_awslambdaric_does() {
    if !have("python3") {
        return;
    }
    let fixtures = ["pkg/__init__.py", "pkg/helper.py", "pkg/module.py", "dir/module.py"];
    let greeting = "relative imports work";
    for mode in ALL_MODES {
        let module = json!({"module": "pkg.module", "greeting": greeting, "again": greeting});
        let file = "<root>/dir/module.py";
        let cases = [
            ("pkg.module.handler", module.clone()),
            ("pkg/module.handler", module),
            ("pkg.handler", json!({"module": "pkg", "greeting": greeting})),
            ("dir/module.handler", json!({"module": "dir.module", "file": file})),
        ];
        for (handler, want) in cases {
            let served = serve_one(mode, &fixtures, handler, &[], "r1");
            let root = served.root.root().display().to_string();
            let body = served.posts[0].body_text().replace(&root, "<root>");
            let got: Option<Value> = serde_json::from_str(&body).ok();
            assert_eq!(got, Some(want), "{mode:?} {handler}");
        }
        let served = serve_one(mode, &["echo/app.py"], "echo/app.handler", &[], "r1");
        assert_eq!(served.posts[0].body_text(), "\"success\"", "{mode:?}");
    }
}

#[test]
fn awslambdaric_s_slash_and_built_in_name_fixtures_resolve_and_are_called() {
    if !have("python3") {
        return;
    }
    // awslambdaric's own fixtures take no arguments: called as handlers, they fail as
    // awslambdaric's would, which shows they were found. A built-in module's name deeper in a
    // path is no conflict.
    let cases = [
        (
            "tests/test_handler_with_slash/test_handler.py",
            "tests/test_handler_with_slash/test_handler.my_handler",
        ),
        (
            "tests/test_built_in_module_name/sys.py",
            "tests/test_built_in_module_name/sys.my_handler",
        ),
        (
            "tests/test_built_in_module_name/sys.py",
            "tests.test_built_in_module_name.sys.my_handler",
        ),
    ];
    for mode in ALL_MODES {
        for (fixture, handler) in cases {
            let served = serve_one(mode, &[fixture], handler, &[], "r1");
            let body = served.posts[0].json();
            assert_eq!(body["errorType"], "TypeError", "{mode:?} {handler}: {body}");
            let message = "my_handler() takes 0 positional arguments but 2 were given";
            assert_eq!(body["errorMessage"], message, "{mode:?} {handler}");
            assert_eq!(body["requestId"], "r1", "{mode:?} {handler}");
        }
    }
}

#[test]
fn a_handler_exception_posts_its_class_message_request_id_and_traceback() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = serve_one(
            mode,
            &["errors.py"],
            "errors.raise_exception_handler",
            &[],
            "[ERROR] MyError",
        );
        let file = served.root.file("errors.py").display().to_string();
        let frame = format!(
            "  File \"{file}\", line 10, in raise_exception_handler\n    \
             raise MyError(\"My error\")\n"
        );
        let want = json!({"errorType": "MyError", "errorMessage": "My error", "requestId": "r1",
                          "stackTrace": [frame]});
        assert_eq!(served.posts[0].json(), want, "{mode:?}");
        let header = served.posts[0].header("Lambda-Runtime-Function-Error-Type");
        assert_eq!(header, Some("Function.MyError"), "{mode:?}");
        // Logged as one record, the traceback indented with no-break spaces.
        let logged = format!(
            "[ERROR] MyError: My error\rTraceback (most recent call last):\r\
             \u{a0}\u{a0}File \"{file}\", line 10, in raise_exception_handler\r\
             \u{a0}\u{a0}\u{a0}\u{a0}raise MyError(\"My error\")\n"
        );
        assert!(served.log.contains(&logged), "{mode:?}: {:?}", served.log);
    }
}

#[test]
fn an_exception_without_a_message_posts_an_empty_message() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served =
            serve_one(mode, &["errors.py"], "errors.raise_empty_message", &[], "[ERROR] MyError");
        let body = served.posts[0].json();
        assert_eq!((&body["errorType"], &body["errorMessage"]), (&json!("MyError"), &json!("")));
        assert!(served.log.contains("[ERROR] MyError\rTraceback (most recent call last):\r"));
    }
}

#[test]
fn a_multi_line_error_message_is_posted_whole_and_logged_as_one_record() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = serve_one(mode, &["errors.py"], "errors.multi_line", &[], "[ERROR] Runtime");
        let body = served.posts[0].json();
        assert_eq!(body["errorMessage"], "first line\nsecond line", "{mode:?}");
        let record =
            "[ERROR] RuntimeError: first line\rsecond line\rTraceback (most recent call last):\r";
        let line = served.log.lines().find(|l| l.starts_with(record));
        let line = line.unwrap_or_else(|| panic!("{mode:?}: {:?}", served.log));
        assert!(
            line.ends_with("raise RuntimeError(\"first line\\nsecond line\")"),
            "{mode:?}: {line:?}"
        );
    }
}

#[test]
fn the_traceback_keeps_every_frame_of_the_handler_s_code() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = serve_one(mode, &["errors.py"], "errors.nested", &[], "r1");
        let file = served.root.file("errors.py").display().to_string();
        let want = json!({
            "errorType": "KeyError", "errorMessage": "'missing'", "requestId": "r1",
            "stackTrace": [
                format!("  File \"{file}\", line 26, in nested\n    return _lookup(event)\n"),
                format!("  File \"{file}\", line 30, in _lookup\n    return event[\"missing\"]\n"),
            ],
        });
        assert_eq!(served.posts[0].json(), want, "{mode:?}");
    }
}

#[test]
fn an_import_error_inside_the_handler_is_the_handler_s_own_error() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = serve_one(mode, &["errors.py"], "errors.unable_to_import_module", &[], "r1");
        let body = served.posts[0].json();
        assert_eq!(body["errorType"], "ModuleNotFoundError", "{mode:?}: {body}");
        assert_eq!(body["errorMessage"], "No module named 'invalid_module'", "{mode:?}");
    }
}

#[test]
fn an_event_that_is_not_json_is_an_unmarshal_error_worded_as_simplejson_words_it() {
    if !have("python3") {
        return;
    }
    let cases: [(&[u8], &str); 6] = [
        (b"not_valid_json", "Expecting value: line 1 column 1 (char 0)"),
        (b"{\"a\": NaN}", "Expecting value: line 1 column 7 (char 6)"),
        (b"{\"a\":1} x", "Extra data: line 1 column 9 - line 1 column 10 (char 8 - 9)"),
        (
            b"{",
            "Expecting property name enclosed in double quotes or '}': line 1 column 2 (char 1)",
        ),
        (b"[1 2]", "Expecting ',' delimiter or ']': line 1 column 4 (char 3)"),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00",
            "'utf-8' codec can't decode byte 0x89 in position 0: invalid start byte",
        ),
    ];
    for mode in ALL_MODES {
        let events = cases
            .iter()
            .enumerate()
            .map(|(i, (body, _))| Event::new(&format!("u{i}"), *body))
            .collect();
        let last = format!("u{}", cases.len() - 1);
        let served = task_root(mode, &["errors.py"]).serve("errors.echo", events, &[&last]);
        for (i, (post, (_, message))) in served.posts.iter().zip(cases).enumerate() {
            let want = json!({"errorType": "Runtime.UnmarshalError",
                              "errorMessage": format!("Unable to unmarshal input: {message}"),
                              "requestId": format!("u{i}"), "stackTrace": []});
            assert_eq!(post.json(), want, "{mode:?}");
        }
    }
}

#[test]
fn a_result_json_cannot_encode_is_a_marshal_error() {
    if !have("python3") {
        return;
    }
    let cases = [("errors.invalid_json_response", "type"), ("errors.set_response", "set")];
    for mode in ALL_MODES {
        for (handler, kind) in cases {
            let served = serve_one(mode, &["errors.py"], handler, &[], "r1");
            let message = format!(
                "Unable to marshal response: Object of type {kind} is not JSON serializable"
            );
            let want = json!({"errorType": "Runtime.MarshalError", "errorMessage": message,
                              "requestId": "r1", "stackTrace": []});
            assert_eq!(served.posts[0].json(), want, "{mode:?} {handler}");
        }
    }
}

#[test]
fn results_are_encoded_byte_for_byte_as_awslambdaric_encodes_them() {
    if !have("python3") {
        return;
    }
    let cases: [(&str, &[u8]); 8] = [
        ("responses.decimal_value", br#"{"pi": 3.14159, "big": 1E+2, "cents": [1.10, -0.00]}"#),
        ("responses.decimal_nan", br#"{"pi": NaN, "neg": NaN}"#),
        ("responses.float_specials", b"[NaN, Infinity, -Infinity, 1.5]"),
        ("responses.binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00"),
        ("responses.nested_bytes", br#"{"data": "text as bytes", "list": ["x"], "key": 1}"#),
        ("responses.text", br#""hello""#),
        ("responses.nothing", b"null"),
        ("responses.tuple_value", br#"{"t": [1, "a"], "1": true, "null": false}"#),
    ];
    for mode in ALL_MODES {
        for (handler, want) in cases {
            let served = serve_one(mode, &["responses.py"], handler, &[], "r1");
            let post = &served.posts[0];
            assert_eq!(
                post.path, "/2018-06-01/runtime/invocation/r1/response",
                "{mode:?} {handler}"
            );
            assert_eq!(post.body, want, "{mode:?} {handler}: {:?}", post.body_text());
        }
    }
}

#[test]
fn non_ascii_text_is_kept_on_python_3_12_and_later_and_escaped_before() {
    if !have("python3") {
        return;
    }
    // awslambdaric decides by AWS_EXECUTION_ENV, as the managed runtimes set it.
    let cases = [
        ("AWS_Lambda_python3.12", "{\"price\": \"\u{a3}1.00\"}"),
        ("AWS_Lambda_python3.13", "{\"price\": \"\u{a3}1.00\"}"),
        ("AWS_Lambda_python3.11", r#"{"price": "\u00a31.00"}"#),
        ("AWS_Lambda_python3.9", r#"{"price": "\u00a31.00"}"#),
    ];
    for mode in ALL_MODES {
        for (execution_env, want) in cases {
            let env = [("AWS_EXECUTION_ENV", Some(execution_env))];
            let served = serve_one(mode, &["responses.py"], "responses.price", &env, "r1");
            assert_eq!(served.posts[0].body_text(), want, "{mode:?} {execution_env}");
        }
    }
}

/// The Client Context and Cognito identity of awslambdaric's context tests.
const CLIENT_CONTEXT: &str = concat!(
    r#"{"client": {"installation_id": "installid1", "app_title": "title1", "#,
    r#""app_version_name": "name1", "app_version_code": "versioncode1", "#,
    r#""app_package_name": "package1"}, "custom": {"custom-key": "custom-value"}, "#,
    r#""env": {"custom-env": "custom-value"}}"#,
);
const COGNITO_IDENTITY: &str =
    r#"{"cognitoIdentityId": "id1", "cognitoIdentityPoolId": "poolid1"}"#;

#[test]
fn the_context_has_every_field_of_awslambdaric_s_lambda_context() {
    if !have("python3") {
        return;
    }
    let env = [
        ("AWS_LAMBDA_FUNCTION_NAME", Some("function-name1")),
        ("AWS_LAMBDA_FUNCTION_VERSION", Some("version1")),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("1234")),
        ("AWS_LAMBDA_LOG_GROUP_NAME", Some("log-group-name1")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", Some("log-stream-name1")),
    ];
    for mode in ALL_MODES {
        let event = Event::new("invoke-id1", "{}")
            .header("Lambda-Runtime-Client-Context", CLIENT_CONTEXT)
            .header("Lambda-Runtime-Cognito-Identity", COGNITO_IDENTITY)
            .header("Lambda-Runtime-Aws-Tenant-Id", "blue");
        let root = task_root(mode, &["context.py"]);
        let served = root.envs(&env).serve("context.handler", vec![event], &["invoke-id1"]);
        let mut body = served.posts[0].json();
        let remaining = body["remaining_ms"].as_i64().unwrap_or(-1);
        assert!((1..=30_000).contains(&remaining), "{mode:?}: remaining_ms {remaining}");
        body.as_object_mut().unwrap().remove("remaining_ms");
        let repr = format!(
            "LambdaContext([aws_request_id=invoke-id1,log_group_name=log-group-name1,\
             log_stream_name=log-stream-name1,function_name=function-name1,\
             memory_limit_in_mb=1234,function_version=version1,invoked_function_arn={ARN},\
             client_context=ClientContext([custom={{'custom-key': 'custom-value'}},\
             env={{'custom-env': 'custom-value'}},client=Client([installation_id=installid1,\
             app_title=title1,app_version_name=name1,app_version_code=versioncode1,\
             app_package_name=package1])]),identity=CognitoIdentity([cognito_identity_id=id1,\
             cognito_identity_pool_id=poolid1]),tenant_id=blue])"
        );
        let want = json!({
            "repr": repr,
            "aws_request_id": "invoke-id1",
            "invoked_function_arn": ARN,
            "function_name": "function-name1",
            "function_version": "version1",
            "memory_limit_in_mb": "1234",
            "memory_limit_type": "str",
            "log_group_name": "log-group-name1",
            "log_stream_name": "log-stream-name1",
            "tenant_id": "blue",
            "identity": ["id1", "poolid1"],
            "client_context": {
                "custom": {"custom-key": "custom-value"},
                "env": {"custom-env": "custom-value"},
                "client": ["installid1", "title1", "name1", "versioncode1", "package1"],
            },
        });
        assert_eq!(body, want, "{mode:?}");
    }
}

#[test]
fn without_optional_headers_identity_is_empty_and_client_context_is_none() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let served = serve_one(mode, &["context.py"], "context.handler", &[], "r1");
        let body = served.posts[0].json();
        assert_eq!(body["identity"], json!([null, null]), "{mode:?}: {body}");
        assert_eq!(body["client_context"], Value::Null, "{mode:?}");
        assert_eq!(body["tenant_id"], Value::Null, "{mode:?}");
        assert_eq!(body["memory_limit_in_mb"], Value::Null, "{mode:?}");
        let repr = body["repr"].as_str().unwrap_or_default();
        let tail = ",client_context=None,identity=CognitoIdentity([cognito_identity_id=None,\
                    cognito_identity_pool_id=None]),tenant_id=None])";
        assert!(repr.ends_with(tail), "{mode:?}: {repr}");
    }
}

#[test]
fn a_client_context_or_identity_that_is_not_json_is_a_context_unmarshal_error() {
    if !have("python3") {
        return;
    }
    let cases = [
        ("Lambda-Runtime-Client-Context", "invalid_client_context_not_json", "Client Context"),
        ("Lambda-Runtime-Cognito-Identity", "invalid_cognito_identity", "Cognito Identity"),
    ];
    for mode in ALL_MODES {
        for (header, value, what) in cases {
            let event = Event::new("r1", "{}").header(header, value);
            let served =
                task_root(mode, &["context.py"]).serve("context.handler", vec![event], &["r1"]);
            let message =
                format!("Unable to parse {what} JSON: Expecting value: line 1 column 1 (char 0)");
            let want = json!({"errorType": "Runtime.LambdaContextUnmarshalError",
                              "errorMessage": message, "requestId": "r1", "stackTrace": []});
            assert_eq!(served.posts[0].json(), want, "{mode:?}");
        }
    }
}

#[test]
fn the_root_logger_writes_aws_s_text_records_with_the_current_request_id() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let events = vec![Event::new("r1", "{}"), Event::new("r2", "{}")];
        let served = task_root(mode, &["logs.py"]).serve("logs.handler", events, &["done r2"]);
        let log = &served.log;
        assert_eq!(served.posts[0].body_text(), "\"logged\"", "{mode:?}: prints stay in the log");
        // At import, before any invocation, the request id is empty.
        assert!(has_record(log, "INFO", "", "loaded"), "{mode:?}:\n{log}");
        for id in ["r1", "r2"] {
            assert!(has_record(log, "INFO", id, "info message"), "{mode:?} {id}:\n{log}");
            assert!(has_record(log, "WARNING", id, "warning from a.b"), "{mode:?}:\n{log}");
            assert!(has_record(log, "Level 25", id, "a custom level"), "{mode:?}:\n{log}");
            assert!(has_record(log, "INFO", id, "with extras"), "{mode:?}:\n{log}");
            assert!(has_record(log, "CRITICAL", id, &format!("done {id}")), "{mode:?}:\n{log}");
            // A multi-line message stays one record.
            let lines = "test \rwith \rnew \rlines";
            assert!(has_record(log, "ERROR", id, lines), "{mode:?}:\n{log}");
            let traceback = format!(
                "test exception\rTraceback (most recent call last):\r  \
                 File \"{}\", line 16, in handler\r",
                served.root.file("logs.py").display()
            );
            let exception = format!("\t{id}\t{traceback}");
            let found = log.lines().any(|l| {
                l.starts_with("[ERROR]\t")
                    && l.contains(&exception)
                    && l.ends_with("ValueError: error message")
            });
            assert!(found, "{mode:?}: an exception with its traceback in one record:\n{log}");
        }
        assert!(!log.contains("debug message"), "{mode:?}: the level is INFO:\n{log}");
        assert!(log.contains("\nfrom context.log\n"), "{mode:?}:\n{log}");
        assert!(log.contains("\nfrom print\n"), "{mode:?}:\n{log}");
    }
}

#[test]
fn the_root_level_is_warning_unless_aws_lambda_log_level_names_one() {
    if !have("python3") {
        return;
    }
    // (AWS_LAMBDA_LOG_LEVEL, the levels that are written); TRACE is DEBUG, an unknown name
    // leaves Python's default.
    let cases: [(Option<&str>, &[&str]); 7] = [
        (None, &["WARNING", "ERROR"]),
        (Some("DEBUG"), &["DEBUG", "INFO", "WARNING", "ERROR"]),
        (Some("TRACE"), &["DEBUG", "INFO", "WARNING", "ERROR"]),
        (Some("INFO"), &["INFO", "WARNING", "ERROR"]),
        (Some("WARN"), &["WARNING", "ERROR"]),
        (Some("FATAL"), &[]),
        (Some("bogus"), &["WARNING", "ERROR"]),
    ];
    let all = ["DEBUG", "INFO", "WARNING", "ERROR"];
    for mode in ALL_MODES {
        for (setting, shown) in cases {
            let env = [("AWS_LAMBDA_LOG_LEVEL", setting)];
            let served = task_root(mode, &["quiet_logs.py"]).envs(&env).serve(
                "quiet_logs.handler",
                vec![Event::new("r1", "{}")],
                &["done r1"],
            );
            for level in all {
                let message = format!("{} message", level.to_lowercase());
                let want = shown.contains(&level);
                let got = has_record(&served.log, level, "r1", &message);
                assert_eq!(got, want, "{mode:?} {setting:?} {level}:\n{}", served.log);
            }
        }
    }
}

#[test]
fn the_json_format_writes_aws_s_json_records() {
    if !have("python3") {
        return;
    }
    let env = [("AWS_LAMBDA_LOG_FORMAT", Some("JSON")), ("AWS_LAMBDA_LOG_LEVEL", Some("INFO"))];
    for mode in ALL_MODES {
        let event = Event::new("r1", "{}").header("Lambda-Runtime-Aws-Tenant-Id", "blue");
        let served = task_root(mode, &["logs.py"]).envs(&env).serve(
            "logs.handler",
            vec![event],
            &["done r1"],
        );
        let records = python_records(&served.log);
        let loaded =
            json!({"level": "INFO", "message": "loaded", "logger": "root", "requestId": ""});
        assert_eq!(record_with(&records, "loaded"), loaded, "{mode:?}");
        let fields = |level: &str, message: &str, logger: &str| {
            json!({"level": level, "message": message, "logger": logger, "requestId": "r1",
                   "tenantId": "blue"})
        };
        let cases = [
            fields("INFO", "info message", "root"),
            fields("WARNING", "warning from a.b", "a.b"),
            fields("ERROR", "test \nwith \nnew \nlines", "root"),
            fields("INFO", "a custom level", "a.b"),
            fields("CRITICAL", "done r1", "root"),
        ];
        for want in cases {
            let message = want["message"].as_str().unwrap();
            assert_eq!(record_with(&records, message), want, "{mode:?}");
        }
        let mut extras = fields("INFO", "with extras", "a.b");
        extras["key"] = json!("value");
        extras["n"] = json!(1);
        assert_eq!(record_with(&records, "with extras"), extras, "{mode:?}");
        let mut exception = record_with(&records, "test exception");
        let stack = exception["stackTrace"].take();
        assert_eq!(stack.as_array().map(Vec::len), Some(1), "{mode:?}: {stack}");
        let location = format!("{}:handler:18", served.root.file("logs.py").display());
        let mut want = fields("ERROR", "test exception", "test.logger");
        want["stackTrace"] = Value::Null;
        want["errorType"] = json!("ValueError");
        want["errorMessage"] = json!("error message");
        want["location"] = json!(location);
        assert_eq!(exception, want, "{mode:?}");
        assert!(!served.log.contains("debug message"), "{mode:?}");
    }
}

#[test]
fn under_the_json_format_a_failure_is_logged_as_its_error_document() {
    if !have("python3") {
        return;
    }
    let env = [("AWS_LAMBDA_LOG_FORMAT", Some("JSON"))];
    for mode in ALL_MODES {
        let served =
            serve_one(mode, &["errors.py"], "errors.raise_exception_handler", &env, "log_level");
        let record = served
            .log
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|r| r["log_level"] == "ERROR")
            .unwrap_or_else(|| panic!("{mode:?}: no error record:\n{}", served.log));
        assert!(is_time(record["timestamp"].as_str().unwrap_or_default(), false), "{record}");
        assert_eq!(record["errorType"], "MyError", "{mode:?}");
        assert_eq!(record["errorMessage"], "My error", "{mode:?}");
        assert_eq!(record["requestId"], "r1", "{mode:?}");
        assert_eq!(record["stackTrace"], served.posts[0].json()["stackTrace"], "{mode:?}");
    }
}

#[test]
fn bootstrap_s_settings_stay_out_of_the_handler_s_environment() {
    if !have("python3") {
        return;
    }
    for mode in ALL_MODES {
        let config = python_config(mode, &[], "convention = \"some-convention\"\n");
        let root = task_root(mode, &["environment.py"]).write("interpreters.toml", &config);
        let event = Event::new("r1", "{}").header("Lambda-Runtime-Trace-Id", "Root=1-abc");
        let served = root.serve("environment.handler", vec![event], &["r1"]);
        let want = json!({"BOOTSTRAP_CONVENTION": null, "BOOTSTRAP_FRAMED": null,
                          "_HANDLER": "environment.handler", "_X_AMZN_TRACE_ID": "Root=1-abc"});
        assert_eq!(served.posts[0].json(), want, "{mode:?}");
    }
}

#[test]
fn bootstrap_invoke_runs_a_dotted_handler_name() {
    if !have("python3") {
        return;
    }
    let fixtures = ["pkg/__init__.py", "pkg/helper.py", "pkg/module.py"];
    let out = task_root(Mode::Plain, &fixtures)
        .cli(&["invoke", "--handler", "pkg.module.handler", "-"])
        .stdin("{}")
        .run();
    assert!(out.success(), "{}", out.stderr);
    let greeting = "relative imports work";
    let want = json!({"module": "pkg.module", "greeting": greeting, "again": greeting});
    assert_eq!(out.json(), want);
}

#[test]
fn modules_of_the_function_s_layers_under_opt_python_come_after_the_task_root() {
    if !have("python3") || !have("unshare") || emulated("a private /opt") {
        return;
    }
    // A private mount namespace puts a scratch directory over /opt for bootstrap alone.
    let probe = std::process::Command::new("unshare").args(["--mount", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: unshare --mount is not permitted here (it needs root)");
        return;
    }
    let python = find_on_path("python3".as_ref()).expect("python3 is on PATH");
    let found = std::process::Command::new(&python)
        .args(["-c", "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"])
        .output()
        .expect("run python3");
    let found = text(&found.stdout);
    let (executable, version) = found.trim().split_once('\n').expect("python3's answer");
    if executable.starts_with("/opt/") {
        eprintln!("skipped: python3 itself lives under /opt ({executable})");
        return;
    }
    let site_packages = format!("python/lib/python{version}/site-packages");
    let opt = Lambda::new()
        .write("python/from_layer_root.py", "WHERE = \"/opt/python\"\n")
        .write("python/shadowed.py", "WHERE = \"the layer\"\n")
        .write(&format!("{site_packages}/from_layer_site_packages.py"), "WHERE = \"site\"\n");
    for mode in ALL_MODES {
        let root = task_root(mode, &["layered.py", "shadowed.py"]);
        let mount = "mount --bind \"$0\" /opt && exec \"$@\"";
        let unshare = ["unshare", "--mount", "sh", "-c", mount].map(OsStr::new);
        let program = unshare.into_iter().chain([opt.root().as_os_str(), OsStr::new(BIN)]);
        let run = root.clone().program(program).start("layered.handler");
        let post = run.response_to(Event::new("r1", "{}"));
        drop(run);
        let want = json!({
            "layer_root": "/opt/python",
            "site_packages": "site",
            "shadowed": "task root",
            "path": [root.root(), format!("/opt/{site_packages}"), "/opt/python"],
        });
        assert_eq!(post.json(), want, "{mode:?}");
    }
}

#[test]
fn without_handler_in_the_environment_the_module_is_named_from_file_and_method() {
    if !have("python3") {
        return;
    }
    let fixtures = ["pkg/__init__.py", "pkg/helper.py", "pkg/module.py", "context.py"];
    let greeting = "relative imports work";
    for mode in ALL_MODES {
        let config = python_config(mode, &["env", "-u", "_HANDLER"], "");
        let root = task_root(mode, &fixtures).write("interpreters.toml", &config);
        let served = root.serve("pkg.module.handler", vec![Event::new("r1", "{}")], &["r1"]);
        let want = json!({"module": "pkg.module", "greeting": greeting, "again": greeting});
        assert_eq!(served.posts[0].json(), want, "{mode:?}");

        let root = task_root(mode, &fixtures).write("interpreters.toml", &config);
        let served = load_error(mode, root, "no_module.handler");
        let message = "Unable to import module 'no_module': No module named 'no_module'";
        assert_load_error(&served, mode, "Runtime.ImportModuleError", message);
    }
}
