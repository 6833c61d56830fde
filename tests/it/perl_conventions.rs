//! Perl's two conventions and the one error vocabulary of the Perl and shell runners, through
//! the real binary in every mode. p5-aws-lambda's (`convention = "p5-aws-lambda"` under
//! `[interpreters.perl]`): the handler file and function found as its AWS::Lambda::Bootstrap
//! finds them, the payload decoded and the result encoded as its encode_json does, its
//! AWS::Lambda::Context, `$AWS::Lambda::context`, code refs streamed through its responder and
//! writer, and its error documents. The seed convention's context gains accessor methods. A
//! syntax error is `Runtime.UserCodeSyntaxError` in the interpreter's words, a file that
//! cannot load `Runtime.ImportModuleError`, a missing function `Runtime.HandlerNotFound`.
//! The fixtures under `tests/fixtures/perl/p5/` include p5-aws-lambda's own test handlers.

use serde_json::{Value, json};

use crate::support::*;

const TRACE: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1";

/// The function-level variables Lambda sets, for the context accessors.
const FUNCTION_ENV: [(&str, Option<&str>); 5] = [
    ("AWS_LAMBDA_FUNCTION_NAME", Some("p5-function")),
    ("AWS_LAMBDA_FUNCTION_VERSION", Some("$LATEST")),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("256")),
    ("AWS_LAMBDA_LOG_GROUP_NAME", Some("/aws/lambda/p5-function")),
    ("AWS_LAMBDA_LOG_STREAM_NAME", Some("2026/01/01/[$LATEST]abcdef")),
];

/// An interpreters.toml that changes only the built-in Perl entry: p5-aws-lambda's convention,
/// run in `mode`.
fn p5_config(mode: Mode) -> String {
    format!("[interpreters.perl]\nconvention = \"p5-aws-lambda\"\n{}", mode.settings())
}

/// A task root in p5-aws-lambda's convention holding each `(fixture under perl/p5, name)`.
fn p5_root(mode: Mode, files: &[(&str, &str)]) -> Lambda {
    Lambda::new().config(&p5_config(mode)).fixtures("perl/p5", files)
}

/// A task root with the built-in runners in `mode` holding each `(fixture, name)`.
fn root_with(mode: Mode, files: &[(&str, &str)]) -> Lambda {
    Lambda::new().mode(mode).fixtures("", files)
}

/// The post for one event `body` with id r1 (and a trace id).
fn serve_one(root: &Lambda, handler: &str, body: &str) -> Post {
    let event = Event::new("r1", body).header("Lambda-Runtime-Trace-Id", TRACE);
    root.serve(handler, vec![event], &[]).posts.remove(0)
}

/// The response body of one event, asserting it was a response.
#[track_caller]
fn response(root: &Lambda, handler: &str, body: &str, mode: Mode) -> Post {
    let post = serve_one(root, handler, body);
    assert_eq!(post.path, RESPONSE, "{handler} {mode:?}: {}", post.body_text());
    post
}

/// The error of a handler that does not load. Plain mode loads the file for each event, so it
/// is that event's error (unless bootstrap's own syntax check at init found it first); a
/// framed worker reports it before `ready`, which bootstrap posts as the init error or as the
/// event's.
#[track_caller]
fn load_error(root: &Lambda, handler: &str, mode: Mode) -> Post {
    let post = serve_one(root, handler, "{}");
    assert!(
        post.path == EVENT_ERROR || post.path == INIT_ERROR,
        "{handler} {mode:?}: posted to {}: {}",
        post.path,
        post.body_text()
    );
    post
}

/// Asserts a p5-aws-lambda error document: exactly `errorMessage` and `errorType`, no stack.
#[track_caller]
fn assert_p5_error(post: &Post, error_type: &str, message: &str, what: &str) {
    let want = json!({ "errorMessage": message, "errorType": error_type });
    assert_eq!(post.json(), want, "{what}: posted to {}", post.path);
}

/// Whether bootstrap streamed this post (framed modes) rather than buffering it (plain mode).
fn streamed(post: &Post) -> bool {
    post.header("Lambda-Runtime-Function-Response-Mode") == Some("streaming")
}

// --- p5-aws-lambda: its own test handlers ------------------------------------------------------

