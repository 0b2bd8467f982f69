// Long file: the whole automerge-repo wire codec (CBOR reader, writer, every message) in one place, fuzzed as one.
//! The automerge-repo WebSocket wire protocol (v1): a pure, IO-free codec.
//!
//! Every WebSocket binary frame carries one CBOR map. [`decode`] turns a frame
//! into a typed [`Message`] under explicit [`Limits`]; [`encode`] does the
//! reverse. Nothing here touches a socket, a clock or a random source.
//!
//! # Sources read
//!
//! All shapes below come from automerge-repo tag `v2.5.6` (the 2.5.x line the
//! JS clients run), cross-checked with samod (`samod-core/src/network/wire_protocol.rs`)
//! and with the encoder and decoder of cbor-x 1.3.0 through 1.6.0
//! (`encode.js`, `decode.js`):
//!
//! - `packages/automerge-repo/src/network/messages.ts`: `sync`, `request`,
//!   `ephemeral`, `doc-unavailable`, `remote-subscription-change`,
//!   `remote-heads-changed`.
//! - `packages/automerge-repo-network-websocket/src/messages.ts`: `join`,
//!   `peer`, `error` (`leave` was deleted from it in v2.0.0; it lives on in
//!   the package's `README.md` and in samod).
//! - `packages/automerge-repo-network-websocket/src/WebSocketServerAdapter.ts`
//!   and `WebSocketClientAdapter.ts`: what is actually sent, and the version
//!   negotiation (`selectProtocol`: a `join` *without*
//!   `supportedProtocolVersions` is answered with version `"1"`, which the
//!   package's own tests check).
//! - `packages/automerge-repo/src/network/NetworkAdapterInterface.ts`:
//!   `PeerMetadata { storageId?: StorageId; isEphemeral?: boolean }`.
//! - `packages/automerge-repo/src/helpers/cbor.ts`: frames are written with
//!   `new Encoder({ tagUint8Array: false, useRecords: false }).encode(msg)`
//!   and read with cbor-x's default `decode`.
//! - `packages/automerge-repo/src/AutomergeUrl.ts`: a document id is
//!   `bs58check.encode(16 random bytes)`.
//! - `packages/automerge-repo/src/network/NetworkSubsystem.ts`,
//!   `synchronizer/DocSynchronizer.ts`, `synchronizer/CollectionSynchronizer.ts`,
//!   `Repo.ts` and `RemoteHeadsSubscriptions.ts`: how each message object is
//!   built (hence key order and which keys may be `undefined`).
//! - `packages/automerge-repo-network-websocket/test/Websocket.test.ts`:
//!   the exact objects the JS suite expects on the wire.
//!
//! # Message shapes (CBOR map keys exactly as in the JS source)
//!
//! `PeerId`, `StorageId` (a UUID string), `SessionId` and `DocumentId` are
//! all CBOR text strings; `data` is a CBOR byte string.
//!
//! ```text
//! join     { type: "join", senderId: PeerId, peerMetadata?: PeerMetadata,
//!            supportedProtocolVersions?: ["1"] }         // client -> server
//! peer     { type: "peer", senderId: PeerId, peerMetadata?: PeerMetadata,
//!            selectedProtocolVersion: "1", targetId: PeerId } // server -> client
//! error    { type: "error", senderId?: PeerId, message: string, targetId?: PeerId }
//! leave    { type: "leave", senderId: PeerId }            // README and samod only
//! request  { type: "request", senderId, targetId, documentId, data: bytes }
//! sync     { type: "sync", senderId, targetId, documentId, data: bytes }
//! doc-unavailable { type: "doc-unavailable", senderId, targetId, documentId }
//! ephemeral { type: "ephemeral", senderId, targetId, count: number,
//!             sessionId: string, documentId, data: bytes }
//! remote-subscription-change { type, senderId, targetId,
//!             add?: StorageId[], remove?: StorageId[] }
//! remote-heads-changed { type, senderId, targetId, documentId,
//!             newHeads: { [StorageId]: { heads: string[], timestamp: number } } }
//! PeerMetadata = { storageId?: StorageId, isEphemeral?: boolean }
//! ```
//!
//! `?` marks keys that real JS peers omit or send as `undefined`: the 2.5.x
//! client always sends `peerMetadata` and `supportedProtocolVersions`, but the
//! server accepts a `join` with neither (and picks `"1"`), and its tests send
//! one. `senderId`/`targetId` on `error` are `?` because the README omits them.
//!
//! The README's CDDL calls the metadata key `metadata` and gives `error` only
//! `type` and `message`; the code sends `peerMetadata`, and `error` also
//! carries `senderId` and `targetId`. The code wins here; `metadata` is still
//! read as an alias (samod does the same), but never written. There is no
//! `docType` or any other optional field on `sync` in 2.5.x.
//!
//! # What cbor-x really puts on the wire
//!
//! - **Maps always have a 16-bit length header** (`0xb9 0x00 0x04`), even for
//!   four keys: with `useRecords: false` and no `variableMapSize` cbor-x
//!   reserves two length bytes and patches them afterwards. So frames are
//!   *not* in preferred/canonical form, and a strict canonical decoder would
//!   reject every JS frame. Keys come in JS insertion order, which varies
//!   (a client `sync` is `type, targetId, data, documentId, senderId`).
//! - **`undefined` properties are written**, as simple value 23 (`0xf7`):
//!   `for…in` visits them. A repo without storage sends
//!   `peerMetadata: { storageId: undefined, isEphemeral: true }`, and
//!   `remote-subscription-change` often carries `remove: undefined`. This
//!   codec reads `undefined` and `null` as "absent" for every key.
//! - **Numbers above `u32::MAX` are float64** (`0xfb`): cbor-x writes an
//!   integer only when `value >>> 0 === value`; `Date.now()` timestamps in
//!   `remote-heads-changed` therefore arrive as doubles. The reverse also
//!   matters: cbor-x decodes a CBOR uint64 into a `BigInt`, so [`encode`]
//!   writes numbers above `u32::MAX` (up to 2^53 - 1) as float64 too.
//! - **Byte strings are untagged.** `tagUint8Array: false` has been set since
//!   automerge-repo 1.0, so 2.5.x never emits tag 64. cbor-x 1.3.x on Node
//!   (still allowed by the `^1.3.0` range) did tag `Uint8Array` with 64, so
//!   `data` is accepted either bare or wrapped in tag 64.
//! - No records, packed strings, string bundles or shared references
//!   (`useRecords: false`, no `pack`, `bundleStrings` or `structuredClone`).
//!   cbor-x's decoder refuses indefinite-length byte and text strings, so this
//!   codec refuses them too; indefinite-length arrays and maps are read.
//!
//! # Decoding safety
//!
//! The decoder is a small hand-written CBOR reader rather than ciborium's
//! serde deserialiser. ciborium 0.2 is safe against huge declared string
//! lengths (it reads in 4 KiB chunks and hits end of input) and has a
//! recursion limit of 256, but decoding through `ciborium::Value` builds a
//! tree of 32 bytes (plus vector slack) per one-byte CBOR item (an 8 MiB
//! frame of empty arrays costs hundreds of MiB), keeps duplicate keys, and
//! does not notice trailing bytes. Here instead:
//!
//! - the frame length is checked first, against [`Limits::max_frame_bytes`];
//! - one iterative pass (an explicit stack, no recursion, so no stack
//!   overflow whatever the limits) checks that the frame is exactly one
//!   well-formed map, that nesting stays within [`Limits::max_nesting`], and
//!   that every declared length or item count fits in the bytes that remain
//!   *before* anything is allocated or skipped;
//! - values of unknown keys are skipped without being built;
//! - every string kept is bounded by [`Limits::max_string_bytes`] and every
//!   list or map kept by [`Limits::max_list_len`];
//! - duplicate keys are rejected (cbor-x keeps the last one; a relay that
//!   checked the first would disagree with the peer that reads the last).
//!
//! ciborium is used only by the tests, as an independent CBOR implementation.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// The only protocol version there is (`ProtocolV1` in `protocolVersion.ts`).
pub const PROTOCOL_V1: &str = "1";

