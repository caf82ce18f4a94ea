//! Format detection from the first bytes of the (decompressed) input.

use serde::de::IgnoredAny;

use super::{ErrorKind, Format};

/// Avro object container magic.
pub(crate) const AVRO_MAGIC: &[u8; 4] = &currents_core::avro::MAGIC;

/// Detects the format from `head`, the first bytes of the input (`eof`: the
/// input ends there).
///
/// - `Obj\x01` → Avro.
/// - `[` → a Custom HTTP document (array of events).
/// - `{` whose first line is a complete JSON object (and not a `{"events":…}`
///   batch) → NDJSON; otherwise a Custom HTTP document (pretty-printed object,
///   batch body, or a single line longer than the detection window).
/// - anything else (or nothing) → an error.
pub fn detect_format(head: &[u8], eof: bool) -> Result<Format, (ErrorKind, String)> {
    if head.starts_with(AVRO_MAGIC) {
        return Ok(Format::Avro);
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let start = text.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start else {
        return Err(if head.is_empty() {
            (ErrorKind::Empty, "empty input".to_owned())
        } else if eof {
            (ErrorKind::Empty, "input holds only whitespace".to_owned())
        } else {
            (
                ErrorKind::UnknownFormat,
                "input starts with a long run of whitespace".to_owned(),
            )
        });
    };
    let text = &text[start..];
    match text[0] {
        b'[' => Ok(Format::HttpJson),
        b'{' => {
            let Some(end) = memchr::memchr(b'\n', text) else {
                // One line (or a first line longer than the window): a
                // document; the document reader accepts further documents.
                return Ok(Format::HttpJson);
            };
            let first = &text[..end];
            match serde_json::from_slice::<FirstKey>(first) {
                Ok(FirstKey(Some(key))) if key == "events" => Ok(Format::HttpJson),
                Ok(_) => Ok(Format::Ndjson),
                Err(_) => Ok(Format::HttpJson),
            }
        }
        _ => {
            let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
            Err((
                ErrorKind::UnknownFormat,
                format!(
                    "not an Avro container or JSON (starts with bytes {})",
                    shown.join(" ")
                ),
            ))
        }
    }
}

/// A complete JSON object, remembering its first key.
struct FirstKey(Option<String>);

impl<'de> serde::Deserialize<'de> for FirstKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FirstKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FirstKey, A::Error> {
                let first: Option<String> = map.next_key()?;
                if first.is_some() {
                    map.next_value::<IgnoredAny>()?;
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                }
                Ok(FirstKey(first))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects() {
        assert_eq!(detect_format(b"Obj\x01rest", false), Ok(Format::Avro));
        assert_eq!(
            detect_format(b"{\"a\":1}\n{\"a\":2}\n", true),
            Ok(Format::Ndjson)
        );
        assert_eq!(
            detect_format(b"  {\n  \"a\": 1\n}\n", true),
            Ok(Format::HttpJson)
        );
        assert_eq!(
            detect_format(b"{\"events\":[]}\n", true),
            Ok(Format::HttpJson)
        );
        assert_eq!(detect_format(b"{\"a\":1}", true), Ok(Format::HttpJson));
        assert_eq!(detect_format(b"[{}]", true), Ok(Format::HttpJson));
        assert_eq!(detect_format(b"", true).unwrap_err().0, ErrorKind::Empty);
        assert_eq!(
            detect_format(b" \n ", true).unwrap_err().0,
            ErrorKind::Empty
        );
        assert_eq!(
            detect_format(b"\x00\x01garbage", true).unwrap_err().0,
            ErrorKind::UnknownFormat
        );
    }
}