#[test]
fn p5_echo_handler_gets_the_decoded_payload_its_context_and_the_trace_id() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("echo.pl", "echo.pl")]);
        let event = Event::new("r1", r#"{"key1":1,"key2":2,"key3":3}"#)
            .header("Lambda-Runtime-Trace-Id", TRACE);
        let Served { posts, log, .. } =
            root.serve("echo.handle", vec![event], &["log line from p5"]);
        assert_eq!(posts[0].path, RESPONSE, "{mode:?}: {}", posts[0].body_text());
        assert_eq!(posts[0].json(), json!({"key1": 1, "key2": 2, "key3": 3}), "{mode:?}");
        assert!(!posts[0].body_text().contains("log line"), "{mode:?}: prints are the log's");
        assert!(log.contains("log line from p5 echo"), "{mode:?}: {log}");
    }
}

#[test]
fn p5_error_handler_posts_its_message_as_an_error_of_type_error() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("error.pl", "error.pl")]);
        let message = format!("some error at {}/error.pl line 7.\n", root.root().display());
        let event = Event::new("r1", "{}");
        let Served { posts, log, .. } = root.serve("error.handle", vec![event], &["some error at"]);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}");
        assert_p5_error(&posts[0], "Error", &message, &format!("{mode:?}"));
        assert_eq!(posts[0].header("Lambda-Runtime-Function-Error-Type"), Some("Function.Error"));
        assert!(log.contains(message.trim_end()), "{mode:?}: p5 logs the error too:\n{log}");
    }
}

#[test]
fn p5_init_error_handler_whose_file_returns_false_fails_as_require_does() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("init_error.pl", "init_error.pl")]);
        let post = load_error(&root, "init_error.handle", mode);
        let body = post.json();
        let message = body["errorMessage"].as_str().unwrap_or_default();
        let file =
            format!("{}/init_error.pl did not return a true value at ", root.root().display());
        assert!(message.starts_with(&file), "{mode:?}: {body}");
        assert_eq!(body["errorType"], "Error", "{mode:?}: {body}");
        assert!(body.get("stackTrace").is_none(), "{mode:?}: p5 posts no stack: {body}");
    }
}

#[test]
fn p5_a_missing_handler_function_is_reported_in_p5s_words() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("echo.pl", "echo.pl")]);
        let post = load_error(&root, "echo.handle_not_found", mode);
        let body = post.json();
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.starts_with("handler handle_not_found is not found at "), "{body}");
        assert!(message.ends_with(".\n"), "{mode:?}: perl's own location suffix: {body}");
        assert_eq!(body["errorType"], "Error", "{mode:?}: {body}");
    }
}

#[test]
fn p5_streaming_handler_streams_the_payload_through_its_writer() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streaming.pl", "streaming.pl")]);
        let post = response(&root, "streaming.handle", r#""streamed payload""#, mode);
        assert_eq!(post.body_text(), "streamed payload", "{mode:?}");
        if mode != Mode::Plain {
            assert!(streamed(&post), "{mode:?}: {:?}", post.headers);
            assert_eq!(post.header("Content-Type"), Some("application/json"), "{mode:?}");
            assert!(post.trailers.is_empty(), "{mode:?}: {:?}", post.trailers);
        }
    }
}

// --- p5-aws-lambda: finding the handler ------------------------------------------------------

#[test]
fn p5_function_may_be_a_fully_qualified_name_found_by_main_can() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let post = response(&root, "values.Qualified::handle", "{}", mode);
        assert_eq!(post.json(), json!("qualified"), "{mode:?}");
    }
}

#[test]
fn p5_handler_file_may_sit_in_a_subdirectory() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "lib/fn/values.pl")]);
        let post = response(&root, "lib/fn/values.string", "{}", mode);
        assert_eq!(post.json(), json!("hello"), "{mode:?}");
    }
}

#[test]
fn p5_loads_only_the_pl_file_named_by_the_handler() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        // The seed convention would load values.pm; p5-aws-lambda requires values.pl.
        let root = p5_root(mode, &[("values.pl", "values.pm")]);
        let post = load_error(&root, "values.string", mode);
        let body = post.json();
        let want = format!("Can't locate {}/values.pl at ", root.root().display());
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.starts_with(&want), "{mode:?}: {body}");
        assert_eq!(body["errorType"], "Error", "{mode:?}");
    }
}

