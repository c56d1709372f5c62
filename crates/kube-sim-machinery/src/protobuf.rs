//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! `kubectl` and other client-go programs send the bodies of *typed* requests for built-in kinds
//! as Kubernetes protobuf: `kubectl create configmap|secret|serviceaccount|namespace|role|…`,
//! `kubectl create token` (TokenRequest), `kubectl auth can-i` (SelfSubjectAccessReview),
//! `kubectl auth whoami`, `kubectl run` (Pod), and typed client-go calls in general (evictions,
//! `DeleteOptions` bodies of typed deletes). The simulator stores and answers JSON, so this
//! module turns such a body into exactly the JSON object the same Go value would have produced
//! with `encoding/json`, i.e. the body the client would have sent had it chosen
//! `application/json`.
//!
//! # Wire format
//!
//! A body is the four magic bytes `k8s\0` followed by a `runtime.Unknown` message:
//! `typeMeta` (1: `apiVersion`, 2: `kind`), `raw` (2), `contentEncoding` (3), `contentType` (4).
//! `raw` is the gogo-protobuf (proto2) encoding of the typed object, *without* its `TypeMeta`,
//! which the envelope carries instead. Like upstream's protobuf serializer, the decoder ignores
//! `contentEncoding`/`contentType` and decodes `raw` with the message registered for
//! (`apiVersion`, `kind`).
//!
//! # From protobuf fields to JSON
//!
//! The message layouts are a static table (the `schema` submodule) of descriptors, one
//! `&'static [Field]` per message, with the field numbers of the upstream `generated.proto` files
//! of `k8s.io/api` and `k8s.io/apimachinery`, and one generic decoder walks them. Each field
//! also records how the Go struct field is declared, because gogo's generated marshallers write
//! every *non-pointer* field unconditionally (an unset `string` travels as an empty string, an
//! unset `int32` as 0), so presence on the wire says nothing; what decides the JSON is
//! `encoding/json`:
//!
//! * value field with `omitempty` (`Opt` in the tables): omitted when zero (`""`, `0`, `false`);
//! * value field without `omitempty` (`Req`): always written, zero included;
//! * pointer field (`Ptr`): written exactly when present on the wire, zero included
//!   (`replicas: 0`, `automountServiceAccountToken: false`);
//! * value *struct* fields are always written (`omitempty` does not apply to structs), which is
//!   why a Pod carries `"status": {}` and every `ObjectMeta` a `"creationTimestamp": null`;
//! * slices and maps: omitted when empty, or `null` for slices without `omitempty`
//!   (`RepReq`, e.g. `PolicyRule.verbs`, `PodSpec.containers`);
//! * embedded structs (`json:",inline"`, e.g. `LocalObjectReference` in `ConfigMapKeySelector`,
//!   `VolumeSource` in `Volume`) are nested messages on the wire but merged into the parent
//!   object (`Inline`).
//!
//! The apimachinery wrapper types get their JSON forms: `metav1.Time` (`{seconds, nanos}`) becomes
//! RFC 3339 with second precision (`2026-11-21T00:15:14Z`), `MicroTime` RFC 3339 with six
//! fractional digits, a zero/empty time `null`; `intstr.IntOrString` a number or a string;
//! `resource.Quantity` its string (`"0"` when unset); `FieldsV1` the embedded JSON it carries;
//! `ExtraValue` a plain string array; `map<string, bytes>` values standard padded base64.
//!
//! Wire semantics follow protobuf: the last occurrence of a scalar wins, repeated fields append
//! (packed and unpacked numeric encodings are both accepted), map entries with the same key
//! overwrite, and several occurrences of a singular message field are merged.
//!
//! # Unknown fields
//!
//! A field number the table does not know (a newer Kubernetes field, or a volume source the
//! table leaves out) is skipped by its wire type, as protobuf forward compatibility requires, and
//! reported in [`DecodeOutput::unknown_fields`] with its path (`spec.containers[0].#27`); the
//! server can ignore them or reject the request under `fieldValidation=Strict`
//! ([`strict_decoding_message`]). A kind without a table entry is
//! [`ProtobufError::UnsupportedKind`].
//!
//! # Robustness
//!
//! Truncated varints, lengths beyond the buffer, wrong wire types, illegal tags, invalid UTF-8
//! and unbalanced groups are [`ProtobufError::Malformed`]; nothing panics and nothing is
//! allocated from a declared length before it has been checked against the bytes actually
//! present. Nesting (messages and groups) is capped at [`MAX_DEPTH`].
//!
//! Known deviations from upstream: invalid UTF-8 in a string is an error (Go would keep the bytes
//! and `encoding/json` would replace them with U+FFFD); quantities are checked against the
//! quantity grammar but passed through as written instead of being canonicalised (clients send
//! `Quantity.String()`, which already is canonical); times outside the years 0–9999 are rejected.

mod schema;
#[cfg(test)]
mod tests;

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::time::civil_from_days;

pub use schema::supported_kinds;

