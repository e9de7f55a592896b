//! AMF0, the Action Message Format used by RTMP commands and FLV script data.
//!
//! Spec: Adobe "Action Message Format -- AMF 0" (2006). Every type marker of
//! section 2 is decoded but the two the spec reserves (movieclip, recordset)
//! and the switch to AMF3; encoding covers every type we can represent.
//! Decoding is bounded: nesting depth ([`MAX_DEPTH`]) and element counts are
//! capped, and a declared length is never trusted beyond the bytes present.
//!
//! Pure: bytes in, values out. Used by `rtmp/` (commands) and `flv/`
//! (onMetaData); uses nothing else of Tally's.

use bytes::{BufMut, BytesMut};
use std::fmt;

/// Deepest nesting of objects/arrays accepted; a hostile `[[[[...` stops here
/// instead of exhausting the stack.
pub const MAX_DEPTH: usize = 32;

/// Most elements accepted in one strict array or object. A declared count is
/// also checked against the bytes left (each element takes at least one byte).
pub const MAX_ELEMENTS: usize = 65_536;

/// AMF0 type markers (spec section 2.1): the byte before every encoded
/// value. A marker the decoder does not take (movieclip, recordset, the
/// switch to AMF3, anything above 0x11) fails as
/// [`Amf0Error::UnknownMarker`].
pub mod marker {
    /// 2.2 number-type: an 8-byte big-endian IEEE-754 double follows.
    pub const NUMBER: u8 = 0x00;
    /// 2.3 boolean-type: one byte follows, 0 for false.
    pub const BOOLEAN: u8 = 0x01;
    /// 2.4 string-type: a u16 byte length and UTF-8 follow.
    pub const STRING: u8 = 0x02;
    /// 2.5 object-type: key/value pairs until an empty key and
    /// [`OBJECT_END`].
    pub const OBJECT: u8 = 0x03;
    /// 2.6 movieclip-type: reserved by the spec, never sent; not decoded.
    pub const MOVIECLIP: u8 = 0x04;
    /// 2.7 null-type: nothing follows.
    pub const NULL: u8 = 0x05;
    /// 2.8 undefined-type: nothing follows.
    pub const UNDEFINED: u8 = 0x06;
    /// 2.9 reference-type: a u16 index into the complex objects seen so far.
    pub const REFERENCE: u8 = 0x07;
    /// 2.10 ecma-array-type: a u32 count (a hint only) and pairs as in an
    /// object.
    pub const ECMA_ARRAY: u8 = 0x08;
    /// 2.11 object-end-type: after an empty key, ends an object, ECMA array
    /// or typed object; an error where a value is expected.
    pub const OBJECT_END: u8 = 0x09;
    /// 2.12 strict-array-type: a u32 count and that many values.
    pub const STRICT_ARRAY: u8 = 0x0A;
    /// 2.13 date-type: a double (ms since the epoch, UTC) and an s16 time
    /// zone that should be 0.
    pub const DATE: u8 = 0x0B;
    /// 2.14 long-string-type: a u32 byte length and UTF-8 follow.
    pub const LONG_STRING: u8 = 0x0C;
    /// 2.15 unsupported-type: nothing follows.
    pub const UNSUPPORTED: u8 = 0x0D;
    /// 2.16 recordset-type: reserved by the spec, never sent; not decoded.
    pub const RECORDSET: u8 = 0x0E;
    /// 2.17 xml-document-type: a u32 byte length and UTF-8 follow.
    pub const XML_DOCUMENT: u8 = 0x0F;
    /// 2.18 typed-object-type: a class name (as a string-type body) and pairs
    /// as in an object.
    pub const TYPED_OBJECT: u8 = 0x10;
    /// 3.1 avmplus-object-type: the rest of the value is AMF3; not decoded.
    pub const AVMPLUS: u8 = 0x11;
}

