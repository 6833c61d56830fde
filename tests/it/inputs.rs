//! Inputs are checked where they enter (issue 11, guarantee 6): the streaming Content-Type at
//! init, request ids that are dot segments, a `/next` body that never comes, a config of
//! 20,000 entries, an init error that quotes a 200 KB line.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;

use crate::support::*;

#[test]
fn a_streaming_content_type_that_cannot_be_a_header_is_an_init_error_naming_it() {
    let mut run = Lambda::new()
        .script("h", "#!/bin/sh\nprintf hi\n")
        .env("BOOTSTRAP_RESPONSE_MODE", "streaming")
        .env("BOOTSTRAP_RESPONSE_CONTENT_TYPE", "text/plain\r\nX-Injected: 1")
        .start("h.handler");
    let post = run.expect_init_error();
    assert_error(&post, "Runtime.InvalidConfig", &["BOOTSTRAP_RESPONSE_CONTENT_TYPE"]);
}

#[test]
fn request_ids_that_are_dot_segments_are_posted_as_one_segment() {
    let run = Lambda::new().script("h", "#!/bin/sh\nprintf ok\n").start("h.handler");
    for (id, segment) in [(".", "%2E"), ("..", "%2E%2E")] {
        run.api.push(Event::new(id, "{}"));
        let post = run.api.expect_post(&format!("/runtime/invocation/{segment}/response"));
        assert_eq!(post.body_text(), "ok");
    }
}

#[test]
fn a_next_body_announced_but_never_sent_ends_the_wait_naming_the_url() {
    // A Runtime API that sends the head of an event, promises 100 bytes, and sends none.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let address = listener.local_addr().unwrap().to_string();
    let (done, hold) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("bootstrap connects");
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nLambda-Runtime-Aws-Request-Id: r1\r\n\
             Lambda-Runtime-Deadline-Ms: {}\r\n\r\n",
            mock_api::deadline_in(std::time::Duration::from_secs(60))
        );
        let mut stream = stream;
        stream.write_all(head.as_bytes()).unwrap();
        let _ = hold.recv_timeout(PATIENCE); // the connection stays open, silent
    });
    let mut bootstrap = Lambda::new()
        .script("h", "#!/bin/sh\nprintf ok\n")
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .launch("h.handler");
    assert!(!bootstrap.wait_exit().success(), "{}", bootstrap.log());
    let log = bootstrap.log();
    assert!(log.contains("/runtime/invocation/next"), "the error names the URL: {log}");
    done.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn a_config_of_twenty_thousand_entries_loads() {
    // Loading is linear in the entries; a quadratic one would take minutes here, and this test
    // would meet the harness's patience (no timing is asserted beyond that).
    let mut config = String::new();
    for i in 0..20_000 {
        config.push_str(&format!(
            "[interpreters.l{i}]\nextensions = [\"x{i}\"]\ncommand = [\"cat\"]\n"
        ));
    }
    let run = Lambda::new().config(&config).write("h.x19999", "").start("h.handler");
    let post = run.response_to(Event::new("r1", "twenty thousand"));
    assert_eq!(post.body_text(), "twenty thousand");
}

#[test]
fn an_init_error_quoting_a_200_kb_line_is_posted_cut_and_logged_whole() {
    let line = format!("command = [\"{}\" oops\n", "a".repeat(200_000));
    let config = format!("[interpreters.x]\nextensions = [\"x\"]\n{line}");
    let mut run = Lambda::new().config(&config).write("h.x", "").start("h.handler");
    let post = run.expect_init_error();
    let message = post.json()["errorMessage"].as_str().unwrap().to_string();
    assert!(message.len() < 16 * 1024, "an error message of {} bytes was posted", message.len());
    assert!(message.contains("the whole message is in the function's log"), "{message}");
    assert!(message.contains("line 3"), "what is wrong stays: {message}");
    assert!(run.log().contains(&"a".repeat(200_000)), "the whole message is logged");
}
