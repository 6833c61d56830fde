//! AWS's Node programming model, as aws-lambda-nodejs-runtime-interface-client (AWS's Node
//! runtime interface client) runs it, through the real binary in every mode: `_HANDLER` read
//! as AWS reads it, with its module precedence and its load errors; callback, promise,
//! context.succeed/fail/done and callbackWaitsForEmptyEventLoop; AWS's context object and
//! error documents (`trace`, not `stackTrace`); console records in AWS's text and JSON
//! formats; awslambda.streamifyResponse and HttpResponseStream; NODE_PATH as AWS sets it.
//! The fixtures under `tests/fixtures/node/aws/handlers/` recreate the client's own test
//! handlers, and the expectations here are its tests' and what its code does.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::*;

const NODE_JS_EXIT: &str = "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes";
const CALLBACK_WARNING: &str = "AWS Lambda plans to remove support for callback-based function handlers starting with Node.js 24.";

/// A task root in `mode` holding every file under `tests/fixtures/node/aws/<dir>`, at the
/// same relative paths under `under` ("" for the root itself).
fn tree(mode: Mode, dir: &str, under: &str) -> Lambda {
    fn walk(base: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read fixture dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, found);
            } else {
                let rel = path.strip_prefix(base).expect("under the base");
                found.push(rel.to_str().expect("UTF-8 fixture path").to_string());
            }
        }
    }
    let base = fixture(&format!("node/aws/{dir}"));
    let mut files = Vec::new();
    walk(&base, &base, &mut files);
    files.into_iter().fold(Lambda::new().mode(mode), |root, rel| {
        let to = if under.is_empty() { rel.clone() } else { format!("{under}/{rel}") };
        root.fixture(&format!("node/aws/{dir}/{rel}"), &to)
    })
}

/// A task root in `mode` with the one fixture `tests/fixtures/node/aws/<file>`.
fn one(mode: Mode, file: &str) -> Lambda {
    Lambda::new().mode(mode).fixture(&format!("node/aws/{file}"), file)
}

/// Asserts an error document as AWS's Node runtime posts it: exactly errorType,
/// errorMessage and trace, with this type and message; returns it.
#[track_caller]
fn node_error(post: &Post, error_type: &str, message: &str, what: &str) -> Value {
    let body = post.json();
    let mut keys: Vec<&str> =
        body.as_object().expect("an object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["errorMessage", "errorType", "trace"], "{what}: {body}");
    assert_eq!(body["errorType"], error_type, "{what}: {body}");
    assert_eq!(body["errorMessage"], message, "{what}: {body}");
    assert!(
        post.header("Lambda-Runtime-Function-Error-Type").is_some(),
        "{what}: no error type header"
    );
    body
}

/// The error of one event that fails while running, asserting its endpoint.
#[track_caller]
fn event_error(root: &Lambda, handler: &str, body: &str, mode: Mode) -> Post {
    let post = root.post_for(handler, body);
    assert_eq!(post.path, EVENT_ERROR, "{handler} {mode:?}: {}", post.body_text());
    post
}

/// The error of a handler that does not load, and the log once AWS's record of it is there.
/// Plain mode loads the handler for each event, so it is that event's error; a framed worker
/// reports it before `ready`, which bootstrap posts as the init error or as the event's. In
/// plain mode bootstrap's own syntax check (`node --check`) may find a syntax error first: an
/// init error of its own, with no `trace` and no record from the runner.
#[track_caller]
fn load_error(mode: Mode, root: &Lambda, handler: &str) -> (Post, String) {
    let run = root.start(handler);
    let post = run.invoke(Event::new("r1", "{}"));
    let from_runner = post.json().get("trace").is_some();
    let init_allowed = mode != Mode::Plain || !from_runner;
    assert!(
        post.path == EVENT_ERROR || (post.path == INIT_ERROR && init_allowed),
        "{handler} {mode:?}: posted to {}: {}",
        post.path,
        post.body_text()
    );
    if from_runner {
        run.wait_for_log("\tERROR\tUncaught Exception \t{");
    }
    (post, run.stop())
}

/// The trace lines of an error document.
fn trace(body: &Value) -> Vec<String> {
    let lines = body["trace"].as_array().cloned().unwrap_or_default();
    lines.iter().map(|l| l.as_str().unwrap_or("<not a string>").to_string()).collect()
}

/// The decoded error body trailer of a streamed response.
#[track_caller]
fn trailer_error(post: &Post) -> Value {
    assert!(post.trailer("Lambda-Runtime-Function-Error-Type").is_some(), "{:?}", post.trailers);
    post.error_trailer()
}

/// The log lines that are AWS text records of `request_id`, each split into its four
/// tab-separated fields (time, request id, level, message), after checking the time is
/// an ISO 8601 UTC timestamp with milliseconds.
#[track_caller]
fn text_records(log: &str, request_id: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.splitn(4, '\t').collect();
            let [time, id, level, message] = fields[..] else { return None };
            if id != request_id {
                return None;
            }
            let shape = time.len() == 24
                && time.as_bytes()[10] == b'T'
                && time.ends_with('Z')
                && time.as_bytes()[19] == b'.';
            assert!(shape, "not an ISO 8601 time: {line:?}");
            Some((level.to_string(), message.to_string()))
        })
        .collect()
}

/// The log lines that are JSON objects.
fn json_records(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(Value::is_object)
        .collect()
}

#[test]
fn an_async_handler_answers_with_its_resolved_value_json_encoded() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        let event = r#"{"a":[1,"x"],"s":"é"}"#;
        assert_eq!(root.response_json("core.echo", event, mode), json!({"a": [1, "x"], "s": "é"}));
        let got = root.response_json("core.ping", r#"{"msg":"x"}"#, mode);
        assert_eq!(got, json!({"msg": "pong[x]"}), "{mode:?}");
        let got = root.response_json("isAsync.handlerAsync", "{}", mode);
        assert_eq!(got, json!({"statusCode": 200, "body": "\"Hello from Lambda!\""}), "{mode:?}");
        let root = one(mode, "shapes.js");
        assert_eq!(root.response_json("shapes.promise", "{}", mode), json!("from promise"));
        assert_eq!(root.response_json("shapes.undef", "{}", mode), Value::Null, "{mode:?}");
    }
}