/// The media type of Kubernetes protobuf bodies.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Maximum nesting of messages (and of groups inside skipped unknown fields).
pub const MAX_DEPTH: usize = 64;

/// The largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// A protobuf body that cannot be turned into JSON. The API server answers all of them with 400
/// BadRequest (or 415 for [`ProtobufError::UnsupportedKind`], at the caller's choice).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body is empty (upstream text).
    #[error("empty data")]
    EmptyData,
    /// The body does not start with `k8s\0` (upstream text).
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    MissingMagic,
    /// The body is just the magic prefix (upstream text).
    #[error("empty body")]
    EmptyBody,
    /// The envelope has no kind (upstream `runtime.NewMissingKindErr` text).
    #[error("Object 'Kind' is missing in '{type_meta}'")]
    MissingKind {
        /// The envelope's type meta, formatted like Go's `%#v`.
        type_meta: String,
    },
    /// The envelope has no version (upstream `runtime.NewMissingVersionErr` text).
    #[error("Object 'apiVersion' is missing in '{type_meta}'")]
    MissingVersion {
        /// The envelope's type meta, formatted like Go's `%#v`.
        type_meta: String,
    },
    /// No message table for this kind; the client should send JSON instead.
    #[error(
        "no kind \"{kind}\" is registered for version \"{api_version}\" in the protobuf decoder of this server; send the request body as application/json"
    )]
    UnsupportedKind {
        /// The envelope's `apiVersion`.
        api_version: String,
        /// The envelope's `kind`.
        kind: String,
    },
    /// The bytes are not valid protobuf for the message (truncated data, bad lengths, wrong wire
    /// types, illegal tags, invalid UTF-8, unbalanced groups).
    #[error("proto: {message} (at {path})")]
    Malformed {
        /// JSON-style path of the offending field (`<root>` for the top level).
        path: String,
        /// What is wrong, in the spirit of gogo-protobuf's messages.
        message: String,
    },
    /// Well-formed protobuf whose value has no JSON form (an out-of-range time, a malformed
    /// quantity, an impossible `IntOrString` type, `FieldsV1` that is not JSON).
    #[error("invalid value at {path}: {message}")]
    InvalidValue {
        /// JSON-style path of the offending field.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Messages or groups nest deeper than [`MAX_DEPTH`].
    #[error("protobuf nesting exceeds the maximum depth of {max} (at {path})", max = MAX_DEPTH)]
    TooDeep {
        /// Where the limit was hit.
        path: String,
    },
}

/// A field number the message table does not know, skipped while decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownField {
    /// JSON-style path ending in `#<number>`, e.g. `spec.containers[0].#27` or `#99` at the top.
    pub path: String,
    /// The protobuf field number.
    pub number: u32,
    /// The wire type it was encoded with (0 varint, 1 fixed64, 2 length-delimited, 3 group,
    /// 5 fixed32).
    pub wire_type: u8,
}

impl fmt::Display for UnknownField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// The result of decoding a protobuf body.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOutput {
    /// The object as the client's JSON encoding would have produced it, with `apiVersion` and
    /// `kind` taken from the envelope.
    pub object: Value,
    /// Fields that were skipped because the message table does not know them, sorted by path.
    pub unknown_fields: Vec<UnknownField>,
}

/// The message a server returns under `fieldValidation=Strict` when unknown fields were found,
/// modelled on upstream's JSON text: `strict decoding error: unknown field "spec.#99", …`.
pub fn strict_decoding_message(unknown: &[UnknownField]) -> String {
    let fields: Vec<String> = unknown
        .iter()
        .map(|u| format!("unknown field \"{}\"", u.path))
        .collect();
    format!("strict decoding error: {}", fields.join(", "))
}

/// Whether a body starts with the Kubernetes protobuf magic prefix.
pub fn has_magic(body: &[u8]) -> bool {
    body.starts_with(&MAGIC)
}

/// Whether [`decode_object`] has a message table for (`api_version`, `kind`).
pub fn is_supported_kind(api_version: &str, kind: &str) -> bool {
    schema::lookup(api_version, kind).is_some()
}

/// Decodes a complete Kubernetes protobuf body (magic prefix, `runtime.Unknown` envelope, typed
/// object) into the JSON object the same request would have carried as `application/json`.
///
/// The error texts for an empty body, a missing prefix and a missing kind or version are the
/// upstream ones (`k8s.io/apimachinery/pkg/runtime/serializer/protobuf`).
pub fn decode_k8s_protobuf(body: &[u8]) -> Result<DecodeOutput, ProtobufError> {
    if body.is_empty() {
        return Err(ProtobufError::EmptyData);
    }
    if !has_magic(body) {
        return Err(ProtobufError::MissingMagic);
    }
    let data = &body[MAGIC.len()..];
    if data.is_empty() {
        return Err(ProtobufError::EmptyBody);
    }
    let envelope = Envelope::parse(data)?;
    let type_meta = format!(
        "runtime.TypeMeta{{APIVersion:{:?}, Kind:{:?}}}",
        envelope.api_version, envelope.kind
    );
    if envelope.kind.is_empty() {
        return Err(ProtobufError::MissingKind { type_meta });
    }
    let version = envelope
        .api_version
        .rsplit_once('/')
        .map_or(envelope.api_version.as_str(), |(_, v)| v);
    if version.is_empty() {
        return Err(ProtobufError::MissingVersion { type_meta });
    }
    decode_object(&envelope.api_version, &envelope.kind, envelope.raw)
}