// --- p5-aws-lambda: payload and result ------------------------------------------------------

#[test]
fn p5_results_are_json_encoded_as_encode_json_does() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let cases = [
            ("values.string", json!("hello")),
            ("values.nothing", json!(null)),
            ("values.number", json!(42)),
            ("values.unicode", json!({"text": "héllo ☺", "bool": true, "list": [1, "2", null]})),
        ];
        for (handler, want) in cases {
            let post = response(&root, handler, "{}", mode);
            assert_eq!(post.json(), want, "{handler} {mode:?}: {}", post.body_text());
        }
        assert_eq!(response(&root, "values.string", "{}", mode).body_text(), r#""hello""#);
    }
}

#[test]
fn p5_a_string_also_used_as_a_number_stays_a_json_string_as_with_json_xs() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let got = response(&root, "values.numeric_string", r#"{"count":"5"}"#, mode).json();
        assert_eq!(got, json!({"count": "5", "next": 6}), "{mode:?}");
    }
}

#[test]
fn p5_payload_is_decoded_from_json_even_when_it_is_a_scalar() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let got = response(&root, "values.payload", r#"{"a":[1,"é"]}"#, mode).json();
        assert_eq!(got, json!([{"a": [1, "é"]}, "HASH"]), "{mode:?}");
        let got = response(&root, "values.payload", r#""text""#, mode).json();
        assert_eq!(got, json!(["text", ""]), "{mode:?}");
        let got = response(&root, "values.payload", "null", mode).json();
        assert_eq!(got, json!([null, ""]), "{mode:?}");
    }
}

#[test]
fn p5_handler_is_called_in_scalar_context() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        assert_eq!(response(&root, "values.called", "{}", mode).json(), json!("scalar"));
    }
}

#[test]
fn p5_an_event_that_is_not_json_ends_the_process_as_p5_does() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let events = vec![Event::new("r1", "not json"), Event::new("r2", "{}")];
        let Served { posts, .. } = root.serve("values.string", events, &[]);
        assert_error(&posts[0], "Runtime.ExitError", &[]);
        // The next event gets a fresh process, as Lambda restarts p5's.
        assert_eq!(posts[1].path, "/2018-06-01/runtime/invocation/r2/response", "{mode:?}");
    }
}

#[test]
fn p5_a_result_json_cannot_encode_ends_the_process_as_p5_does() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        // A forked child's last words reach the log through its parent's pipe, maybe after the
        // error is posted.
        let Served { posts, log, .. } = root.serve(
            "values.blessed_result",
            vec![Event::new("r1", "{}")],
            &["encountered object"],
        );
        assert_error(&posts[0], "Runtime.ExitError", &[]);
        assert!(log.contains("encountered object 'Some::Class="), "{mode:?}: {log}");
    }
}

// --- p5-aws-lambda: errors ---------------------------------------------------------------------

#[test]
fn p5_an_error_object_gives_its_class_as_the_type_and_its_string_as_the_message() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let post = serve_one(&root, "values.dies_with_object", "{}");
        assert_p5_error(&post, "My::Error", "My::Error: went wrong", &format!("{mode:?}"));
        let post = serve_one(&root, "values.dies_with_hash", "{}");
        let message = post.json()["errorMessage"].as_str().unwrap_or_default().to_string();
        assert!(message.starts_with("HASH(0x"), "{mode:?}: {message}");
        assert_eq!(post.json()["errorType"], "Error", "{mode:?}");
    }
}

// --- p5-aws-lambda: the context ---------------------------------------------------------------

