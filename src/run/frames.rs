//! The frame protocol between bootstrap and a framed runner, as bytes: the frames a runner
//! sends, read with fixed limits, and the invoke frame bootstrap sends. The whole protocol,
//! for anyone writing a runner, is in `layers/PROTOCOL.md`.
//!
//! Every frame about an invocation carries the invocation's id, which bootstrap chose when it
//! sent the invoke frame and the runner echoes; the worker (`worker`) refuses a frame whose id
//! is not the one it holds. A header line is read up to `MAX_HEADER_LINE` bytes and must end
//! there: a longer one is refused, never cut and parsed.

use std::io::{BufRead, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::invocation::{Diagnostic, Invocation, MAX_RESPONSE_BYTES};

/// Set for a runner that should speak frames on fds 3 and 4.
pub const ENV_FRAMED: &str = "BOOTSTRAP_FRAMED";
/// Set to `fork` for a runner that forks a child per event (the parent of fork mode).
pub const ENV_ISOLATION: &str = "BOOTSTRAP_ISOLATION";
/// The private directory where a fork-mode parent's children find their named pipes.
pub const ENV_FORK_DIR: &str = "BOOTSTRAP_FORK_DIR";
/// The longest frame header line, its newline included, in either direction. Two 20-digit
/// numbers and a verb fit with room to spare.
pub const MAX_HEADER_LINE: usize = 64;
/// The id of no invocation: an error frame with it reports that the handler could not load.
pub const LOAD_ID: u64 = 0;
/// The largest error document we accept from a runner.
const MAX_ERROR_FRAME: usize = 1024 * 1024;
/// The largest chunk frame of a streamed response.
const MAX_CHUNK_FRAME: usize = 1024 * 1024;
/// The longest Content-Type a `stream` frame may name.
const MAX_CONTENT_TYPE: usize = 256;

/// A frame from the runner.
#[derive(Debug)]
pub enum Frame {
    /// The handler is loaded.
    Ready,
    /// The response (or the last bytes of a stream).
    Ok { id: u64, body: Vec<u8> },
    /// The handler failed (or, with `LOAD_ID`, could not be loaded), as the runner's document.
    Error { id: u64, diagnostic: Diagnostic },
    /// An `ok` frame announced more than Lambda takes; reading stopped there.
    TooLarge { id: u64 },
    /// A streamed response opens with this Content-Type.
    Stream { id: u64, content_type: String },
    /// Bytes of the streamed response.
    Chunk { id: u64, bytes: Vec<u8> },
    /// What a fork-mode parent says of its children.
    Parent(ParentFrame),
}

/// A fork-mode parent's frames about its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentFrame {
    /// Child `child` was forked as process `pid`.
    Forked { child: u64, pid: u32 },
    /// Child `child` ended, and was reaped, with this status.
    Ended { child: u64, status: ExitStatus },
}

impl Frame {
    /// The invocation the frame is about; `None` for `ready` and a parent's frames.
    pub fn id(&self) -> Option<u64> {
        match self {
            Frame::Ready | Frame::Parent(_) => None,
            Frame::Ok { id, .. }
            | Frame::Error { id, .. }
            | Frame::TooLarge { id }
            | Frame::Stream { id, .. }
            | Frame::Chunk { id, .. } => Some(*id),
        }
    }

    /// What the frame is, for error messages: its verb.
    pub fn verb(&self) -> &'static str {
        match self {
            Frame::Ready => "ready",
            Frame::Ok { .. } | Frame::TooLarge { .. } => "ok",
            Frame::Error { .. } => "error",
            Frame::Stream { .. } => "stream",
            Frame::Chunk { .. } => "chunk",
            Frame::Parent(ParentFrame::Forked { .. }) => "child",
            Frame::Parent(ParentFrame::Ended { status, .. }) if status.signal().is_some() => {
                "signal"
            }
            Frame::Parent(ParentFrame::Ended { .. }) => "exit",
        }
    }
}

/// The invoke frame for `invocation` under `id`: its header line and context; the event
/// follows them.
pub fn invoke_head(id: u64, invocation: &Invocation) -> Vec<u8> {
    let context = invocation.context_json();
    let header = format!("invoke {id} {} {}\n", context.len(), invocation.event.len());
    debug_assert!(header.len() <= MAX_HEADER_LINE, "BUG: an invoke header over the limit");
    let mut head = header.into_bytes();
    head.extend_from_slice(context.as_bytes());
    head
}

/// The frame that asks a fork-mode parent for child `child`.
pub fn fork(child: u64) -> Vec<u8> {
    format!("fork {child}\n").into_bytes()
}

