//! The ubus wire format: message header, blob attributes and blobmsg values.
//!
//! Everything is big-endian regardless of the CPU (libubox `blob.h` stores with
//! `cpu_to_be32`), so one codec serves MIPS and ARM alike. A message is an 8-byte
//! header followed by exactly one blob attribute, the container, whose children are
//! the `UBUS_ATTR_*` attributes. DATA and SIGNATURE carry blobmsg (named, typed,
//! "extended" blob attributes), the format of every call argument and reply.
//!
//! Decoding is total: every function here takes arbitrary bytes and returns a value
//! or a [`WireError`], never panics, and recursion is bounded by [`MAX_DEPTH`].
//! An attribute whose payload does not have the shape its id demands (an OBJID that
//! is not 4 bytes, a DATA whose blobmsg is malformed) is kept as [`Attr::Raw`], as
//! libubus ignores such attributes when it looks them up; the message around it
//! still decodes and still re-encodes to the same bytes.

use std::fmt;

/// Bytes in a message header (`struct ubus_msghdr`).
pub const HEADER_LEN: usize = 8;
/// Bytes needed to know a message's length: the header plus the container's
/// blob header.
pub const FRAME_PREFIX_LEN: usize = HEADER_LEN + 4;
/// ubusd drops a client whose message is longer than this (`UBUS_MAX_MSGLEN`).
pub const MAX_MSG_LEN: usize = 1 << 20;
/// Deepest table/array nesting accepted; b4d's own replies nest three levels.
/// Bounds the decoder's recursion on hostile input.
pub const MAX_DEPTH: usize = 32;

const EXTENDED: u32 = 0x8000_0000;
const ID_MASK: u32 = 0x7f00_0000;
const ID_SHIFT: u32 = 24;
const LEN_MASK: u32 = 0x00ff_ffff;

/// Why bytes could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Fewer bytes than a header or an attribute header needs.
    Truncated,
    /// A blob length below its own 4-byte header or past the end of its parent.
    BadLength,
    /// A message above `UBUS_MAX_MSGLEN`.
    TooLong,
    /// Tables/arrays nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A blobmsg attribute without the extended bit, or an unknown blobmsg type.
    BadBlobmsgType,
    /// A blobmsg name that overruns the attribute or lacks its NUL.
    BadName,
    /// An integer payload whose size is not exactly its type's.
    BadFixedSize,
    /// A string without its terminating NUL, with an embedded NUL, or not UTF-8.
    BadString,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated",
            WireError::BadLength => "bad blob length",
            WireError::TooLong => "message longer than 1 MiB",
            WireError::TooDeep => "nested too deep",
            WireError::BadBlobmsgType => "bad blobmsg type",
            WireError::BadName => "bad blobmsg name",
            WireError::BadFixedSize => "integer of the wrong size",
            WireError::BadString => "bad string",
        })
    }
}

/// `enum ubus_msg_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MsgType {
    Hello = 0,
    Status = 1,
    Data = 2,
    Ping = 3,
    Lookup = 4,
    Invoke = 5,
    AddObject = 6,
    RemoveObject = 7,
    Subscribe = 8,
    Unsubscribe = 9,
    Notify = 10,
    Monitor = 11,
}

impl MsgType {
    pub fn from_u8(v: u8) -> Option<MsgType> {
        use MsgType::*;
        Some(match v {
            0 => Hello,
            1 => Status,
            2 => Data,
            3 => Ping,
            4 => Lookup,
            5 => Invoke,
            6 => AddObject,
            7 => RemoveObject,
            8 => Subscribe,
            9 => Unsubscribe,
            10 => Notify,
            11 => Monitor,
            _ => return None,
        })
    }
}

/// `struct ubus_msghdr`. `msg_type` stays a raw byte so that a message of a type
/// this code does not know still decodes (and can be answered with STATUS 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: u8,
    pub seq: u16,
    pub peer: u32,
}

impl Header {
    pub fn new(msg_type: MsgType, seq: u16, peer: u32) -> Header {
        Header {
            version: 0,
            msg_type: msg_type as u8,
            seq,
            peer,
        }
    }

    pub fn kind(&self) -> Option<MsgType> {
        MsgType::from_u8(self.msg_type)
    }
}

