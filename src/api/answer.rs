//! The answer to the streamed `/response` post, read by hand as `stream` writes the post by
//! hand: the status line (after any interim 1xx answers), the headers, and the body in either
//! framing, all within a byte limit.

use std::io::{self, BufRead, BufReader, Read};

/// We read at most this much of the answer (heads and body together).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// How the body of an answer is framed.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    /// 1xx, 204 and 304 have none.
    Empty,
    Length(u64),
    Chunked,
    /// Neither a length nor chunked: the body runs until the server closes.
    UntilClose,
}

/// What we need from an answer's head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    framing: Framing,
}

/// Reads the answer and returns its final status, skipping interim (1xx) answers. The body
/// is read to its end only so that the connection closes cleanly: framing tells us where that
/// is without waiting for the server to close. Once a whole head has arrived, its status
/// stands even if the body is cut short or passes `MAX_ANSWER_BYTES`, as in `client`.
pub(super) fn read(reader: impl Read) -> io::Result<u16> {
    let mut answer = BufReader::new(reader).take(MAX_ANSWER_BYTES);
    loop {
        let head = read_head(&mut answer)?;
        let head = parse_head(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if (100..200).contains(&head.status) {
            continue;
        }
        // A body we cannot read does not change the answer; see above.
        let _ = read_body(&mut answer, &head.framing);
        return Ok(head.status);
    }
}

/// One head, up to and including its empty line.
fn read_head<R: BufRead>(answer: &mut io::Take<R>) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        answer.read_until(b'\n', &mut head)?;
        if !head.ends_with(b"\n") {
            let error = if answer.limit() == 0 {
                format!("the answer's head is over {MAX_ANSWER_BYTES} bytes")
            } else if head.is_empty() {
                "the connection closed without an answer".to_string()
            } else {
                "the connection closed inside the answer's head".to_string()
            };
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, error));
        }
        if matches!(&head[start..], b"\r\n" | b"\n") {
            return Ok(head);
        }
    }
}

/// The status and the body framing from a head's bytes (status line, headers, empty line).
fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line)
        .ok_or_else(|| format!("the answer's status line is malformed: {status_line:?}"))?;
    let (mut is_chunked, mut length) = (false, None);
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("the answer has a malformed header line: {line:?}"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value.rsplit(',').next().unwrap_or_default().trim();
            is_chunked = last.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            let len = value
                .parse()
                .map_err(|_| format!("the answer has a malformed Content-Length: {value:?}"))?;
            length = Some(len);
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if is_chunked {
        // Chunked wins over a Content-Length (RFC 9112 §6.3).
        Framing::Chunked
    } else if let Some(len) = length {
        Framing::Length(len)
    } else {
        Framing::UntilClose
    };
    Ok(Head { status, framing })
}

/// `HTTP/1.1 202 Accepted` → 202; the reason phrase may be empty or missing.
fn parse_status_line(line: &str) -> Option<u16> {
    let (version, rest) = line.split_once(' ')?;
    let code = rest.split(' ').next()?;
    let is_version = version.strip_prefix("HTTP/1.").is_some_and(|minor| minor.len() == 1);
    if !is_version || code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok().filter(|c| (100..600).contains(c))
}

/// The body as `framing` says, chunked framing removed and trailers skipped.
fn read_body(answer: &mut impl BufRead, framing: &Framing) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(len) => {
            answer.take(*len).read_to_end(&mut body)?;
            if body.len() as u64 != *len {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Framing::UntilClose => {
            answer.read_to_end(&mut body)?;
        }
        Framing::Chunked => loop {
            let line = read_line(answer)?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                while !read_line(answer)?.is_empty() {}
                break;
            }
            let start = body.len();
            answer.take(size).read_to_end(&mut body)?;
            if (body.len() - start) as u64 != size || !read_line(answer)?.is_empty() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk"));
            }
        },
    }
    Ok(body)
}

/// One line without its line end; an error if the input ends first.
fn read_line(reader: &mut impl BufRead) -> io::Result<String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.pop() != Some(b'\n') {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(parse_status_line("HTTP/1.1 202 Accepted"), Some(202));
        assert_eq!(parse_status_line("HTTP/1.0 500 Internal Server Error"), Some(500));
        assert_eq!(parse_status_line("HTTP/1.1 204 "), Some(204));
        assert_eq!(parse_status_line("HTTP/1.1 413"), Some(413));
        for bad in ["", "HTTP/1.1", "HTTP/2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK"] {
            assert_eq!(parse_status_line(bad), None, "{bad:?}");
        }
        assert_eq!(parse_status_line("HTTP/1.1 099 x"), None);
        assert_eq!(parse_status_line("HTTP/1.1 +20 x"), None);
        assert_eq!(parse_status_line("ICY 200 OK"), None);
    }

    #[test]
    fn the_head_says_how_the_body_is_framed() {
        let framing = |head: &str| parse_head(head.as_bytes()).map(|h| h.framing);
        assert_eq!(
            framing("HTTP/1.1 202 OK\r\nContent-Length: 15\r\n\r\n"),
            Ok(Framing::Length(15))
        );
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\ntransfer-encoding: gzip, CHUNKED\r\n\r\n"
            ),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Ok(Framing::Empty)
        );
        assert_eq!(framing("HTTP/1.1 100 Continue\r\n\r\n"), Ok(Framing::Empty));
        assert_eq!(framing("HTTP/1.1 500 x\nServer: y\n\n"), Ok(Framing::UntilClose));
        assert!(framing("HTTP/1.1 202 OK\r\nno colon\r\n\r\n").is_err());
        assert!(framing("HTTP/1.1 202 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(framing("garbage\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_and_sized_bodies_are_read_to_their_end() {
        let mut chunked: &[u8] = b"5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        assert_eq!(read_body(&mut chunked, &Framing::Chunked).unwrap(), b"hello!");
        assert_eq!(chunked, b"NEXT", "nothing past the body is read");
        let mut sized: &[u8] = b"abcNEXT";
        assert_eq!(read_body(&mut sized, &Framing::Length(3)).unwrap(), b"abc");
        assert!(read_body(&mut &b"ab"[..], &Framing::Length(3)).is_err());
        assert!(read_body(&mut &b"5\r\nhel"[..], &Framing::Chunked).is_err());
        assert!(read_body(&mut &b"z\r\n"[..], &Framing::Chunked).is_err());
    }

    #[test]
    fn the_answer_is_the_final_status_after_interim_ones() {
        let answer = |bytes: &[u8]| read(bytes).map_err(|e| e.to_string());
        assert_eq!(
            answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok"),
            Ok(202)
        );
        assert_eq!(
            answer(b"HTTP/1.1 413 x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            Ok(413)
        );
        // A body cut short does not undo a whole head.
        assert_eq!(answer(b"HTTP/1.1 202 x\r\nContent-Length: 99\r\n\r\n{"), Ok(202));
        assert_eq!(answer(b""), Err("the connection closed without an answer".into()));
        assert_eq!(
            answer(b"HTTP/1.1 202 Accepted\r\nContent-"),
            Err("the connection closed inside the answer's head".into())
        );
        let endless = [b"HTTP/1.1 202 OK\r\n".as_slice(), &[b'x'; 70_000]].concat();
        assert_eq!(answer(&endless), Err("the answer's head is over 65536 bytes".into()));
    }
}
