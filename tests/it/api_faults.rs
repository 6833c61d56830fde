//! Faults of the Runtime API itself, scripted in the mock: statuses on posts, connections lost
//! or closed, answers cut short or slow, malformed `/next` headers, 204 forever. For each, what
//! bootstrap does, and (unless that is to exit) that the next ordinary event is still served.
//!
//! The 500 on `/next`, an unreachable API and a missing request id or a deadline of `tomorrow`
//! are in `runtime_loop.rs`.

use std::time::Duration;

use crate::support::mock_api::Reply;
use crate::support::*;

/// Echoes the event's first line, or exits 3 when it is `fail`, so its result is an error post.
const HANDLER: &str =
    "#!/bin/sh\nread -r event\n[ \"$event\" = fail ] && exit 3\nprintf %s \"$event\"\n";

/// bootstrap serving `HANDLER`, on `api`.
fn start_on(api: MockApi) -> Run {
    Lambda::new().script("h", HANDLER).start_on(api, "h.handler")
}

/// bootstrap serving `HANDLER`, on a fresh mock API.
fn start() -> Run {
    start_on(MockApi::start())
}

/// One ordinary event, answered correctly: the loop is healthy after the fault.
#[track_caller]
fn assert_serves(run: &Run, id: &str) {
    run.assert_serves(Event::new(id, format!("after {id}\n")), &format!("after {id}"));
}

/// `/next` as bootstrap requests it from this mock.
fn next_url(api: &MockApi) -> String {
    format!("http://{}/2018-06-01/runtime/invocation/next", api.address())
}

/// Waits for an exit, asserts it failed without a panic, and returns the log.
#[track_caller]
fn assert_fails(run: &mut Run) -> String {
    let status = run.wait_exit();
    let log = run.log();
    assert!(!status.success(), "bootstrap exited with {status}, want a failure; log:\n{log}");
    assert_no_panic(&log);
    log
}

#[test]
fn rejected_posts_are_logged_and_the_loop_goes_on() {
    let run = start();
    let rejections = [
        (400, "InvalidRequestID"),
        (403, "InvalidStateTransition"),
        (413, "RequestEntityTooLarge"),
        (410, "InvokeTimeout"),
    ];
    let mut rejected = Vec::new();
    for (status, error_type) in rejections {
        for (event, endpoint) in [("fine", "response"), ("fail", "error")] {
            let id = format!("r{status}-{endpoint}");
            run.api.answer_post(Event::api_error(status, error_type));
            run.api.push(Event::new(&id, format!("{event}\n")));
            run.api.expect_post(&format!("/runtime/invocation/{id}/{endpoint}"));
            rejected.push((format!("HTTP {status}"), id));
        }
    }
    assert_serves(&run, "after");
    // Each warning was written before the /next that fetched the following event.
    let log = run.stop();
    let unlogged: Vec<_> = rejected
        .iter()
        .filter(|(status, id)| !log.lines().any(|l| l.contains(status) && l.contains(id)))
        .collect();
    assert!(unlogged.is_empty(), "no log line names {unlogged:?}:\n{log}");
    assert_no_panic(&log);
}

#[test]
fn a_500_on_a_post_ends_the_process() {
    for (event, endpoint) in [("fine", "response"), ("fail", "error")] {
        let mut run = start();
        run.api.answer_post(Event::status(500));
        run.api.push(Event::new("r1", format!("{event}\n")));
        run.api.expect_post(&format!("/runtime/invocation/r1/{endpoint}"));
        let log = assert_fails(&mut run);
        let url = format!("/runtime/invocation/r1/{endpoint}: HTTP 500");
        assert!(log.contains(&url), "the log should name {url:?}:\n{log}");
        assert_eq!(run.api.next_requests_made(), 1, "no /next after a 500 on a post");
    }
}