#[test]
fn p5_context_is_an_aws_lambda_context_with_p5s_keys_and_accessors() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("context.pl", "context.pl")]);
        let event = Event::new("ctx-1", "{}")
            .header("Lambda-Runtime-Trace-Id", TRACE)
            .header("Lambda-Runtime-Aws-Tenant-Id", "tenant-7")
            .header("Lambda-Runtime-Client-Context", r#"{"custom":{"k":"v"}}"#)
            .header("Lambda-Runtime-Cognito-Identity", r#"{"cognitoIdentityId":"id"}"#);
        let Served { posts, .. } =
            root.clone().envs(&FUNCTION_ENV).serve("context.handle", vec![event], &[]);
        let got = posts[0].json();
        assert_eq!(got["ref"], "AWS::Lambda::Context", "{mode:?}: {got}");
        assert_eq!(got["isa"], true, "{mode:?}");
        let keys = json!([
            "aws_request_id",
            "deadline_ms",
            "invoked_function_arn",
            "tenant_id",
            "trace_id"
        ]);
        assert_eq!(got["keys"], keys, "{mode:?}");
        assert_eq!(got["aws_request_id"], "ctx-1", "{mode:?}");
        assert_eq!(got["invoked_function_arn"], ARN, "{mode:?}");
        assert_eq!(got["trace_id"], TRACE, "{mode:?}");
        assert_eq!(got["tenant_id"], "tenant-7", "{mode:?}");
        assert_eq!(got["function_name"], "p5-function", "{mode:?}");
        assert_eq!(got["function_version"], "$LATEST", "{mode:?}");
        assert_eq!(got["memory_limit_in_mb"], "256", "{mode:?}");
        assert_eq!(got["log_group_name"], "/aws/lambda/p5-function", "{mode:?}");
        assert_eq!(got["log_stream_name"], "2026/01/01/[$LATEST]abcdef", "{mode:?}");
        // p5-aws-lambda leaves these two undef.
        assert_eq!(got["identity"], Value::Null, "{mode:?}");
        assert_eq!(got["client_context"], Value::Null, "{mode:?}");
        assert!(got["deadline_ms"].as_str().is_some_and(|d| d.parse::<u64>().is_ok()), "{got}");
        let remaining = got["remaining_ms"].as_f64().unwrap_or(-1.0);
        assert!(remaining > 0.0 && remaining <= 30_000.0, "{mode:?}: {remaining}");
        assert_eq!(got["constructed"], json!(["AWS::Lambda::Context", "made", ""]), "{mode:?}");
    }
}

#[test]
fn p5_context_accessors_die_as_p5s_do_when_lambda_set_no_value() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("context.pl", "context.pl")]);
        let got = response(&root, "context.handle", "{}", mode).json();
        let died = got["function_name"]["died"].as_str().unwrap_or_default();
        assert!(died.starts_with("function_name is not found at "), "{mode:?}: {got}");
        let died = got["log_stream_name"]["died"].as_str().unwrap_or_default();
        assert!(died.starts_with("log_stream_name is not found at "), "{mode:?}: {got}");
        assert_eq!(got["tenant_id"], Value::Null, "{mode:?}: {got}");
    }
}

#[test]
fn p5_uses_the_functions_own_aws_lambda_context_when_it_ships_one() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(
            mode,
            &[
                ("shipped.pl", "shipped.pl"),
                ("lib/AWS/Lambda/Context.pm", "lib/AWS/Lambda/Context.pm"),
            ],
        );
        let lib = root.file("lib");
        let env = [("PERL5LIB", Some(lib.to_str().expect("utf-8 path")))];
        let Served { posts, .. } =
            root.clone().envs(&env).serve("shipped.handle", vec![Event::new("r1", "{}")], &[]);
        assert_eq!(posts[0].json(), json!({"shipped": true, "id": "r1"}), "{mode:?}");
    }
}

#[test]
fn p5_convention_variable_never_reaches_the_handler_and_the_trace_id_is_set_for_the_call() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("values.pl", "values.pl")]);
        let got = response(&root, "values.environment", "{}", mode).json();
        assert_eq!(got, json!({"convention": null, "trace": TRACE}), "{mode:?}");
    }
}

// --- p5-aws-lambda: streamed responses ---------------------------------------------------------

#[test]
fn p5_writer_returns_what_p5s_writer_returns_and_refuses_writes_after_close() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let Served { posts, log, .. } =
            root.serve("streams.pieces", vec![Event::new("r1", "{}")], &["returns:"]);
        assert_eq!(posts[0].body_text(), "a;b;c", "{mode:?}");
        if mode != Mode::Plain {
            assert_eq!(posts[0].header("Content-Type"), Some("text/plain"), "{mode:?}");
        }
        let file = root.root().join("streams.pl");
        let want = format!(
            "returns: 7 0E0 0E0 6 5 0 | after close: write failed: already closed at {} line ",
            file.display()
        );
        assert!(log.contains(&want), "{mode:?}: want {want:?} in\n{log}");
    }
}