#[test]
fn a_callback_handler_answers_through_its_callback() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        let got = root.response_json("shapes.callback", r#"{"k":1}"#, mode);
        assert_eq!(got, json!({"via": "callback", "event": {"k": 1}}), "{mode:?}");
        let root = tree(mode, "handlers", "");
        let got = root.response_json("isAsyncCallback.handler", "{}", mode);
        let body = json!({"message": "hello world"}).to_string();
        assert_eq!(got, json!({"statusCode": 200, "body": body}), "{mode:?}");
    }
}

#[test]
fn context_succeed_fail_and_done_answer_as_on_aws() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        assert_eq!(root.response_json("shapes.succeed", "{}", mode), json!({"via": "succeed"}));
        assert_eq!(root.response_json("shapes.done", "{}", mode), json!("done ok"), "{mode:?}");
        let post = event_error(&root, "shapes.fail", "{}", mode);
        let body = node_error(&post, "RangeError", "failed", "fail");
        assert_eq!(trace(&body)[0], "RangeError: failed", "{mode:?}");
        let post = event_error(&root, "shapes.doneError", "{}", mode);
        node_error(&post, "Error", "done err", "done(err)");
        // fail() with nothing to say fails with the string "handled".
        let post = event_error(&root, "shapes.failNothing", "{}", mode);
        assert_eq!(
            post.json(),
            json!({"errorType": "string", "errorMessage": "handled", "trace": []})
        );
    }
}

#[test]
fn callback_errors_are_posted_with_their_class_or_javascript_type() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        let post = event_error(&root, "shapes.callbackError", "{}", mode);
        let body = node_error(&post, "TypeError", "bad callback", "callback(err)");
        let lines = trace(&body);
        assert_eq!(lines[0], "TypeError: bad callback", "{mode:?}");
        // AWS calls the handler as a method named handler: its frame says so.
        assert!(lines[1].starts_with("    at exports.callbackError [as handler] ("), "{lines:?}");
        let post = event_error(&root, "shapes.callbackString", "{}", mode);
        let want = json!({"errorType": "string", "errorMessage": "just a string", "trace": []});
        assert_eq!(post.json(), want, "{mode:?}");
    }
}

#[test]
fn a_handler_that_neither_returns_a_promise_nor_calls_back_answers_null_when_the_loop_empties() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        // Its return value is not the answer: AWS answers null once nothing is left to run.
        assert_eq!(root.response_json("shapes.sync", "{}", mode), Value::Null, "{mode:?}");
        assert_eq!(root.response_json("shapes.syncNever", "{}", mode), Value::Null, "{mode:?}");
        let root = tree(mode, "handlers", "");
        assert_eq!(root.response_json("defaultHandler.default", "{}", mode), Value::Null);
        assert_eq!(root.response_json("isAsync.handlerNotAsync", "{}", mode), Value::Null);
    }
}

#[test]
fn an_async_handler_that_never_settles_fails_with_runtime_node_js_exit() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        let Served { posts, .. } = root.serve(
            "shapes.asyncNever",
            vec![Event::new("r1", "{}")],
            &["\tr1\tERROR\tInvoke Error \t{\"errorType\":\"Runtime.NodeJsExit\""],
        );
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}");
        let body = node_error(&posts[0], "Runtime.NodeJsExit", NODE_JS_EXIT, "never settles");
        assert_eq!(trace(&body)[0], format!("Runtime.NodeJsExit: {NODE_JS_EXIT}"));
    }
}

#[test]
fn only_the_first_answer_of_a_handler_counts() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        assert_eq!(root.response_json("shapes.twice", "{}", mode), json!("first"), "{mode:?}");
    }
}

#[test]
fn the_callback_waits_for_the_empty_event_loop_unless_told_not_to() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        // The result is encoded after the handler's timer ran, or at once.
        let got = root.response_json("shapes.waits", "{}", mode);
        assert_eq!(got, json!({"timerRan": true}), "{mode:?}");
        let got = root.response_json("shapes.noWait", "{}", mode);
        assert_eq!(got, json!({"timerRan": false}), "{mode:?}");
        // The client's own handlers with beforeExit listeners of their own.
        let root = tree(mode, "handlers", "");
        for handler in ["callbackWithTrueFlag", "callbackWithFalseFlag", "asyncFunction"] {
            let name = format!("beforeExitBehaviour.{handler}");
            assert_eq!(root.response_json(&name, "{}", mode), json!("hello"), "{name} {mode:?}");
        }
    }
}

#[test]
fn thrown_errors_are_posted_as_aws_posts_them_with_the_stack_as_trace_lines() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        let post = event_error(&root, "shapes.asyncThrow", "{}", mode);
        let body = node_error(&post, "MyError", "custom", "async throw");
        let lines = trace(&body);
        assert_eq!(lines[0], "MyError: custom", "{mode:?}");
        let frame = &lines[1];
        assert!(frame.starts_with("    at exports.asyncThrow [as handler] ("), "{lines:?}");
        assert!(frame.contains("shapes.js:"), "{lines:?}");
        // A handler's own SyntaxError is its error, not a load error.
        let post = event_error(&root, "shapes.syncThrow", "{}", mode);
        node_error(&post, "SyntaxError", "thrown sync", "sync throw");
        let post = event_error(&root, "shapes.throwNull", "{}", mode);
        assert_eq!(
            post.json(),
            json!({"errorType": "string", "errorMessage": "handled", "trace": []})
        );
        // An ES module's handler: AWS's frame names its Runtime object as the receiver.
        let root = root.write(
            "esm.mjs",
            "// Throws from an ES module.\nexport const handler = async () => {\n  throw new Error('Something went wrong');\n};\n",
        );
        let post = event_error(&root, "esm.handler", "{}", mode);
        let body = node_error(&post, "Error", "Something went wrong", "ES module throw");
        let lines = trace(&body);
        assert!(lines[1].starts_with("    at Runtime.handler (file://"), "{lines:?}");
        assert!(lines[1].ends_with("esm.mjs:3:9)"), "{lines:?}");
        let post = event_error(&root, "shapes.throwErrorLike", "{}", mode);
        let want = json!({"errorType": "Fake", "errorMessage": "fake msg", "trace": ["Fake: fake msg", "    at nowhere"]});
        assert_eq!(post.json(), want, "{mode:?}");
    }
}

