//! `StreamingResponse`, the hand-written chunked `/response` client, against the mock Runtime
//! API through the library: chunks seen while the stream is open, the request head, trailers
//! on failure, an HTTP-integration prelude, a 50 MB stream, the byte limit and transport faults.

use std::time::Duration;

use bootstrap::api::address::ApiAddress;
use bootstrap::api::stream::{
    DEFAULT_CONTENT_TYPE, HTTP_INTEGRATION_CONTENT_TYPE, MAX_STREAMED_BYTES, StreamError,
    StreamingResponse,
};

use bootstrap::invocation::{Diagnostic, RequestId};

use crate::support::mock_api::{Digest, Reply};
use crate::support::{Event, MockApi, decode_base64, text};

const RESPONSE: &str = "/runtime/invocation/r1/response";
const ERROR_TYPE: &str = "Lambda-Runtime-Function-Error-Type";
const ERROR_BODY: &str = "Lambda-Runtime-Function-Error-Body";
const MIB: u64 = 1024 * 1024;

fn address(api: &MockApi) -> ApiAddress {
    ApiAddress::parse(&api.address()).expect("the mock's address parses")
}

fn id(text: &str) -> RequestId {
    RequestId::parse(text).expect("a valid request id")
}

/// A stream for `r1`, its head already sent.
fn open(api: &MockApi, content_type: &str) -> StreamingResponse {
    StreamingResponse::start(&address(api), &id("r1"), content_type).expect("start the stream")
}

#[test]
fn the_decoder_here_agrees_with_rfc_4648() {
    for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foobar", "Zm9vYmFy")] {
        assert_eq!(decode_base64(encoded), plain.as_bytes());
    }
    assert_eq!(decode_base64("+/8="), [0xfb, 0xff]);
}

#[test]
fn chunks_reach_the_server_one_by_one_while_the_stream_is_open() {
    let api = MockApi::start();
    let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
    let path = format!("/2018-06-01{RESPONSE}");
    for piece in ["first ", "second ", "third"] {
        stream.write(piece.as_bytes()).expect("write a chunk");
        let chunk = api.next_chunk();
        assert_eq!(
            (chunk.path.as_str(), chunk.len, text(&chunk.bytes).as_str()),
            (path.as_str(), piece.len(), piece),
            "each chunk arrives as written, before the next is sent"
        );
    }
    assert!(api.try_post(Duration::ZERO).is_none(), "the post cannot be complete before finish");
    assert_eq!(stream.finish().expect("finish"), 202);
    assert_eq!(api.expect_post(RESPONSE).body_text(), "first second third");
}

#[test]
fn finish_ends_the_stream_without_trailers_and_returns_the_status() {
    let api = MockApi::start();
    let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
    stream.write(b"{\"ok\":").expect("write");
    stream.write(b"true}").expect("write");
    assert_eq!(stream.bytes_sent(), 11);
    assert_eq!(stream.finish().expect("finish"), 202);
    let post = api.expect_post(RESPONSE);
    assert_eq!(
        (post.body_text().as_str(), &post.trailers, post.digest),
        ("{\"ok\":true}", &Vec::new(), None),
        "body, trailers and digest of a successful stream"
    );
    assert_eq!(post.header("Content-Type"), Some("application/octet-stream"));
}

#[test]
fn fail_sends_the_error_type_and_the_diagnostic_as_trailers() {
    let api = MockApi::start();
    for (error_type, header) in
        [("Runtime.ExitError", "Runtime.ExitError"), ("ValueError", "Function.ValueError")]
    {
        let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
        stream.write(b"partial output").expect("write");
        let diagnostic = Diagnostic::new(error_type, "died: \"quoted\", ünïcode,\nsecond line");
        assert_eq!(stream.fail(&diagnostic).expect("fail"), 202);
        let post = api.expect_post(RESPONSE);
        let names: Vec<&str> = post.trailers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [ERROR_TYPE, ERROR_BODY], "exactly the two error trailers, in order");
        assert_eq!(post.trailer(ERROR_TYPE), Some(header));
        let body = decode_base64(post.trailer(ERROR_BODY).expect("an Error-Body trailer"));
        assert_eq!(text(&body), text(&diagnostic.to_json()));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("Error-Body is JSON");
        assert_eq!(
            (json["errorType"].as_str(), json["errorMessage"].as_str()),
            (Some(error_type), Some(diagnostic.error_message.as_str()))
        );
        assert_eq!(post.body_text(), "partial output", "what was streamed stays streamed");
    }
}