/// `enum ubus_msg_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    InvalidCommand,
    InvalidArgument,
    MethodNotFound,
    NotFound,
    NoData,
    PermissionDenied,
    Timeout,
    NotSupported,
    UnknownError,
    ConnectionFailed,
    NoMemory,
    ParseError,
    SystemError,
    /// A code from a newer ubus.
    Other(i32),
}

impl Status {
    pub fn code(self) -> i32 {
        use Status::*;
        match self {
            Ok => 0,
            InvalidCommand => 1,
            InvalidArgument => 2,
            MethodNotFound => 3,
            NotFound => 4,
            NoData => 5,
            PermissionDenied => 6,
            Timeout => 7,
            NotSupported => 8,
            UnknownError => 9,
            ConnectionFailed => 10,
            NoMemory => 11,
            ParseError => 12,
            SystemError => 13,
            Other(c) => c,
        }
    }

    pub fn from_code(code: i32) -> Status {
        use Status::*;
        match code {
            0 => Ok,
            1 => InvalidCommand,
            2 => InvalidArgument,
            3 => MethodNotFound,
            4 => NotFound,
            5 => NoData,
            6 => PermissionDenied,
            7 => Timeout,
            8 => NotSupported,
            9 => UnknownError,
            10 => ConnectionFailed,
            11 => NoMemory,
            12 => ParseError,
            13 => SystemError,
            c => Other(c),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Status::*;
        let name = match self {
            Ok => "OK",
            InvalidCommand => "invalid command",
            InvalidArgument => "invalid argument",
            MethodNotFound => "method not found",
            NotFound => "not found",
            NoData => "no data",
            PermissionDenied => "permission denied",
            Timeout => "timeout",
            NotSupported => "not supported",
            UnknownError => "unknown error",
            ConnectionFailed => "connection failed",
            NoMemory => "out of memory",
            ParseError => "parse error",
            SystemError => "system error",
            Other(_) => "unknown status",
        };
        write!(f, "{} ({name})", self.code())
    }
}

/// `UBUS_ATTR_*` ids.
pub mod attr_id {
    pub const STATUS: u8 = 1;
    pub const OBJPATH: u8 = 2;
    pub const OBJID: u8 = 3;
    pub const METHOD: u8 = 4;
    pub const OBJTYPE: u8 = 5;
    pub const SIGNATURE: u8 = 6;
    pub const DATA: u8 = 7;
    pub const TARGET: u8 = 8;
    pub const ACTIVE: u8 = 9;
    pub const NO_REPLY: u8 = 10;
    pub const SUBSCRIBERS: u8 = 11;
    pub const USER: u8 = 12;
    pub const GROUP: u8 = 13;
}

/// One `UBUS_ATTR_*` attribute of a message's container.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Status(i32),
    ObjPath(String),
    ObjId(u32),
    Method(String),
    ObjType(u32),
    /// Methods of an object: a table of tables whose members are INT32 blobmsg type ids.
    Signature(Table),
    /// Call arguments, a reply, an event's payload: the body of a blobmsg table.
    Data(Table),
    Target(u32),
    Active(bool),
    NoReply(bool),
    Subscribers(Vec<u32>),
    User(String),
    Group(String),
    /// An unknown id, or a known one whose payload has the wrong shape; kept verbatim.
    Raw {
        id: u8,
        extended: bool,
        payload: Vec<u8>,
    },
}

impl Attr {
    pub fn id(&self) -> u8 {
        use attr_id::*;
        match self {
            Attr::Status(_) => STATUS,
            Attr::ObjPath(_) => OBJPATH,
            Attr::ObjId(_) => OBJID,
            Attr::Method(_) => METHOD,
            Attr::ObjType(_) => OBJTYPE,
            Attr::Signature(_) => SIGNATURE,
            Attr::Data(_) => DATA,
            Attr::Target(_) => TARGET,
            Attr::Active(_) => ACTIVE,
            Attr::NoReply(_) => NO_REPLY,
            Attr::Subscribers(_) => SUBSCRIBERS,
            Attr::User(_) => USER,
            Attr::Group(_) => GROUP,
            Attr::Raw { id, .. } => *id,
        }
    }
}

/// One ubus message: header plus the container's attributes in wire order.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: Header,
    pub attrs: Vec<Attr>,
}

impl Message {
    pub fn new(msg_type: MsgType, seq: u16, peer: u32, attrs: Vec<Attr>) -> Message {
        Message {
            header: Header::new(msg_type, seq, peer),
            attrs,
        }
    }