#[test]
fn a_result_json_cannot_encode_fails_with_unable_to_stringify_response_body() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        for handler in ["shapes.circular", "shapes.bigint"] {
            let post = event_error(&root, handler, "{}", mode);
            node_error(&post, "Error", "Unable to stringify response body", handler);
        }
    }
}

#[test]
fn an_event_that_is_not_json_fails_with_the_parse_error() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        let post = event_error(&root, "core.echo", "not json", mode);
        let body = post.json();
        assert_eq!(body["errorType"], "SyntaxError", "{mode:?}: {body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains("is not valid JSON"), "{mode:?}: {body}");
        assert_eq!(trace(&body)[1], "    at JSON.parse (<anonymous>)", "{mode:?}");
    }
}

#[test]
fn the_context_object_is_aws_s_key_for_key() {
    if !have("node") {
        return;
    }
    let env = FUNCTION_VARIABLES;
    let keys = json!([
        "callbackWaitsForEmptyEventLoop",
        "succeed",
        "fail",
        "done",
        "functionVersion",
        "functionName",
        "memoryLimitInMB",
        "logGroupName",
        "logStreamName",
        "clientContext",
        "identity",
        "invokedFunctionArn",
        "awsRequestId",
        "tenantId",
        "getRemainingTimeInMillis"
    ]);
    for mode in MODES {
        let root = one(mode, "context.js");
        let full = Event::new("r1", "{}")
            .header(
                "Lambda-Runtime-Client-Context",
                r#"{"custom":{"k":"v"},"env":{"platform":"x"}}"#,
            )
            .header(
                "Lambda-Runtime-Cognito-Identity",
                r#"{"cognitoIdentityId":"id-1","cognitoIdentityPoolId":"pool-1"}"#,
            )
            .header("Lambda-Runtime-Aws-Tenant-Id", "tenant-1")
            .header("Lambda-Runtime-Trace-Id", "Root=1-abc;Sampled=1");
        let bare = Event::new("r2", "{}");
        let Served { posts, .. } =
            root.clone().envs(&env).serve("context.handler", vec![full, bare], &[]);
        let got = posts[0].json();
        assert_eq!(got["keys"], keys, "{mode:?}");
        let want = json!({
            "callbackWaitsForEmptyEventLoop": true,
            "functionVersion": "$LATEST",
            "functionName": "fn",
            "memoryLimitInMB": "512",
            "logGroupName": "/aws/lambda/fn",
            "logStreamName": "2024/01/01/[$LATEST]abc",
            "clientContext": {"custom": {"k": "v"}, "env": {"platform": "x"}},
            "identity": {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"},
            "invokedFunctionArn": ARN,
            "awsRequestId": "r1",
            "tenantId": "tenant-1",
        });
        assert_eq!(got["json"], want, "{mode:?}");
        assert_eq!(got["memoryType"], "string", "{mode:?}");
        let remaining = got["remaining"].as_i64().unwrap_or(-1);
        assert!((1..=30_000).contains(&remaining), "{mode:?}: {remaining}");
        assert_eq!(got["traceId"], "Root=1-abc;Sampled=1", "{mode:?}");
        assert_eq!(got["handlerVariable"], "context.handler", "{mode:?}");
        // Without the optional headers their keys are there, undefined.
        let got = posts[1].json();
        assert_eq!(got["keys"], keys, "{mode:?}");
        assert_eq!(got["clientContext"], "absent", "{mode:?}");
        assert_eq!(got["identity"], "absent", "{mode:?}");
        assert_eq!(got["tenantId"], "absent", "{mode:?}");
        assert_eq!(got["hasTenantKey"], true, "{mode:?}");
        assert_eq!(got["traceId"], "absent", "{mode:?}");
        assert_eq!(got["json"]["awsRequestId"], "r2", "{mode:?}");
    }
}

#[test]
fn a_client_context_that_is_not_json_fails_the_event() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "context.js");
        let event = Event::new("r1", "{}").header("Lambda-Runtime-Client-Context", "not json");
        let Served { posts, .. } = root.serve("context.handler", vec![event], &[]);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}: {}", posts[0].body_text());
        let body = posts[0].json();
        assert_eq!(body["errorType"], "Error", "{mode:?}: {body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.starts_with("Cannot parse ClientContext as json: SyntaxError: "), "{body}");
    }
}

#[test]
fn an_unhandled_rejection_fails_the_running_event_and_the_next_one_is_served() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        let events = vec![Event::new("r1", "{}"), Event::new("r2", r#"{"ok":true}"#)];
        let record = "\tr1\tERROR\tUnhandled Promise Rejection \t{\"errorType\":\"Runtime.UnhandledPromiseRejection\",\"errorMessage\":\"Error: late rejection\",\"reason\":{\"errorType\":\"Error\"";
        let Served { posts, .. } = root.serve("shapes.rejectLater", events, &[record]);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}: {}", posts[0].body_text());
        let body = node_error(
            &posts[0],
            "Runtime.UnhandledPromiseRejection",
            "Error: late rejection",
            "rejection",
        );
        assert_eq!(trace(&body)[0], "Runtime.UnhandledPromiseRejection: Error: late rejection");
        assert_eq!(posts[1].body_text(), "\"served\"", "{mode:?}");
        let post = event_error(&root, "shapes.rejectString", "{}", mode);
        node_error(&post, "Runtime.UnhandledPromiseRejection", "plain reason", "string reason");
    }
}