/// The frame that asks a fork-mode parent to wait for child `child` and say how it ended.
pub fn reap(child: u64) -> Vec<u8> {
    format!("reap {child}\n").into_bytes()
}

/// One frame; `Ok(None)` at end of file.
pub(super) fn read_frame(reader: &mut impl BufRead) -> Result<Option<Frame>, String> {
    let mut line = Vec::with_capacity(MAX_HEADER_LINE);
    reader
        .by_ref()
        .take(MAX_HEADER_LINE as u64)
        .read_until(b'\n', &mut line)
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Ok(None);
    }
    if line.pop() != Some(b'\n') {
        return Err(if line.len() + 1 >= MAX_HEADER_LINE {
            format!("a frame header line over {MAX_HEADER_LINE} bytes")
        } else {
            "a frame header cut short".to_string()
        });
    }
    let header = String::from_utf8_lossy(&line);
    let frame =
        parse_header(&header).ok_or_else(|| format!("unexpected frame header {header:?}"))?;
    let (verb, id, len) = match frame {
        Header::Ready => return Ok(Some(Frame::Ready)),
        Header::Parent(frame) => return Ok(Some(Frame::Parent(frame))),
        Header::Frame(verb, id, len) => (verb, id, len),
    };
    let frame = match verb {
        Verb::Ok if len > MAX_RESPONSE_BYTES => Frame::TooLarge { id },
        Verb::Ok => Frame::Ok { id, body: read_exact(reader, len)? },
        Verb::Error if len > MAX_ERROR_FRAME => {
            return Err(format!("an error document of {len} bytes, over {MAX_ERROR_FRAME}"));
        }
        Verb::Error => {
            let body = read_exact(reader, len)?;
            let diagnostic = Diagnostic::parse(&body).ok_or_else(|| {
                "an error frame that is not {\"errorType\", \"errorMessage\"}".to_string()
            })?;
            Frame::Error { id, diagnostic }
        }
        Verb::Stream if len > MAX_CONTENT_TYPE => {
            return Err(format!("a stream Content-Type of {len} bytes, over {MAX_CONTENT_TYPE}"));
        }
        Verb::Stream => {
            let body = read_exact(reader, len)?;
            let content_type = String::from_utf8(body)
                .ok()
                .filter(|t| is_header_value(t))
                .ok_or_else(|| "a stream Content-Type that cannot be a header value".to_string())?;
            Frame::Stream { id, content_type }
        }
        Verb::Chunk if len > MAX_CHUNK_FRAME => {
            return Err(format!("a chunk of {len} bytes, over {MAX_CHUNK_FRAME}"));
        }
        Verb::Chunk => Frame::Chunk { id, bytes: read_exact(reader, len)? },
    };
    Ok(Some(frame))
}

fn read_exact(reader: &mut impl Read, len: usize) -> Result<Vec<u8>, String> {
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(|e| format!("a frame cut short ({e})"))?;
    Ok(body)
}

/// Non-empty, and only what an HTTP header value may hold (no CR, LF or other controls).
fn is_header_value(text: &str) -> bool {
    !text.trim().is_empty() && text.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// The verbs of the frames that carry an invocation id and a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Ok,
    Error,
    Stream,
    Chunk,
}

/// A frame header line from the runner, without its newline.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    Ready,
    Frame(Verb, u64, usize),
    /// A frame of a fork-mode parent, whole in its header.
    Parent(ParentFrame),
}

fn parse_header(line: &str) -> Option<Header> {
    if line == "ready" {
        return Some(Header::Ready);
    }
    let mut fields = line.split(' ');
    let first = fields.next()?;
    if let Some(frame) = parse_parent_header(first, &mut fields) {
        return Some(Header::Parent(frame));
    }
    let verb = match first {
        "ok" => Verb::Ok,
        "error" => Verb::Error,
        "stream" => Verb::Stream,
        "chunk" => Verb::Chunk,
        _ => return None,
    };
    let (id, len) = (number(fields.next()?)?, number(fields.next()?)?);
    if fields.next().is_some() {
        return None;
    }
    Some(Header::Frame(verb, id, usize::try_from(len).ok()?))
}

/// `child <n> <pid>`, `exit <n> <code>` or `signal <n> <number>` (after `verb`).
fn parse_parent_header<'a>(
    verb: &str,
    fields: &mut impl Iterator<Item = &'a str>,
) -> Option<ParentFrame> {
    if !matches!(verb, "child" | "exit" | "signal") {
        return None;
    }
    let (child, value) = (number(fields.next()?)?, number(fields.next()?)?);
    if fields.next().is_some() || child == 0 {
        return None;
    }
    Some(match verb {
        "child" => {
            ParentFrame::Forked { child, pid: u32::try_from(value).ok().filter(|p| *p > 1)? }
        }
        "exit" => ParentFrame::Ended {
            child,
            status: ExitStatus::from_raw(i32::from(u8::try_from(value).ok()?) << 8),
        },
        _ => ParentFrame::Ended {
            child,
            status: ExitStatus::from_raw(
                i32::try_from(value).ok().filter(|s| (1..128).contains(s))?,
            ),
        },
    })
}