#[test]
fn a_connection_lost_during_next_ends_the_process_naming_the_url() {
    let event = Event::new("r1", "{}");
    let cut_in_head = event.body.len() + 10;
    for (fault, reply) in [
        ("closed after the request", Reply::HangUp),
        ("closed inside the head", Reply::CutShort { event, missing: cut_in_head }),
    ] {
        let mut run = start();
        run.api.push(reply);
        let log = assert_fails(&mut run);
        assert!(log.contains(&next_url(&run.api)), "{fault}: the log should name /next:\n{log}");
        // On a connection bootstrap had just opened there is nothing to retry: one request.
        assert_eq!(run.api.next_requests_made(), 1, "{fault}: /next requests");
        assert!(run.api.try_post(Duration::ZERO).is_none(), "{fault}: nothing may be posted");
    }
}

#[test]
fn a_next_body_cut_short_ends_the_process_naming_the_url() {
    // Large enough to arrive in several reads; half of it is sent.
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(256 * 1024));
    let missing = body.len() / 2;
    let mut run = start();
    run.api.push(Reply::CutShort { event: Event::new("r1", body), missing });
    // The headers were whole, but an event that never fully arrived is not run: bootstrap
    // reads the body before it parses anything, and a transport error on /next is fatal.
    let log = assert_fails(&mut run);
    assert!(log.contains(&next_url(&run.api)), "the log should name /next:\n{log}");
    assert_eq!(run.api.next_requests_made(), 1);
    assert!(run.api.try_post(Duration::ZERO).is_none(), "nothing may be posted for r1");
}

#[test]
fn a_connection_closed_between_requests_is_reopened() {
    let run = start();
    // `Connection: close` on /next and on the post.
    run.api.push(Reply::AnnouncedClose(Event::new("c1", "one\n")));
    run.api.answer_post(Reply::AnnouncedClose(Event::accepted()));
    assert_eq!(run.api.expect_post("/runtime/invocation/c1/response").body_text(), "one");
    // Closed without a word after each answer.
    run.api.push(Reply::SilentClose(Event::new("c2", "two\n")));
    run.api.answer_post(Reply::SilentClose(Event::accepted()));
    assert_eq!(run.api.expect_post("/runtime/invocation/c2/response").body_text(), "two");
    // Closed just as bootstrap reuses it, for the post and then for the /next.
    run.api.push(Reply::CloseOnReuse(Event::new("c3", "three\n")));
    run.api.answer_post(Reply::CloseOnReuse(Event::accepted()));
    assert_eq!(run.api.expect_post("/runtime/invocation/c3/response").body_text(), "three");
    assert_serves(&run, "after");
    // One connection per closed one: c1's /next and post, c2's /next and post, c3's /next
    // and post (closed on its reuse by the post's retry), and the last one.
    assert_eq!(run.api.connections(), 7, "connections opened");
    let log = run.stop();
    assert!(!log.contains("posting the result failed"), "no request should have failed:\n{log}");
}

#[test]
fn slow_headers_still_deliver_the_event() {
    let run = start();
    let event = Event::new("r1", "slow\n").header("Lambda-Runtime-Trace-Id", "Root=1-2-3");
    run.api.push(Reply::SlowHead { event, pieces: 6, gap: Duration::from_millis(60) });
    assert_eq!(run.api.expect_post("/runtime/invocation/r1/response").body_text(), "slow");
    assert_serves(&run, "after");
    assert_eq!(run.api.connections(), 1, "a slow answer is no reason to reconnect");
    assert_no_panic(&run.stop());
}