#[test]
fn an_uncaught_exception_fails_the_running_event_with_its_own_type() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "shapes.js");
        let events = vec![Event::new("r1", "{}"), Event::new("r2", r#"{"ok":true}"#)];
        let record = "\tr1\tERROR\tUncaught Exception \t{\"errorType\":\"TypeError\",\"errorMessage\":\"thrown in timer\",\"stack\":[\"TypeError: thrown in timer\"";
        let Served { posts, .. } = root.serve("shapes.throwLater", events, &[record]);
        assert_eq!(posts[0].path, EVENT_ERROR, "{mode:?}: {}", posts[0].body_text());
        node_error(&posts[0], "TypeError", "thrown in timer", "uncaught");
        assert_eq!(posts[1].body_text(), "\"served\"", "{mode:?}");
    }
}

#[test]
fn the_method_is_a_property_path_walked_on_the_module_exports() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        let got = root.response_json("nestedHandler.nested.somethingComplex.handler", "{}", mode);
        assert_eq!(got, json!("something interesting"), "{mode:?}");
        let root = tree(mode, "handlers", "handlers");
        let name = "handlers/nestedHandler.nested.somethingComplex.handler";
        assert_eq!(root.response_json(name, "{}", mode), json!("something interesting"));
    }
}

#[test]
fn a_name_not_exported_or_not_a_function_is_runtime_handler_not_found() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        for (name, message) in [
            ("core.noFunctionHandler", "core.noFunctionHandler is undefined or not exported"),
            (
                "nestedHandler.nested.somethingComplex.nonHandler",
                "nestedHandler.nested.somethingComplex.nonHandler is undefined or not exported",
            ),
            ("nestedHandler.nested", "nestedHandler.nested is not a function"),
        ] {
            let (post, log) = load_error(mode, &root, name);
            let body = node_error(&post, "Runtime.HandlerNotFound", message, name);
            assert_eq!(trace(&body)[0], format!("Runtime.HandlerNotFound: {message}"));
            let record = format!(
                "\tERROR\tUncaught Exception \t{{\"errorType\":\"Runtime.HandlerNotFound\",\"errorMessage\":\"{message}\""
            );
            assert!(log.contains(&record), "{name} {mode:?}:\n{log}");
        }
    }
}

#[test]
fn a_handler_name_never_resolves_to_a_function_that_runs_code() {
    if !have("node") {
        return;
    }
    // Through built-in prototypes a name could reach a function constructor, and a module may
    // expose eval or vm: called with the event, each would run it. None is a handler.
    let leaky = "// Exposes functions that run strings as code, beside a handler.\n\
                 exports.run = eval;\nexports.vm = require('vm');\nexports.make = Function;\n\
                 exports.handler = async (event) => event;\n";
    let names = [
        "leaky.run",
        "leaky.vm.runInThisContext",
        "leaky.make",
        "leaky.handler.constructor",
        "leaky.constructor.constructor",
        "leaky.handler.call",
    ];
    let event = r#""process.getBuiltinModule('fs').writeFileSync('pwned', 'x')""#;
    for mode in MODES {
        let root = Lambda::new().mode(mode).write("leaky.js", leaky);
        for name in names {
            let run = root.start(name);
            let post = run.invoke(Event::new("r1", event));
            let message = format!("{name} is undefined or not exported");
            node_error(&post, "Runtime.HandlerNotFound", &message, name);
            assert!(!root.file("pwned").exists(), "{name} {mode:?}: the event ran");
        }
        assert_eq!(
            root.response_json("leaky.handler", event, mode),
            json!(event.trim_matches('"'))
        );
    }
}

#[test]
fn a_file_without_extension_comes_first_then_js_mjs_and_cjs() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        let cases = [
            ("precedence.handler", "I don't have a .js file suffix"),
            ("precedenceJsVsMjs.handler", "I do have a .js file suffix"),
            ("precedenceMjsVsCjs.handler", "I do have a .mjs file suffix"),
        ];
        for (name, want) in cases {
            assert_eq!(root.response_json(name, "{}", mode), json!(want), "{name} {mode:?}");
        }
    }
}

#[test]
fn modules_load_as_es_modules_or_commonjs_as_their_extension_and_package_type_say() {
    if !have("node") {
        return;
    }
    let cases: [(&str, &str, Value); 14] = [
        ("", "esModule.echo", json!("ping")),
        ("", "cjsModule.echo", json!("ping")),
        ("", "esModuleImports.echo", json!("ping")),
        ("extensionless", "index.handler", json!("Hello from extensionless CJS")),
        ("pkg/type-cjs", "cjs.handler", json!("Hello from extensionless CJS")),
        ("pkg/type-cjs", "cjsModule.handler", json!("Hello from CJS.js")),
        ("pkg/type-esm", "cjs.handler", json!("Hello from extensionless CJS")),
        ("pkg/type-esm", "esmModule.handler", json!("Hello from ESM.js")),
        ("pkg-less", "esmImportCjs.handler", json!("Hello from CJS!")),
        ("pkg-less", "cjsImportCjs.handler", json!("Hello from CJS!")),
        // The package.json with "type": "module" is above the handler's directory.
        ("async_init_package", "nested/index.handler", json!(42)),
        // Plain functions: AWS answers null, whatever they return.
        ("async_init_package", "nested/even/more/index.handler", Value::Null),
        ("async_init_type_not_module", "index.ret42", Value::Null),
        ("async_init_with_node_modules", "node_modules/index.ret42", Value::Null),
    ];
    for mode in MODES {
        for (dir, name, want) in &cases {
            let dir =
                if dir.is_empty() { "handlers".to_string() } else { format!("handlers/{dir}") };
            let root = tree(mode, &dir, "");
            assert_eq!(&root.response_json(name, r#""ping""#, mode), want, "{dir} {name} {mode:?}");
        }
    }
}

#[test]
fn an_es_module_s_default_export_is_the_method_default() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        // A plain function: found, called, and answered null as AWS answers it.
        let Served { posts, .. } =
            root.serve("defaultHandlerESM.default", vec![Event::new("r1", "{}")], &[]);
        assert_eq!(posts[0].path, RESPONSE, "{mode:?}: {}", posts[0].body_text());
        assert_eq!(posts[0].body_text(), "null", "{mode:?}");
        let root = root.write(
            "asyncDefault.mjs",
            "// An async default export.\nexport default async (event) => ({ default: event });\n",
        );
        assert_eq!(root.response_json("asyncDefault.default", "7", mode), json!({"default": 7}));
    }
}