/// The largest integer a JS `number` holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Bounds that [`decode`] enforces before it allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Longest text string kept, in UTF-8 bytes: `type`, ids, storage ids,
    /// session ids, heads, protocol versions, error messages and map keys.
    pub max_string_bytes: usize,
    /// Most items in any array or map that is kept, including the message map.
    pub max_list_len: usize,
    /// Deepest nesting of arrays, maps and tags; the message map is level 1.
    pub max_nesting: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 8 * 1024 * 1024,
            max_string_bytes: 1024,
            max_list_len: 1024,
            max_nesting: 32,
        }
    }
}

/// Why a peer id or a document id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is the empty string.
    #[error("id is empty")]
    Empty,
    /// The id is longer than its type allows.
    #[error("id is {len} bytes long, more than the limit of {max}")]
    TooLong {
        /// Length in bytes.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// A character outside the bitcoin base58 alphabet.
    #[error("document id is not base58")]
    NotBase58,
    /// Decodes, but the 4-byte double-SHA-256 checksum does not match.
    #[error("document id checksum does not match")]
    BadChecksum,
    /// Decodes and checks out, but not to 16 bytes.
    #[error("document id holds {len} bytes instead of 16")]
    WrongLength {
        /// Payload length after the checksum is removed.
        len: usize,
    },
}

/// A peer id: any non-empty string of at most [`PeerId::MAX_LEN`] bytes.
///
/// automerge-repo puts no rule on peer ids (its own are `peer-` plus a random
/// base-36 string), so neither does this type beyond the length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(String);

impl PeerId {
    /// Longest peer id accepted, in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Checks and wraps a peer id.
    pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(IdError::Empty);
        }
        if id.len() > Self::MAX_LEN {
            return Err(IdError::TooLong {
                len: id.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Self(id))
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for PeerId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::new(s)
    }
}

/// An automerge-repo document id: base58check (bitcoin alphabet, 4-byte
/// double-SHA-256 checksum, no version byte) of 16 bytes, exactly as
/// `binaryToDocumentId` / `documentIdToBinary` in `AutomergeUrl.ts`.
/// `automerge:<id>` is the document's URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId {
    bytes: [u8; 16],
    text: String,
}

impl DocumentId {
    /// Longest base58check text that could hold 16 bytes plus the checksum
    /// (20 bytes need at most 28 characters); longer input is refused
    /// before it is decoded.
    const MAX_TEXT_LEN: usize = 28;

    /// Parses the base58check form used on the wire and in URLs.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > Self::MAX_TEXT_LEN {
            return Err(IdError::TooLong {
                len: s.len(),
                max: Self::MAX_TEXT_LEN,
            });
        }
        let payload = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|e| match e {
                bs58::decode::Error::InvalidChecksum { .. } => IdError::BadChecksum,
                bs58::decode::Error::NoChecksum => IdError::WrongLength { len: 0 },
                _ => IdError::NotBase58,
            })?;
        let bytes: [u8; 16] = payload
            .as_slice()
            .try_into()
            .map_err(|_| IdError::WrongLength { len: payload.len() })?;
        Ok(Self::from_bytes(bytes))
    }

    /// Wraps the 16 raw bytes (automerge-repo's `BinaryDocumentId`).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let text = bs58::encode(bytes).with_check().into_string();
        Self { bytes, text }
    }

    /// The base58check text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 16 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.bytes
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for DocumentId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::parse(s)
    }
}

impl From<crate::DocId> for DocumentId {
    fn from(id: crate::DocId) -> Self {
        Self::from_bytes(*id.as_bytes())
    }
}

impl From<&DocumentId> for crate::DocId {
    fn from(id: &DocumentId) -> Self {
        crate::DocId::from_bytes(id.bytes)
    }
}

/// What a peer says about itself in `join` and `peer`
/// (`PeerMetadata` in `NetworkAdapterInterface.ts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// `storageId`: the peer's persistent storage, a UUID string. Absent,
    /// `undefined` and `null` all read as `None`; `None` is not written.
    pub storage_id: Option<String>,
    /// `isEphemeral`: the peer will not come back with this storage id.
    /// Absent, `undefined` and `null` read as `false`; always written.
    pub is_ephemeral: bool,
}

/// One entry of `remote-heads-changed`'s `newHeads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHeads {
    /// `heads`: the document heads of that storage id, each bs58check text.
    pub heads: Vec<String>,
    /// `timestamp`: milliseconds since the Unix epoch, at most 2^53 - 1.
    pub timestamp: u64,
}