#[test]
fn the_request_head_asks_for_a_chunked_stream_with_error_trailers() {
    let api = MockApi::with_options("/.rt", false);
    let stream =
        StreamingResponse::start(&address(&api), &id("a/b?c"), "text/plain; charset=utf-8")
            .expect("start the stream");
    assert_eq!(stream.finish().expect("finish"), 202);
    let post = api.expect_post("/runtime/invocation/a%2Fb%3Fc/response");
    let authority = api.address().trim_end_matches("/.rt").to_string();
    let header = |name: &str| post.header(name).map(str::to_string);
    let want = [
        ("Host", Some(authority)),
        ("Lambda-Runtime-Function-Response-Mode", Some("streaming".to_string())),
        ("Transfer-Encoding", Some("chunked".to_string())),
        (
            "Trailer",
            Some("Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body".into()),
        ),
        ("Content-Type", Some("text/plain; charset=utf-8".to_string())),
        ("Content-Length", None),
    ];
    let got: Vec<_> = want.iter().map(|(name, _)| (*name, header(name))).collect();
    assert_eq!(got, want, "all headers: {:?}", post.headers);
    let agent = header("User-Agent").unwrap_or_default();
    assert!(agent.starts_with("bootstrap/"), "User-Agent {agent:?}");
    assert!(post.body.is_empty() && post.trailers.is_empty());
}

#[test]
fn an_http_integration_prelude_passes_byte_for_byte() {
    let api = MockApi::start();
    let mut stream = open(&api, HTTP_INTEGRATION_CONTENT_TYPE);
    let prelude = br#"{"statusCode":200,"headers":{"content-type":"text/plain"}}"#;
    let body: Vec<u8> = (0..=255).chain((0..=255).rev()).collect();
    stream.write(prelude).expect("write the prelude");
    stream.write(&[0; 8]).expect("write the separator");
    for piece in body.chunks(200) {
        stream.write(piece).expect("write the body");
    }
    assert_eq!(stream.finish().expect("finish"), 202);
    let post = api.expect_post(RESPONSE);
    assert_eq!(post.header("Content-Type"), Some(HTTP_INTEGRATION_CONTENT_TYPE));
    let want = [prelude.as_slice(), &[0; 8], &body].concat();
    assert!(post.body == want, "the body differs:\n got {:?}\nwant {want:?}", post.body);
}

#[test]
fn fifty_megabytes_stream_through_with_only_a_digest_kept() {
    let api = MockApi::start().digest_streams();
    let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
    let mut chunk: Vec<u8> =
        (0..64 * 1024).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut want = Digest::default();
    let chunks: u64 = 50 * MIB / chunk.len() as u64;
    for i in 0..chunks {
        // Every chunk differs, so a lost, repeated or reordered one changes the checksum.
        chunk[..8].copy_from_slice(&i.to_le_bytes());
        want.update(&chunk);
        stream.write(&chunk).expect("write a chunk");
    }
    assert_eq!(stream.bytes_sent(), 50 * MIB);
    assert_eq!(stream.finish().expect("finish"), 202);
    let post = api.expect_post(RESPONSE);
    assert_eq!(post.digest, Some(want), "length and FNV-1a of what arrived");
    assert!(post.body.is_empty(), "a digested stream is not kept");
    let first = api.next_chunk();
    assert_eq!((first.len, first.bytes.len()), (64 * 1024, 0), "chunks are reported without bytes");
}