#[test]
fn top_level_await_finishes_before_the_first_event() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        assert_eq!(root.response_json("asyncInit.handler", "{}", mode), json!("Hi"), "{mode:?}");
        let root = tree(mode, "handlers/async_init_package", "");
        assert_eq!(root.response_json("index.handler", "{}", mode), json!("Hi"), "{mode:?}");
    }
}

#[test]
fn a_rejected_top_level_await_is_the_load_s_error() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        let (post, log) = load_error(mode, &root, "asyncInitRejection.handler");
        let message = "Oh noes! something bad happened";
        let body = node_error(&post, "AsyncInitRejectionException", message, "rejected init");
        assert_eq!(trace(&body)[0], format!("AsyncInitRejectionException: {message}"));
        let record = "\tundefined\tERROR\tUncaught Exception \t{\"errorType\":\"AsyncInitRejectionException\"";
        assert!(log.contains(record), "{mode:?}:\n{log}");
    }
}

#[test]
fn a_missing_module_is_runtime_import_module_error_in_aws_s_words() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = tree(mode, "handlers", "");
        let (post, log) = load_error(mode, &root, "noModule.echo");
        let body = post.json();
        assert_eq!(body["errorType"], "Runtime.ImportModuleError", "{mode:?}: {body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        let start = "Error: Cannot find module 'noModule'\nRequire stack:\n- ";
        assert!(message.starts_with(start), "{mode:?}: {body}");
        let lines = trace(&body);
        assert_eq!(
            lines[..2],
            ["Runtime.ImportModuleError: Error: Cannot find module 'noModule'", "Require stack:"]
        );
        let record = "\tundefined\tERROR\tUncaught Exception \t{\"errorType\":\"Runtime.ImportModuleError\",\"errorMessage\":\"Error: Cannot find module 'noModule'\\nRequire stack:";
        assert!(log.contains(record), "{mode:?}:\n{log}");
    }
}

#[test]
fn a_dependency_that_is_not_installed_is_runtime_import_module_error() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "missing_dependency.js");
        let (post, _) = load_error(mode, &root, "missing_dependency.handler");
        let body = post.json();
        assert_eq!(body["errorType"], "Runtime.ImportModuleError", "{mode:?}: {body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        let start = "Error: Cannot find module 'no-such-dependency'\nRequire stack:\n- ";
        assert!(message.starts_with(start), "{mode:?}: {body}");
        assert!(message.contains("missing_dependency.js\n- "), "{mode:?}: {body}");
    }
}

#[test]
fn syntax_errors_while_loading_are_runtime_user_code_syntax_error() {
    if !have("node") {
        return;
    }
    let cases = [
        ("pkg-less", "esmInCjs.handler", "SyntaxError: Unexpected token 'export'"),
        ("pkg/type-cjs", "esmModule.handler", "SyntaxError: Unexpected token 'export'"),
        (
            "pkg-less",
            "cjsImportESM.handler",
            "SyntaxError: Cannot use import statement outside a module",
        ),
        (
            "pkg-less",
            "cjsAndMjs.handler",
            "SyntaxError: The requested module './esmModule.js' does not provide an export named 'someESMFunction'",
        ),
    ];
    for mode in MODES {
        let syntax_js = ("", "syntax.handler", "SyntaxError: Unexpected end of input");
        for (dir, name, message) in cases.into_iter().chain([syntax_js]) {
            let root = if dir.is_empty() {
                Lambda::new().mode(mode).fixture("node/syntax.js", "syntax.js")
            } else {
                tree(mode, &format!("handlers/{dir}"), "")
            };
            let (post, _) = load_error(mode, &root, name);
            if post.path == INIT_ERROR && mode == Mode::Plain {
                // bootstrap's `node --check` quotes node's own words.
                let body = post.json();
                assert_eq!(body["errorType"], "Runtime.UserCodeSyntaxError", "{name}: {body}");
                let got = body["errorMessage"].as_str().unwrap_or_default();
                assert!(got.contains(message), "{name}: {body}");
                continue;
            }
            let body = node_error(&post, "Runtime.UserCodeSyntaxError", message, name);
            assert_eq!(trace(&body)[0], format!("Runtime.UserCodeSyntaxError: {message}"));
        }
    }
}

#[test]
fn commonjs_in_an_es_module_fails_with_node_s_reference_error_as_aws_reports_it() {
    if !have("node") {
        return;
    }
    let treated =
        "\nThis file is being treated as an ES module because it has a '.js' file extension and";
    let cases = [
        ("pkg-less", "cjsInMjs.handler", "module is not defined in ES module scope", ""),
        (
            "pkg-less",
            "esmRequireCjs.handler",
            "require is not defined in ES module scope, you can use import instead",
            "",
        ),
        (
            "async_init_package",
            "cjsModuleInEsmPackage.echo",
            "exports is not defined in ES module scope",
            treated,
        ),
        ("pkg/type-esm", "cjsModule.handler", "module is not defined in ES module scope", treated),
    ];
    for mode in MODES {
        for (dir, name, message, more) in cases {
            let root = tree(mode, &format!("handlers/{dir}"), "");
            let (post, _) = load_error(mode, &root, name);
            let body = post.json();
            assert_eq!(body["errorType"], "ReferenceError", "{name} {mode:?}: {body}");
            let got = body["errorMessage"].as_str().unwrap_or_default();
            let want = format!("{message}{more}");
            let exact = more.is_empty() && got == message;
            assert!(
                exact || (!more.is_empty() && got.starts_with(&want)),
                "{name} {mode:?}: {body}"
            );
        }
    }
}