/// One wire message. Field names are snake_case here and camelCase on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `join`: the client's first message.
    Join {
        /// `senderId`.
        sender_id: PeerId,
        /// `peerMetadata`.
        peer_metadata: Option<PeerMetadata>,
        /// `supportedProtocolVersions`. `None` when the key is absent, which
        /// the JS server answers with version `"1"`; `Some(vec![])` is an
        /// explicit empty list, which it refuses.
        supported_protocol_versions: Option<Vec<String>>,
    },
    /// `peer`: the server's answer to `join`.
    Peer {
        /// `senderId`: the server.
        sender_id: PeerId,
        /// `targetId`: the client.
        target_id: PeerId,
        /// `peerMetadata`.
        peer_metadata: Option<PeerMetadata>,
        /// `selectedProtocolVersion`.
        selected_protocol_version: String,
    },
    /// `leave`: advisory, sent before disconnecting (README; not sent by 2.x).
    Leave {
        /// `senderId`.
        sender_id: PeerId,
    },
    /// `error`: the sender will close the connection after this.
    Error {
        /// `senderId`: sent by the JS server, absent from the README.
        sender_id: Option<PeerId>,
        /// `targetId`: sent by the JS server, absent from the README.
        target_id: Option<PeerId>,
        /// `message`.
        message: String,
    },
    /// `request`: a sync message that also asks for `doc-unavailable` if the
    /// target does not have the document.
    Request {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
        /// `data`: an automerge sync message.
        data: Vec<u8>,
    },
    /// `sync`: an automerge sync message about one document.
    Sync {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
        /// `data`: an automerge sync message.
        data: Vec<u8>,
    },
    /// `doc-unavailable`: the sender does not have the document, nor do its peers.
    DocUnavailable {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
    },
    /// `ephemeral`: application data that is forwarded but never stored.
    Ephemeral {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `count`: sequence number within the session, at most 2^53 - 1.
        count: u64,
        /// `sessionId`: random per sending repo.
        session_id: String,
        /// `documentId`.
        document_id: DocumentId,
        /// `data`: opaque (in practice CBOR written by the application).
        data: Vec<u8>,
    },
    /// `remote-subscription-change`: storage ids whose heads the sender wants
    /// (or no longer wants) to hear about.
    RemoteSubscriptionChange {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `add`: storage ids to add.
        add: Option<Vec<String>>,
        /// `remove`: storage ids to remove.
        remove: Option<Vec<String>>,
    },
    /// `remote-heads-changed`: heads of a document at other storage ids.
    RemoteHeadsChanged {
        /// `senderId`.
        sender_id: PeerId,
        /// `targetId`.
        target_id: PeerId,
        /// `documentId`.
        document_id: DocumentId,
        /// `newHeads`: storage id to heads.
        new_heads: BTreeMap<String, RemoteHeads>,
    },
    /// A well-formed map whose `type` is none of the above. [`encode`] writes
    /// it back as `{ type }` alone.
    Unknown {
        /// The `type` text.
        type_name: String,
    },
}

impl Message {
    /// The wire `type` of this message.
    pub fn type_name(&self) -> &str {
        match self {
            Self::Join { .. } => "join",
            Self::Peer { .. } => "peer",
            Self::Leave { .. } => "leave",
            Self::Error { .. } => "error",
            Self::Request { .. } => "request",
            Self::Sync { .. } => "sync",
            Self::DocUnavailable { .. } => "doc-unavailable",
            Self::Ephemeral { .. } => "ephemeral",
            Self::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Self::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Self::Unknown { type_name } => type_name,
        }
    }
}

/// Where in a frame a structural error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The top-level map itself.
    Message,
    /// The value of a field; nested fields read `newHeads[0].heads`.
    Field(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message => f.write_str("the message"),
            Self::Field(name) => write!(f, "field `{name}`"),
        }
    }
}

/// Why a frame was refused. Messages are lowercase, have no trailing period
/// and name the offending field where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The frame is larger than [`Limits::max_frame_bytes`].
    #[error("frame is {len} bytes, more than the limit of {max}")]
    FrameTooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The frame has no bytes.
    #[error("frame is empty")]
    Empty,
    /// The frame ends before an item does, or an item declares more bytes or
    /// items than the frame has left.
    #[error("frame ends before the end of {at}")]
    Truncated {
        /// Where.
        at: Location,
    },
    /// Not well-formed CBOR, or CBOR that cbor-x cannot read either.
    #[error("malformed cbor in {at} at byte {offset}: {reason}")]
    Malformed {
        /// Where.
        at: Location,
        /// Offset of the offending item in the frame or field value.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Arrays, maps and tags nest deeper than [`Limits::max_nesting`].
    #[error("{at} nests deeper than the limit of {max}")]
    TooDeep {
        /// Where.
        at: Location,
        /// The limit.
        max: usize,
    },
    /// Bytes follow the message map.
    #[error("{count} trailing bytes after the message map")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The top-level item is not a map.
    #[error("message must be a cbor map, found {found}")]
    NotAMap {
        /// What it is.
        found: &'static str,
    },
    /// A map key is not a definite-length text string.
    #[error("{at} has a key that is not a text string (found {found})")]
    NonTextKey {
        /// Where.
        at: Location,
        /// What the key is.
        found: &'static str,
    },
    /// A map key is longer than [`Limits::max_string_bytes`].
    #[error("{at} has a key of {len} bytes, more than the limit of {max}")]
    KeyTooLong {
        /// Where.
        at: Location,
        /// Key length in bytes.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A map has the same key twice.
    #[error("{at} has the key `{key}` more than once")]
    DuplicateKey {
        /// Where.
        at: Location,
        /// The repeated key.
        key: String,
    },
    /// An array or map has more items than [`Limits::max_list_len`].
    #[error("{at} has more than {max} items")]
    TooManyItems {
        /// Where.
        at: Location,
        /// The limit.
        max: usize,
    },
    /// A required field is absent, `null` or `undefined`.
    #[error("missing field `{field}`")]
    MissingField {
        /// The field.
        field: String,
    },
    /// A field holds the wrong kind of CBOR item.
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The field.
        field: String,
        /// What it should be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A text field is longer than [`Limits::max_string_bytes`].
    #[error("field `{field}` is {len} bytes long, more than the limit of {max}")]
    StringTooLong {
        /// The field.
        field: String,
        /// Its length in bytes.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A text field is not UTF-8.
    #[error("field `{field}` is not valid utf-8")]
    InvalidUtf8 {
        /// The field.
        field: String,
    },
    /// A number is negative, fractional, not finite or above 2^53 - 1.
    #[error("field `{field}` must be a whole number from 0 to 2^53 - 1")]
    NumberOutOfRange {
        /// The field.
        field: String,
    },
    /// A peer id or document id was refused.
    #[error("field `{field}` is invalid: {source}")]
    InvalidId {
        /// The field.
        field: String,
        /// Why.
        source: IdError,
    },
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decodes one frame. Never panics; allocates at most in proportion to the
/// bytes actually present (see the module docs).
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Message, WireError> {
    if bytes.len() > limits.max_frame_bytes {
        return Err(WireError::FrameTooLarge {
            len: bytes.len(),
            max: limits.max_frame_bytes,
        });
    }
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    let mut reader = Reader::new(bytes, 0);
    let fields = read_message_map(&mut reader, limits)?;
    if reader.remaining() > 0 {
        return Err(WireError::TrailingBytes {
            count: reader.remaining(),
        });
    }
    let fields = Fields {
        entries: fields,
        limits,
    };
    fields.into_message()
}

/// Reads the top-level map into `(key, raw value)` pairs, validating every
/// value's structure on the way.
fn read_message_map<'a>(
    reader: &mut Reader<'a>,
    limits: &Limits,
) -> Result<Vec<Entry<'a>>, WireError> {
    let at = Location::Message;
    let len = match reader.head().map_err(|e| e.at(at.clone(), limits))? {
        Head::Map(len) => len,
        other => {
            return Err(WireError::NotAMap {
                found: other.kind(),
            });
        }
    };
    if limits.max_nesting == 0 {
        return Err(WireError::TooDeep {
            at,
            max: limits.max_nesting,
        });
    }
    let mut entries = Vec::new();
    let mut seen = BTreeSet::new();
    while let Some(key) = next_key(reader, len, entries.len(), &at, limits)? {
        if !seen.insert(key) {
            return Err(WireError::DuplicateKey {
                at,
                key: key.to_owned(),
            });
        }
        let start = reader.pos;
        reader
            .skip(1, limits.max_nesting)
            .map_err(|e| e.at(Location::Field(key.to_owned()), limits))?;
        entries.push(Entry {
            key,
            value: reader.buf.get(start..reader.pos).unwrap_or_default(),
            offset: start,
        });
    }
    Ok(entries)
}

/// Reads the next key of a map whose header said `len` (`None`: indefinite),
/// after `read` entries; `None` at the end of the map.
fn next_key<'a>(
    reader: &mut Reader<'a>,
    len: Option<u64>,
    read: usize,
    at: &Location,
    limits: &Limits,
) -> Result<Option<&'a str>, WireError> {
    match len {
        Some(len) if len_u64(read) >= len => return Ok(None),
        Some(len) if len > len_u64(limits.max_list_len) => {
            return Err(WireError::TooManyItems {
                at: at.clone(),
                max: limits.max_list_len,
            });
        }
        Some(_) => {}
        None => {
            if reader.peek() == Some(BREAK) {
                reader.pos += 1;
                return Ok(None);
            }
            if read >= limits.max_list_len {
                return Err(WireError::TooManyItems {
                    at: at.clone(),
                    max: limits.max_list_len,
                });
            }
        }
    }
    let start = reader.offset();
    let len = match reader.head().map_err(|e| e.at(at.clone(), limits))? {
        Head::Text(Some(len)) => len,
        Head::Text(None) => {
            return Err(WireError::Malformed {
                at: at.clone(),
                offset: start,
                reason: "indefinite-length strings are not supported",
            });
        }
        other => {
            return Err(WireError::NonTextKey {
                at: at.clone(),
                found: other.kind(),
            });
        }
    };
    if len > len_u64(limits.max_string_bytes) {
        return Err(WireError::KeyTooLong {
            at: at.clone(),
            len,
            max: limits.max_string_bytes,
        });
    }
    let raw = reader.take_len(len).map_err(|e| e.at(at.clone(), limits))?;
    let key = std::str::from_utf8(raw).map_err(|_| WireError::Malformed {
        at: at.clone(),
        offset: start,
        reason: "map key is not valid utf-8",
    })?;
    Ok(Some(key))
}