    /// The first attribute of that id that decoded to its proper shape (libubus
    /// looks attributes up by id and ignores malformed ones).
    fn find(&self, id: u8) -> Option<&Attr> {
        self.attrs
            .iter()
            .find(|a| a.id() == id && !matches!(a, Attr::Raw { .. }))
    }

    pub fn status(&self) -> Option<i32> {
        match self.find(attr_id::STATUS) {
            Some(Attr::Status(s)) => Some(*s),
            _ => None,
        }
    }

    pub fn obj_id(&self) -> Option<u32> {
        match self.find(attr_id::OBJID) {
            Some(Attr::ObjId(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn obj_type(&self) -> Option<u32> {
        match self.find(attr_id::OBJTYPE) {
            Some(Attr::ObjType(v)) => Some(*v),
            _ => None,
        }
    }

    pub fn method(&self) -> Option<&str> {
        match self.find(attr_id::METHOD) {
            Some(Attr::Method(m)) => Some(m),
            _ => None,
        }
    }

    pub fn data(&self) -> Option<&Table> {
        match self.find(attr_id::DATA) {
            Some(Attr::Data(t)) => Some(t),
            _ => None,
        }
    }

    pub fn user(&self) -> Option<&str> {
        match self.find(attr_id::USER) {
            Some(Attr::User(u)) => Some(u),
            _ => None,
        }
    }

    pub fn group(&self) -> Option<&str> {
        match self.find(attr_id::GROUP) {
            Some(Attr::Group(g)) => Some(g),
            _ => None,
        }
    }

    pub fn active(&self) -> Option<bool> {
        match self.find(attr_id::ACTIVE) {
            Some(Attr::Active(a)) => Some(*a),
            _ => None,
        }
    }

    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(self.header.version);
        out.push(self.header.msg_type);
        out.extend_from_slice(&self.header.seq.to_be_bytes());
        out.extend_from_slice(&self.header.peer.to_be_bytes());
        let container = begin_nested(&mut out, false, 0);
        for attr in &self.attrs {
            encode_attr(&mut out, attr);
        }
        end_nested(&mut out, container);
        out
    }

    /// Decodes exactly one message; `bytes` must hold the whole message and nothing
    /// more (see [`frame_len`]).
    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() < FRAME_PREFIX_LEN {
            return Err(WireError::Truncated);
        }
        if bytes.len() > MAX_MSG_LEN {
            return Err(WireError::TooLong);
        }
        let header = Header {
            version: bytes[0],
            msg_type: bytes[1],
            seq: u16::from_be_bytes([bytes[2], bytes[3]]),
            peer: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        };
        let body = &bytes[HEADER_LEN..];
        let (hdr, rest) = split_header(body)?;
        if hdr.len != body.len() {
            return Err(WireError::BadLength);
        }
        let attrs = children(rest)?
            .into_iter()
            .map(|(h, payload)| decode_attr(h, payload))
            .collect();
        Ok(Message { header, attrs })
    }
}

/// How many bytes the message at the start of `buf` occupies: `Ok(None)` while
/// fewer than 12 bytes are there, an error when the length can never be valid
/// (the stream cannot be resynchronised then; ubusd closes such a client).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    if buf.len() < FRAME_PREFIX_LEN {
        return Ok(None);
    }
    let word = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let len = (word & LEN_MASK) as usize;
    if len < 4 {
        return Err(WireError::BadLength);
    }
    let total = HEADER_LEN + len;
    if total > MAX_MSG_LEN {
        return Err(WireError::TooLong);
    }
    Ok(Some(total))
}

/// A decoded blob attribute header.
#[derive(Debug, Clone, Copy)]
struct BlobHeader {
    extended: bool,
    id: u8,
    /// Including the 4-byte header, excluding padding.
    len: usize,
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

fn split_header(buf: &[u8]) -> Result<(BlobHeader, &[u8]), WireError> {
    let word = buf
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(WireError::Truncated)?;
    let hdr = BlobHeader {
        extended: word & EXTENDED != 0,
        id: ((word & ID_MASK) >> ID_SHIFT) as u8,
        len: (word & LEN_MASK) as usize,
    };
    if hdr.len < 4 || hdr.len > buf.len() {
        return Err(WireError::BadLength);
    }
    Ok((hdr, &buf[4..hdr.len]))
}

/// The attributes laid end to end in `buf`, each with its payload. Padding after
/// the last one may be cut short by the end of `buf` (libubox `blob_for_each_attr`
/// accepts that); anything shorter than a header left over is an error.
fn children(mut buf: &[u8]) -> Result<Vec<(BlobHeader, &[u8])>, WireError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let (hdr, payload) = split_header(buf)?;
        out.push((hdr, payload));
        buf = buf.get(pad4(hdr.len)..).unwrap_or(&[]);
    }
    Ok(out)
}