#[test]
fn node_path_is_aws_s_list_unless_the_function_sets_its_own() {
    if !have("node") {
        return;
    }
    let major = Command::new("node").args(["-p", "process.versions.node.split('.')[0]"]).output();
    let major = text(&major.expect("run node").stdout).trim().to_string();
    for mode in MODES {
        let root = tree(mode, "nodepath", "");
        let got = root.response_json("src/app.handler", "{}", mode);
        // The task root is on the list, so a bare require finds a module there.
        assert_eq!(got["helper"], "task root", "{mode:?}: {got}");
        let node_path = got["nodePath"].as_str().unwrap_or_default().to_string();
        let want = format!(
            "/opt/nodejs/node{major}/node_modules:/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:"
        );
        assert!(node_path.starts_with(&want), "{mode:?}: {node_path}");
        let task_root = node_path.strip_prefix(&want).unwrap_or_default();
        let same = std::fs::canonicalize(task_root).ok() == std::fs::canonicalize(root.root()).ok();
        assert!(same, "{mode:?}: {task_root} is not the task root");
        let lib = root.file("lib").display().to_string();
        let Served { posts, .. } = root.clone().envs(&[("NODE_PATH", Some(&lib))]).serve(
            "src/app.handler",
            vec![Event::new("r1", "{}")],
            &[],
        );
        assert_eq!(posts[0].json(), json!({"helper": "lib", "nodePath": lib}), "{mode:?}");
        let root = tree(mode, "handlers", "");
        let got = root.response_json("core.nodePathContainsMajorVersion", "{}", mode);
        assert_eq!(got, json!({"nodePathIncludesMajorVersion": true}), "{mode:?}");
    }
}

#[test]
fn console_methods_write_aws_text_records_with_the_request_id() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "logs.js");
        let Served { posts, log, .. } =
            root.serve("logs.handler", vec![Event::new("r1", "{}")], &["\tr1\tFATAL\tlast"]);
        assert_eq!(posts[0].body_text(), "1", "{mode:?}");
        let records = text_records(&log, "r1");
        let find = |level: &str, start: &str| {
            records.iter().any(|(l, m)| l == level && m.starts_with(start))
        };
        for (level, message) in [
            ("INFO", "a { b: 1 } [ 1, 2 ]"),
            ("INFO", "multi\rline"),
            ("WARN", "w"),
            ("ERROR", "Error: logged err\r    at exports.handler ("),
            ("DEBUG", "d x"),
            ("TRACE", "t"),
            ("INFO", "{ only: 'object' }"),
            ("INFO", "undefined"),
        ] {
            assert!(find(level, message), "{mode:?}: no {level} record {message:?} in\n{log}");
        }
        let load = text_records(&log, "undefined");
        assert!(load.iter().any(|(l, m)| l == "INFO" && m == "loaded"), "{mode:?}:\n{log}");
    }
}

#[test]
fn json_log_format_writes_aws_json_records() {
    if !have("node") {
        return;
    }
    let env = [("AWS_LAMBDA_LOG_FORMAT", Some("JSON")), ("AWS_LAMBDA_LOG_LEVEL", Some("TRACE"))];
    for mode in MODES {
        let root = one(mode, "logs.js");
        let event = Event::new("r1", "{}").header("Lambda-Runtime-Aws-Tenant-Id", "tenant-1");
        let Served { log, .. } =
            root.clone().envs(&env).serve("logs.handler", vec![event], &["\"last\""]);
        let records: Vec<Value> = json_records(&log)
            .into_iter()
            .filter(|r| r["requestId"] == "r1" && r.get("tenantId").is_some())
            .collect();
        let has = |level: &str, message: &Value| {
            records.iter().any(|r| {
                r["level"] == level && &r["message"] == message && r["tenantId"] == "tenant-1"
            })
        };
        assert!(has("INFO", &json!("a { b: 1 } [ 1, 2 ]")), "{mode:?}:\n{log}");
        assert!(has("INFO", &json!("multi\nline")), "{mode:?}:\n{log}");
        assert!(has("INFO", &json!({"only": "object"})), "{mode:?}:\n{log}");
        assert!(has("DEBUG", &json!("d x")) && has("TRACE", &json!("t")), "{mode:?}:\n{log}");
        assert!(has("FATAL", &json!("last")), "{mode:?}:\n{log}");
        let error = records.iter().find(|r| r["level"] == "ERROR").expect("the error record");
        assert_eq!(error["message"]["errorType"], "Error", "{mode:?}: {error}");
        assert_eq!(error["message"]["errorMessage"], "logged err", "{mode:?}: {error}");
        assert_eq!(error["message"]["stackTrace"][0], "Error: logged err", "{mode:?}: {error}");
        // console.log() with nothing: a record without a message.
        let bare = records.iter().any(|r| r["level"] == "INFO" && r.get("message").is_none());
        assert!(bare, "{mode:?}:\n{log}");
        for record in &records {
            let time = record["timestamp"].as_str().unwrap_or_default();
            assert!(time.len() == 24 && time.ends_with('Z'), "{mode:?}: {record}");
        }
    }
}

#[test]
fn aws_lambda_log_level_silences_the_console_methods_below_it() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "logs.js");
        let env = [("AWS_LAMBDA_LOG_LEVEL", Some("warn"))];
        let Served { log, .. } = root.clone().envs(&env).serve(
            "logs.handler",
            vec![Event::new("r1", "{}")],
            &["\tr1\tFATAL\tlast"],
        );
        let levels: Vec<String> = text_records(&log, "r1").into_iter().map(|(l, _)| l).collect();
        assert_eq!(levels, ["WARN", "ERROR", "FATAL"], "{mode:?}:\n{log}");
    }
}

