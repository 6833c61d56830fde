//! The `application/vnd.amazon.eventstream` framing that `InvokeWithResponseStream` answers in:
//! one message per `PayloadChunk` and a last `InvokeComplete`. This module only builds the
//! bytes of a message; `invoke_api` decides what to send and when.
//!
//! A message is a prelude (total length, headers length, and the CRC32 of those 8 bytes, all
//! big-endian u32), the headers, the payload, and the CRC32 of everything before it. A header
//! is its name's length (u8), the name, a value type (7: a string), the value's length (u16)
//! and the value. The CRC is CRC-32 (IEEE), as `crc32fast` computes it.
//!
//! See: https://docs.aws.amazon.com/lambda/latest/api/API_InvokeWithResponseStream.html and
//! the framing in AWS's aws-c-event-stream, whose test vectors the unit tests below reuse.

/// The content type of the HTTP answer that carries the messages.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";
/// The largest payload one `PayloadChunk` carries: AWS's decoders refuse messages over
/// 16 MiB, and smaller pieces reach the caller sooner.
pub const MAX_CHUNK_PAYLOAD: usize = 1024 * 1024;
/// The header value type of a UTF-8 string.
const STRING_VALUE: u8 = 7;

/// A `PayloadChunk` event carrying `bytes` of the function's response.
pub fn payload_chunk(bytes: &[u8]) -> Vec<u8> {
    message(
        &[
            (":event-type", "PayloadChunk"),
            (":content-type", "application/octet-stream"),
            (":message-type", "event"),
        ],
        bytes,
    )
}

/// The `InvokeComplete` event that ends every stream: with `error` (an error code and its
/// details) when the function failed, and the base64 log tail when the caller asked for it.
pub fn invoke_complete(error: Option<(&str, &str)>, log_result: Option<&str>) -> Vec<u8> {
    let mut payload = serde_json::Map::new();
    if let Some((code, details)) = error {
        payload.insert("ErrorCode".into(), code.into());
        payload.insert("ErrorDetails".into(), details.into());
    }
    if let Some(log) = log_result {
        payload.insert("LogResult".into(), log.into());
    }
    let payload = serde_json::Value::Object(payload).to_string();
    message(
        &[
            (":event-type", "InvokeComplete"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

/// One message with string headers. Header names are at most 255 bytes and values at most
/// 65,535 (the framing's field widths); ours are short constants and request data we bound.
pub fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut encoded_headers = Vec::new();
    for (name, value) in headers {
        let name_len = u8::try_from(name.len()).expect("BUG: header names are short constants");
        let value_len = u16::try_from(value.len()).expect("BUG: header values are short");
        encoded_headers.push(name_len);
        encoded_headers.extend_from_slice(name.as_bytes());
        encoded_headers.push(STRING_VALUE);
        encoded_headers.extend_from_slice(&value_len.to_be_bytes());
        encoded_headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + encoded_headers.len() + payload.len() + 4;
    let total = u32::try_from(total).expect("BUG: payload chunks are capped far below 4 GiB");
    let headers_len = encoded_headers.len() as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&headers_len.to_be_bytes());
    let prelude_crc = crc32fast::hash(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&encoded_headers);
    out.extend_from_slice(payload);
    let message_crc = crc32fast::hash(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Frames from AWS's own serializer tests (aws-c-event-stream, tests/message_serializer_test.c).

    #[test]
    fn an_empty_message_matches_awss_frame() {
        let expected = [
            0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98,
            0xc8, 0xff,
        ];
        assert_eq!(message(&[], b""), expected);
    }

    #[test]
    fn a_payload_without_headers_matches_awss_frame() {
        let mut expected =
            vec![0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a];
        expected.extend_from_slice(b"{'foo':'bar'}");
        expected.extend_from_slice(&[0xc3, 0x65, 0x39, 0x36]);
        assert_eq!(message(&[], b"{'foo':'bar'}"), expected);
    }

    #[test]
    fn a_string_header_matches_awss_frame() {
        let mut expected =
            vec![0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96];
        expected.push(0x0C);
        expected.extend_from_slice(b"content-type");
        expected.extend_from_slice(&[0x07, 0x00, 0x10]);
        expected.extend_from_slice(b"application/json");
        expected.extend_from_slice(b"{'foo':'bar'}");
        expected.extend_from_slice(&[0x8D, 0x9C, 0x08, 0xB1]);
        assert_eq!(message(&[("content-type", "application/json")], b"{'foo':'bar'}"), expected);
    }

    #[test]
    fn lengths_and_crcs_hold_for_every_event() {
        for frame in [
            payload_chunk(b"hello"),
            payload_chunk(b""),
            invoke_complete(None, None),
            invoke_complete(Some(("Runtime.ExitError", "{\"errorType\":\"x\"}")), Some("U1RBUlQ=")),
        ] {
            let total = u32::from_be_bytes(frame[0..4].try_into().unwrap()) as usize;
            assert_eq!(total, frame.len());
            let prelude_crc = u32::from_be_bytes(frame[8..12].try_into().unwrap());
            assert_eq!(prelude_crc, crc32fast::hash(&frame[..8]));
            let crc = u32::from_be_bytes(frame[total - 4..].try_into().unwrap());
            assert_eq!(crc, crc32fast::hash(&frame[..total - 4]));
        }
    }

    #[test]
    fn invoke_complete_carries_the_error_and_the_log() {
        let frame = invoke_complete(Some(("Function.ValueError", "details")), Some("TE9H"));
        let headers_len = u32::from_be_bytes(frame[4..8].try_into().unwrap()) as usize;
        let payload = &frame[12 + headers_len..frame.len() - 4];
        let value: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"ErrorCode": "Function.ValueError", "ErrorDetails": "details",
                               "LogResult": "TE9H"})
        );
        let success = invoke_complete(None, None);
        assert!(success.windows(2).any(|w| w == b"{}"), "a clean end has an empty object");
    }
}
