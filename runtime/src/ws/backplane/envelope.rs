//! crossws's sync envelope (`src/sync/encoding.ts`), byte for byte.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A message as it travels between instances: what crossws calls a `SyncMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMessage {
    /// The publisher's namespace; `""` is every namespace (a server-wide publish).
    pub namespace: String,
    pub topic: String,
    /// The payload: text as UTF-8, or bytes when `binary`.
    pub data: Vec<u8>,
    pub binary: bool,
}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    id: &'a str,
    msg: MsgOut<'a>,
}

// Field order is the wire's key order: crossws writes `namespace, topic, binary, data`.
#[derive(Serialize)]
struct MsgOut<'a> {
    namespace: &'a str,
    topic: &'a str,
    binary: bool,
    data: &'a str,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    id: String,
    msg: MsgIn,
}

#[derive(Deserialize)]
struct MsgIn {
    namespace: String,
    topic: String,
    #[serde(default)]
    binary: Option<bool>,
    data: String,
}

/// Standard base64 with padding on the way out (as `btoa`); padding optional on the way in
/// (as `atob`).
const BASE64_OUT: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const BASE64_IN: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// The JSON text crossws's `encodeEnvelope(id, msg)` writes, byte for byte:
/// `{"id":…,"msg":{"namespace":…,"topic":…,"binary":…,"data":…}}`, compact, with binary data
/// in standard base64. Text `data` must be UTF-8 (a text frame always is); invalid sequences
/// are replaced.
pub fn encode_envelope(
    id: &str,
    namespace: &str,
    topic: &str,
    data: &[u8],
    binary: bool,
) -> String {
    let encoded;
    let data = if binary {
        encoded = BASE64_OUT.encode(data);
        encoded.as_str()
    } else {
        encoded = String::from_utf8_lossy(data).into_owned();
        encoded.as_str()
    };
    let envelope = EnvelopeOut {
        id,
        msg: MsgOut {
            namespace,
            topic,
            binary,
            data,
        },
    };
    // serde_json escapes strings as `JSON.stringify` does (`"`, `\`, control characters with
    // the same short forms and lower-case `\u00xx`; everything else as is).
    serde_json::to_string(&envelope).expect("an envelope is always serialisable")
}

/// Reads an envelope as crossws's `decodeEnvelope` does: `None` for anything that is not JSON
/// with a string `id`, string `msg.namespace`, `msg.topic` and `msg.data` (a foreign writer on
/// the channel, or garbage). `binary` missing means text; binary data must be base64.
pub fn decode_envelope(raw: &[u8]) -> Option<(String, SyncMessage)> {
    let envelope: EnvelopeIn = serde_json::from_slice(raw).ok()?;
    let binary = envelope.msg.binary.unwrap_or(false);
    let data = if binary {
        BASE64_IN.decode(envelope.msg.data.as_bytes()).ok()?
    } else {
        envelope.msg.data.into_bytes()
    };
    Some((
        envelope.id,
        SyncMessage {
            namespace: envelope.msg.namespace,
            topic: envelope.msg.topic,
            data,
            binary,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d";

    /// Each line is what crossws 0.4.17's `encodeEnvelope(ID, msg)` (`crossws/sync`, npm)
    /// printed for the message beside it, under Node 20.
    #[test]
    fn envelopes_match_crossws_byte_for_byte() {
        let cases: [(&str, &str, &[u8], bool, &str); 7] = [
            (
                "/_ws",
                "chat",
                b"hello",
                false,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/_ws","topic":"chat","binary":false,"data":"hello"}}"#,
            ),
            (
                "",
                "news",
                r#"{"user":"server","message":"欢迎 \"x\"!"}"#.as_bytes(),
                false,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"","topic":"news","binary":false,"data":"{\"user\":\"server\",\"message\":\"欢迎 \\\"x\\\"!\"}"}}"#,
            ),
            (
                "/room/1",
                "t",
                "tab\tnl\ncr\rbs\\ctl\u{1}\u{1f} del\u{7f} ls\u{2028} </script> é😀".as_bytes(),
                false,
                "{\"id\":\"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d\",\"msg\":{\"namespace\":\"/room/1\",\"topic\":\"t\",\"binary\":false,\"data\":\"tab\\tnl\\ncr\\rbs\\\\ctl\\u0001\\u001f del\u{7f} ls\u{2028} </script> é😀\"}}",
            ),
            (
                "/b",
                "bin",
                &[0, 1, 2, 250, 255],
                true,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"bin","binary":true,"data":"AAEC+v8="}}"#,
            ),
            (
                "/b",
                "bin2",
                b"hi",
                true,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"bin2","binary":true,"data":"aGk="}}"#,
            ),
            (
                "/b",
                "empty",
                b"",
                true,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"empty","binary":true,"data":""}}"#,
            ),
            (
                "/b",
                "",
                b"",
                false,
                r#"{"id":"0b7d3a5e-6f1c-4d2a-9e8b-3c4f5a6b7c8d","msg":{"namespace":"/b","topic":"","binary":false,"data":""}}"#,
            ),
        ];
        for (namespace, topic, data, binary, golden) in cases {
            let encoded = encode_envelope(ID, namespace, topic, data, binary);
            assert_eq!(encoded, golden);
            let (id, message) = decode_envelope(golden.as_bytes()).unwrap();
            assert_eq!(id, ID);
            assert_eq!(
                message,
                SyncMessage {
                    namespace: namespace.into(),
                    topic: topic.into(),
                    data: data.to_vec(),
                    binary,
                }
            );
        }
    }

    /// crossws's `decodeEnvelope` cases (`test/sync.test.ts`), plus base64 without padding
    /// (`atob` takes it).
    #[test]
    fn decoding_rejects_what_crossws_rejects() {
        for bad in [
            "not json",
            "123",
            "null",
            "{}",
            r#"{"id":"a","msg":{}}"#,
            r#"{"id":"a","msg":{"topic":"t"}}"#,
            r#"{"id":"a","msg":{"namespace":"","topic":"t","data":{}}}"#,
            r#"{"id":"a","msg":{"namespace":"","topic":"t"}}"#,
            r#"{"id":1,"msg":{"namespace":"","topic":"t","data":"x"}}"#,
            r#"{"id":"a","msg":{"namespace":"","topic":"t","binary":true,"data":"not base64!"}}"#,
        ] {
            assert_eq!(decode_envelope(bad.as_bytes()), None, "{bad}");
        }
        let (id, message) =
            decode_envelope(br#"{"id":"a","msg":{"namespace":"","topic":"t","data":"x"}}"#)
                .unwrap();
        assert_eq!(id, "a");
        assert_eq!(
            (message.data.as_slice(), message.binary),
            (&b"x"[..], false)
        );
        let (_, message) = decode_envelope(
            br#"{"id":"a","msg":{"namespace":"","topic":"t","binary":true,"data":"aGk"}}"#,
        )
        .unwrap();
        assert_eq!(
            (message.data.as_slice(), message.binary),
            (&b"hi"[..], true)
        );
    }
}