#[test]
fn failures_are_logged_as_aws_logs_them() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "logs.js");
        let record = "\tr1\tERROR\tInvoke Error \t{\"errorType\":\"TypeError\",\"errorMessage\":\"bad thing\",\"code\":\"E_BAD\",\"stack\":[\"TypeError: bad thing\",";
        let Served { posts, .. } =
            root.serve("logs.fails", vec![Event::new("r1", "{}")], &[record]);
        node_error(&posts[0], "TypeError", "bad thing", "logs.fails");
        // Under JSON the record's message is the error itself.
        let env = [("AWS_LAMBDA_LOG_FORMAT", Some("JSON"))];
        let Served { log, .. } = root.clone().envs(&env).serve(
            "logs.fails",
            vec![Event::new("r1", "{}")],
            &["\"E_BAD\""],
        );
        let record = json_records(&log)
            .into_iter()
            .find(|r| r["message"]["code"] == "E_BAD")
            .expect("the error record");
        assert_eq!(record["level"], "ERROR", "{mode:?}: {record}");
        assert_eq!(record["requestId"], "r1", "{mode:?}: {record}");
        assert_eq!(record["message"]["errorType"], "TypeError", "{mode:?}: {record}");
        assert_eq!(record["message"]["errorMessage"], "bad thing", "{mode:?}: {record}");
        assert_eq!(record["message"]["stackTrace"][0], "TypeError: bad thing", "{mode:?}");
    }
}

#[test]
fn a_callback_handler_gets_aws_s_deprecation_warning_unless_it_is_turned_off() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "logs.js").write(
            "cb.js",
            "// A callback handler that logs when it runs.\nexports.handler = (event, context, callback) => {\n  console.log('callback handler ran');\n  callback(null, 1);\n};\n",
        );
        let ran = "\tr1\tINFO\tcallback handler ran";
        let Served { log, .. } = root.serve("cb.handler", vec![Event::new("r1", "{}")], &[ran]);
        let warning = format!("\tundefined\tWARN\t{CALLBACK_WARNING}");
        assert!(log.contains(&warning), "{mode:?}:\n{log}");
        // The warning would have come before the handler's own line, on the same stream.
        let off = [("AWS_LAMBDA_NODEJS_DISABLE_CALLBACK_WARNING", Some("1"))];
        let Served { log, .. } =
            root.clone().envs(&off).serve("cb.handler", vec![Event::new("r1", "{}")], &[ran]);
        assert!(!log.contains(CALLBACK_WARNING), "{mode:?}:\n{log}");
        // Async handlers get none.
        let Served { log, .. } =
            root.serve("logs.handler", vec![Event::new("r1", "{}")], &["\tr1\tFATAL\tlast"]);
        assert!(!log.contains(CALLBACK_WARNING), "{mode:?}:\n{log}");
    }
}

#[test]
fn the_awslambda_global_is_there_unless_the_function_turns_it_off() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "context.js");
        let got = root.response_json("context.globals", "{}", mode);
        let want = json!({"awslambda": "object", "streamify": "function", "httpResponseStream": "function"});
        assert_eq!(got, want, "{mode:?}");
        let off = [("AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA", Some("1"))];
        let Served { posts, .. } =
            root.clone().envs(&off).serve("context.globals", vec![Event::new("r1", "{}")], &[]);
        assert_eq!(posts[0].json()["awslambda"], "undefined", "{mode:?}");
    }
}

#[test]
fn a_streamed_answer_goes_out_as_each_write_happens() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let run = one(mode, "stream.mjs").fifo("gate").start("stream.gated");
        run.api.push(Event::new("r1", "{}"));
        if mode != Mode::Plain {
            let first = run.api.next_chunk();
            assert_eq!(first.bytes, b"first;", "{mode:?}: {}", first.path);
        }
        // The handler is blocked on the gate until now: in a framed mode, its first write
        // reached Lambda before it finished; in plain mode the answer is written at its end.
        writeln!(OpenOptions::new().write(true).open(run.file("gate")).unwrap(), "go").unwrap();
        let post = run.api.expect_post("/runtime/invocation/r1/response");
        assert_eq!(post.body_text(), "first;second", "{mode:?}");
        if mode != Mode::Plain {
            assert_eq!(post.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
            assert!(post.trailers.is_empty(), "{mode:?}: {:?}", post.trailers);
        }
    }
}

#[test]
fn a_streamed_answer_has_the_content_type_the_handler_set_or_octet_stream() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        let post = root.post_for("stream.basic", "{}");
        assert_eq!((post.path.as_str(), post.body_text().as_str()), (RESPONSE, "Hello, world!"));
        let empty = root.post_for("stream.empty", "{}");
        assert_eq!((empty.path.as_str(), empty.body.len()), (RESPONSE, 0), "{mode:?}");
        if mode != Mode::Plain {
            assert_eq!(post.header("Content-Type"), Some("text/plain"), "{mode:?}");
            assert_eq!(post.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
            assert_eq!(empty.header("Content-Type"), Some("application/octet-stream"));
            assert_eq!(empty.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
        }
    }
}

#[test]
fn http_response_stream_writes_aws_s_prelude_before_the_body() {
    if !have("node") {
        return;
    }
    let prelude = |json: &str| {
        let mut bytes = json.as_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        bytes
    };
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        let post = root.post_for("stream.http", "{}");
        let mut want =
            prelude(r#"{"statusCode":201,"headers":{"X-Custom":"yes"},"cookies":["a=b"]}"#);
        want.extend_from_slice(b"body");
        assert_eq!(post.body, want, "{mode:?}: {}", post.body_text());
        // end(chunk) with no write before it still writes the prelude first.
        let end_only = root.post_for("stream.httpEndOnly", "{}");
        let mut want = prelude(r#"{"statusCode":404}"#);
        want.extend_from_slice(b"Not Found");
        assert_eq!(end_only.body, want, "{mode:?}: {}", end_only.body_text());
        if mode != Mode::Plain {
            let content_type = Some("application/vnd.awslambda.http-integration-response");
            assert_eq!(post.header("Content-Type"), content_type, "{mode:?}");
            assert_eq!(end_only.header("Content-Type"), content_type, "{mode:?}");
        }
    }
}

#[test]
fn what_a_streaming_handler_writes_arrives_whole_however_it_writes_it() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        // stream.pipeline from a Readable.
        assert_eq!(root.post_for("stream.piped", "{}").body_text(), "abc", "{mode:?}");
        // Values that are not bytes are JSON-encoded, as AWS's stream does.
        assert_eq!(root.post_for("stream.values", "{}").body_text(), r#"{"a":1}A"#, "{mode:?}");
        // One write of 3 MiB: more than one chunk frame holds.
        let big = root.post_for("stream.big", "{}");
        assert_eq!(big.body.len(), 3 * 1024 * 1024 + 5, "{mode:?}");
        assert!(big.body.iter().all(|&b| b == b'x'), "{mode:?}");
    }
}