/// One top-level field, its value still encoded.
struct Entry<'a> {
    key: &'a str,
    value: &'a [u8],
    /// Where `value` starts in the frame.
    offset: usize,
}

/// The top-level fields of one message.
struct Fields<'a> {
    entries: Vec<Entry<'a>>,
    limits: &'a Limits,
}

impl<'a> Fields<'a> {
    fn into_message(self) -> Result<Message, WireError> {
        let type_name = self.text("type")?;
        let message = match type_name.as_str() {
            "join" => Message::Join {
                sender_id: self.peer_id("senderId")?,
                peer_metadata: self.peer_metadata()?,
                supported_protocol_versions: self.opt_text_list("supportedProtocolVersions")?,
            },
            "peer" => Message::Peer {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                peer_metadata: self.peer_metadata()?,
                selected_protocol_version: self.text("selectedProtocolVersion")?,
            },
            "leave" => Message::Leave {
                sender_id: self.peer_id("senderId")?,
            },
            "error" => Message::Error {
                sender_id: self.opt_peer_id("senderId")?,
                target_id: self.opt_peer_id("targetId")?,
                message: self.text("message")?,
            },
            "request" => Message::Request {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                document_id: self.document_id("documentId")?,
                data: self.bytes("data")?,
            },
            "sync" => Message::Sync {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                document_id: self.document_id("documentId")?,
                data: self.bytes("data")?,
            },
            "doc-unavailable" => Message::DocUnavailable {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                document_id: self.document_id("documentId")?,
            },
            "ephemeral" => Message::Ephemeral {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                count: self.number("count")?,
                session_id: self.text("sessionId")?,
                document_id: self.document_id("documentId")?,
                data: self.bytes("data")?,
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                add: self.opt_text_list("add")?,
                remove: self.opt_text_list("remove")?,
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                sender_id: self.peer_id("senderId")?,
                target_id: self.peer_id("targetId")?,
                document_id: self.document_id("documentId")?,
                new_heads: self.new_heads("newHeads")?,
            },
            _ => Message::Unknown { type_name },
        };
        Ok(message)
    }

    /// The value of `key`, unless it is absent, `null` or `undefined`.
    fn get(&self, key: &str) -> Option<Reader<'a>> {
        let entry = self.entries.iter().find(|e| e.key == key)?;
        if is_nullish(entry.value) {
            None
        } else {
            Some(Reader::new(entry.value, entry.offset))
        }
    }

    fn required(&self, key: &str) -> Result<Reader<'a>, WireError> {
        self.get(key).ok_or_else(|| WireError::MissingField {
            field: key.to_owned(),
        })
    }

    fn text(&self, key: &str) -> Result<String, WireError> {
        let mut r = self.required(key)?;
        Ok(read_text(&mut r, key, self.limits)?.to_owned())
    }

    fn peer_id(&self, key: &str) -> Result<PeerId, WireError> {
        let mut r = self.required(key)?;
        read_peer_id(&mut r, key, self.limits)
    }

    fn opt_peer_id(&self, key: &str) -> Result<Option<PeerId>, WireError> {
        self.get(key)
            .map(|mut r| read_peer_id(&mut r, key, self.limits))
            .transpose()
    }

    fn document_id(&self, key: &str) -> Result<DocumentId, WireError> {
        let mut r = self.required(key)?;
        let text = read_text(&mut r, key, self.limits)?;
        DocumentId::parse(text).map_err(|source| WireError::InvalidId {
            field: key.to_owned(),
            source,
        })
    }

    fn bytes(&self, key: &str) -> Result<Vec<u8>, WireError> {
        let mut r = self.required(key)?;
        read_bytes(&mut r, key, self.limits)
    }

    fn number(&self, key: &str) -> Result<u64, WireError> {
        let mut r = self.required(key)?;
        read_number(&mut r, key, self.limits)
    }

    fn opt_text_list(&self, key: &str) -> Result<Option<Vec<String>>, WireError> {
        self.get(key)
            .map(|mut r| read_text_list(&mut r, key, self.limits))
            .transpose()
    }

    /// `peerMetadata`, or the README's `metadata` when that is all there is.
    fn peer_metadata(&self) -> Result<Option<PeerMetadata>, WireError> {
        let (key, reader) = match (self.get("peerMetadata"), self.get("metadata")) {
            (Some(r), _) => ("peerMetadata", r),
            (None, Some(r)) => ("metadata", r),
            (None, None) => return Ok(None),
        };
        let mut r = reader;
        let mut metadata = PeerMetadata::default();
        for_each_entry(&mut r, key, self.limits, |name, value| {
            let field = format!("{key}.{name}");
            if is_nullish(value.rest()) {
                return value.skip_value(&field, self.limits);
            }
            match name {
                "storageId" => {
                    metadata.storage_id = Some(read_text(value, &field, self.limits)?.to_owned());
                }
                "isEphemeral" => metadata.is_ephemeral = read_bool(value, &field, self.limits)?,
                _ => value.skip_value(&field, self.limits)?,
            }
            Ok(())
        })?;
        Ok(Some(metadata))
    }

    fn new_heads(&self, key: &str) -> Result<BTreeMap<String, RemoteHeads>, WireError> {
        let mut r = self.required(key)?;
        let mut out = BTreeMap::new();
        let mut index = 0usize;
        for_each_entry(&mut r, key, self.limits, |storage_id, value| {
            let entry = format!("{key}[{index}]");
            index += 1;
            let mut heads = None;
            let mut timestamp = None;
            for_each_entry(value, &entry, self.limits, |name, inner| {
                let field = format!("{entry}.{name}");
                if is_nullish(inner.rest()) {
                    return inner.skip_value(&field, self.limits);
                }
                match name {
                    "heads" => heads = Some(read_text_list(inner, &field, self.limits)?),
                    "timestamp" => timestamp = Some(read_number(inner, &field, self.limits)?),
                    _ => inner.skip_value(&field, self.limits)?,
                }
                Ok(())
            })?;
            let missing = |name: &str| WireError::MissingField {
                field: format!("{entry}.{name}"),
            };
            let heads = heads.ok_or_else(|| missing("heads"))?;
            let timestamp = timestamp.ok_or_else(|| missing("timestamp"))?;
            out.insert(storage_id.to_owned(), RemoteHeads { heads, timestamp });
            Ok(())
        })?;
        Ok(out)
    }
}

