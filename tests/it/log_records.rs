//! Log records are never spliced (issue 11, guarantee 7): under concurrency, a line one
//! handler writes never shares a record with another's, however long it is and however it
//! was written, in plain mode and in framed workers.

use crate::support::*;

/// Writes 20 lines of 100,000 times the event's letter to stderr, each in pieces of 1,000
/// bytes, then "end-<letter>", then answers.
const LETTERS_PLAIN: &str = "#!/usr/bin/env python3\nimport json, os, sys\nletter = json.load(sys.stdin)\n\
    for _ in range(20):\n    line = (letter * 100000 + '\\n').encode()\n    \
    for i in range(0, len(line), 1000):\n        os.write(2, line[i:i + 1000])\n\
    os.write(2, b'end-' + letter.encode() + b'\\n')\nprint(letter)\n";
const LETTERS_FRAMED: &str = "import os\n\ndef handler(event, context):\n    \
    for _ in range(20):\n        line = (event * 100000 + '\\n').encode()\n        \
    for i in range(0, len(line), 1000):\n            os.write(2, line[i:i + 1000])\n    \
    os.write(2, b'end-' + event.encode() + b'\\n')\n    return event\n";

/// Serves "A" and "B" at once on two loops and checks every record of letters in the log.
fn letters_stay_apart(lambda: Lambda) {
    let run = lambda.env("AWS_LAMBDA_MAX_CONCURRENCY", "2").start("h.handler");
    run.api.wait_for_polls(2);
    run.api.push(Event::new("a", "\"A\""));
    run.api.push(Event::new("b", "\"B\""));
    for _ in 0..2 {
        let post = run.api.next_post();
        assert!(post.path.ends_with("/response"), "{}: {}", post.path, post.body_text());
    }
    // stderr is forwarded in order: the last line in means every letter is in.
    run.wait_for_log("end-A");
    run.wait_for_log("end-B");
    let log = run.stop();
    let mut letters = 0;
    for record in log.lines().filter(|r| r.len() > 100 && r.bytes().all(|b| b == b'A' || b == b'B'))
    {
        letters += record.len();
        let first = record.as_bytes()[0];
        assert!(record.bytes().all(|b| b == first), "a spliced record: {}…", &record[..120]);
    }
    assert_eq!(letters, 2 * 20 * 100_000, "every letter reached the log");
}

#[test]
fn concurrent_plain_handlers_long_lines_are_never_spliced() {
    if !have("python3") {
        return;
    }
    letters_stay_apart(Lambda::new().script("h", LETTERS_PLAIN));
}

#[test]
fn concurrent_framed_workers_long_lines_are_never_spliced() {
    if !have("python3") {
        return;
    }
    letters_stay_apart(Lambda::new().write("h.py", LETTERS_FRAMED).mode(Mode::Warm));
}
