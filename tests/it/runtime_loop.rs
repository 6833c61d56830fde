use std::time::Duration;

use crate::support::*;

#[test]
fn seed_perl_file_answers_through_the_loop() {
    if !have("perl") {
        return;
    }
    let api = MockApi::start();
    let root = TaskRoot::new().copy("perl/seed.pl", "lambda_script.pl");
    let bootstrap = Bootstrap::start(&api, &root, "lambda_script.handler");
    api.push(Event::new("req-1", &br#"{"request":"Hey perl lambda!!"}"#[..]));
    let post = api.expect_post("/runtime/invocation/req-1/response");
    let body = post.json();
    assert_eq!(body["request"], "Hey perl lambda!!");
    assert_eq!(body["reply"], "Thanks AWS custom lambda runtime!!");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    drop(bootstrap);
}

#[test]
fn serves_events_one_after_another_on_one_connection() {
    let api = MockApi::start();
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    for i in 0..5 {
        api.push(Event::new(&format!("r{i}"), format!("{{\"n\":{i}}}")));
        let post = api.expect_post(&format!("/runtime/invocation/r{i}/response"));
        assert_eq!(post.body_text(), format!("{{\"n\":{i}}}"));
    }
    assert_eq!(api.connections(), 1, "every request should reuse one kept-alive connection");
    let log = bootstrap.stop();
    for i in 0..5 {
        assert!(log.contains(&format!("r{i} ok in")), "one log line per event:\n{log}");
    }
}

#[test]
fn response_bytes_are_posted_unchanged() {
    let api = MockApi::start();
    // Newlines, quotes, shell metacharacters, NUL and invalid UTF-8.
    let root = TaskRoot::new()
        .script("bytes", "#!/bin/sh\nprintf 'a\\nb \"$(x)\" `y` ;\\000\\377\\n\\n'\n");
    let _bootstrap = Bootstrap::start(&api, &root, "bytes.handler");
    api.push(Event::new("r1", "{}"));
    let post = api.expect_post("/runtime/invocation/r1/response");
    assert_eq!(post.body, b"a\nb \"$(x)\" `y` ;\0\xff\n\n".to_vec());
}

#[test]
fn address_with_scheme_and_prefix_works() {
    for (prefix, with_scheme) in [("/.rt", true), ("/.rt/fn", false)] {
        let api = MockApi::with_options(prefix, false);
        let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
        let address = if with_scheme { format!("http://{}", api.address()) } else { api.address() };
        let _bootstrap = Bootstrap::start_with(
            &api,
            &root,
            "echo.handler",
            &[("AWS_LAMBDA_RUNTIME_API", Some(&address))],
        );
        api.push(Event::new("r1", "{\"a\":1}"));
        let post = api.expect_post("/runtime/invocation/r1/response");
        assert_eq!(post.body_text(), "{\"a\":1}");
    }
}

#[test]
fn idle_204_answers_are_polled_again_with_backoff() {
    let api = MockApi::with_options("/.rt", true);
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let _bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    // Let it see some 204s first.
    api.wait_for_polls(3);
    api.push(Event::new("r1", "{}"));
    api.expect_post("/runtime/invocation/r1/response");
}

#[test]
fn a_500_from_next_ends_the_process_with_an_error() {
    let api = MockApi::start();
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let mut bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    api.push(Event::status(500));
    let status = bootstrap.wait_exit();
    assert!(!status.success());
    assert!(bootstrap.log().contains("HTTP 500"), "{}", bootstrap.log());
}

#[test]
fn an_unreachable_api_is_named_in_the_error() {
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = MockApi::start();
    let address = format!("127.0.0.1:{port}");
    let mut bootstrap = Bootstrap::start_with(
        &api,
        &root,
        "echo.handler",
        &[("AWS_LAMBDA_RUNTIME_API", Some(&address))],
    );
    assert!(!bootstrap.wait_exit().success());
    assert!(bootstrap.log().contains(&address), "{}", bootstrap.log());
}

#[test]
fn a_failed_event_does_not_end_the_loop() {
    let api = MockApi::start();
    let root = TaskRoot::new()
        .script("h", "#!/bin/sh\nread -r line\ncase $line in fail*) exit 9;; esac\nprintf ok\n");
    let _bootstrap = Bootstrap::start(&api, &root, "h.handler");
    api.push(Event::new("r1", "fail\n"));
    assert_error(
        &api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.ExitError",
        &["status 9"],
    );
    api.push(Event::new("r2", "fine\n"));
    assert_eq!(api.expect_post("/runtime/invocation/r2/response").body_text(), "ok");
}

#[test]
fn an_invocation_with_a_bad_deadline_gets_an_error_and_the_loop_goes_on() {
    let api = MockApi::start();
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let _bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    api.push(Event::new("r1", "{}").header("Lambda-Runtime-Deadline-Ms", "tomorrow"));
    assert_error(
        &api.expect_post("/runtime/invocation/r1/error"),
        "Runtime.InvalidInvocation",
        &["deadline"],
    );
    api.push(Event::new("r2", "{}"));
    api.expect_post("/runtime/invocation/r2/response");
}

#[test]
fn a_missing_request_id_stops_with_a_clear_error() {
    let api = MockApi::start();
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let mut bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    api.push(Event::new("r1", "{}").without_header("Lambda-Runtime-Aws-Request-Id"));
    assert!(!bootstrap.wait_exit().success());
    assert!(bootstrap.log().contains("lambda-runtime-aws-request-id"), "{}", bootstrap.log());
    assert!(api.try_post(Duration::from_millis(1)).is_none());
}

#[test]
fn logs_never_hold_the_event_or_the_response() {
    let api = MockApi::start();
    let root = TaskRoot::new().script("echo", "#!/bin/sh\ncat\n");
    let bootstrap = Bootstrap::start(&api, &root, "echo.handler");
    api.push(Event::new("r1", "{\"password\":\"hunter2-secret\"}"));
    api.expect_post("/runtime/invocation/r1/response");
    let log = bootstrap.stop();
    assert!(log.contains("r1 ok in"), "{log}");
    assert!(!log.contains("hunter2"), "the event leaked into the log:\n{log}");
}
