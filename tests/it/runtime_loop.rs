use std::time::Duration;

use crate::support::*;

/// An executable handler that echoes its event.
const ECHO: &str = "#!/bin/sh\ncat\n";

#[test]
fn seed_perl_file_answers_through_the_loop() {
    if !have("perl") {
        return;
    }
    let run =
        Lambda::new().fixture("perl/seed.pl", "lambda_script.pl").start("lambda_script.handler");
    let event = Event::new("req-1", &br#"{"request":"Hey perl lambda!!"}"#[..]);
    let body = run.response_to(event).json();
    assert_eq!(body["request"], "Hey perl lambda!!");
    assert_eq!(body["reply"], "Thanks AWS custom lambda runtime!!");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
}

#[test]
fn serves_events_one_after_another_on_one_connection() {
    let run = Lambda::new().script("echo", ECHO).start("echo.handler");
    for i in 0..5 {
        let post = run.response_to(Event::new(&format!("r{i}"), format!("{{\"n\":{i}}}")));
        assert_eq!(post.body_text(), format!("{{\"n\":{i}}}"));
    }
    assert_eq!(run.api.connections(), 1, "every request should reuse one kept-alive connection");
    let log = run.stop();
    for i in 0..5 {
        assert!(log.contains(&format!("r{i} ok in")), "one log line per event:\n{log}");
    }
}

#[test]
fn response_bytes_are_posted_unchanged() {
    // Newlines, quotes, shell metacharacters, NUL and invalid UTF-8.
    let run = Lambda::new()
        .script("bytes", "#!/bin/sh\nprintf 'a\\nb \"$(x)\" `y` ;\\000\\377\\n\\n'\n")
        .start("bytes.handler");
    let post = run.response_to(Event::new("r1", "{}"));
    assert_eq!(post.body, b"a\nb \"$(x)\" `y` ;\0\xff\n\n".to_vec());
}

#[test]
fn address_with_scheme_and_prefix_works() {
    for (prefix, with_scheme) in [("/.rt", true), ("/.rt/fn", false)] {
        let api = MockApi::with_options(prefix, false);
        let address = if with_scheme { format!("http://{}", api.address()) } else { api.address() };
        let lambda = Lambda::new().script("echo", ECHO).env("AWS_LAMBDA_RUNTIME_API", &address);
        let run = lambda.start_on(api, "echo.handler");
        assert_eq!(run.response_to(Event::new("r1", "{\"a\":1}")).body_text(), "{\"a\":1}");
    }
}

/// That the polls back off is tested in `api_faults`
/// (`idle_204_forever_is_polled_with_a_capped_backoff_not_a_busy_loop`).
#[test]
fn idle_204_answers_are_polled_again_until_an_event_comes() {
    let api = MockApi::with_options("/.rt", true);
    let run = Lambda::new().script("echo", ECHO).start_on(api, "echo.handler");
    // Let it see some 204s first.
    run.api.wait_for_polls(3);
    run.response_to(Event::new("r1", "{}"));
}

#[test]
fn a_500_from_next_ends_the_process_with_an_error() {
    let mut run = Lambda::new().script("echo", ECHO).start("echo.handler");
    run.api.push(Event::status(500));
    let status = run.wait_exit();
    assert!(!status.success());
    assert!(run.log().contains("HTTP 500"), "{}", run.log());
}

#[test]
fn an_unreachable_api_is_named_in_the_error() {
    // A port that was just free: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let lambda = Lambda::new().script("echo", ECHO).env("AWS_LAMBDA_RUNTIME_API", &address);
    let mut bootstrap = lambda.launch("echo.handler");
    assert!(!bootstrap.wait_exit().success());
    assert!(bootstrap.log().contains(&address), "{}", bootstrap.log());
}

#[test]
fn a_failed_event_does_not_end_the_loop() {
    let run = Lambda::new()
        .script("h", "#!/bin/sh\nread -r line\ncase $line in fail*) exit 9;; esac\nprintf ok\n")
        .start("h.handler");
    let post = run.error_for(Event::new("r1", "fail\n"));
    assert_error(&post, "Runtime.ExitError", &["status 9"]);
    run.assert_serves(Event::new("r2", "fine\n"), "ok");
}

#[test]
fn an_invocation_with_a_bad_deadline_gets_an_error_and_the_loop_goes_on() {
    let run = Lambda::new().script("echo", ECHO).start("echo.handler");
    let event = Event::new("r1", "{}").header("Lambda-Runtime-Deadline-Ms", "tomorrow");
    assert_error(&run.error_for(event), "Runtime.InvalidInvocation", &["deadline"]);
    run.response_to(Event::new("r2", "{}"));
}

#[test]
fn a_missing_request_id_stops_with_a_clear_error() {
    let mut run = Lambda::new().script("echo", ECHO).start("echo.handler");
    run.api.push(Event::new("r1", "{}").without_header("Lambda-Runtime-Aws-Request-Id"));
    assert!(!run.wait_exit().success());
    assert!(run.log().contains("lambda-runtime-aws-request-id"), "{}", run.log());
    assert!(run.api.try_post(Duration::from_millis(1)).is_none());
}

#[test]
fn logs_never_hold_the_event_or_the_response() {
    let run = Lambda::new().script("echo", ECHO).start("echo.handler");
    run.response_to(Event::new("r1", "{\"password\":\"hunter2-secret\"}"));
    let log = run.stop();
    assert!(log.contains("r1 ok in"), "{log}");
    assert!(!log.contains("hunter2"), "the event leaked into the log:\n{log}");
}