fn is_nullish(raw: &[u8]) -> bool {
    matches!(raw.first(), Some(&NULL | &UNDEFINED))
}

fn read_text<'a>(r: &mut Reader<'a>, field: &str, limits: &Limits) -> Result<&'a str, WireError> {
    let len = match r.head().map_err(|e| e.at_field(field, limits))? {
        Head::Text(Some(len)) => len,
        other => return Err(wrong_type(field, "a text string", other)),
    };
    if len > len_u64(limits.max_string_bytes) {
        return Err(WireError::StringTooLong {
            field: field.to_owned(),
            len,
            max: limits.max_string_bytes,
        });
    }
    let raw = r.take_len(len).map_err(|e| e.at_field(field, limits))?;
    std::str::from_utf8(raw).map_err(|_| WireError::InvalidUtf8 {
        field: field.to_owned(),
    })
}

fn read_peer_id(r: &mut Reader<'_>, field: &str, limits: &Limits) -> Result<PeerId, WireError> {
    let text = read_text(r, field, limits)?;
    PeerId::new(text).map_err(|source| WireError::InvalidId {
        field: field.to_owned(),
        source,
    })
}

/// A byte string, bare or (as cbor-x 1.3 on Node wrote it) under tag 64.
fn read_bytes(r: &mut Reader<'_>, field: &str, limits: &Limits) -> Result<Vec<u8>, WireError> {
    let mut head = r.head().map_err(|e| e.at_field(field, limits))?;
    if head == Head::Tag(TAG_UINT8_ARRAY) {
        head = r.head().map_err(|e| e.at_field(field, limits))?;
    }
    match head {
        Head::Bytes(Some(len)) => Ok(r
            .take_len(len)
            .map_err(|e| e.at_field(field, limits))?
            .to_vec()),
        other => Err(wrong_type(field, "a byte string", other)),
    }
}

fn read_bool(r: &mut Reader<'_>, field: &str, limits: &Limits) -> Result<bool, WireError> {
    match r.head().map_err(|e| e.at_field(field, limits))? {
        Head::Simple(FALSE_VALUE) => Ok(false),
        Head::Simple(TRUE_VALUE) => Ok(true),
        other => Err(wrong_type(field, "a boolean", other)),
    }
}

/// A JS number holding a whole number in `0..=MAX_SAFE_INTEGER`, written
/// either as a CBOR unsigned integer or as a float (cbor-x uses float64
/// above `u32::MAX`).
fn read_number(r: &mut Reader<'_>, field: &str, limits: &Limits) -> Result<u64, WireError> {
    let out_of_range = || WireError::NumberOutOfRange {
        field: field.to_owned(),
    };
    match r.head().map_err(|e| e.at_field(field, limits))? {
        Head::UInt(n) if n <= MAX_SAFE_INTEGER => Ok(n),
        Head::UInt(_) | Head::NInt(_) => Err(out_of_range()),
        Head::Float(x) => f64_to_safe_integer(x).ok_or_else(out_of_range),
        other => Err(wrong_type(field, "a number", other)),
    }
}

fn read_text_list(
    r: &mut Reader<'_>,
    field: &str,
    limits: &Limits,
) -> Result<Vec<String>, WireError> {
    let len = match r.head().map_err(|e| e.at_field(field, limits))? {
        Head::Array(len) => len,
        other => return Err(wrong_type(field, "an array of text strings", other)),
    };
    let at = || Location::Field(field.to_owned());
    let mut out = Vec::new();
    loop {
        match len {
            Some(len) if len_u64(out.len()) >= len => break,
            Some(len) if len > len_u64(limits.max_list_len) => {
                return Err(WireError::TooManyItems {
                    at: at(),
                    max: limits.max_list_len,
                });
            }
            Some(_) => {}
            None => {
                if r.peek() == Some(BREAK) {
                    r.pos += 1;
                    break;
                }
                if out.len() >= limits.max_list_len {
                    return Err(WireError::TooManyItems {
                        at: at(),
                        max: limits.max_list_len,
                    });
                }
            }
        }
        let item = format!("{field}[{}]", out.len());
        out.push(read_text(r, &item, limits)?.to_owned());
    }
    Ok(out)
}

/// Walks a map with text keys, refusing duplicates; `each` must consume the
/// value it is handed (read it or skip it).
fn for_each_entry<'a>(
    r: &mut Reader<'a>,
    field: &str,
    limits: &Limits,
    mut each: impl FnMut(&'a str, &mut Reader<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let len = match r.head().map_err(|e| e.at_field(field, limits))? {
        Head::Map(len) => len,
        other => return Err(wrong_type(field, "a map", other)),
    };
    let at = Location::Field(field.to_owned());
    let mut seen = BTreeSet::new();
    while let Some(key) = next_key(r, len, seen.len(), &at, limits)? {
        if !seen.insert(key) {
            return Err(WireError::DuplicateKey {
                at,
                key: key.to_owned(),
            });
        }
        each(key, r)?;
    }
    Ok(())
}

