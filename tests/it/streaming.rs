use std::fs::OpenOptions;
use std::io::Write;
use std::process::Command;

use crate::support::*;

const STREAMING: (&str, Option<&str>) = ("BOOTSTRAP_RESPONSE_MODE", Some("streaming"));

fn mkfifo(path: &std::path::Path) {
    let made = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(made.success());
}

#[test]
fn the_first_chunk_arrives_while_the_handler_is_still_running() {
    let script = "#!/bin/sh\nprintf 'first;'\nread line < gate\nprintf 'second'\n";
    let root = TaskRoot::new().script("h", script);
    mkfifo(&root.file("gate"));
    let api = MockApi::start();
    let _b = Bootstrap::start_with(&api, &root, "h.handler", &[STREAMING]);
    api.push(Event::new("r1", "{}"));
    let first = api.next_chunk();
    assert_eq!(first.bytes, b"first;", "{}", first.path);
    // The handler is blocked on the gate until now: the first bytes came before it finished.
    writeln!(OpenOptions::new().write(true).open(root.file("gate")).unwrap(), "go").unwrap();
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "first;second");
    assert_eq!(post.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
    assert!(post.trailers.is_empty(), "{:?}", post.trailers);
}

#[test]
fn a_failure_after_output_started_ends_the_stream_with_error_trailers() {
    let root = TaskRoot::new().script("h", "#!/bin/sh\nprintf partial\necho boom >&2\nexit 3\n");
    let api = MockApi::start();
    let bootstrap = Bootstrap::start_with(&api, &root, "h.handler", &[STREAMING]);
    api.push(Event::new("r1", "{}"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "partial");
    bootstrap.wait_for_log("r1 failed in");
    assert_eq!(post.trailer("Lambda-Runtime-Function-Error-Type"), Some("Runtime.ExitError"));
    let body = decode_base64(
        post.trailer("Lambda-Runtime-Function-Error-Body").expect("error body trailer"),
    );
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(error["errorMessage"].as_str().unwrap().contains("status 3"), "{error}");
    // The loop goes on.
    api.push(Event::new("r2", "{}"));
    api.expect_post("/runtime/invocation/r2/response");
}

#[test]
fn a_failure_before_any_output_is_an_ordinary_error() {
    let root = TaskRoot::new().script("h", "#!/bin/sh\nexit 4\n");
    let api = MockApi::start();
    let _b = Bootstrap::start_with(&api, &root, "h.handler", &[STREAMING]);
    api.push(Event::new("r1", "{}"));
    assert_error(
        &api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.ExitError",
        &["status 4"],
    );
}

#[test]
fn fifty_megabytes_stream_through_with_bounded_memory() {
    let root = TaskRoot::new().script("h", "#!/bin/sh\nhead -c 52428800 /dev/zero\n");
    let api = MockApi::start().digest_streams();
    let bootstrap = Bootstrap::start_with(&api, &root, "h.handler", &[STREAMING]);
    api.push(Event::new("r1", "{}"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.digest.map(|d| d.len), Some(52_428_800));
    assert!(post.trailers.is_empty());
    let status = std::fs::read_to_string(format!("/proc/{}/status", bootstrap.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap();
    assert!(peak_kib < 40 * 1024, "bootstrap's peak RSS was {peak_kib} KiB for a 50 MB stream");
}

#[test]
fn an_http_integration_prelude_passes_through_unchanged() {
    let script = "#!/bin/sh\nprintf '{\"statusCode\":201,\"headers\":{\"x\":\"y\"}}\\000\\000\\000\\000\\000\\000\\000\\000body'\n";
    let root = TaskRoot::new().script("h", script);
    let api = MockApi::start();
    let content_type = "application/vnd.awslambda.http-integration-response";
    let env = [STREAMING, ("BOOTSTRAP_RESPONSE_CONTENT_TYPE", Some(content_type))];
    let _b = Bootstrap::start_with(&api, &root, "h.handler", &env);
    api.push(Event::new("r1", "{}"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(
        post.body,
        b"{\"statusCode\":201,\"headers\":{\"x\":\"y\"}}\0\0\0\0\0\0\0\0body".to_vec()
    );
    assert_eq!(post.header("Content-Type"), Some(content_type));
}

#[test]
fn response_mode_can_be_set_per_interpreter() {
    let config = "[interpreters.stream]\nextensions = [\"stream\"]\ncommand = [\"/bin/sh\", \"{file}\"]\n\
                  response_mode = \"streaming\"\n";
    let root =
        TaskRoot::new().write("interpreters.toml", config).write("h.stream", "printf streamed\n");
    let api = MockApi::start();
    let _b = Bootstrap::start(&api, &root, "h.handler");
    api.push(Event::new("r1", "{}"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(
        (post.body_text().as_str(), post.header("Transfer-Encoding")),
        ("streamed", Some("chunked"))
    );
}