/// Decodes the `raw` bytes of an envelope (the typed object without magic or envelope) as the
/// message registered for (`api_version`, `kind`), and sets `apiVersion` and `kind` on the result.
pub fn decode_object(
    api_version: &str,
    kind: &str,
    raw: &[u8],
) -> Result<DecodeOutput, ProtobufError> {
    let Some(message) = schema::lookup(api_version, kind) else {
        return Err(ProtobufError::UnsupportedKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        });
    };
    let mut decoder = Decoder::default();
    let mut fields = decoder.message(message, &[raw], 1)?;
    fields.insert("kind".to_string(), Value::String(kind.to_string()));
    fields.insert(
        "apiVersion".to_string(),
        Value::String(api_version.to_string()),
    );
    let mut unknown_fields = decoder.unknown;
    unknown_fields.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(DecodeOutput {
        object: Value::Object(fields),
        unknown_fields,
    })
}

// ---------------------------------------------------------------------------------------------
// Descriptors
// ---------------------------------------------------------------------------------------------

/// The protobuf type of a field and the JSON form it takes.
#[derive(Clone, Copy)]
pub(crate) enum Ty {
    /// `string` (also Go string enums) → JSON string.
    Str,
    /// `bytes` → standard padded base64.
    Bytes,
    /// `bool`.
    Bool,
    /// `int32` (varint, truncated to 32 bits as Go does).
    I32,
    /// `int64`.
    I64,
    /// A nested message.
    Msg(&'static Message),
    /// `metav1.Time` → RFC 3339 seconds, `null` when zero.
    Time,
    /// `metav1.MicroTime` → RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `intstr.IntOrString` → number or string.
    IntOrString,
    /// `resource.Quantity` → string.
    Quantity,
    /// `metav1.FieldsV1` → the embedded JSON.
    FieldsV1,
    /// `ExtraValue` (`[]string` wrapped in `{repeated string items = 1}`) → string array.
    StrList,
}

/// How the Go struct declares the field, which decides its JSON presence (see module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Value type with `omitempty`: omitted when zero; value structs are always written.
    Opt,
    /// Value type without `omitempty`: always written.
    Req,
    /// Pointer: written exactly when present on the wire.
    Ptr,
    /// Slice with `omitempty`: omitted when empty.
    Rep,
    /// Slice without `omitempty`: `null` when empty.
    RepReq,
    /// `map[string]T` with `omitempty` (key is field 1, value field 2 of each entry).
    Map,
    /// Embedded struct (`json:",inline"`): a nested message merged into the parent object.
    Inline,
}

/// One field of a message descriptor.
pub(crate) struct Field {
    pub(crate) num: u32,
    pub(crate) json: &'static str,
    pub(crate) ty: Ty,
    pub(crate) shape: Shape,
}

/// A message descriptor: the Go type name and its fields.
pub(crate) struct Message {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
}

// ---------------------------------------------------------------------------------------------
// Wire reader
// ---------------------------------------------------------------------------------------------

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;

/// A low-level wire error, turned into [`ProtobufError`] with the current path.
enum WireError {
    UnexpectedEof,
    Overflow,
    IllegalWireType(u8),
    IllegalTag(u64),
    UnexpectedEndGroup(u32),
    UnterminatedGroup(u32),
    TooDeep,
}

impl WireError {
    fn message(&self) -> String {
        match self {
            WireError::UnexpectedEof => "unexpected EOF".to_string(),
            WireError::Overflow => "integer overflow".to_string(),
            WireError::IllegalWireType(w) => format!("illegal wireType {w}"),
            WireError::IllegalTag(n) => format!("illegal tag {n}"),
            WireError::UnexpectedEndGroup(n) => {
                format!("unexpected end group for field {n}")
            }
            WireError::UnterminatedGroup(n) => format!("unterminated group for field {n}"),
            WireError::TooDeep => "groups nest too deeply".to_string(),
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// A base-128 varint of at most ten bytes (excess high bits are dropped, as gogo does).
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for i in 0..10u32 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(WireError::UnexpectedEof);
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError::Overflow)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let remaining = self.buf.len() - self.pos;
        if n > remaining {
            return Err(WireError::UnexpectedEof);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// A length-delimited payload; the length is checked against the remaining bytes first.
    fn len_delimited(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(WireError::UnexpectedEof);
        }
        // `len <= remaining`, which came from a usize.
        self.take(len as usize)
    }

    /// The next tag as (field number, wire type); `None` at the end of the buffer.
    fn tag(&mut self) -> Result<Option<(u32, u8)>, WireError> {
        if self.at_end() {
            return Ok(None);
        }
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        if wire > WIRE_FIXED32 {
            return Err(WireError::IllegalWireType(wire));
        }
        let number = key >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(WireError::IllegalTag(number));
        }
        // `number <= 2^29 - 1`.
        Ok(Some((number as u32, wire)))
    }