#[test]
fn p5_code_ref_runs_after_the_call_without_the_context_variable_or_trace_id() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = response(&root, "streams.scope", "{}", mode);
        assert_eq!(post.body_text(), "context unset;trace unset", "{mode:?}");
    }
}

#[test]
fn p5_a_code_ref_that_dies_before_the_responder_is_an_ordinary_error() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = serve_one(&root, "streams.dies_before", "{}");
        assert_eq!(post.path, EVENT_ERROR, "{mode:?}: {}", post.body_text());
        assert_p5_error(&post, "Error", "before the stream\n", &format!("{mode:?}"));
    }
}

#[test]
fn p5_a_stream_that_dies_after_its_first_bytes_ends_with_the_error() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = serve_one(&root, "streams.dies_after_write", "{}");
        if mode == Mode::Plain {
            // The bytes went to stdout already: the runner logs the error and exits 1.
            assert_error(&post, "Runtime.ExitError", &["status 1", "after the first bytes"]);
            continue;
        }
        assert_eq!(post.path, RESPONSE, "{mode:?}");
        assert_eq!(post.body_text(), "partial", "{mode:?}");
        let error_type = post.trailer("Lambda-Runtime-Function-Error-Type");
        assert_eq!(error_type, Some("Function.Error"), "{mode:?}: {:?}", post.trailers);
        let want = json!({"errorMessage": "after the first bytes\n", "errorType": "Error"});
        assert_eq!(post.error_trailer(), want, "{mode:?}");
    }
}

#[test]
fn p5_a_die_after_close_is_only_logged() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let event = Event::new("r1", "{}");
        let Served { posts, .. } =
            root.serve("streams.dies_after_close", vec![event], &["after close"]);
        assert_eq!(posts[0].path, RESPONSE, "{mode:?}: {}", posts[0].body_text());
        assert_eq!(posts[0].body_text(), "whole", "{mode:?}");
        assert!(posts[0].trailers.is_empty(), "{mode:?}: {:?}", posts[0].trailers);
    }
}

#[test]
fn p5_a_code_ref_that_never_calls_the_responder_gets_an_empty_response() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = response(&root, "streams.never_responds", "{}", mode);
        assert_eq!(post.body_text(), "", "{mode:?}");
    }
}

#[test]
fn p5_a_big_write_arrives_whole() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = response(&root, "streams.big", "{}", mode);
        assert_eq!(post.body.len(), 3 * 1024 * 1024 + 5, "{mode:?}");
        assert!(post.body.iter().all(|&b| b == b'x'), "{mode:?}");
    }
}

#[test]
fn p5_a_wide_character_in_a_write_dies_as_http_tiny_does() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = serve_one(&root, "streams.wide", "{}");
        if mode == Mode::Plain {
            assert_error(&post, "Runtime.ExitError", &["Wide character in write()"]);
            continue;
        }
        assert_eq!(post.body, b"caf\xe9", "{mode:?}: a character under 256 is one byte");
        let want = json!({"errorMessage": "Wide character in write()\n", "errorType": "Error"});
        assert_eq!(post.error_trailer(), want, "{mode:?}");
    }
}

#[test]
fn p5_a_responder_opens_one_stream_only() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("streams.pl", "streams.pl")]);
        let post = serve_one(&root, "streams.twice", "{}");
        if mode == Mode::Plain {
            assert_error(&post, "Runtime.ExitError", &["one stream"]);
            continue;
        }
        assert_eq!(post.body_text(), "one", "{mode:?}");
        let message = post.error_trailer()["errorMessage"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("one stream"), "{mode:?}: {message}");
    }
}

// --- The seed convention -----------------------------------------------------------------------