/// A decimal number written the one way: digits only, no sign, no leading zero.
fn number(text: &str) -> Option<u64> {
    let canonical = text.bytes().all(|b| b.is_ascii_digit())
        && !text.is_empty()
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frame_headers() {
        assert_eq!(parse_header("ready"), Some(Header::Ready));
        assert_eq!(parse_header("ok 7 12"), Some(Header::Frame(Verb::Ok, 7, 12)));
        assert_eq!(parse_header("error 0 0"), Some(Header::Frame(Verb::Error, 0, 0)));
        let bad = [
            "",
            "ok",
            "ok 1",
            "ok -1 1",
            "ok 1 2 3",
            "okay 1 1",
            "ready 1",
            "error x 1",
            "ok +1 1",
            "ok 01 1",
            "ok 1  1",
            "ok 1 1 ",
            "chunk 1 99999999999999999999999",
        ];
        for bad in bad {
            assert_eq!(parse_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_a_fork_parents_frames() {
        let parsed = |line| match parse_header(line) {
            Some(Header::Parent(frame)) => Some(frame),
            _ => None,
        };
        assert_eq!(parsed("child 3 4242"), Some(ParentFrame::Forked { child: 3, pid: 4242 }));
        let Some(ParentFrame::Ended { child: 3, status }) = parsed("exit 3 2") else {
            panic!("exit")
        };
        assert_eq!(status.code(), Some(2));
        let Some(ParentFrame::Ended { status, .. }) = parsed("signal 3 9") else {
            panic!("signal")
        };
        assert_eq!(status.signal(), Some(9));
        for bad in [
            "child 0 12",
            "child 1 1",
            "child 1",
            "exit 1 256",
            "signal 1 0",
            "signal 1 128",
            "exit 1 2 3",
            "fork 1",
        ] {
            assert!(parsed(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn reads_frames_and_refuses_oversized_ones() {
        let error = r#"{"errorType":"E","errorMessage":"m","x":1}"#;
        let input = format!("ready\nok 3 3\nabcerror 3 {}\n{error}", error.len());
        let mut reader = input.as_bytes();
        assert!(matches!(read_frame(&mut reader), Ok(Some(Frame::Ready))));
        assert!(
            matches!(read_frame(&mut reader), Ok(Some(Frame::Ok { id: 3, body })) if body == b"abc")
        );
        match read_frame(&mut reader) {
            Ok(Some(Frame::Error { id: 3, diagnostic })) => assert_eq!(diagnostic.error_type, "E"),
            other => panic!("expected an error frame, got {:?}", other.map(|r| r.map(|_| ()))),
        }
        assert!(matches!(read_frame(&mut reader), Ok(None)));
        let huge = format!("ok 1 {}\n", MAX_RESPONSE_BYTES + 1);
        assert!(matches!(read_frame(&mut huge.as_bytes()), Ok(Some(Frame::TooLarge { id: 1 }))));
        assert!(read_frame(&mut &b"ok 1 10\nshort"[..]).is_err());
        assert!(read_frame(&mut &b"garbage\n"[..]).is_err());
        assert!(read_frame(&mut &b"ok 1 3"[..]).is_err(), "a header without its newline");
    }

    #[test]
    fn a_header_over_the_limit_is_refused_not_cut() {
        // Cut at 64 bytes, this would read as "ok 1 0" followed by zeros.
        let long = format!("ok 1 {}1\n", "0".repeat(MAX_HEADER_LINE));
        let error = read_frame(&mut long.as_bytes()).expect_err("refused");
        assert!(error.contains("over 64 bytes"), "{error}");
        let widest = format!("stream {} {}\n", u64::MAX, u64::MAX);
        assert!(widest.len() <= MAX_HEADER_LINE, "every well-formed header fits");
    }

    #[test]
    fn a_stream_content_type_must_be_a_header_value() {
        assert!(read_frame(&mut &b"stream 1 4\na\r\nb"[..]).is_err());
        assert!(matches!(
            read_frame(&mut &b"stream 1 10\ntext/plain"[..]),
            Ok(Some(Frame::Stream { id: 1, .. }))
        ));
    }
}