fn wrong_type(field: &str, expected: &'static str, found: Head) -> WireError {
    WireError::WrongType {
        field: field.to_owned(),
        expected,
        found: found.kind(),
    }
}

/// `Some(n)` if `x` is a whole number in `0..=MAX_SAFE_INTEGER`. Reads the
/// IEEE-754 bits directly, so no lossy cast is involved.
fn f64_to_safe_integer(x: f64) -> Option<u64> {
    if !x.is_finite() || x.fract() != 0.0 || !(0.0..=9_007_199_254_740_991.0).contains(&x) {
        return None;
    }
    if x == 0.0 {
        return Some(0);
    }
    let bits = x.to_bits();
    let exponent = (bits >> 52) & 0x7ff; // 1023 ..= 1075 here, since 1 <= x < 2^53
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let shift = 1075u64.checked_sub(exponent)?;
    Some(mantissa >> shift)
}

/// The float64 bits of a whole number in `1..=MAX_SAFE_INTEGER`, exactly.
fn safe_integer_to_f64_bits(n: u64) -> u64 {
    debug_assert!(n > 0 && n <= MAX_SAFE_INTEGER);
    let top = 63 - u64::from(n.leading_zeros()); // position of the highest set bit, <= 52
    let mantissa = (n << (52 - top)) & ((1 << 52) - 1);
    ((top + 1023) << 52) | mantissa
}

// ---------------------------------------------------------------------------
// Low-level CBOR reading
// ---------------------------------------------------------------------------

const BREAK: u8 = 0xff;
const FALSE_VALUE: u8 = 20;
const TRUE_VALUE: u8 = 21;
const NULL: u8 = 0xf6;
const UNDEFINED: u8 = 0xf7;
const TAG_UINT8_ARRAY: u64 = 64;

/// One CBOR item head. `None` lengths are indefinite.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Head {
    UInt(u64),
    NInt(u64),
    Bytes(Option<u64>),
    Text(Option<u64>),
    Array(Option<u64>),
    Map(Option<u64>),
    Tag(u64),
    Simple(u8),
    Float(f64),
    Break,
}

impl Head {
    fn kind(self) -> &'static str {
        match self {
            Self::UInt(_) => "an unsigned integer",
            Self::NInt(_) => "a negative integer",
            Self::Bytes(_) => "a byte string",
            Self::Text(_) => "a text string",
            Self::Array(_) => "an array",
            Self::Map(_) => "a map",
            Self::Tag(_) => "a tagged item",
            Self::Simple(FALSE_VALUE | TRUE_VALUE) => "a boolean",
            Self::Simple(22) => "null",
            Self::Simple(23) => "undefined",
            Self::Simple(_) => "a simple value",
            Self::Float(_) => "a float",
            Self::Break => "a break code",
        }
    }
}

/// A reader error before it is placed in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawError {
    Truncated,
    Malformed { offset: usize, reason: &'static str },
    TooDeep,
}

impl RawError {
    fn at(self, at: Location, limits: &Limits) -> WireError {
        match self {
            Self::Truncated => WireError::Truncated { at },
            Self::Malformed { offset, reason } => WireError::Malformed { at, offset, reason },
            Self::TooDeep => WireError::TooDeep {
                at,
                max: limits.max_nesting,
            },
        }
    }

    fn at_field(self, field: &str, limits: &Limits) -> WireError {
        self.at(Location::Field(field.to_owned()), limits)
    }
}