/// One AMF0 value.
#[derive(Clone, Debug, PartialEq)]
pub enum Amf0Value {
    /// 2.2 number-type: IEEE-754 double.
    Number(f64),
    /// 2.3 boolean-type.
    Boolean(bool),
    /// 2.4 string-type (UTF-8, length < 65536); longer strings encode as long-string.
    String(String),
    /// 2.5 object-type: ordered key/value pairs.
    Object(Vec<(String, Amf0Value)>),
    /// 2.7 null-type.
    Null,
    /// 2.8 undefined-type.
    Undefined,
    /// 2.9 reference-type: index into the table of complex objects.
    Reference(u16),
    /// 2.10 ecma-array-type: associative array (count hint + pairs).
    EcmaArray(Vec<(String, Amf0Value)>),
    /// 2.12 strict-array-type: dense array.
    StrictArray(Vec<Amf0Value>),
    /// 2.13 date-type: milliseconds since the epoch (UTC) and a reserved time-zone field.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Reserved; should be 0.
        time_zone: i16,
    },
    /// 2.14 long-string-type (decoded as such; encoded when a String is too long too).
    LongString(String),
    /// 2.15 unsupported-type.
    Unsupported,
    /// 2.17 xml-document-type.
    XmlDocument(String),
    /// 2.18 typed-object-type: class name + pairs.
    TypedObject {
        /// Registered class name.
        class_name: String,
        /// Properties, in order.
        properties: Vec<(String, Amf0Value)>,
    },
}