fn be_u32(payload: &[u8]) -> Option<u32> {
    let b: [u8; 4] = payload.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// A NUL-terminated UTF-8 string filling the payload exactly.
fn c_string(payload: &[u8]) -> Result<String, WireError> {
    match payload.split_last() {
        Some((0, text)) if !text.contains(&0) => {
            String::from_utf8(text.to_vec()).map_err(|_| WireError::BadString)
        }
        _ => Err(WireError::BadString),
    }
}

fn decode_attr(h: BlobHeader, payload: &[u8]) -> Attr {
    use attr_id::*;
    let typed = if h.extended {
        None
    } else {
        match h.id {
            STATUS => be_u32(payload).map(|v| Attr::Status(v as i32)),
            OBJPATH => c_string(payload).ok().map(Attr::ObjPath),
            OBJID => be_u32(payload).map(Attr::ObjId),
            METHOD => c_string(payload).ok().map(Attr::Method),
            OBJTYPE => be_u32(payload).map(Attr::ObjType),
            SIGNATURE => decode_table_body(payload, 0).ok().map(Attr::Signature),
            DATA => decode_table_body(payload, 0).ok().map(Attr::Data),
            TARGET => be_u32(payload).map(Attr::Target),
            ACTIVE => flag(payload).map(Attr::Active),
            NO_REPLY => flag(payload).map(Attr::NoReply),
            SUBSCRIBERS => subscribers(payload).map(Attr::Subscribers),
            USER => c_string(payload).ok().map(Attr::User),
            GROUP => c_string(payload).ok().map(Attr::Group),
            _ => None,
        }
    };
    typed.unwrap_or_else(|| Attr::Raw {
        id: h.id,
        extended: h.extended,
        payload: payload.to_vec(),
    })
}

fn flag(payload: &[u8]) -> Option<bool> {
    match payload {
        [0] => Some(false),
        [1] => Some(true),
        _ => None,
    }
}

/// SUBSCRIBERS: plain id-0 u32 attributes (ubusd `ubusd_send_obj_event`).
fn subscribers(payload: &[u8]) -> Option<Vec<u32>> {
    children(payload)
        .ok()?
        .into_iter()
        .map(|(h, p)| {
            if h.extended || h.id != 0 {
                None
            } else {
                be_u32(p)
            }
        })
        .collect()
}

fn encode_attr(out: &mut Vec<u8>, attr: &Attr) {
    let id = attr.id();
    match attr {
        Attr::Status(v) => put_plain(out, id, &v.to_be_bytes()),
        Attr::ObjId(v) | Attr::ObjType(v) | Attr::Target(v) => put_plain(out, id, &v.to_be_bytes()),
        Attr::ObjPath(s) | Attr::Method(s) | Attr::User(s) | Attr::Group(s) => {
            put_c_string(out, false, id, s)
        }
        Attr::Active(b) | Attr::NoReply(b) => put_plain(out, id, &[u8::from(*b)]),
        Attr::Signature(t) | Attr::Data(t) => {
            let start = begin_nested(out, false, id);
            encode_table_body(out, t);
            end_nested(out, start);
        }
        Attr::Subscribers(ids) => {
            let start = begin_nested(out, false, id);
            for v in ids {
                put_plain(out, 0, &v.to_be_bytes());
            }
            end_nested(out, start);
        }
        Attr::Raw {
            id,
            extended,
            payload,
        } => put_blob(out, *extended, *id, payload),
    }
}

fn header_word(extended: bool, id: u8, len: usize) -> [u8; 4] {
    let ext = if extended { EXTENDED } else { 0 };
    let word = ext | ((u32::from(id) << ID_SHIFT) & ID_MASK) | (len as u32 & LEN_MASK);
    word.to_be_bytes()
}

fn pad_to_4(out: &mut Vec<u8>) {
    out.resize(pad4(out.len()), 0);
}

fn put_blob(out: &mut Vec<u8>, extended: bool, id: u8, payload: &[u8]) {
    out.extend_from_slice(&header_word(extended, id, 4 + payload.len()));
    out.extend_from_slice(payload);
    pad_to_4(out);
}

fn put_plain(out: &mut Vec<u8>, id: u8, payload: &[u8]) {
    put_blob(out, false, id, payload);
}

fn put_c_string(out: &mut Vec<u8>, extended: bool, id: u8, s: &str) {
    out.extend_from_slice(&header_word(extended, id, 4 + s.len() + 1));
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    pad_to_4(out);
}

/// Starts a nested attribute; returns where its header is, for [`end_nested`].
fn begin_nested(out: &mut Vec<u8>, extended: bool, id: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&header_word(extended, id, 0));
    start
}