#[test]
fn unusable_request_ids_end_the_process_naming_the_header() {
    let header = "lambda-runtime-aws-request-id";
    let not_utf8 = Reply::RawHeader {
        event: Event::new("r1", "{}").without_header("Lambda-Runtime-Aws-Request-Id"),
        name: "Lambda-Runtime-Aws-Request-Id".into(),
        value: b"r\xff1".to_vec(),
    };
    // Without a usable id there is nowhere to post an error: bootstrap exits.
    let ids: [(&str, Reply, &str); 6] = [
        ("empty", Event::new("", "{}").into(), header),
        ("a space", Event::new("r 1", "{}").into(), header),
        ("a tab", Event::new("r\t1", "{}").into(), header),
        ("300 characters", Event::new(&"r".repeat(300), "{}").into(), header),
        ("bytes that are not UTF-8", not_utf8, header),
        // HTTP forbids this in any header value, so ureq refuses the whole answer before
        // bootstrap sees which header held it: the log names /next and the parse error.
        ("a control character", Event::new("r\u{1}1", "{}").into(), "invalid header value"),
    ];
    for (what, reply, named) in ids {
        let mut run = start();
        run.api.push(reply);
        let log = assert_fails(&mut run);
        assert!(
            log.contains(named),
            "a request id with {what}: the log should say {named:?}:\n{log}"
        );
        assert!(log.contains(&next_url(&run.api)), "a request id with {what}: name /next:\n{log}");
        assert!(run.api.try_post(Duration::ZERO).is_none(), "a request id with {what}: no post");
    }
}

#[test]
fn malformed_deadlines_are_invalid_invocations_and_the_loop_goes_on() {
    let run = start();
    let deadlines: [(&str, Reply); 6] = [
        ("negative", deadline("-1700000000000")),
        ("a float", deadline("1700000000000.5")),
        ("in exponent form", deadline("1.7e12")),
        ("30 digits", deadline("123456789012345678901234567890")),
        ("empty", deadline("")),
        (
            "not UTF-8",
            Reply::RawHeader {
                event: Event::new("d", "{}").without_header("Lambda-Runtime-Deadline-Ms"),
                name: "Lambda-Runtime-Deadline-Ms".into(),
                value: b"17000000\xff00000".to_vec(),
            },
        ),
    ];
    for (what, reply) in deadlines {
        run.api.push(reply);
        let post = run.api.expect_post("/runtime/invocation/d/error");
        assert_error(&post, "Runtime.InvalidInvocation", &["lambda-runtime-deadline-ms"]);
        assert_eq!(
            post.header("Lambda-Runtime-Function-Error-Type"),
            Some("Runtime.InvalidInvocation"),
            "{what}"
        );
    }
    assert_serves(&run, "after");
    assert_no_panic(&run.stop());
}

/// An event `d` whose deadline header holds `value`.
fn deadline(value: &str) -> Reply {
    Reply::Answer(Event::new("d", "{}").header("Lambda-Runtime-Deadline-Ms", value))
}

#[test]
fn a_kept_alive_connection_hanging_up_is_retried_once_then_fatal() {
    let mut run = start();
    assert_serves(&run, "r1");
    // bootstrap's next /next goes out on the kept-alive connection: retried once on a new one.
    run.api.push(Reply::HangUp);
    run.api.push(Reply::HangUp);
    let log = assert_fails(&mut run);
    assert!(log.contains(&next_url(&run.api)), "the log should name /next:\n{log}");
    assert_eq!(run.api.next_requests_made(), 3, "r1's /next, the hung-up one and one retry");
    assert_eq!(run.api.connections(), 2);
}

#[test]
fn idle_204_forever_is_polled_with_a_capped_backoff_not_a_busy_loop() {
    let run = start_on(MockApi::with_options("", true));
    run.api.wait_for_polls(20);
    let times = run.api.poll_times();
    // Each poll time is taken before its 204 is written, and bootstrap pauses after reading a
    // 204 before it polls again, so a gap between two poll times is never shorter than the
    // pause. The pause doubles from 1 ms up to 100 ms and reaches it by the 8th poll: polls 10
    // to 20 are ten pauses of 100 ms, 1 s at least. A busy loop would take a few ms. Half the
    // lower bound keeps the test to "backs off" without pinning the cap; it cannot be flaky,
    // since every pause only ever lasts longer than asked.
    let span = times[19] - times[9];
    assert!(span >= Duration::from_millis(500), "10 idle polls in {span:?}: a busy loop");
    assert_serves(&run, "after");
    assert_no_panic(&run.stop());
}
