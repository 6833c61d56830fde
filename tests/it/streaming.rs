use std::fs::OpenOptions;
use std::io::Write;

use crate::support::*;

/// A task root with the executable handler `h` (`script`), its answers streamed.
fn streaming(script: &str) -> Lambda {
    Lambda::new().script("h", script).env("BOOTSTRAP_RESPONSE_MODE", "streaming")
}

#[test]
fn the_first_chunk_arrives_while_the_handler_is_still_running() {
    let script = "#!/bin/sh\nprintf 'first;'\nread line < gate\nprintf 'second'\n";
    let run = streaming(script).fifo("gate").start("h.handler");
    run.api.push(Event::new("r1", "{}"));
    let first = run.api.next_chunk();
    assert_eq!(first.bytes, b"first;", "{}", first.path);
    // The handler is blocked on the gate until now: the first bytes came before it finished.
    writeln!(OpenOptions::new().write(true).open(run.file("gate")).unwrap(), "go").unwrap();
    let post = run.api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.body_text(), "first;second");
    assert_eq!(post.header("Lambda-Runtime-Function-Response-Mode"), Some("streaming"));
    assert!(post.trailers.is_empty(), "{:?}", post.trailers);
}

#[test]
fn a_failure_after_output_started_ends_the_stream_with_error_trailers() {
    let run = streaming("#!/bin/sh\nprintf partial\necho boom >&2\nexit 3\n").start("h.handler");
    let post = run.response_to(Event::new("r1", "{}"));
    assert_eq!(post.body_text(), "partial");
    run.wait_for_log("r1 failed in");
    assert_eq!(post.trailer("Lambda-Runtime-Function-Error-Type"), Some("Runtime.ExitError"));
    let error = post.error_trailer();
    assert_eq!(error["errorType"], "Runtime.ExitError");
    assert!(error["errorMessage"].as_str().unwrap().contains("status 3"), "{error}");
    // The loop goes on.
    run.response_to(Event::new("r2", "{}"));
}

#[test]
fn a_failure_before_any_output_is_an_ordinary_error() {
    let run = streaming("#!/bin/sh\nexit 4\n").start("h.handler");
    assert_error(&run.error_for(Event::new("r1", "{}")), "Runtime.ExitError", &["status 4"]);
}

#[test]
fn fifty_megabytes_stream_through_with_bounded_memory() {
    let run = streaming("#!/bin/sh\nhead -c 52428800 /dev/zero\n")
        .start_on(MockApi::start().digest_streams(), "h.handler");
    let post = run.response_to(Event::new("r1", "{}"));
    assert_eq!(post.digest.map(|d| d.len), Some(52_428_800));
    assert!(post.trailers.is_empty());
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.pid())).unwrap();
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
    let content_type = "application/vnd.awslambda.http-integration-response";
    let run =
        streaming(script).env("BOOTSTRAP_RESPONSE_CONTENT_TYPE", content_type).start("h.handler");
    let post = run.response_to(Event::new("r1", "{}"));
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
    let run =
        Lambda::new().config(config).write("h.stream", "printf streamed\n").start("h.handler");
    let post = run.response_to(Event::new("r1", "{}"));
    assert_eq!(
        (post.body_text().as_str(), post.header("Transfer-Encoding")),
        ("streamed", Some("chunked"))
    );
}