/// An open container while skipping.
enum Open {
    /// Items still to come.
    Counted(u64),
    /// Indefinite length: items seen so far (a map must end on an even count).
    Indefinite { is_map: bool, seen: u64 },
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` in the frame, so errors point into the frame.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    /// Current position in the frame.
    fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RawError> {
        let end = self.pos.checked_add(n).ok_or(RawError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(RawError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// Takes `len` bytes, checking the declared length against what is left
    /// before converting it to `usize`.
    fn take_len(&mut self, len: u64) -> Result<&'a [u8], RawError> {
        if len > len_u64(self.remaining()) {
            return Err(RawError::Truncated);
        }
        let len = usize::try_from(len).map_err(|_| RawError::Truncated)?;
        self.take(len)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], RawError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn head(&mut self) -> Result<Head, RawError> {
        let offset = self.offset();
        let initial = self.take_array::<1>()?[0];
        let major = initial >> 5;
        let info = initial & 0x1f;
        let malformed = |reason| RawError::Malformed { offset, reason };

        if major == 7 {
            return match info {
                0..=23 => Ok(Head::Simple(info)),
                24 => match self.take_array::<1>()?[0] {
                    v if v < 32 => Err(malformed("two-byte simple value below 32")),
                    v => Ok(Head::Simple(v)),
                },
                25 => Ok(Head::Float(f16_to_f64(u16::from_be_bytes(
                    self.take_array()?,
                )))),
                26 => Ok(Head::Float(f64::from(f32::from_bits(u32::from_be_bytes(
                    self.take_array()?,
                ))))),
                27 => Ok(Head::Float(f64::from_bits(u64::from_be_bytes(
                    self.take_array()?,
                )))),
                31 => Ok(Head::Break),
                _ => Err(malformed("reserved additional information value")),
            };
        }

        let arg = match info {
            0..=23 => Some(u64::from(info)),
            24 => Some(u64::from(self.take_array::<1>()?[0])),
            25 => Some(u64::from(u16::from_be_bytes(self.take_array()?))),
            26 => Some(u64::from(u32::from_be_bytes(self.take_array()?))),
            27 => Some(u64::from_be_bytes(self.take_array()?)),
            31 => None,
            _ => return Err(malformed("reserved additional information value")),
        };
        match (major, arg) {
            (0, Some(n)) => Ok(Head::UInt(n)),
            (1, Some(n)) => Ok(Head::NInt(n)),
            (2, len) => Ok(Head::Bytes(len)),
            (3, len) => Ok(Head::Text(len)),
            (4, len) => Ok(Head::Array(len)),
            (5, len) => Ok(Head::Map(len)),
            (6, Some(tag)) => Ok(Head::Tag(tag)),
            _ => Err(malformed("indefinite length on an integer or tag")),
        }
    }

    /// Skips one complete item whose container nesting so far is `depth`,
    /// checking it is well formed. Iterative: the only stack is a `Vec`
    /// bounded by `max_nesting` and by the input length.
    fn skip(&mut self, depth: usize, max_nesting: usize) -> Result<(), RawError> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let offset = self.offset();
            let head = self.head()?;
            let mut finished = match head {
                Head::UInt(_) | Head::NInt(_) | Head::Simple(_) | Head::Float(_) => true,
                Head::Bytes(Some(len)) | Head::Text(Some(len)) => {
                    self.take_len(len)?;
                    true
                }
                Head::Bytes(None) | Head::Text(None) => {
                    return Err(RawError::Malformed {
                        offset,
                        reason: "indefinite-length strings are not supported",
                    });
                }
                Head::Array(_) | Head::Map(_) | Head::Tag(_) => {
                    if depth.saturating_add(open.len()) >= max_nesting {
                        return Err(RawError::TooDeep);
                    }
                    let remaining = len_u64(self.remaining());
                    match head {
                        Head::Array(Some(0)) | Head::Map(Some(0)) => true,
                        Head::Array(Some(n)) if n > remaining => return Err(RawError::Truncated),
                        Head::Map(Some(n)) if n > remaining / 2 => return Err(RawError::Truncated),
                        Head::Array(Some(n)) => {
                            open.push(Open::Counted(n));
                            false
                        }
                        Head::Map(Some(n)) => {
                            open.push(Open::Counted(n * 2));
                            false
                        }
                        Head::Array(None) => {
                            open.push(Open::Indefinite {
                                is_map: false,
                                seen: 0,
                            });
                            false
                        }
                        Head::Map(None) => {
                            open.push(Open::Indefinite {
                                is_map: true,
                                seen: 0,
                            });
                            false
                        }
                        _ => {
                            open.push(Open::Counted(1));
                            false
                        }
                    }
                }
                Head::Break => match open.pop() {
                    Some(Open::Indefinite { is_map, seen }) => {
                        if is_map && seen % 2 != 0 {
                            return Err(RawError::Malformed {
                                offset,
                                reason: "map ends after a key with no value",
                            });
                        }
                        true
                    }
                    _ => {
                        return Err(RawError::Malformed {
                            offset,
                            reason: "break code outside an indefinite-length item",
                        });
                    }
                },
            };
            while finished {
                match open.last_mut() {
                    None => return Ok(()),
                    Some(Open::Counted(left)) => {
                        *left = left.saturating_sub(1);
                        if *left == 0 {
                            open.pop();
                        } else {
                            finished = false;
                        }
                    }
                    Some(Open::Indefinite { seen, .. }) => {
                        *seen = seen.saturating_add(1);
                        finished = false;
                    }
                }
            }
        }
    }

    /// Skips a value inside an already validated field.
    fn skip_value(&mut self, field: &str, limits: &Limits) -> Result<(), WireError> {
        self.skip(0, limits.max_nesting)
            .map_err(|e| e.at_field(field, limits))
    }
}

fn f16_to_f64(half: u16) -> f64 {
    let sign = if half & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exponent = (half >> 10) & 0x1f;
    let mantissa = f64::from(half & 0x3ff);
    let magnitude = match exponent {
        0 => mantissa * 2f64.powi(-24),
        31 if mantissa == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (mantissa + 1024.0) * 2f64.powi(i32::from(e) - 25),
    };
    sign * magnitude
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Encodes one message as preferred-form CBOR (shortest headers), keys in a
/// fixed order. cbor-x reads it as the same JS object the JS side would
/// have built; numbers above `u32::MAX` are written as float64 so that they
/// come out as JS numbers rather than `BigInt`s.
pub fn encode(msg: &Message) -> Vec<u8> {
    let mut m = MapWriter::default();
    m.text("type", msg.type_name());
    match msg {
        Message::Join {
            sender_id,
            peer_metadata,
            supported_protocol_versions,
        } => {
            m.text("senderId", sender_id.as_str());
            if let Some(meta) = peer_metadata {
                m.raw("peerMetadata", &encode_peer_metadata(meta));
            }
            if let Some(versions) = supported_protocol_versions {
                m.text_list("supportedProtocolVersions", versions);
            }
        }
        Message::Peer {
            sender_id,
            target_id,
            peer_metadata,
            selected_protocol_version,
        } => {
            m.text("senderId", sender_id.as_str());
            m.text("targetId", target_id.as_str());
            if let Some(meta) = peer_metadata {
                m.raw("peerMetadata", &encode_peer_metadata(meta));
            }
            m.text("selectedProtocolVersion", selected_protocol_version);
        }
        Message::Leave { sender_id } => m.text("senderId", sender_id.as_str()),
        Message::Error {
            sender_id,
            target_id,
            message,
        } => {
            if let Some(id) = sender_id {
                m.text("senderId", id.as_str());
            }
            if let Some(id) = target_id {
                m.text("targetId", id.as_str());
            }
            m.text("message", message);
        }
        Message::Request {
            sender_id,
            target_id,
            document_id,
            data,
        }
        | Message::Sync {
            sender_id,
            target_id,
            document_id,
            data,
        } => {
            m.text("senderId", sender_id.as_str());
            m.text("targetId", target_id.as_str());
            m.text("documentId", document_id.as_str());
            m.bytes("data", data);
        }
        Message::DocUnavailable {
            sender_id,
            target_id,
            document_id,
        } => {
            m.text("senderId", sender_id.as_str());
            m.text("targetId", target_id.as_str());
            m.text("documentId", document_id.as_str());
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            count,
            session_id,
            document_id,
            data,
        } => {
            m.text("senderId", sender_id.as_str());
            m.text("targetId", target_id.as_str());
            m.number("count", *count);
            m.text("sessionId", session_id);
            m.text("documentId", document_id.as_str());
            m.bytes("data", data);
        }
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => {
            m.text("senderId", sender_id.as_str());
            m.text("targetId", target_id.as_str());
            if let Some(add) = add {
                m.text_list("add", add);
            }
            if let Some(remove) = remove {
                m.text_list("remove", remove);
            }
        }
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => {
            m.text("senderId", sender_id.as_str());
            m.text("targetId", target_id.as_str());
            m.text("documentId", document_id.as_str());
            let mut heads_map = MapWriter::default();
            for (storage_id, entry) in new_heads {
                let mut e = MapWriter::default();
                e.text_list("heads", &entry.heads);
                e.number("timestamp", entry.timestamp);
                heads_map.raw(storage_id, &e.finish());
            }
            m.raw("newHeads", &heads_map.finish());
        }
        Message::Unknown { .. } => {}
    }
    m.finish()
}

fn encode_peer_metadata(meta: &PeerMetadata) -> Vec<u8> {
    let mut m = MapWriter::default();
    if let Some(storage_id) = &meta.storage_id {
        m.text("storageId", storage_id);
    }
    m.bool("isEphemeral", meta.is_ephemeral);
    m.finish()
}

/// Writes a CBOR head with the shortest argument encoding.
fn write_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let major = major << 5;
    let be = n.to_be_bytes();
    match n {
        0..=23 => out.push(major | be[7]),
        24..=0xff => out.extend_from_slice(&[major | 24, be[7]]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&be[6..]);
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&be[4..]);
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&be);
        }
    }
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, 3, len_u64(s.len()));
    out.extend_from_slice(s.as_bytes());
}

/// A JS number: an unsigned integer up to `u32::MAX` (as cbor-x writes it),
/// float64 above that up to 2^53 - 1, and uint64 beyond (which no JS peer
/// can send, and cbor-x would read as a `BigInt`).
fn write_number(out: &mut Vec<u8>, n: u64) {
    if n <= u64::from(u32::MAX) || n > MAX_SAFE_INTEGER {
        write_head(out, 0, n);
    } else {
        out.push(0xfb);
        out.extend_from_slice(&safe_integer_to_f64_bits(n).to_be_bytes());
    }
}

/// Collects map entries, then writes the header with the final count.
#[derive(Default)]
struct MapWriter {
    body: Vec<u8>,
    len: u64,
}

impl MapWriter {
    fn key(&mut self, key: &str) {
        self.len += 1;
        write_text(&mut self.body, key);
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        write_text(&mut self.body, value);
    }

    fn bytes(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        write_head(&mut self.body, 2, len_u64(value.len()));
        self.body.extend_from_slice(value);
    }

    fn bool(&mut self, key: &str, value: bool) {
        self.key(key);
        self.body.push(if value { 0xf5 } else { 0xf4 });
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        write_number(&mut self.body, value);
    }

    fn text_list(&mut self, key: &str, items: &[String]) {
        self.key(key);
        write_head(&mut self.body, 4, len_u64(items.len()));
        for item in items {
            write_text(&mut self.body, item);
        }
    }

    /// An already encoded value.
    fn raw(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        self.body.extend_from_slice(value);
    }

    fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 9);
        write_head(&mut out, 5, self.len);
        out.extend(self.body);
        out
    }
}

// ---------------------------------------------------------------------------
// The relay's notices, carried in `ephemeral` messages
// ---------------------------------------------------------------------------

/// The relay's notice that it refused changes to a document (DESIGN.md §5):
/// the `data` of an `ephemeral` message, CBOR `{type: "change-rejected",
/// rule, reason, changes: [hex hash, …]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRejected {
    /// The hard rule's name.
    pub rule: String,
    /// A sentence for people.
    pub reason: String,
    /// The refused changes' hashes, as hex.
    pub changes: Vec<String>,
}

impl ChangeRejected {
    /// The notice's `type`.
    pub const TYPE: &'static str = "change-rejected";