impl Amf0Value {
    /// The number, if this is a Number.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if this is a String or LongString.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) | Amf0Value::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The properties, if this is an Object, ECMA array or typed object.
    pub fn as_properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => Some(p),
            Amf0Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// Looks up a property by name in an Object, ECMA array or typed object.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.as_properties()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Shorthand for an object from `(&str, value)` pairs.
    pub fn object<I, K>(pairs: I) -> Amf0Value
    where
        I: IntoIterator<Item = (K, Amf0Value)>,
        K: Into<String>,
    {
        Amf0Value::Object(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Shorthand for a String value.
    pub fn string(s: impl Into<String>) -> Amf0Value {
        Amf0Value::String(s.into())
    }
}

/// Why AMF0 bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    /// The input ended inside a value.
    #[error("AMF0: truncated input")]
    Truncated,
    /// A type marker this decoder does not know (or AVM+ / MovieClip / RecordSet, which are reserved).
    #[error("AMF0: unknown or reserved type marker 0x{0:02x}")]
    UnknownMarker(u8),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("AMF0: nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// An element count larger than [`MAX_ELEMENTS`] or than the input can hold.
    #[error("AMF0: element count {0} exceeds the limit or the input")]
    TooManyElements(u64),
    /// A string that is not UTF-8.
    #[error("AMF0: string is not valid UTF-8")]
    InvalidUtf8,
}

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut BytesMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(marker::NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(marker::BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) => {
            if s.len() > u16::MAX as usize {
                out.put_u8(marker::LONG_STRING);
                put_long_utf8(out, s);
            } else {
                out.put_u8(marker::STRING);
                put_utf8(out, s);
            }
        }
        Amf0Value::Object(props) => {
            out.put_u8(marker::OBJECT);
            put_properties(out, props);
        }
        Amf0Value::Null => out.put_u8(marker::NULL),
        Amf0Value::Undefined => out.put_u8(marker::UNDEFINED),
        Amf0Value::Reference(r) => {
            out.put_u8(marker::REFERENCE);
            out.put_u16(*r);
        }
        Amf0Value::EcmaArray(props) => {
            out.put_u8(marker::ECMA_ARRAY);
            out.put_u32(props.len() as u32);
            put_properties(out, props);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(marker::STRICT_ARRAY);
            out.put_u32(items.len() as u32);
            for item in items {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, time_zone } => {
            out.put_u8(marker::DATE);
            out.put_f64(*millis);
            out.put_i16(*time_zone);
        }
        Amf0Value::LongString(s) => {
            out.put_u8(marker::LONG_STRING);
            put_long_utf8(out, s);
        }
        Amf0Value::Unsupported => out.put_u8(marker::UNSUPPORTED),
        Amf0Value::XmlDocument(s) => {
            out.put_u8(marker::XML_DOCUMENT);
            put_long_utf8(out, s);
        }
        Amf0Value::TypedObject { class_name, properties } => {
            out.put_u8(marker::TYPED_OBJECT);
            put_utf8(out, class_name);
            put_properties(out, properties);
        }
    }
}

/// Encodes a sequence of values back to back (an RTMP command body).
pub fn encode_all(values: &[Amf0Value]) -> BytesMut {
    let mut out = BytesMut::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

/// Decodes one value from the front of `input`, advancing it.
pub fn decode(input: &mut &[u8]) -> Result<Amf0Value, Amf0Error> {
    decode_depth(input, 0)
}

/// Decodes every value in `input` (an RTMP command or FLV script body).
pub fn decode_all(mut input: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut values = Vec::new();
    while !input.is_empty() {
        values.push(decode(&mut input)?);
    }
    Ok(values)
}

fn put_utf8(out: &mut BytesMut, s: &str) {
    // Callers ensure len <= u16::MAX for String; property keys longer than that
    // are truncated at a char boundary rather than producing a corrupt stream.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_u16(end as u16);
    out.put_slice(&s.as_bytes()[..end]);
}

fn put_long_utf8(out: &mut BytesMut, s: &str) {
    out.put_u32(s.len() as u32);
    out.put_slice(s.as_bytes());
}

fn put_properties(out: &mut BytesMut, props: &[(String, Amf0Value)]) {
    for (k, v) in props {
        put_utf8(out, k);
        encode(v, out);
    }
    // object-end: empty key + end marker
    out.put_u16(0);
    out.put_u8(marker::OBJECT_END);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if input.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_u8(input: &mut &[u8]) -> Result<u8, Amf0Error> {
    Ok(take(input, 1)?[0])
}

fn take_u16(input: &mut &[u8]) -> Result<u16, Amf0Error> {
    let b = take(input, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

fn take_u32(input: &mut &[u8]) -> Result<u32, Amf0Error> {
    let b = take(input, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_f64(input: &mut &[u8]) -> Result<f64, Amf0Error> {
    let b = take(input, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(f64::from_be_bytes(a))
}

fn take_utf8(input: &mut &[u8], len: usize) -> Result<String, Amf0Error> {
    let b = take(input, len)?;
    std::str::from_utf8(b).map(str::to_owned).map_err(|_| Amf0Error::InvalidUtf8)
}

fn take_short_string(input: &mut &[u8]) -> Result<String, Amf0Error> {
    let len = take_u16(input)? as usize;
    take_utf8(input, len)
}

fn take_long_string(input: &mut &[u8]) -> Result<String, Amf0Error> {
    let len = take_u32(input)? as usize;
    take_utf8(input, len)
}

fn take_properties(input: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
    let mut props = Vec::new();
    loop {
        let key = take_short_string(input)?;
        if key.is_empty() && input.first() == Some(&marker::OBJECT_END) {
            *input = &input[1..];
            return Ok(props);
        }
        if props.len() >= MAX_ELEMENTS {
            return Err(Amf0Error::TooManyElements(props.len() as u64 + 1));
        }
        let value = decode_depth(input, depth + 1)?;
        props.push((key, value));
    }
}

fn decode_depth(input: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
    if depth > MAX_DEPTH {
        return Err(Amf0Error::TooDeep);
    }
    let m = take_u8(input)?;
    Ok(match m {
        marker::NUMBER => Amf0Value::Number(take_f64(input)?),
        marker::BOOLEAN => Amf0Value::Boolean(take_u8(input)? != 0),
        marker::STRING => Amf0Value::String(take_short_string(input)?),
        marker::OBJECT => Amf0Value::Object(take_properties(input, depth)?),
        marker::NULL => Amf0Value::Null,
        marker::UNDEFINED => Amf0Value::Undefined,
        marker::REFERENCE => Amf0Value::Reference(take_u16(input)?),
        marker::ECMA_ARRAY => {
            // The count is only a hint (ffmpeg and Flash write 0 at times);
            // the object-end marker is what terminates the array.
            let _count = take_u32(input)?;
            Amf0Value::EcmaArray(take_properties(input, depth)?)
        }
        // Some encoders end an ECMA array early; an object-end marker seen as a
        // value is reported as truncation of the enclosing structure.
        marker::OBJECT_END => return Err(Amf0Error::UnknownMarker(m)),
        marker::STRICT_ARRAY => {
            let count = take_u32(input)? as u64;
            if count > MAX_ELEMENTS as u64 || count > input.len() as u64 {
                return Err(Amf0Error::TooManyElements(count));
            }
            let mut items = Vec::with_capacity(count as usize);
            for _ in 0..count {
                items.push(decode_depth(input, depth + 1)?);
            }
            Amf0Value::StrictArray(items)
        }
        marker::DATE => {
            let millis = take_f64(input)?;
            let time_zone = take_u16(input)? as i16;
            Amf0Value::Date { millis, time_zone }
        }
        marker::LONG_STRING => Amf0Value::LongString(take_long_string(input)?),
        marker::UNSUPPORTED => Amf0Value::Unsupported,
        marker::XML_DOCUMENT => Amf0Value::XmlDocument(take_long_string(input)?),
        marker::TYPED_OBJECT => {
            let class_name = take_short_string(input)?;
            let properties = take_properties(input, depth)?;
            Amf0Value::TypedObject { class_name, properties }
        }
        other => return Err(Amf0Error::UnknownMarker(other)),
    })
}

impl fmt::Display for Amf0Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Value::Number(n) => write!(f, "{n}"),
            Amf0Value::Boolean(b) => write!(f, "{b}"),
            Amf0Value::String(s) | Amf0Value::LongString(s) => write!(f, "{s:?}"),
            Amf0Value::Null => f.write_str("null"),
            Amf0Value::Undefined => f.write_str("undefined"),
            other => write!(f, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(v: &Amf0Value) -> Amf0Value {
        let bytes = encode_all(std::slice::from_ref(v));
        let mut input = &bytes[..];
        let out = decode(&mut input).expect("decodes");
        assert!(input.is_empty(), "trailing bytes");
        out
    }

    #[test]
    fn known_bytes_for_connect_name_and_number() {
        let b = encode_all(&[Amf0Value::string("connect"), Amf0Value::Number(1.0)]);
        assert_eq!(
            &b[..],
            &[
                0x02, 0x00, 0x07, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x00, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0
            ]
        );
    }

    #[test]
    fn every_type_round_trips() {
        let v = Amf0Value::StrictArray(vec![
            Amf0Value::Number(-1.5),
            Amf0Value::Boolean(true),
            Amf0Value::string("hé"),
            Amf0Value::object([("a", Amf0Value::Null), ("b", Amf0Value::Undefined)]),
            Amf0Value::Reference(3),
            Amf0Value::EcmaArray(vec![("duration".into(), Amf0Value::Number(0.0))]),
            Amf0Value::Date { millis: 1.7e12, time_zone: 0 },
            Amf0Value::LongString("x".repeat(70_000)),
            Amf0Value::Unsupported,
            Amf0Value::XmlDocument("<a/>".into()),
            Amf0Value::TypedObject { class_name: "C".into(), properties: vec![("k".into(), Amf0Value::Number(2.0))] },
        ]);
        assert_eq!(round_trip(&v), v);
    }

    #[test]
    fn long_plain_string_is_written_as_long_string() {
        let s = "y".repeat(70_000);
        assert_eq!(round_trip(&Amf0Value::String(s.clone())), Amf0Value::LongString(s));
    }

    #[test]
    fn hostile_inputs_fail_cleanly() {
        // strict array claiming 4 billion elements
        assert!(matches!(decode_all(&[0x0A, 0xff, 0xff, 0xff, 0xff]), Err(Amf0Error::TooManyElements(_))));
        // deep nesting
        let deep: Vec<u8> = std::iter::repeat_n([0x0A, 0, 0, 0, 1], 100).flatten().collect();
        assert_eq!(decode_all(&deep), Err(Amf0Error::TooDeep));
        // truncated number, string length past end, reserved markers
        assert_eq!(decode_all(&[0x00, 1, 2]), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x02, 0xff, 0xff, b'a']), Err(Amf0Error::Truncated));
        assert_eq!(decode_all(&[0x11]), Err(Amf0Error::UnknownMarker(0x11)));
        assert_eq!(decode_all(&[0x02, 0, 1, 0xff]), Err(Amf0Error::InvalidUtf8));
    }

    fn arb_value() -> impl Strategy<Value = Amf0Value> {
        let leaf = prop_oneof![
            any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(Amf0Value::Number),
            any::<bool>().prop_map(Amf0Value::Boolean),
            ".{0,20}".prop_map(Amf0Value::String),
            Just(Amf0Value::Null),
            Just(Amf0Value::Undefined),
            any::<u16>().prop_map(Amf0Value::Reference),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Amf0Value::StrictArray),
                prop::collection::vec(("[a-z]{1,8}", inner.clone()), 0..8).prop_map(Amf0Value::Object),
                prop::collection::vec(("[a-z]{1,8}", inner), 0..8).prop_map(Amf0Value::EcmaArray),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(v in arb_value()) {
            prop_assert_eq!(round_trip(&v), v);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_all(&bytes);
        }
    }
}