#[test]
fn seed_context_has_accessor_methods_and_keeps_hash_access() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = root_with(mode, &[("perl/context_methods.pl", "h.pl")]);
        let event = Event::new("ctx-2", "{}")
            .header("Lambda-Runtime-Trace-Id", TRACE)
            .header("Lambda-Runtime-Aws-Tenant-Id", "tenant-8");
        let Served { posts, .. } =
            root.clone().envs(&FUNCTION_ENV).serve("h.handler", vec![event], &[]);
        let got = posts[0].json();
        let both = |v: &str| json!([v, v]);
        assert_eq!(got["aws_request_id"], both("ctx-2"), "{mode:?}: {got}");
        assert_eq!(got["invoked_function_arn"], both(ARN), "{mode:?}");
        assert_eq!(got["trace_id"], both(TRACE), "{mode:?}");
        assert_eq!(got["tenant_id"], both("tenant-8"), "{mode:?}");
        assert_eq!(got["function_name"], both("p5-function"), "{mode:?}");
        assert_eq!(got["function_version"], both("$LATEST"), "{mode:?}");
        assert_eq!(got["memory_limit_in_mb"], both("256"), "{mode:?}");
        assert_eq!(got["log_group_name"], both("/aws/lambda/p5-function"), "{mode:?}");
        assert_eq!(got["log_stream_name"], both("2026/01/01/[$LATEST]abcdef"), "{mode:?}");
        assert_eq!(got["identity"], json!([null, null]), "{mode:?}");
        let deadline = &got["deadline_ms"];
        assert!(deadline[0].is_string() && deadline[0] == deadline[1], "{mode:?}: {deadline}");
        let remaining = got["remaining_ms"].as_i64().unwrap_or(-1);
        assert!((1..=30_000).contains(&remaining), "{mode:?}: {remaining}");
        assert_eq!(got["convention"], Value::Null, "{mode:?}");
    }
}

#[test]
fn an_unknown_perl_convention_is_a_configuration_error() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let config = p5_config(mode).replace("p5-aws-lambda", "p6-aws-lambda");
        let root = Lambda::new().config(&config).fixture("perl/echo.pl", "h.pl");
        let post = load_error(&root, "h.handler", mode);
        assert_error(&post, "Runtime.InvalidConfig", &["p6-aws-lambda", "p5-aws-lambda"]);
    }
}

// --- One error vocabulary: Perl ----------------------------------------------------------------

/// Asserts the error of a Perl fixture that does not load, in every mode.
#[track_caller]
fn assert_perl_load_error(fixtures: &[(&str, &str)], error_type: &str, message_has: &[&str]) {
    for mode in ALL_MODES {
        let root = root_with(mode, fixtures);
        let post = load_error(&root, "h.handler", mode);
        assert_error(&post, error_type, message_has);
    }
}

#[test]
fn a_perl_syntax_error_is_user_code_syntax_error_in_perls_words() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/syntax.pl", "h.pl")],
        "Runtime.UserCodeSyntaxError",
        &["syntax error at ", "h.pl line 6, near \"= ;\""],
    );
}

#[test]
fn a_perl_compile_error_under_strict_is_user_code_syntax_error() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/strict_vars.pl", "h.pl")],
        "Runtime.UserCodeSyntaxError",
        &["Global symbol \"$undeclared\" requires explicit package name"],
    );
}

#[test]
fn a_perl_file_that_dies_while_loading_is_import_module_error() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/load_dies.pl", "h.pl")],
        "Runtime.ImportModuleError",
        &["no configuration found"],
    );
}

#[test]
fn a_missing_used_perl_module_is_import_module_error() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/missing_module.pl", "h.pl")],
        "Runtime.ImportModuleError",
        &["Can't locate No/Such/Module/Here.pm in @INC", "BEGIN failed--compilation aborted"],
    );
}

#[test]
fn a_used_perl_module_that_does_not_compile_is_import_module_error() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/uses_broken.pl", "h.pl"), ("perl/BrokenModule.pm", "BrokenModule.pm")],
        "Runtime.ImportModuleError",
        &["BrokenModule.pm line 5", "Compilation failed in require"],
    );
}

#[test]
fn a_perl_syntax_error_after_a_used_module_caught_its_own_die_is_still_a_syntax_error() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/probe_then_syntax.pl", "h.pl"), ("perl/Probing.pm", "Probing.pm")],
        "Runtime.UserCodeSyntaxError",
        &["syntax error at ", "h.pl line 7"],
    );
}

#[test]
fn a_perl_file_that_replaces_the_die_hook_is_still_told_apart() {
    if !have("perl") {
        return;
    }
    assert_perl_load_error(
        &[("perl/hook_then_dies.pl", "h.pl")],
        "Runtime.ImportModuleError",
        &["failed after installing a hook"],
    );
    assert_perl_load_error(
        &[("perl/hook_then_syntax.pl", "h.pl")],
        "Runtime.UserCodeSyntaxError",
        &["syntax error at ", "h.pl line 8"],
    );
}