    /// Encodes the notice.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = MapWriter::default();
        m.text("type", Self::TYPE);
        m.text("rule", &self.rule);
        m.text("reason", &self.reason);
        m.text_list("changes", &self.changes);
        m.finish()
    }

    /// Decodes a notice; `None` if `data` is not one.
    pub fn decode(data: &[u8], limits: &Limits) -> Option<Self> {
        let mut reader = Reader::new(data, 0);
        let entries = read_message_map(&mut reader, limits).ok()?;
        if reader.remaining() > 0 {
            return None;
        }
        let f = Fields { entries, limits };
        if f.text("type").ok()? != Self::TYPE {
            return None;
        }
        Some(Self {
            rule: f.text("rule").ok()?,
            reason: f.text("reason").ok()?,
            changes: f.opt_text_list("changes").ok()?.unwrap_or_default(),
        })
    }
}

/// A document's heads, digested: the first 16 bytes of SHA-256 over its
/// sorted heads. Two replicas with the same digest have the same heads.
pub fn heads_digest(heads: &[automerge::ChangeHash]) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&automerge::ChangeHash> = heads.iter().collect();
    sorted.sort();
    let mut h = Sha256::new();
    for head in sorted {
        h.update(head.0);
    }
    let mut out = [0; 16];
    out.copy_from_slice(&h.finalize()[..16]);
    out
}

/// A device's question on reconnecting, so it need not sync every document
/// it holds to learn which changed: the `data` of an `ephemeral` message
/// (on its inbox document), CBOR `{type: "propsync-digests", docs: bytes}`
/// where `docs` is 32 bytes per document: its id, then [`heads_digest`] of
/// the device's copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadsDigests {
    /// Each document and the digest of the device's heads.
    pub docs: Vec<(crate::DocId, [u8; 16])>,
}

impl HeadsDigests {
    /// The message's `type`.
    pub const TYPE: &'static str = "propsync-digests";

    /// Encodes the question.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.docs.len() * 32);
        for (id, digest) in &self.docs {
            bytes.extend_from_slice(id.as_bytes());
            bytes.extend_from_slice(digest);
        }
        let mut m = MapWriter::default();
        m.text("type", Self::TYPE);
        m.bytes("docs", &bytes);
        m.finish()
    }

    /// Decodes a question; `None` if `data` is not one.
    pub fn decode(data: &[u8], limits: &Limits) -> Option<Self> {
        let mut reader = Reader::new(data, 0);
        let entries = read_message_map(&mut reader, limits).ok()?;
        let f = Fields { entries, limits };
        if reader.remaining() > 0 || f.text("type").ok()? != Self::TYPE {
            return None;
        }
        let bytes = f.bytes("docs").ok()?;
        if bytes.len() % 32 != 0 {
            return None;
        }
        let docs = bytes
            .chunks_exact(32)
            .map(|c| {
                let mut id = [0; 16];
                id.copy_from_slice(&c[..16]);
                let mut digest = [0; 16];
                digest.copy_from_slice(&c[16..]);
                (crate::DocId::from_bytes(id), digest)
            })
            .collect();
        Some(Self { docs })
    }
}

/// The relay's answer to [`HeadsDigests`]: the documents whose heads on the
/// relay differ from the device's (CBOR `{type: "propsync-stale", docs:
/// bytes}`, 16 bytes per document id). The device syncs those only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stale {
    /// The documents to sync.
    pub docs: Vec<crate::DocId>,
}

impl Stale {
    /// The message's `type`.
    pub const TYPE: &'static str = "propsync-stale";

    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        let bytes: Vec<u8> = self.docs.iter().flat_map(|d| *d.as_bytes()).collect();
        let mut m = MapWriter::default();
        m.text("type", Self::TYPE);
        m.bytes("docs", &bytes);
        m.finish()
    }

    /// Decodes an answer; `None` if `data` is not one.
    pub fn decode(data: &[u8], limits: &Limits) -> Option<Self> {
        let mut reader = Reader::new(data, 0);
        let entries = read_message_map(&mut reader, limits).ok()?;
        let f = Fields { entries, limits };
        if reader.remaining() > 0 || f.text("type").ok()? != Self::TYPE {
            return None;
        }
        let bytes = f.bytes("docs").ok()?;
        if bytes.len() % 16 != 0 {
            return None;
        }
        let docs = bytes
            .chunks_exact(16)
            .map(|c| {
                let mut id = [0; 16];
                id.copy_from_slice(c);
                crate::DocId::from_bytes(id)
            })
            .collect();
        Some(Self { docs })
    }
}

#[cfg(test)]
mod tests;