#[test]
fn a_streaming_handler_that_fails_answers_with_aws_s_error_trailers() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        for (name, written, error_type, message) in [
            ("stream.failAfter", "partial", "TypeError", "mid-stream"),
            ("stream.failBefore", "", "RangeError", "before"),
        ] {
            let post = root.post_for(name, "{}");
            if mode == Mode::Plain {
                // No stream to end: the error is the answer.
                assert_eq!(post.path, EVENT_ERROR, "{name}: {}", post.body_text());
                node_error(&post, error_type, message, name);
                continue;
            }
            // AWS's client opens the stream before the handler runs: even an error before any
            // write ends it with trailers.
            assert_eq!(post.path, RESPONSE, "{name} {mode:?}");
            assert_eq!(post.body_text(), written, "{name} {mode:?}");
            let error = trailer_error(&post);
            assert_eq!(error["errorType"], error_type, "{name} {mode:?}: {error}");
            assert_eq!(error["errorMessage"], message, "{name} {mode:?}: {error}");
            assert_eq!(trace(&error)[0], format!("{error_type}: {message}"), "{name} {mode:?}");
        }
    }
}

/// A streaming handler in `stream.mjs` that fails with the string `message`, as AWS's client
/// fails it: in plain mode an ordinary error; in the framed modes, after it wrote `written`,
/// the stream ends with the error in its trailers.
#[track_caller]
fn assert_stream_fails(handler: &str, written: &str, message: &str) {
    let want = json!({"errorType": "string", "errorMessage": message, "trace": []});
    for mode in MODES {
        let post = one(mode, "stream.mjs").post_for(handler, "{}");
        if mode == Mode::Plain {
            assert_eq!((post.path.as_str(), post.json()), (EVENT_ERROR, want.clone()));
        } else {
            assert_eq!(post.body_text(), written, "{mode:?}");
            assert_eq!(trailer_error(&post), want, "{mode:?}");
        }
    }
}

#[test]
fn a_streaming_handler_that_is_not_async_fails_as_on_aws() {
    if !have("node") {
        return;
    }
    assert_stream_fails("stream.notAsync", "x", "Streaming does not support non-async handlers.");
}

#[test]
fn a_stream_nothing_can_end_any_more_fails_as_not_finished() {
    if !have("node") {
        return;
    }
    assert_stream_fails("stream.unended", "a", "Response stream is not finished.");
}

#[test]
fn the_content_type_cannot_change_after_the_first_write() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        let post = root.post_for("stream.lateContentType", "{}");
        let want = "x|Runtime.InvalidStreamingOperation|Cannot set content-type, too late.";
        assert_eq!(post.body_text(), want, "{mode:?}");
    }
}

#[test]
fn a_streaming_handler_gets_the_event_and_a_context_without_callbacks() {
    if !have("node") {
        return;
    }
    let keys = json!([
        "callbackWaitsForEmptyEventLoop",
        "functionVersion",
        "functionName",
        "memoryLimitInMB",
        "logGroupName",
        "logStreamName",
        "clientContext",
        "identity",
        "invokedFunctionArn",
        "awsRequestId",
        "tenantId",
        "getRemainingTimeInMillis"
    ]);
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        let post = root.post_for("stream.context", r#"{"k":[1]}"#);
        assert_eq!(post.json(), json!({"keys": keys, "id": "r1", "event": {"k": [1]}}), "{mode:?}");
    }
}

#[test]
fn stream_options_give_the_response_stream_its_high_water_mark() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        let post = root.post_for("stream.highWaterMark", "{}");
        assert_eq!(post.body_text(), "512", "{mode:?}");
    }
}

#[test]
fn a_streaming_handler_s_return_value_is_ignored_with_aws_s_warning() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs").write(
            "late_end.mjs",
            "// Returns a value, then ends its stream.\nexport const handler = awslambda.streamifyResponse(async (event, responseStream) => {\n  setImmediate(() => responseStream.end('ended'));\n  return 'ignored';\n});\n",
        );
        let warning = "\tr1\tWARN\tStreaming handlers ignore return values.";
        let Served { posts, .. } =
            root.serve("late_end.handler", vec![Event::new("r1", "{}")], &[warning]);
        assert_eq!(posts[0].body_text(), "ended", "{mode:?}");
    }
}

#[test]
fn prints_of_a_streaming_handler_never_reach_the_response() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let root = one(mode, "stream.mjs");
        let logged = ["\tr1\tINFO\tprinted by a streaming handler", "written to stdout"];
        let Served { posts, .. } =
            root.serve("stream.prints", vec![Event::new("r1", "{}")], &logged);
        assert_eq!(posts[0].body_text(), "only this", "{mode:?}");
    }
}

#[test]
fn bootstrap_invoke_runs_aws_node_handlers() {
    if !have("node") {
        return;
    }
    for mode in MODES {
        let out = tree(mode, "handlers", "")
            .cli(&["invoke", "--handler", "nestedHandler.nested.somethingComplex.handler", "-"])
            .stdin("{}")
            .run();
        assert!(out.success(), "{mode:?}: {}", out.stderr);
        assert_eq!(out.stdout.trim_end(), "\"something interesting\"", "{mode:?}");
        let out = one(mode, "stream.mjs")
            .cli(&["invoke", "--handler", "stream.basic", "-"])
            .stdin("{}")
            .run();
        assert!(out.success(), "{mode:?}: {}", out.stderr);
        assert_eq!(out.stdout.trim_end(), "Hello, world!", "{mode:?}");
    }
}