    /// Skips the value of a field, including nested groups up to the depth limit.
    fn skip(&mut self, number: u32, wire: u8, depth: usize) -> Result<(), WireError> {
        match wire {
            WIRE_VARINT => self.varint().map(|_| ()),
            WIRE_FIXED64 => self.take(8).map(|_| ()),
            WIRE_LEN => self.len_delimited().map(|_| ()),
            WIRE_FIXED32 => self.take(4).map(|_| ()),
            WIRE_START_GROUP => {
                if depth >= MAX_DEPTH {
                    return Err(WireError::TooDeep);
                }
                loop {
                    match self.tag()? {
                        None => return Err(WireError::UnterminatedGroup(number)),
                        Some((n, WIRE_END_GROUP)) if n == number => return Ok(()),
                        Some((n, WIRE_END_GROUP)) => {
                            return Err(WireError::UnexpectedEndGroup(n));
                        }
                        Some((n, w)) => self.skip(n, w, depth + 1)?,
                    }
                }
            }
            _ => Err(WireError::UnexpectedEndGroup(number)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

/// The parts of `runtime.Unknown` the decoder uses.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(data: &'a [u8]) -> Result<Self, ProtobufError> {
        let malformed = |path: &str, e: WireError| ProtobufError::Malformed {
            path: path.to_string(),
            message: e.message(),
        };
        let mut envelope = Envelope {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
        };
        let mut reader = Reader::new(data);
        while let Some((number, wire)) = reader.tag().map_err(|e| malformed("<envelope>", e))? {
            match (number, wire) {
                (1, WIRE_LEN) => {
                    let type_meta = reader
                        .len_delimited()
                        .map_err(|e| malformed("<envelope>.typeMeta", e))?;
                    let mut tm = Reader::new(type_meta);
                    while let Some((n, w)) =
                        tm.tag().map_err(|e| malformed("<envelope>.typeMeta", e))?
                    {
                        match (n, w) {
                            (1 | 2, WIRE_LEN) => {
                                let path = if n == 1 {
                                    "<envelope>.typeMeta.apiVersion"
                                } else {
                                    "<envelope>.typeMeta.kind"
                                };
                                let bytes = tm.len_delimited().map_err(|e| malformed(path, e))?;
                                let text = std::str::from_utf8(bytes)
                                    .map_err(|_| ProtobufError::Malformed {
                                        path: path.to_string(),
                                        message: "invalid UTF-8 in string field".to_string(),
                                    })?
                                    .to_string();
                                if n == 1 {
                                    envelope.api_version = text;
                                } else {
                                    envelope.kind = text;
                                }
                            }
                            (1 | 2, w) => {
                                return Err(ProtobufError::Malformed {
                                    path: "<envelope>.typeMeta".to_string(),
                                    message: format!("wrong wireType = {w} for field {n}"),
                                });
                            }
                            (n, w) => tm
                                .skip(n, w, 1)
                                .map_err(|e| malformed("<envelope>.typeMeta", e))?,
                        }
                    }
                }
                (2, WIRE_LEN) => {
                    envelope.raw = reader
                        .len_delimited()
                        .map_err(|e| malformed("<envelope>.raw", e))?;
                }
                (1 | 2, w) => {
                    return Err(ProtobufError::Malformed {
                        path: "<envelope>".to_string(),
                        message: format!("wrong wireType = {w} for field {number}"),
                    });
                }
                // contentEncoding (3), contentType (4) and anything newer: ignored, as upstream.
                (n, w) => reader
                    .skip(n, w, 1)
                    .map_err(|e| malformed("<envelope>", e))?,
            }
        }
        Ok(envelope)
    }
}

// ---------------------------------------------------------------------------------------------
// Decoder
// ---------------------------------------------------------------------------------------------

/// What has been collected for one field of a message while scanning its bytes.
enum Acc<'a> {
    Absent,
    Scalar(Value),
    Chunks(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

/// A raw field value read for the small apimachinery wrapper messages.
#[derive(Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

#[derive(Default)]
struct Decoder {
    path: String,
    unknown: Vec<UnknownField>,
}

impl Decoder {
    fn path_display(&self) -> String {
        if self.path.is_empty() {
            "<root>".to_string()
        } else {
            self.path.clone()
        }
    }

    fn malformed(&self, message: impl Into<String>) -> ProtobufError {
        ProtobufError::Malformed {
            path: self.path_display(),
            message: message.into(),
        }
    }

    fn wire(&self, e: WireError) -> ProtobufError {
        match e {
            WireError::TooDeep => ProtobufError::TooDeep {
                path: self.path_display(),
            },
            other => self.malformed(other.message()),
        }
    }

    fn invalid(&self, message: impl Into<String>) -> ProtobufError {
        ProtobufError::InvalidValue {
            path: self.path_display(),
            message: message.into(),
        }
    }

    /// Runs `f` with `segment` appended to the path (`.name`, `[3]`, `[key]`).
    fn at<T>(
        &mut self,
        segment: &str,
        f: impl FnOnce(&mut Self) -> Result<T, ProtobufError>,
    ) -> Result<T, ProtobufError> {
        let len = self.path.len();
        if !segment.starts_with('[') && !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(segment);
        let out = f(self);
        self.path.truncate(len);
        out
    }

    fn skip_unknown(
        &mut self,
        reader: &mut Reader<'_>,
        number: u32,
        wire: u8,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        let segment = format!("#{number}");
        self.at(&segment, |d| {
            reader.skip(number, wire, depth).map_err(|e| d.wire(e))?;
            d.unknown.push(UnknownField {
                path: d.path.clone(),
                number,
                wire_type: wire,
            });
            Ok(())
        })
    }

    fn utf8(&self, bytes: &[u8]) -> Result<String, ProtobufError> {
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| self.malformed("invalid UTF-8 in string field"))
    }

    fn expect_wire(&self, field: &Field, wire: u8, want: u8) -> Result<(), ProtobufError> {
        if wire == want {
            Ok(())
        } else {
            Err(self.malformed(format!(
                "wrong wireType = {wire} for field {} (number {}), expected {want}",
                field.json, field.num
            )))
        }
    }

    /// Decodes the concatenation of `chunks` as `message` into a JSON object.
    fn message<'a>(
        &mut self,
        message: &'static Message,
        chunks: &[&'a [u8]],
        depth: usize,
    ) -> Result<Map<String, Value>, ProtobufError> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::TooDeep {
                path: self.path_display(),
            });
        }
        let mut accs: Vec<Acc<'a>> = message.fields.iter().map(|_| Acc::Absent).collect();
        for chunk in chunks {
            let mut reader = Reader::new(chunk);
            while let Some((number, wire)) = reader.tag().map_err(|e| self.wire(e))? {
                if wire == WIRE_END_GROUP {
                    return Err(self.malformed(format!(
                        "unexpected end group for field {number} in {}",
                        message.name
                    )));
                }
                let Some(index) = message.fields.iter().position(|f| f.num == number) else {
                    self.skip_unknown(&mut reader, number, wire, depth)?;
                    continue;
                };
                let field = &message.fields[index];
                self.at(field.json, |d| {
                    d.collect(field, &mut accs[index], &mut reader, wire, depth)
                })?;
            }
        }
        let mut out = Map::new();
        for (field, acc) in message.fields.iter().zip(accs) {
            self.emit(field, acc, &mut out, depth)?;
        }
        Ok(out)
    }

    /// Reads one occurrence of `field` into its accumulator.
    fn collect<'a>(
        &mut self,
        field: &Field,
        acc: &mut Acc<'a>,
        reader: &mut Reader<'a>,
        wire: u8,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        match field.shape {
            Shape::Rep | Shape::RepReq => {
                if !matches!(acc, Acc::List(_)) {
                    *acc = Acc::List(Vec::new());
                }
                let Acc::List(list) = acc else {
                    return Ok(());
                };
                match field.ty {
                    Ty::Bool | Ty::I32 | Ty::I64 if wire == WIRE_LEN => {
                        // Packed encoding.
                        let packed = reader.len_delimited().map_err(|e| self.wire(e))?;
                        let mut inner = Reader::new(packed);
                        while !inner.at_end() {
                            let v = inner.varint().map_err(|e| self.wire(e))?;
                            list.push(varint_value(field.ty, v));
                        }
                    }
                    Ty::Bool | Ty::I32 | Ty::I64 => {
                        self.expect_wire(field, wire, WIRE_VARINT)?;
                        let v = reader.varint().map_err(|e| self.wire(e))?;
                        list.push(varint_value(field.ty, v));
                    }
                    ty => {
                        self.expect_wire(field, wire, WIRE_LEN)?;
                        let bytes = reader.len_delimited().map_err(|e| self.wire(e))?;
                        let segment = format!("[{}]", list.len());
                        let value =
                            self.at(&segment, |d| d.bytes_value(ty, Some(&[bytes]), depth))?;
                        list.push(value);
                    }
                }
            }
            Shape::Map => {
                self.expect_wire(field, wire, WIRE_LEN)?;
                let entry = reader.len_delimited().map_err(|e| self.wire(e))?;
                let (key, value) = self.map_entry(field, entry, depth)?;
                if !matches!(acc, Acc::Map(_)) {
                    *acc = Acc::Map(Map::new());
                }
                if let Acc::Map(map) = acc {
                    map.insert(key, value);
                }
            }
            Shape::Opt | Shape::Req | Shape::Ptr | Shape::Inline => match field.ty {
                Ty::Bool | Ty::I32 | Ty::I64 => {
                    self.expect_wire(field, wire, WIRE_VARINT)?;
                    let v = reader.varint().map_err(|e| self.wire(e))?;
                    *acc = Acc::Scalar(varint_value(field.ty, v));
                }
                Ty::Str | Ty::Bytes => {
                    self.expect_wire(field, wire, WIRE_LEN)?;
                    let bytes = reader.len_delimited().map_err(|e| self.wire(e))?;
                    *acc = Acc::Scalar(self.bytes_value(field.ty, Some(&[bytes]), depth)?);
                }
                _ => {
                    self.expect_wire(field, wire, WIRE_LEN)?;
                    let bytes = reader.len_delimited().map_err(|e| self.wire(e))?;
                    match acc {
                        Acc::Chunks(chunks) => chunks.push(bytes),
                        _ => *acc = Acc::Chunks(vec![bytes]),
                    }
                }
            },
        }
        Ok(())
    }

    /// Writes the JSON for one field of a decoded message, following its Go declaration.
    fn emit(
        &mut self,
        field: &Field,
        acc: Acc<'_>,
        out: &mut Map<String, Value>,
        depth: usize,
    ) -> Result<(), ProtobufError> {
        match field.shape {
            Shape::Inline => {
                let Ty::Msg(inner) = field.ty else {
                    return Ok(());
                };
                let chunks = match acc {
                    Acc::Chunks(chunks) => chunks,
                    _ => Vec::new(),
                };
                for (k, v) in self.message(inner, &chunks, depth + 1)? {
                    out.insert(k, v);
                }
            }
            Shape::Rep | Shape::RepReq => match acc {
                Acc::List(list) if !list.is_empty() => {
                    out.insert(field.json.to_string(), Value::Array(list));
                }
                _ if field.shape == Shape::RepReq => {
                    out.insert(field.json.to_string(), Value::Null);
                }
                _ => {}
            },
            Shape::Map => {
                if let Acc::Map(map) = acc
                    && !map.is_empty()
                {
                    out.insert(field.json.to_string(), Value::Object(map));
                }
            }
            Shape::Opt | Shape::Req | Shape::Ptr => match field.ty {
                Ty::Str | Ty::Bytes | Ty::Bool | Ty::I32 | Ty::I64 => {
                    let present = !matches!(acc, Acc::Absent);
                    let value = match acc {
                        Acc::Scalar(v) => v,
                        _ => zero_value(field.ty),
                    };
                    let write = match field.shape {
                        Shape::Ptr => present,
                        Shape::Req => true,
                        _ => !is_zero(&value),
                    };
                    if write {
                        out.insert(field.json.to_string(), value);
                    }
                }
                ty => {
                    let chunks = match acc {
                        Acc::Chunks(chunks) => Some(chunks),
                        _ => None,
                    };
                    if field.shape == Shape::Ptr && chunks.is_none() {
                        return Ok(());
                    }
                    let value =
                        self.at(field.json, |d| d.bytes_value(ty, chunks.as_deref(), depth))?;
                    out.insert(field.json.to_string(), value);
                }
            },
        }
        Ok(())
    }

    /// The JSON value of a length-delimited field of type `ty` made of `chunks` (`None`: the
    /// field is absent and the Go zero value is wanted).
    fn bytes_value(
        &mut self,
        ty: Ty,
        chunks: Option<&[&[u8]]>,
        depth: usize,
    ) -> Result<Value, ProtobufError> {
        let chunks = chunks.unwrap_or(&[]);
        match ty {
            Ty::Str => match chunks.last() {
                Some(bytes) => self.utf8(bytes).map(Value::String),
                None => Ok(Value::String(String::new())),
            },
            Ty::Bytes => Ok(Value::String(
                base64::engine::general_purpose::STANDARD
                    .encode(chunks.last().copied().unwrap_or(&[])),
            )),
            Ty::Bool | Ty::I32 | Ty::I64 => Ok(zero_value(ty)),
            Ty::Msg(message) => self.message(message, chunks, depth + 1).map(Value::Object),
            Ty::Time | Ty::MicroTime => self.time(ty, chunks),
            Ty::IntOrString => self.int_or_string(chunks),
            Ty::Quantity => self.quantity(chunks),
            Ty::FieldsV1 => self.fields_v1(chunks),
            Ty::StrList => self.str_list(chunks),
        }
    }

    /// Reads the fields `spec` (number, expected wire type) of a small wrapper message; the last
    /// occurrence wins, other numbers are skipped and reported.
    fn wrapper<'a>(
        &mut self,
        chunks: &[&'a [u8]],
        spec: &[(u32, u8)],
    ) -> Result<Vec<Option<Raw<'a>>>, ProtobufError> {
        let mut values = vec![None; spec.len()];
        for chunk in chunks {
            let mut reader = Reader::new(chunk);
            while let Some((number, wire)) = reader.tag().map_err(|e| self.wire(e))? {
                if wire == WIRE_END_GROUP {
                    return Err(self.malformed(format!("unexpected end group for field {number}")));
                }
                let Some(index) = spec.iter().position(|(n, _)| *n == number) else {
                    self.skip_unknown(&mut reader, number, wire, 1)?;
                    continue;
                };
                let want = spec[index].1;
                if wire != want {
                    return Err(self.malformed(format!(
                        "wrong wireType = {wire} for field number {number}, expected {want}"
                    )));
                }
                values[index] = Some(if want == WIRE_VARINT {
                    Raw::Varint(reader.varint().map_err(|e| self.wire(e))?)
                } else {
                    Raw::Bytes(reader.len_delimited().map_err(|e| self.wire(e))?)
                });
            }
        }
        Ok(values)
    }

    /// `metav1.Time` / `MicroTime`: `{int64 seconds = 1; int32 nanos = 2}`.
    fn time(&mut self, ty: Ty, chunks: &[&[u8]]) -> Result<Value, ProtobufError> {
        if chunks.iter().all(|c| c.is_empty()) {
            return Ok(Value::Null);
        }
        let values = self.wrapper(chunks, &[(1, WIRE_VARINT), (2, WIRE_VARINT)])?;
        let seconds = match values[0] {
            Some(Raw::Varint(v)) => v as i64,
            _ => 0,
        };
        let nanos = match values[1] {
            Some(Raw::Varint(v)) => i64::from(v as u32 as i32),
            _ => 0,
        };
        match format_time(seconds, nanos, matches!(ty, Ty::MicroTime)) {
            Ok(Some(text)) => Ok(Value::String(text)),
            Ok(None) => Ok(Value::Null),
            Err(message) => Err(self.invalid(message)),
        }
    }

    /// `intstr.IntOrString`: `{int64 type = 1; int32 intVal = 2; string strVal = 3}`.
    fn int_or_string(&mut self, chunks: &[&[u8]]) -> Result<Value, ProtobufError> {
        let values = self.wrapper(chunks, &[(1, WIRE_VARINT), (2, WIRE_VARINT), (3, WIRE_LEN)])?;
        let kind = match values[0] {
            Some(Raw::Varint(v)) => v as i64,
            _ => 0,
        };
        match kind {
            0 => {
                let int = match values[1] {
                    Some(Raw::Varint(v)) => v as u32 as i32,
                    _ => 0,
                };
                Ok(Value::from(int))
            }
            1 => match values[2] {
                Some(Raw::Bytes(bytes)) => self.utf8(bytes).map(Value::String),
                _ => Ok(Value::String(String::new())),
            },
            // Upstream `IntOrString.MarshalJSON` fails the same way.
            _ => Err(self.invalid("impossible IntOrString.Type")),
        }
    }

    /// `resource.Quantity`: `{string string = 1}`; unset is the zero quantity `"0"`.
    fn quantity(&mut self, chunks: &[&[u8]]) -> Result<Value, ProtobufError> {
        let values = self.wrapper(chunks, &[(1, WIRE_LEN)])?;
        match values[0] {
            Some(Raw::Bytes(bytes)) => {
                let text = self.utf8(bytes)?;
                check_quantity(&text).map_err(|m| self.invalid(m))?;
                Ok(Value::String(text))
            }
            _ => Ok(Value::String("0".to_string())),
        }
    }

    /// `metav1.FieldsV1`: `{bytes Raw = 1}` holding JSON; no raw bytes is `null`.
    fn fields_v1(&mut self, chunks: &[&[u8]]) -> Result<Value, ProtobufError> {
        let values = self.wrapper(chunks, &[(1, WIRE_LEN)])?;
        match values[0] {
            Some(Raw::Bytes(bytes)) => serde_json::from_slice(bytes)
                .map_err(|e| self.invalid(format!("FieldsV1 does not hold JSON: {e}"))),
            _ => Ok(Value::Null),
        }
    }

    /// `ExtraValue`: `{repeated string items = 1}` → string array, `null` when empty.
    fn str_list(&mut self, chunks: &[&[u8]]) -> Result<Value, ProtobufError> {
        let mut items = Vec::new();
        for chunk in chunks {
            let mut reader = Reader::new(chunk);
            while let Some((number, wire)) = reader.tag().map_err(|e| self.wire(e))? {
                if number == 1 && wire == WIRE_LEN {
                    let bytes = reader.len_delimited().map_err(|e| self.wire(e))?;
                    items.push(Value::String(self.utf8(bytes)?));
                } else if number == 1 || wire == WIRE_END_GROUP {
                    return Err(self.malformed(format!(
                        "wrong wireType = {wire} for field items (number 1), expected 2"
                    )));
                } else {
                    self.skip_unknown(&mut reader, number, wire, 1)?;
                }
            }
        }
        Ok(if items.is_empty() {
            Value::Null
        } else {
            Value::Array(items)
        })
    }

    /// One entry of a `map<string, T>` field: key is field 1, value field 2.
    fn map_entry(
        &mut self,
        field: &Field,
        entry: &[u8],
        depth: usize,
    ) -> Result<(String, Value), ProtobufError> {
        let mut key = String::new();
        let mut value_chunks: Vec<&[u8]> = Vec::new();
        let mut value_varint: Option<u64> = None;
        let value_wire = match field.ty {
            Ty::Bool | Ty::I32 | Ty::I64 => WIRE_VARINT,
            _ => WIRE_LEN,
        };
        let mut reader = Reader::new(entry);
        while let Some((number, wire)) = reader.tag().map_err(|e| self.wire(e))? {
            match number {
                1 => {
                    if wire != WIRE_LEN {
                        return Err(self.malformed(format!(
                            "wrong wireType = {wire} for map key, expected 2"
                        )));
                    }
                    let bytes = reader.len_delimited().map_err(|e| self.wire(e))?;
                    key = self.utf8(bytes)?;
                }
                2 => {
                    if wire != value_wire {
                        return Err(self.malformed(format!(
                            "wrong wireType = {wire} for map value, expected {value_wire}"
                        )));
                    }
                    if value_wire == WIRE_VARINT {
                        value_varint = Some(reader.varint().map_err(|e| self.wire(e))?);
                    } else {
                        let bytes = reader.len_delimited().map_err(|e| self.wire(e))?;
                        // Scalars: last wins; messages: occurrences merge.
                        if matches!(field.ty, Ty::Str | Ty::Bytes) {
                            value_chunks.clear();
                        }
                        value_chunks.push(bytes);
                    }
                }
                _ if wire == WIRE_END_GROUP => {
                    return Err(self.malformed(format!("unexpected end group for field {number}")));
                }
                _ => self.skip_unknown(&mut reader, number, wire, depth)?,
            }
        }
        let segment = format!("[{key}]");
        let value = self.at(&segment, |d| match field.ty {
            Ty::Bool | Ty::I32 | Ty::I64 => Ok(value_varint
                .map(|v| varint_value(field.ty, v))
                .unwrap_or_else(|| zero_value(field.ty))),
            ty => {
                let present = !value_chunks.is_empty();
                d.bytes_value(ty, present.then_some(&value_chunks[..]), depth)
            }
        })?;
        Ok((key, value))
    }
}

