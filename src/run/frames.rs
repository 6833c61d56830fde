//! The frame protocol between bootstrap and a framed runner, as bytes: the frames a runner
//! sends, read with fixed limits, and the invoke frame bootstrap sends. The whole protocol,
//! for anyone writing a runner, is in `layers/PROTOCOL.md`.

use std::io::{BufRead, Read};

use crate::invocation::{Diagnostic, Invocation, MAX_RESPONSE_BYTES};

/// Set for a runner that should speak frames on fds 3 and 4.
pub const ENV_FRAMED: &str = "BOOTSTRAP_FRAMED";
/// The longest frame header line we accept.
const MAX_HEADER_LINE: u64 = 64;
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
    Ok(Vec<u8>),
    /// The handler failed (or could not be loaded), as the runner's error document.
    Error(Diagnostic),
    /// An `ok` frame announced more than Lambda takes; reading stopped there.
    TooLarge,
    /// A streamed response opens with this Content-Type.
    Stream(String),
    /// Bytes of the streamed response.
    Chunk(Vec<u8>),
}

/// The invoke frame for `invocation`: its header line and context; the event follows them.
pub fn invoke_head(invocation: &Invocation) -> Vec<u8> {
    let context = invocation.context_json();
    let mut head = format!("invoke {} {}\n", context.len(), invocation.event.len()).into_bytes();
    head.extend_from_slice(context.as_bytes());
    head
}

/// One frame; `Ok(None)` at end of file.
pub(super) fn read_frame(reader: &mut impl BufRead) -> Result<Option<Frame>, String> {
    let mut line = Vec::new();
    reader
        .by_ref()
        .take(MAX_HEADER_LINE)
        .read_until(b'\n', &mut line)
        .map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Ok(None);
    }
    let header = String::from_utf8_lossy(&line);
    let header = header.trim_end_matches('\n');
    let frame =
        parse_header(header).ok_or_else(|| format!("unexpected frame header {header:?}"))?;
    match frame {
        Header::Ready => Ok(Some(Frame::Ready)),
        Header::Ok(len) if len > MAX_RESPONSE_BYTES => Ok(Some(Frame::TooLarge)),
        Header::Ok(len) => Ok(Some(Frame::Ok(read_exact(reader, len)?))),
        Header::Error(len) if len > MAX_ERROR_FRAME => {
            Err(format!("an error document of {len} bytes, over {MAX_ERROR_FRAME}"))
        }
        Header::Stream(len) if len > MAX_CONTENT_TYPE => {
            Err(format!("a stream Content-Type of {len} bytes, over {MAX_CONTENT_TYPE}"))
        }
        Header::Stream(len) => {
            let body = read_exact(reader, len)?;
            let content_type = String::from_utf8(body)
                .map_err(|_| "a stream Content-Type that is not UTF-8".to_string())?;
            Ok(Some(Frame::Stream(content_type)))
        }
        Header::Chunk(len) if len > MAX_CHUNK_FRAME => {
            Err(format!("a chunk of {len} bytes, over {MAX_CHUNK_FRAME}"))
        }
        Header::Chunk(len) => Ok(Some(Frame::Chunk(read_exact(reader, len)?))),
        Header::Error(len) => {
            let body = read_exact(reader, len)?;
            let diagnostic = Diagnostic::parse(&body).ok_or_else(|| {
                "an error frame that is not {\"errorType\", \"errorMessage\"}".to_string()
            })?;
            Ok(Some(Frame::Error(diagnostic)))
        }
    }
}

fn read_exact(reader: &mut impl Read, len: usize) -> Result<Vec<u8>, String> {
    let mut body = vec![0; len];
    reader.read_exact(&mut body).map_err(|e| format!("a frame cut short ({e})"))?;
    Ok(body)
}

/// A frame header line from the runner.
#[derive(Debug, PartialEq, Eq)]
enum Header {
    Ready,
    Ok(usize),
    Error(usize),
    Stream(usize),
    Chunk(usize),
}

fn parse_header(line: &str) -> Option<Header> {
    let (kind, len) = match line.split_once(' ') {
        None if line == "ready" => return Some(Header::Ready),
        None => return None,
        Some(parts) => parts,
    };
    let len: usize = len.parse().ok()?;
    match kind {
        "ok" => Some(Header::Ok(len)),
        "error" => Some(Header::Error(len)),
        "stream" => Some(Header::Stream(len)),
        "chunk" => Some(Header::Chunk(len)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_frame_headers() {
        assert_eq!(parse_header("ready"), Some(Header::Ready));
        assert_eq!(parse_header("ok 12"), Some(Header::Ok(12)));
        assert_eq!(parse_header("error 0"), Some(Header::Error(0)));
        for bad in ["", "ok", "ok -1", "ok 1 2", "okay 1", "ready 1", "error x"] {
            assert_eq!(parse_header(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_frames_and_refuses_oversized_ones() {
        let error = r#"{"errorType":"E","errorMessage":"m","x":1}"#;
        let input = format!("ready\nok 3\nabcerror {}\n{error}", error.len());
        let mut reader = input.as_bytes();
        assert!(matches!(read_frame(&mut reader), Ok(Some(Frame::Ready))));
        assert!(matches!(read_frame(&mut reader), Ok(Some(Frame::Ok(b))) if b == b"abc"));
        match read_frame(&mut reader) {
            Ok(Some(Frame::Error(d))) => assert_eq!(d.error_type, "E"),
            other => panic!("expected an error frame, got {:?}", other.map(|r| r.map(|_| ()))),
        }
        assert!(matches!(read_frame(&mut reader), Ok(None)));
        let huge = format!("ok {}\n", MAX_RESPONSE_BYTES + 1);
        assert!(matches!(read_frame(&mut huge.as_bytes()), Ok(Some(Frame::TooLarge))));
        assert!(read_frame(&mut &b"ok 10\nshort"[..]).is_err());
        assert!(read_frame(&mut &b"garbage\n"[..]).is_err());
    }
}