#[test]
fn a_write_past_the_limit_is_refused_and_the_stream_can_still_fail() {
    assert_eq!(MAX_STREAMED_BYTES, 200 * MIB, "Lambda's limit");
    let api = MockApi::start();
    let limit = MIB;
    let mut stream =
        StreamingResponse::start_with_limit(&address(&api), &id("r1"), DEFAULT_CONTENT_TYPE, limit)
            .expect("start the stream");
    let half = vec![b'x'; (limit / 2) as usize];
    let too_large = |result: Result<(), StreamError>| match result {
        Err(e @ StreamError::TooLarge { limit: MIB }) => e.to_string(),
        other => panic!("want TooLarge {{ limit: {MIB} }}, got {other:?}"),
    };
    let message = too_large(stream.write(&[half.as_slice(), &half, b"!"].concat()));
    assert_eq!(message, format!("the streamed response is over its limit of {MIB} bytes"));
    assert_eq!(stream.bytes_sent(), 0, "a refused write sends none of its bytes");
    stream.write(&half).expect("within the limit");
    stream.write(&half).expect("exactly at the limit");
    too_large(stream.write(b"!"));
    assert_eq!(stream.bytes_sent(), limit);
    let diagnostic = Diagnostic::new("Runtime.ResponseTooLarge", "over the limit");
    assert_eq!(stream.fail(&diagnostic).expect("fail"), 202);
    let post = api.expect_post(RESPONSE);
    assert_eq!(post.body.len() as u64, limit);
    assert_eq!(post.trailer(ERROR_TYPE), Some("Runtime.ResponseTooLarge"));
}

#[test]
fn an_empty_write_sends_nothing() {
    let api = MockApi::start();
    let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
    // An empty chunk on the wire would end the stream here.
    stream.write(b"").expect("an empty write");
    stream.write(b"x").expect("write");
    let chunk = api.next_chunk();
    assert_eq!((chunk.len, chunk.bytes.as_slice()), (1, b"x".as_slice()));
    assert_eq!(stream.bytes_sent(), 1);
    assert_eq!(stream.finish().expect("finish"), 202);
    assert_eq!(api.expect_post(RESPONSE).body_text(), "x");
}

#[test]
fn a_non_2xx_answer_is_returned_for_the_caller_to_judge() {
    let api = MockApi::start();
    api.answer_post(Event::status(500));
    api.answer_post(Event::api_error(413, "RequestEntityTooLarge"));
    let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
    stream.write(b"a").expect("write");
    assert_eq!(stream.finish().expect("an answer, not an error"), 500);
    let stream = open(&api, DEFAULT_CONTENT_TYPE);
    assert_eq!(stream.fail(&Diagnostic::new("Runtime.X", "m")).expect("an answer"), 413);
    assert_eq!(api.connections(), 2, "each stream has its own connection");
}

#[test]
fn a_slow_answer_is_read_whole() {
    let api = MockApi::start();
    let gap = Duration::from_millis(20);
    api.answer_post(Reply::SlowHead { event: Event::accepted(), pieces: 5, gap });
    let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
    stream.write(b"a").expect("write");
    assert_eq!(stream.finish().expect("finish"), 202);
}

#[test]
fn a_lost_answer_is_an_error_that_names_the_url() {
    let api = MockApi::start();
    let url = format!("http://{}/2018-06-01{RESPONSE}", api.address());
    let cut_in_head = Event::accepted().body.len() + 5;
    for (fault, reply) in [
        ("closed after the request", Reply::HangUp),
        (
            "closed inside the head",
            Reply::CutShort { event: Event::accepted(), missing: cut_in_head },
        ),
    ] {
        api.answer_post(reply);
        let mut stream = open(&api, DEFAULT_CONTENT_TYPE);
        stream.write(b"a").expect("write");
        match stream.finish() {
            Err(e @ StreamError::Io { .. }) => {
                let message = e.to_string();
                assert!(message.starts_with(&format!("{url}: ")), "{fault}: {message}");
            }
            other => panic!("{fault}: want an Io error, got {other:?}"),
        }
    }
}