/// The JSON value of a varint field of type `ty` (Go's integer conversions).
fn varint_value(ty: Ty, v: u64) -> Value {
    match ty {
        Ty::Bool => Value::Bool(v != 0),
        Ty::I32 => Value::from(v as u32 as i32),
        _ => Value::from(v as i64),
    }
}

fn zero_value(ty: Ty) -> Value {
    match ty {
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 => Value::from(0),
        _ => Value::String(String::new()),
    }
}

/// Go's "empty value" for `omitempty` on scalars.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Null => true,
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Time and quantity helpers
// ---------------------------------------------------------------------------------------------

/// Unix seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const MIN_SECONDS: i64 = -62_167_219_200;
const MAX_SECONDS: i64 = 253_402_300_799;
/// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z), which marshals as `null`.
const GO_ZERO_SECONDS: i64 = -62_135_596_800;

/// Formats `time.Unix(seconds, nanos).UTC()` as RFC 3339 (`micro`: with six fractional digits);
/// `None` for Go's zero time.
fn format_time(seconds: i64, nanos: i64, micro: bool) -> Result<Option<String>, String> {
    let seconds = seconds
        .checked_add(nanos.div_euclid(1_000_000_000))
        .ok_or_else(|| "time out of range".to_string())?;
    let nanos = nanos.rem_euclid(1_000_000_000);
    if seconds == GO_ZERO_SECONDS && nanos == 0 {
        return Ok(None);
    }
    if !(MIN_SECONDS..=MAX_SECONDS).contains(&seconds) {
        return Err(format!(
            "time {seconds}s since the Unix epoch is outside the years 0-9999"
        ));
    }
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (
        secs_of_day / 3600,
        (secs_of_day % 3600) / 60,
        secs_of_day % 60,
    );
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    if micro {
        out.push_str(&format!(".{:06}", nanos / 1000));
    }
    out.push('Z');
    Ok(Some(out))
}