#[test]
fn a_perl_handler_that_uses_a_module_beside_it_loads_in_every_mode() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root =
            root_with(mode, &[("perl/uses_sibling.pl", "h.pl"), ("perl/Sibling.pm", "Sibling.pm")]);
        let post = response(&root, "h.handler", "{}", mode);
        assert_eq!(post.body_text(), "hello from a sibling module", "{mode:?}");
    }
}

#[test]
fn a_missing_perl_sub_is_handler_not_found() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = root_with(mode, &[("perl/echo.pl", "h.pl")]);
        let post = load_error(&root, "h.no_such_sub", mode);
        assert_error(&post, "Runtime.HandlerNotFound", &["no_such_sub", "h.pl"]);
    }
}

// --- One error vocabulary: shell ---------------------------------------------------------------

#[test]
fn a_bash_syntax_error_is_user_code_syntax_error_in_bashs_words() {
    if !have("bash") {
        return;
    }
    for mode in ALL_MODES {
        let root = root_with(mode, &[("shell/syntax.sh", "h.sh")]);
        let post = load_error(&root, "h.handler", mode);
        assert_error(
            &post,
            "Runtime.UserCodeSyntaxError",
            &["h.sh: line 4: syntax error: unexpected end of file"],
        );
    }
}

#[test]
fn a_shell_file_that_turns_extglob_on_itself_passes_the_syntax_check() {
    if !have("bash") {
        return;
    }
    for mode in ALL_MODES {
        let root = root_with(mode, &[("shell/extglob.sh", "h.sh")]);
        let post = response(&root, "h.handler", "12345", mode);
        assert_eq!(post.body_text(), "number", "{mode:?}");
    }
}

#[test]
fn a_shell_file_that_cannot_be_read_is_import_module_error() {
    if !have("bash") {
        return;
    }
    // An entry whose command names a file that is not there: the runner's own check.
    for mode in ALL_MODES {
        let protocol = if mode == Mode::Plain { "plain" } else { "framed" };
        let config = format!(
            "[interpreters.shell2]\nextensions = [\"sh2\"]\nprotocol = \"{protocol}\"\n\
             command = [\"bash\", \"{{runners}}/shell/runner.sh\", \"{{task_root}}/gone.sh\", \"{{method}}\"]\n"
        );
        let root = Lambda::new().config(&config).write("h.sh2", "");
        let post = load_error(&root, "h.handler", mode);
        assert_error(&post, "Runtime.ImportModuleError", &["gone.sh"]);
    }
}

#[test]
fn a_missing_shell_function_is_handler_not_found() {
    if !have("bash") {
        return;
    }
    for mode in ALL_MODES {
        let root = root_with(mode, &[("shell/echo.sh", "h.sh")]);
        let post = load_error(&root, "h.no_such_function", mode);
        assert_error(&post, "Runtime.HandlerNotFound", &["no_such_function", "h.sh"]);
    }
}

#[test]
fn a_warm_shell_worker_checks_its_file_once_when_it_loads_it() {
    if !have("bash") {
        return;
    }
    let run = root_with(Mode::Warm, &[("shell/once.sh", "h.sh")]).start("h.handler");
    run.assert_serves(Event::new("r1", "{}"), "loaded once");
    // The loaded worker serves on: a check per event would now fail.
    std::fs::copy(fixture("shell/syntax.sh"), run.file("h.sh")).expect("replace h.sh");
    run.assert_serves(Event::new("r2", "{}"), "loaded once");
}

#[test]
fn p5_handler_names_are_read_at_the_first_dot_and_a_missing_one_is_p5s_error() {
    if !have("perl") {
        return;
    }
    for mode in ALL_MODES {
        let root = p5_root(mode, &[("echo.pl", "echo.pl")]);
        let post = load_error(&root, "echo.v2.handle", mode);
        let error = post.json();
        assert_eq!(error["errorType"], "Error", "{mode:?}: {error}");
        let message = error["errorMessage"].as_str().unwrap_or_default();
        assert!(message.starts_with("handler v2.handle is not found"), "{mode:?}: {message}");
        let post = load_error(&root, "missing.handle", mode);
        let message = post.json()["errorMessage"].as_str().unwrap_or_default().to_string();
        assert!(message.contains("missing.pl"), "{mode:?}: {message}");
    }
}