/// Writes the nested attribute's length: header + children's padded lengths,
/// so always a multiple of 4.
fn end_nested(out: &mut [u8], start: usize) {
    let ext_id = u32::from_be_bytes([out[start], out[start + 1], out[start + 2], out[start + 3]]);
    let len = (out.len() - start) as u32 & LEN_MASK;
    out[start..start + 4].copy_from_slice(&((ext_id & !LEN_MASK) | len).to_be_bytes());
}

// ---------------------------------------------------------------------------
// blobmsg

/// `enum blobmsg_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlobType {
    Unspec = 0,
    Array = 1,
    Table = 2,
    String = 3,
    Int64 = 4,
    Int32 = 5,
    Int16 = 6,
    /// Also booleans.
    Int8 = 7,
    Double = 8,
}

/// A blobmsg value. Integers keep their wire width so that what was decoded
/// encodes to the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Array(Vec<Value>),
    Table(Table),
    String(String),
    Int64(i64),
    Int32(i32),
    Int16(i16),
    /// blobmsg INT8, which every OpenWrt tool uses for booleans.
    Bool(bool),
    Double(f64),
}

impl Value {
    pub fn blob_type(&self) -> BlobType {
        match self {
            Value::Null => BlobType::Unspec,
            Value::Array(_) => BlobType::Array,
            Value::Table(_) => BlobType::Table,
            Value::String(_) => BlobType::String,
            Value::Int64(_) => BlobType::Int64,
            Value::Int32(_) => BlobType::Int32,
            Value::Int16(_) => BlobType::Int16,
            Value::Bool(_) => BlobType::Int8,
            Value::Double(_) => BlobType::Double,
        }
    }