/// `resource.ErrFormatWrong`.
const QUANTITY_FORMAT_ERR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Checks a quantity string against `resource.ParseQuantity`'s grammar (sign, digits with an
/// optional fraction, then a binary-SI, decimal-SI or exponent suffix), with upstream's texts.
fn check_quantity(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(QUANTITY_FORMAT_ERR.to_string());
    }
    if s == "0" {
        return Ok(());
    }
    let bytes = s.as_bytes();
    let mut pos = usize::from(matches!(bytes[0], b'+' | b'-'));
    let digits_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut digits = pos - digits_start;
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        digits += pos - frac_start;
    }
    if digits == 0 {
        return Err(QUANTITY_FORMAT_ERR.to_string());
    }
    let suffix = &s[pos..];
    let valid = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => {
            let rest = suffix.strip_prefix(['e', 'E']);
            match rest {
                Some(exp) => {
                    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                    if !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(QUANTITY_FORMAT_ERR.to_string());
                    }
                    exp.parse::<i64>().is_ok()
                }
                None => false,
            }
        }
    };
    if !valid {
        if suffix
            .bytes()
            .all(|b| b"eEinumkKMGTP+-0123456789".contains(&b))
        {
            return Err("unable to parse quantity's suffix".to_string());
        }
        return Err(QUANTITY_FORMAT_ERR.to_string());
    }
    Ok(())
}