    /// An integer as JSON→blobmsg converters encode it (ubus CLI, ucode): INT32
    /// when it fits, INT64 otherwise.
    pub fn int(v: i64) -> Value {
        match i32::try_from(v) {
            Ok(small) => Value::Int32(small),
            Err(_) => Value::Int64(v),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Value {
        Value::Int32(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::int(i64::from(v))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::int(v)
    }
}

impl From<u64> for Value {
    /// Counters above i64::MAX (never reached in practice) saturate.
    fn from(v: u64) -> Value {
        Value::int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<Table> for Value {
    fn from(t: Table) -> Value {
        Value::Table(t)
    }
}

impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Value {
        Value::Array(v)
    }
}

/// A blobmsg table: named values in wire order (names need not be unique on the
/// wire; [`Table::get`] returns the first, as `blobmsg_parse` keeps the last —
/// b4d's tables never repeat a name).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table(pub Vec<(String, Value)>);

impl Table {
    pub fn new() -> Table {
        Table(Vec::new())
    }

    /// Appends; for building replies in order.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Table {
        self.push(name, value);
        self
    }

    pub fn push(&mut self, name: &str, value: impl Into<Value>) {
        self.0.push((name.to_string(), value.into()));
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The body bytes (what DATA carries), for tests and size checks.
    pub fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_table_body(&mut out, self);
        out
    }

    /// Decodes a table body (the payload of DATA or of a TABLE value).
    pub fn decode_body(bytes: &[u8]) -> Result<Table, WireError> {
        decode_table_body(bytes, 0)
    }
}

fn decode_table_body(bytes: &[u8], depth: usize) -> Result<Table, WireError> {
    let mut table = Table::new();
    for (h, payload) in children(bytes)? {
        let (name, value) = decode_blobmsg(h, payload, depth)?;
        table.0.push((name, value));
    }
    Ok(table)
}

fn decode_array_body(bytes: &[u8], depth: usize) -> Result<Vec<Value>, WireError> {
    children(bytes)?
        .into_iter()
        .map(|(h, payload)| decode_blobmsg(h, payload, depth).map(|(_, v)| v))
        .collect()
}

/// One blobmsg attribute (header already split off): `u16 namelen`, name, NUL,
/// padding to 4, then the value (libubox `blobmsg.h` `struct blobmsg_hdr`).
fn decode_blobmsg(
    h: BlobHeader,
    payload: &[u8],
    depth: usize,
) -> Result<(String, Value), WireError> {
    if depth >= MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    if !h.extended {
        return Err(WireError::BadBlobmsgType);
    }
    let name_len = payload
        .get(..2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or(WireError::BadName)?;
    let name_hdr = pad4(2 + name_len + 1);
    if payload.len() < name_hdr || payload[2 + name_len] != 0 {
        return Err(WireError::BadName);
    }
    let name = std::str::from_utf8(&payload[2..2 + name_len])
        .map_err(|_| WireError::BadName)?
        .to_string();
    let data = &payload[name_hdr..];
    let fixed = |n: usize| -> Result<&[u8], WireError> {
        if data.len() == n {
            Ok(data)
        } else {
            Err(WireError::BadFixedSize)
        }
    };
    let value = match h.id {
        0 if data.is_empty() => Value::Null,
        0 => return Err(WireError::BadFixedSize),
        1 => Value::Array(decode_array_body(data, depth + 1)?),
        2 => Value::Table(decode_table_body(data, depth + 1)?),
        3 => Value::String(c_string(data)?),
        4 => {
            let b = fixed(8)?;
            Value::Int64(i64::from_be_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ]))
        }
        5 => {
            let b = fixed(4)?;
            Value::Int32(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        6 => {
            let b = fixed(2)?;
            Value::Int16(i16::from_be_bytes([b[0], b[1]]))
        }
        7 => Value::Bool(fixed(1)?[0] != 0),
        8 => {
            let b = fixed(8)?;
            Value::Double(f64::from_bits(u64::from_be_bytes([
                b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
            ])))
        }
        _ => return Err(WireError::BadBlobmsgType),
    };
    Ok((name, value))
}

fn encode_table_body(out: &mut Vec<u8>, table: &Table) {
    for (name, value) in &table.0 {
        encode_blobmsg(out, name, value);
    }
}

fn encode_blobmsg(out: &mut Vec<u8>, name: &str, value: &Value) {
    let start = out.len();
    out.extend_from_slice(&header_word(true, value.blob_type() as u8, 0));
    // Names longer than a u16 cannot be represented; b4d never builds one, and a
    // decoded name is at most a message long, so this truncation is unreachable.
    let name = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name);
    out.push(0);
    pad_to_4(out);
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for item in items {
                encode_blobmsg(out, "", item);
            }
        }
        Value::Table(t) => encode_table_body(out, t),
        Value::String(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Int64(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int32(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Int16(v) => out.extend_from_slice(&v.to_be_bytes()),
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Double(d) => out.extend_from_slice(&d.to_bits().to_be_bytes()),
    }
    // The length covers the value but not the trailing padding (leaf) — for
    // containers the children are already padded, so both rules agree.
    let len = out.len() - start;
    let word = header_word(true, value.blob_type() as u8, len);
    out[start..start + 4].copy_from_slice(&word);
    pad_to_4(out);
}

// ---------------------------------------------------------------------------
// JSON-ish display, for logs and test failure messages (same shape as `ubus call`
// output compacted, and as the traces' JSON).

fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Value::Table(t) => write!(f, "{t}"),
            Value::String(s) => write_json_string(f, s),
            Value::Int64(v) => write!(f, "{v}"),
            Value::Int32(v) => write!(f, "{v}"),
            Value::Int16(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            // At most three decimals (round-trip times in ms), without
            // trailing zeros: see crate::fixed.
            Value::Double(d) => {
                let text = crate::fixed::Fixed::of_f64(*d, 3).to_string();
                f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
            }
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (name, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_json_string(f, name)?;
            write!(f, ":{value}")?;
        }
        f.write_str("}")
    }
}
