//! Unit tests for the wire codec: frames as cbor-x writes them, rejections,
//! byte-exact encodings, and property tests.

use super::*;
use insta::assert_snapshot;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn limits() -> Limits {
    Limits::default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn peer(s: &str) -> PeerId {
    PeerId::new(s).expect("valid peer id")
}

/// The document id from automerge-repo's own `AutomergeUrl.test.ts`.
const GOOD_DOCUMENT_ID: &str = "4NMNnkMhL8jXrdJ9jamS58PAVdXu";
const GOOD_BINARY_DOCUMENT_ID: [u8; 16] = [
    241, 194, 156, 132, 116, 200, 74, 222, 184, 0, 190, 71, 98, 125, 51, 191,
];

fn doc() -> DocumentId {
    DocumentId::parse(GOOD_DOCUMENT_ID).expect("valid document id")
}

/// Pieces of CBOR exactly as cbor-x 1.x writes them with
/// `new Encoder({ tagUint8Array: false, useRecords: false })`.
mod cborx {
    /// A text string: shortest header (cbor-x patches it after writing).
    pub(super) fn text(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        super::write_text(&mut out, s);
        out
    }

    /// A plain JS object: *always* `0xb9` plus a 16-bit count, then
    /// key/value pairs in insertion order.
    pub(super) fn object(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let count = u16::try_from(entries.len()).expect("small object");
        let mut out = vec![0xb9];
        out.extend_from_slice(&count.to_be_bytes());
        for (key, value) in entries {
            out.extend(text(key));
            out.extend_from_slice(value);
        }
        out
    }

    /// A `Uint8Array`: bare byte string, shortest header.
    pub(super) fn bytes(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        super::write_head(&mut out, 2, super::len_u64(b.len()));
        out.extend_from_slice(b);
        out
    }

    /// A JS `Array` of strings: `0x80 | len` below 24.
    pub(super) fn strings(items: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        super::write_head(&mut out, 4, super::len_u64(items.len()));
        for item in items {
            out.extend(text(item));
        }
        out
    }

    /// A JS number, by cbor-x's rule: integer if `value >>> 0 === value`,
    /// float64 otherwise.
    pub(super) fn number(n: f64) -> Vec<u8> {
        if (0.0..=4_294_967_295.0).contains(&n) && n.fract() == 0.0 {
            let mut out = Vec::new();
            let int = super::f64_to_safe_integer(n).expect("whole");
            super::write_head(&mut out, 0, int);
            out
        } else {
            let mut out = vec![0xfb];
            out.extend_from_slice(&n.to_bits().to_be_bytes());
            out
        }
    }

    pub(super) const UNDEFINED: u8 = 0xf7;
    pub(super) const TRUE: u8 = 0xf5;
    pub(super) const FALSE: u8 = 0xf4;
}

fn frame(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    cborx::object(entries)
}

fn t(s: &str) -> Vec<u8> {
    cborx::text(s)
}

fn assert_message_style(err: &WireError) {
    let text = err.to_string();
    assert!(!text.is_empty());
    assert!(!text.ends_with('.'), "trailing period: {text}");
    assert!(
        !text.chars().next().is_some_and(char::is_uppercase),
        "starts uppercase: {text}"
    );
}

// ---------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------

#[test]
fn document_id_matches_automerge_repo_test_vector() {
    let id = DocumentId::parse(GOOD_DOCUMENT_ID).unwrap();
    assert_eq!(id.as_bytes(), &GOOD_BINARY_DOCUMENT_ID);
    assert_eq!(id.as_str(), GOOD_DOCUMENT_ID);
    let from_bytes = DocumentId::from_bytes(GOOD_BINARY_DOCUMENT_ID);
    assert_eq!(from_bytes.as_str(), GOOD_DOCUMENT_ID);
    assert_eq!(from_bytes, id);
    assert_eq!(
        format!("automerge:{id}"),
        "automerge:4NMNnkMhL8jXrdJ9jamS58PAVdXu"
    );
    assert_eq!(GOOD_DOCUMENT_ID.parse::<DocumentId>().unwrap(), id);
}

#[test]
fn document_id_rejections() {
    // From AutomergeUrl.test.ts: "badbadbad" has a bad checksum.
    assert_eq!(DocumentId::parse("badbadbad"), Err(IdError::BadChecksum));
    assert_eq!(DocumentId::parse(""), Err(IdError::Empty));
    assert_eq!(DocumentId::parse("0OIl0OIl0OIl"), Err(IdError::NotBase58));
    // AutomergeUrl.test.ts's `badUuidDocumentId`: bs58check of 8 bytes, which
    // JS's isValidDocumentId accepts but which is not a 16-byte id.
    let eight = bs58::encode([1u8, 2, 3, 4, 42, 255, 69, 9])
        .with_check()
        .into_string();
    assert_eq!(
        DocumentId::parse(&eight),
        Err(IdError::WrongLength { len: 8 })
    );
    let long = "1".repeat(29);
    assert_eq!(
        DocumentId::parse(&long),
        Err(IdError::TooLong { len: 29, max: 28 })
    );
    // A single flipped character breaks the checksum.
    let mut flipped = GOOD_DOCUMENT_ID.to_owned();
    flipped.replace_range(0..1, "5");
    assert_eq!(DocumentId::parse(&flipped), Err(IdError::BadChecksum));
    // Too short to hold a checksum.
    assert_eq!(DocumentId::parse("2"), Err(IdError::WrongLength { len: 0 }));
}

#[test]
fn document_id_all_zero_and_all_ff_round_trip() {
    for bytes in [[0u8; 16], [0xff; 16]] {
        let id = DocumentId::from_bytes(bytes);
        assert!(id.as_str().len() <= 28);
        assert_eq!(DocumentId::parse(id.as_str()).unwrap(), id);
    }
}

#[test]
fn peer_id_rules() {
    assert_eq!(PeerId::new(""), Err(IdError::Empty));
    assert!(PeerId::new("peer-5ffv1ix2").is_ok());
    assert!(PeerId::new("x".repeat(PeerId::MAX_LEN)).is_ok());
    assert_eq!(
        PeerId::new("x".repeat(PeerId::MAX_LEN + 1)),
        Err(IdError::TooLong {
            len: 1025,
            max: 1024
        })
    );
    assert_eq!(peer("server").to_string(), "server");
    assert_eq!(peer("server").into_string(), "server");
}

// ---------------------------------------------------------------------------
// Frames as a JS client or server really sends them
// ---------------------------------------------------------------------------

/// `WebSocketClientAdapter.join()` in a repo with no storage:
/// `{ type, senderId, peerMetadata: { storageId: undefined, isEphemeral: true },
///    supportedProtocolVersions: ["1"] }` — the exact object that
/// `Websocket.test.ts` asserts on.
fn js_join_without_storage() -> Vec<u8> {
    frame(&[
        ("type", t("join")),
        ("senderId", t("peer-5ffv1ix2")),
        (
            "peerMetadata",
            cborx::object(&[
                ("storageId", vec![cborx::UNDEFINED]),
                ("isEphemeral", vec![cborx::TRUE]),
            ]),
        ),
        ("supportedProtocolVersions", cborx::strings(&["1"])),
    ])
}

#[test]
fn decodes_js_join_without_storage() {
    let bytes = js_join_without_storage();
    // Spelled out, so the 16-bit map headers and the 0xf7 are visible.
    assert_snapshot!(hex(&bytes), @"b900046474797065646a6f696e6873656e64657249646d706565722d35666676316978326c706565724d65746164617461b900026973746f726167654964f76b6973457068656d6572616cf57819737570706f7274656450726f746f636f6c56657273696f6e73816131");
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Join {
            sender_id: peer("peer-5ffv1ix2"),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true
            }),
            supported_protocol_versions: Some(vec!["1".into()]),
        }
    );
}

#[test]
fn decodes_js_join_with_storage() {
    let bytes = frame(&[
        ("type", t("join")),
        ("senderId", t("peer-abc")),
        (
            "peerMetadata",
            cborx::object(&[
                ("storageId", t("3760df37-a4c6-4f66-9ecd-732039a9385d")),
                ("isEphemeral", vec![cborx::FALSE]),
            ]),
        ),
        ("supportedProtocolVersions", cborx::strings(&["1"])),
    ]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Join {
            sender_id: peer("peer-abc"),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some("3760df37-a4c6-4f66-9ecd-732039a9385d".into()),
                is_ephemeral: false
            }),
            supported_protocol_versions: Some(vec!["1".into()]),
        }
    );
}

#[test]
fn join_without_versions_or_metadata_is_not_an_error() {
    // Websocket.test.ts: "should respond with protocol v1 if no protocol
    // version is specified".
    let bytes = frame(&[("type", t("join")), ("senderId", t("browser"))]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Join {
            sender_id: peer("browser"),
            peer_metadata: None,
            supported_protocol_versions: None,
        }
    );
}

#[test]
fn readme_metadata_key_is_read_as_an_alias() {
    let bytes = frame(&[
        ("type", t("join")),
        ("senderId", t("a")),
        (
            "metadata",
            cborx::object(&[("isEphemeral", vec![cborx::TRUE])]),
        ),
        ("supportedProtocolVersions", cborx::strings(&["1"])),
    ]);
    let Message::Join { peer_metadata, .. } = decode(&bytes, &limits()).unwrap() else {
        panic!("not a join");
    };
    assert_eq!(
        peer_metadata,
        Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true
        })
    );
}

/// `DocSynchronizer` builds `{ type, targetId, data, documentId }`,
/// `NetworkSubsystem` spreads it and appends `senderId`.
#[test]
fn decodes_js_sync() {
    let data: Vec<u8> = (0..300u16).map(|i| i.to_be_bytes()[1]).collect();
    let bytes = frame(&[
        ("type", t("sync")),
        ("targetId", t("server")),
        ("data", cborx::bytes(&data)),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        ("senderId", t("peer-5ffv1ix2")),
    ]);
    // 300 bytes: a 0x59 (16-bit length) byte-string header.
    let at = bytes.windows(3).position(|w| w == [0x59, 0x01, 0x2c]);
    assert!(at.is_some());
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Sync {
            sender_id: peer("peer-5ffv1ix2"),
            target_id: peer("server"),
            document_id: doc(),
            data,
        }
    );
}

#[test]
fn decodes_js_request_with_tag_64_data() {
    // cbor-x 1.3 on Node tagged plain Uint8Arrays with 64 (RFC 8746).
    let mut data = vec![0xd8, 0x40];
    data.extend(cborx::bytes(&[0x42, 0x01, 0x02]));
    let bytes = frame(&[
        ("type", t("request")),
        ("targetId", t("server")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        ("data", data),
        ("senderId", t("client")),
    ]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Request {
            sender_id: peer("client"),
            target_id: peer("server"),
            document_id: doc(),
            data: vec![0x42, 0x01, 0x02],
        }
    );
}

#[test]
fn decodes_js_ephemeral() {
    // `{ type, targetId, documentId, data }` plus count, sessionId, senderId.
    let bytes = frame(&[
        ("type", t("ephemeral")),
        ("targetId", t("server")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        ("data", cborx::bytes(&[0xa1, 0x61, 0x78, 0x01])),
        ("count", cborx::number(42.0)),
        ("sessionId", t("k3x9q0a7b1")),
        ("senderId", t("client")),
    ]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Ephemeral {
            sender_id: peer("client"),
            target_id: peer("server"),
            count: 42,
            session_id: "k3x9q0a7b1".into(),
            document_id: doc(),
            data: vec![0xa1, 0x61, 0x78, 0x01],
        }
    );
}

#[test]
fn decodes_js_remote_heads_changed_with_float64_timestamp() {
    let timestamp = 1_717_171_717_171.0_f64; // Date.now(): above u32::MAX
    let encoded_timestamp = cborx::number(timestamp);
    assert_eq!(encoded_timestamp[0], 0xfb);
    let bytes = frame(&[
        ("type", t("remote-heads-changed")),
        ("targetId", t("server")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        (
            "newHeads",
            cborx::object(&[(
                "3760df37-a4c6-4f66-9ecd-732039a9385d",
                cborx::object(&[
                    (
                        "heads",
                        cborx::strings(&["2Kc1jV3L5BZyZyJWsr4y8eHuMNqbfsrHGW"]),
                    ),
                    ("timestamp", encoded_timestamp),
                ]),
            )]),
        ),
        ("senderId", t("client")),
    ]);
    let expected = Message::RemoteHeadsChanged {
        sender_id: peer("client"),
        target_id: peer("server"),
        document_id: doc(),
        new_heads: BTreeMap::from([(
            "3760df37-a4c6-4f66-9ecd-732039a9385d".to_owned(),
            RemoteHeads {
                heads: vec!["2Kc1jV3L5BZyZyJWsr4y8eHuMNqbfsrHGW".into()],
                timestamp: 1_717_171_717_171,
            },
        )]),
    };
    assert_eq!(decode(&bytes, &limits()).unwrap(), expected);
    // And it goes back out as float64 too, so cbor-x yields a number, not a BigInt.
    let out = encode(&expected);
    let bits = timestamp.to_bits().to_be_bytes();
    let mut needle = vec![0xfb];
    needle.extend_from_slice(&bits);
    assert!(out.windows(9).any(|w| w == needle.as_slice()));
}

#[test]
fn decodes_js_remote_subscription_change_with_undefined_remove() {
    // RemoteHeadsSubscriptions.subscribeToRemotes emits `{ add, peers }`;
    // Repo then sends `{ type, targetId, add, remove: undefined }`.
    let bytes = frame(&[
        ("type", t("remote-subscription-change")),
        ("targetId", t("server")),
        (
            "add",
            cborx::strings(&["3760df37-a4c6-4f66-9ecd-732039a9385d"]),
        ),
        ("remove", vec![cborx::UNDEFINED]),
        ("senderId", t("client")),
    ]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::RemoteSubscriptionChange {
            sender_id: peer("client"),
            target_id: peer("server"),
            add: Some(vec!["3760df37-a4c6-4f66-9ecd-732039a9385d".into()]),
            remove: None,
        }
    );
}

#[test]
fn decodes_js_server_peer_and_error() {
    // WebSocketServerAdapter: `{ type, senderId, peerMetadata,
    // selectedProtocolVersion, targetId }`.
    let peer_frame = frame(&[
        ("type", t("peer")),
        ("senderId", t("server")),
        (
            "peerMetadata",
            cborx::object(&[
                ("storageId", vec![cborx::UNDEFINED]),
                ("isEphemeral", vec![cborx::TRUE]),
            ]),
        ),
        ("selectedProtocolVersion", t("1")),
        ("targetId", t("browser")),
    ]);
    assert_eq!(
        decode(&peer_frame, &limits()).unwrap(),
        Message::Peer {
            sender_id: peer("server"),
            target_id: peer("browser"),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true
            }),
            selected_protocol_version: "1".into(),
        }
    );
    let error_frame = frame(&[
        ("type", t("error")),
        ("senderId", t("server")),
        ("message", t("unsupported protocol version")),
        ("targetId", t("browser")),
    ]);
    assert_eq!(
        decode(&error_frame, &limits()).unwrap(),
        Message::Error {
            sender_id: Some(peer("server")),
            target_id: Some(peer("browser")),
            message: "unsupported protocol version".into(),
        }
    );
    // The README's bare `{ type, message }` form.
    let bare = frame(&[("type", t("error")), ("message", t("nope"))]);
    assert_eq!(
        decode(&bare, &limits()).unwrap(),
        Message::Error {
            sender_id: None,
            target_id: None,
            message: "nope".into(),
        }
    );
}

#[test]
fn decodes_doc_unavailable_and_leave() {
    let bytes = frame(&[
        ("type", t("doc-unavailable")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        ("targetId", t("client")),
        ("senderId", t("server")),
    ]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::DocUnavailable {
            sender_id: peer("server"),
            target_id: peer("client"),
            document_id: doc(),
        }
    );
    let leave = frame(&[("type", t("leave")), ("senderId", t("client"))]);
    assert_eq!(
        decode(&leave, &limits()).unwrap(),
        Message::Leave {
            sender_id: peer("client")
        }
    );
}

#[test]
fn decodes_canonical_frames_written_by_ciborium() {
    use ciborium::Value;
    let value = Value::Map(vec![
        (Value::Text("type".into()), Value::Text("sync".into())),
        (Value::Text("senderId".into()), Value::Text("a".into())),
        (Value::Text("targetId".into()), Value::Text("b".into())),
        (
            Value::Text("documentId".into()),
            Value::Text(GOOD_DOCUMENT_ID.into()),
        ),
        (Value::Text("data".into()), Value::Bytes(vec![1, 2, 3])),
        (
            Value::Text("someFutureField".into()),
            Value::Array(vec![Value::Float(1.5), Value::Null, Value::Bool(true)]),
        ),
    ]);
    let mut bytes = Vec::new();
    ciborium::into_writer(&value, &mut bytes).unwrap();
    assert_eq!(bytes[0], 0xa6); // preferred form, unlike cbor-x
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Sync {
            sender_id: peer("a"),
            target_id: peer("b"),
            document_id: doc(),
            data: vec![1, 2, 3],
        }
    );
}

#[test]
fn indefinite_length_maps_and_arrays_are_read() {
    // { _ "type": "join", "senderId": "a", "supportedProtocolVersions": [_ "1"] }
    let mut bytes = vec![0xbf];
    bytes.extend(t("type"));
    bytes.extend(t("join"));
    bytes.extend(t("senderId"));
    bytes.extend(t("a"));
    bytes.extend(t("supportedProtocolVersions"));
    bytes.push(0x9f);
    bytes.extend(t("1"));
    bytes.push(0xff);
    bytes.push(0xff);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Join {
            sender_id: peer("a"),
            peer_metadata: None,
            supported_protocol_versions: Some(vec!["1".into()]),
        }
    );
}

#[test]
fn numbers_as_float16_float32_and_uint() {
    for (encoded, expected) in [
        (vec![0x18, 0x2a], 42u64),
        (vec![0xf9, 0x51, 0x40], 42),                    // f16 42.0
        (vec![0xfa, 0x42, 0x28, 0x00, 0x00], 42),        // f32 42.0
        (vec![0xf9, 0x80, 0x00], 0),                     // f16 -0.0
        (unhex("1b001fffffffffffff"), MAX_SAFE_INTEGER), // uint64 2^53-1
    ] {
        let bytes = frame(&[
            ("type", t("ephemeral")),
            ("senderId", t("a")),
            ("targetId", t("b")),
            ("count", encoded),
            ("sessionId", t("s")),
            ("documentId", t(GOOD_DOCUMENT_ID)),
            ("data", cborx::bytes(&[1])),
        ]);
        let Message::Ephemeral { count, .. } = decode(&bytes, &limits()).unwrap() else {
            panic!("not ephemeral");
        };
        assert_eq!(count, expected);
    }
}

// ---------------------------------------------------------------------------
// Rejections
// ---------------------------------------------------------------------------

fn sync_with(field: &str, value: Vec<u8>) -> Vec<u8> {
    let mut entries = vec![
        ("type", t("sync")),
        ("senderId", t("a")),
        ("targetId", t("b")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        ("data", cborx::bytes(&[1, 2])),
    ];
    for entry in &mut entries {
        if entry.0 == field {
            entry.1 = value.clone();
        }
    }
    frame(&entries)
}

fn err(bytes: &[u8]) -> WireError {
    let e = decode(bytes, &limits()).expect_err("should be rejected");
    assert_message_style(&e);
    e
}

#[test]
fn rejects_4_gib_byte_string_declared_in_20_bytes() {
    // { "type": "foo", "data": h'…' with a 4 GiB - 1 length and no content }
    let mut bytes = vec![0xa2];
    bytes.extend(t("type"));
    bytes.extend(t("foo"));
    bytes.extend(t("data"));
    bytes.extend([0x5a, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(bytes.len(), 20);
    let e = err(&bytes);
    assert_eq!(
        e,
        WireError::Truncated {
            at: Location::Field("data".into())
        }
    );
    assert_snapshot!(e, @"frame ends before the end of field `data`");

    // 2^64 - 1 bytes, and the same in a known field of a known type.
    let huge = sync_with("data", unhex("5bffffffffffffffff"));
    assert_eq!(
        err(&huge),
        WireError::Truncated {
            at: Location::Field("data".into())
        }
    );
    // A 2^63-byte text string as a key.
    let mut key = vec![0xa1, 0x7b, 0x80, 0, 0, 0, 0, 0, 0, 0];
    key.extend(t("x"));
    assert_eq!(
        err(&key),
        WireError::KeyTooLong {
            at: Location::Message,
            len: 1 << 63,
            max: 1024
        }
    );
}

#[test]
fn rejects_huge_declared_counts_without_allocating() {
    // The JS test suite's own "invalid large array": [2^32 items].
    let e = err(&unhex("9b0000000100000000"));
    assert_eq!(e, WireError::NotAMap { found: "an array" });
    // The same inside a field, and a map declaring 2^63 pairs.
    for value in [unhex("9b0000000100000000"), unhex("bb8000000000000000")] {
        assert_eq!(
            err(&sync_with("data", value)),
            WireError::Truncated {
                at: Location::Field("data".into())
            }
        );
    }
    // A message map declaring 2^32 entries.
    let e = err(&unhex("ba ffffffff 6474797065 6474797065"));
    assert_eq!(
        e,
        WireError::TooManyItems {
            at: Location::Message,
            max: 1024
        }
    );
    // A list field declaring 2^32 items.
    let e = err(&frame(&[
        ("type", t("join")),
        ("senderId", t("a")),
        ("supportedProtocolVersions", unhex("9a ffffffff 6131")),
    ]));
    assert_eq!(
        e,
        WireError::Truncated {
            at: Location::Field("supportedProtocolVersions".into())
        }
    );
}

#[test]
fn rejects_1000_deep_nesting() {
    let mut value = vec![0x81; 999];
    value.push(0x80);
    let bytes = frame(&[("type", t("leave")), ("senderId", t("a")), ("x", value)]);
    let e = err(&bytes);
    assert_eq!(
        e,
        WireError::TooDeep {
            at: Location::Field("x".into()),
            max: 32
        }
    );
    assert_snapshot!(e, @"field `x` nests deeper than the limit of 32");

    // Tags nest too.
    let mut tags = vec![0xc6; 1000];
    tags.push(0x00);
    assert!(matches!(
        err(&sync_with("data", tags)),
        WireError::TooDeep { .. }
    ));

    // At the top level, 1000 nested arrays are simply not a map.
    assert_eq!(err(&[0x81; 1000]), WireError::NotAMap { found: "an array" });
}

#[test]
fn deep_nesting_never_overflows_the_stack_even_without_a_limit() {
    let unlimited = Limits {
        max_nesting: usize::MAX,
        ..Limits::default()
    };
    let mut value = vec![0x81; 200_000];
    value.push(0xa0);
    let bytes = frame(&[("type", t("leave")), ("senderId", t("a")), ("x", value)]);
    assert_eq!(
        decode(&bytes, &unlimited).unwrap(),
        Message::Leave {
            sender_id: peer("a")
        }
    );
    let mut open = vec![0x9f; 200_000];
    open.push(0xff);
    let bytes = frame(&[("type", t("leave")), ("senderId", t("a")), ("x", open)]);
    assert!(matches!(
        decode(&bytes, &unlimited),
        Err(WireError::Truncated { .. })
    ));
}

#[test]
fn rejects_non_maps() {
    assert_eq!(err(&[0x80]), WireError::NotAMap { found: "an array" });
    assert_eq!(
        err(&[0x01]),
        WireError::NotAMap {
            found: "an unsigned integer"
        }
    );
    assert_eq!(
        err(&t("join")),
        WireError::NotAMap {
            found: "a text string"
        }
    );
    assert_eq!(err(&[0xf6]), WireError::NotAMap { found: "null" });
    assert_eq!(err(&[0xf7]), WireError::NotAMap { found: "undefined" });
    assert_eq!(
        err(&[0x40]),
        WireError::NotAMap {
            found: "a byte string"
        }
    );
    assert_eq!(err(&[]), WireError::Empty);
    assert_snapshot!(err(&[0x80]), @"message must be a cbor map, found an array");
}

#[test]
fn rejects_map_without_type() {
    let e = err(&frame(&[("senderId", t("a"))]));
    assert_eq!(
        e,
        WireError::MissingField {
            field: "type".into()
        }
    );
    assert_snapshot!(e, @"missing field `type`");
    assert_eq!(err(&[0xa0]), e);
    // `type: undefined` and `type: null` are as good as absent.
    assert_eq!(err(&frame(&[("type", vec![0xf7])])), e);
    assert_eq!(err(&frame(&[("type", vec![0xf6])])), e);
}

#[test]
fn unknown_type_is_returned_not_refused() {
    // Websocket.test.ts sends `type: "foo"` with data, documentId and ids.
    let bytes = frame(&[
        ("type", t("foo")),
        ("data", cborx::bytes(&[1, 2, 3])),
        ("documentId", t("not even a document id")),
        ("senderId", t("browser")),
        ("targetId", t("server")),
    ]);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Unknown {
            type_name: "foo".into()
        }
    );
    assert_eq!(
        decode(&frame(&[("type", t(""))]), &limits()).unwrap(),
        Message::Unknown {
            type_name: String::new()
        }
    );
}

#[test]
fn rejects_wrong_field_types() {
    let e = err(&sync_with("data", t("hello")));
    assert_eq!(
        e,
        WireError::WrongType {
            field: "data".into(),
            expected: "a byte string",
            found: "a text string"
        }
    );
    assert_snapshot!(e, @"field `data` must be a byte string, found a text string");
    assert_eq!(
        err(&sync_with("senderId", vec![0x07])),
        WireError::WrongType {
            field: "senderId".into(),
            expected: "a text string",
            found: "an unsigned integer"
        }
    );
    assert_eq!(
        err(&frame(&[("type", vec![0x01])])),
        WireError::WrongType {
            field: "type".into(),
            expected: "a text string",
            found: "an unsigned integer"
        }
    );
    // Some other tag around data.
    let mut tagged = vec![0xd8, 0x41];
    tagged.extend(cborx::bytes(&[1]));
    assert_eq!(
        err(&sync_with("data", tagged)),
        WireError::WrongType {
            field: "data".into(),
            expected: "a byte string",
            found: "a tagged item"
        }
    );
    let e = err(&frame(&[
        ("type", t("join")),
        ("senderId", t("a")),
        ("peerMetadata", cborx::object(&[("isEphemeral", t("yes"))])),
    ]));
    assert_snapshot!(e, @"field `peerMetadata.isEphemeral` must be a boolean, found a text string");
    // An array header promising one item, then the end of the frame.
    let e = err(&frame(&[
        ("type", t("join")),
        ("senderId", t("a")),
        (
            "supportedProtocolVersions",
            cborx::strings(&["1"])[..1].to_vec(),
        ),
    ]));
    assert!(matches!(e, WireError::Truncated { .. }));
    let mut versions = vec![0x82];
    versions.extend(t("1"));
    versions.push(0x02);
    let e = err(&frame(&[
        ("type", t("join")),
        ("senderId", t("a")),
        ("supportedProtocolVersions", versions),
    ]));
    assert_snapshot!(e, @"field `supportedProtocolVersions[1]` must be a text string, found an unsigned integer");
}

#[test]
fn rejects_missing_required_fields() {
    let bytes = frame(&[
        ("type", t("sync")),
        ("senderId", t("a")),
        ("targetId", t("b")),
        ("data", cborx::bytes(&[1])),
    ]);
    assert_eq!(
        err(&bytes),
        WireError::MissingField {
            field: "documentId".into()
        }
    );
    let e = err(&sync_with("senderId", vec![0xf7]));
    assert_eq!(
        e,
        WireError::MissingField {
            field: "senderId".into()
        }
    );
    let e = err(&frame(&[
        ("type", t("remote-heads-changed")),
        ("senderId", t("a")),
        ("targetId", t("b")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        (
            "newHeads",
            cborx::object(&[("s", cborx::object(&[("heads", cborx::strings(&[]))]))]),
        ),
    ]));
    assert_snapshot!(e, @"missing field `newHeads[0].timestamp`");
}

#[test]
fn rejects_ids_that_are_too_long_or_invalid() {
    let long = "p".repeat(1025);
    let e = err(&sync_with("senderId", t(&long)));
    assert_eq!(
        e,
        WireError::StringTooLong {
            field: "senderId".into(),
            len: 1025,
            max: 1024
        }
    );
    assert_snapshot!(e, @"field `senderId` is 1025 bytes long, more than the limit of 1024");
    let e = err(&sync_with("targetId", t("")));
    assert_snapshot!(e, @"field `targetId` is invalid: id is empty");
    let e = err(&sync_with("documentId", t("badbadbad")));
    assert_snapshot!(e, @"field `documentId` is invalid: document id checksum does not match");
    let e = err(&sync_with(
        "documentId",
        t("3760df37-a4c6-4f66-9ecd-732039a9385d"),
    ));
    assert!(matches!(e, WireError::InvalidId { .. }));
    // A stricter limit applies to every kept string.
    let strict = Limits {
        max_string_bytes: 10,
        ..Limits::default()
    };
    let e = decode(&sync_with("senderId", t("abcdefghijk")), &strict).unwrap_err();
    assert!(matches!(
        e,
        WireError::StringTooLong {
            len: 11,
            max: 10,
            ..
        }
    ));
    // Keys count too: "peerMetadata" is 12 bytes.
    let e = decode(&js_join_without_storage(), &strict).unwrap_err();
    assert!(matches!(
        e,
        WireError::KeyTooLong {
            len: 12,
            max: 10,
            ..
        }
    ));
}

#[test]
fn rejects_trailing_bytes_and_oversized_frames() {
    let mut bytes = js_join_without_storage();
    bytes.push(0x00);
    let e = err(&bytes);
    assert_eq!(e, WireError::TrailingBytes { count: 1 });
    assert_snapshot!(e, @"1 trailing bytes after the message map");

    let small = Limits {
        max_frame_bytes: 16,
        ..Limits::default()
    };
    let e = decode(&js_join_without_storage(), &small).unwrap_err();
    assert!(matches!(e, WireError::FrameTooLarge { max: 16, .. }));
}

#[test]
fn rejects_duplicate_keys() {
    let bytes = frame(&[
        ("type", t("sync")),
        ("senderId", t("a")),
        ("targetId", t("b")),
        ("documentId", t(GOOD_DOCUMENT_ID)),
        ("data", cborx::bytes(&[1])),
        ("senderId", t("c")),
    ]);
    let e = err(&bytes);
    assert_snapshot!(e, @"the message has the key `senderId` more than once");
    let e = err(&frame(&[
        ("type", t("join")),
        ("senderId", t("a")),
        (
            "peerMetadata",
            cborx::object(&[
                ("isEphemeral", vec![cborx::TRUE]),
                ("isEphemeral", vec![cborx::FALSE]),
            ]),
        ),
    ]));
    assert!(matches!(e, WireError::DuplicateKey { .. }));
}

#[test]
fn rejects_malformed_cbor() {
    // Indefinite-length text (cbor-x's decoder refuses these too).
    let e = err(&sync_with("data", vec![0x7f, 0x61, 0x61, 0xff]));
    assert!(matches!(e, WireError::Malformed { .. }));
    // Reserved additional information 28.
    let e = err(&sync_with("data", vec![0x1c]));
    assert_snapshot!(e, @"malformed cbor in field `data` at byte 81: reserved additional information value");
    // A break with nothing open.
    assert!(matches!(
        err(&sync_with("data", vec![0xff])),
        WireError::Malformed { .. }
    ));
    // An indefinite map that ends on a key.
    assert!(matches!(
        err(&sync_with("data", vec![0xbf, 0x01, 0xff])),
        WireError::Malformed { .. }
    ));
    // Two-byte simple value below 32.
    assert!(matches!(
        err(&sync_with("data", vec![0xf8, 0x10])),
        WireError::Malformed { .. }
    ));
    // Indefinite-length integer.
    assert!(matches!(
        err(&sync_with("data", vec![0x1f])),
        WireError::Malformed { .. }
    ));
    // Non-text and invalid UTF-8 keys.
    assert_eq!(
        err(&[0xa1, 0x01, 0x01]),
        WireError::NonTextKey {
            at: Location::Message,
            found: "an unsigned integer"
        }
    );
    assert!(matches!(
        err(&[0xa1, 0x61, 0xff, 0x01]),
        WireError::Malformed { .. }
    ));
    // Invalid UTF-8 in a kept text field.
    assert_eq!(
        err(&sync_with("senderId", vec![0x62, 0xc3, 0x28])),
        WireError::InvalidUtf8 {
            field: "senderId".into()
        }
    );
    // A frame cut short anywhere is refused.
    let whole = js_join_without_storage();
    for cut in 0..whole.len() {
        let e = decode(&whole[..cut], &limits()).unwrap_err();
        assert_message_style(&e);
    }
}

#[test]
fn rejects_numbers_out_of_range() {
    for bad in [
        vec![0x20],                  // -1
        unhex("1b0020000000000000"), // 2^53
        unhex("fb3ff8000000000000"), // 1.5
        unhex("fbbff0000000000000"), // -1.0
        unhex("fb7ff8000000000000"), // NaN
        unhex("fb7ff0000000000000"), // +inf
        unhex("fb4340000000000000"), // 2^53 as float
    ] {
        let bytes = frame(&[
            ("type", t("ephemeral")),
            ("senderId", t("a")),
            ("targetId", t("b")),
            ("count", bad),
            ("sessionId", t("s")),
            ("documentId", t(GOOD_DOCUMENT_ID)),
            ("data", cborx::bytes(&[1])),
        ]);
        assert_eq!(
            err(&bytes),
            WireError::NumberOutOfRange {
                field: "count".into()
            }
        );
    }
}

#[test]
fn list_limit_applies() {
    let strict = Limits {
        max_list_len: 2,
        ..Limits::default()
    };
    let bytes = frame(&[
        ("type", t("remote-subscription-change")),
        ("senderId", t("a")),
        ("targetId", t("b")),
        ("add", cborx::strings(&["v", "w", "x", "y", "z"])),
    ]);
    // The message map has 4 keys, so that trips first.
    assert_eq!(
        decode(&bytes, &strict).unwrap_err(),
        WireError::TooManyItems {
            at: Location::Message,
            max: 2
        }
    );
    let strict = Limits {
        max_list_len: 4,
        ..strict
    };
    assert_eq!(
        decode(&bytes, &strict).unwrap_err(),
        WireError::TooManyItems {
            at: Location::Field("add".into()),
            max: 4
        }
    );
}

#[test]
fn zero_nesting_limit_refuses_everything() {
    let none = Limits {
        max_nesting: 0,
        ..Limits::default()
    };
    assert!(matches!(
        decode(&js_join_without_storage(), &none),
        Err(WireError::TooDeep { .. })
    ));
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

fn sample_messages() -> Vec<Message> {
    vec![
        Message::Join {
            sender_id: peer("peer-5ffv1ix2"),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
            supported_protocol_versions: Some(vec![PROTOCOL_V1.into()]),
        },
        Message::Peer {
            sender_id: peer("server"),
            target_id: peer("peer-5ffv1ix2"),
            peer_metadata: Some(PeerMetadata {
                storage_id: Some("3760df37-a4c6-4f66-9ecd-732039a9385d".into()),
                is_ephemeral: false,
            }),
            selected_protocol_version: PROTOCOL_V1.into(),
        },
        Message::Leave {
            sender_id: peer("a"),
        },
        Message::Error {
            sender_id: Some(peer("server")),
            target_id: Some(peer("b")),
            message: "unsupported protocol version".into(),
        },
        Message::Request {
            sender_id: peer("a"),
            target_id: peer("b"),
            document_id: doc(),
            data: vec![0x42, 0x01],
        },
        Message::Sync {
            sender_id: peer("a"),
            target_id: peer("b"),
            document_id: doc(),
            data: vec![0x42, 0x01],
        },
        Message::DocUnavailable {
            sender_id: peer("a"),
            target_id: peer("b"),
            document_id: doc(),
        },
        Message::Ephemeral {
            sender_id: peer("a"),
            target_id: peer("b"),
            count: 7,
            session_id: "s1".into(),
            document_id: doc(),
            data: vec![0xa0],
        },
        Message::RemoteSubscriptionChange {
            sender_id: peer("a"),
            target_id: peer("b"),
            add: Some(vec!["s1".into()]),
            remove: None,
        },
        Message::RemoteHeadsChanged {
            sender_id: peer("a"),
            target_id: peer("b"),
            document_id: doc(),
            new_heads: BTreeMap::from([(
                "s1".to_owned(),
                RemoteHeads {
                    heads: vec!["h".into()],
                    timestamp: 1_717_171_717_171,
                },
            )]),
        },
        Message::Unknown {
            type_name: "foo".into(),
        },
    ]
}

#[test]
fn encodes_every_variant_byte_exactly() {
    let hexes: Vec<String> = sample_messages()
        .iter()
        .map(|m| format!("{}: {}", m.type_name(), hex(&encode(m))))
        .collect();
    assert_snapshot!(hexes.join("\n"), @"
    join: a46474797065646a6f696e6873656e64657249646d706565722d35666676316978326c706565724d65746164617461a16b6973457068656d6572616cf57819737570706f7274656450726f746f636f6c56657273696f6e73816131
    peer: a5647479706564706565726873656e6465724964667365727665726874617267657449646d706565722d35666676316978326c706565724d65746164617461a26973746f726167654964782433373630646633372d613463362d346636362d396563642d3733323033396139333835646b6973457068656d6572616cf47773656c656374656450726f746f636f6c56657273696f6e6131
    leave: a26474797065656c656176656873656e64657249646161
    error: a46474797065656572726f726873656e6465724964667365727665726874617267657449646162676d657373616765781c756e737570706f727465642070726f746f636f6c2076657273696f6e
    request: a5647479706567726571756573746873656e6465724964616168746172676574496461626a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d5335385041566458756464617461424201
    sync: a564747970656473796e636873656e6465724964616168746172676574496461626a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d5335385041566458756464617461424201
    doc-unavailable: a464747970656f646f632d756e617661696c61626c656873656e6465724964616168746172676574496461626a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d533538504156645875
    ephemeral: a7647479706569657068656d6572616c6873656e64657249646161687461726765744964616265636f756e74076973657373696f6e49646273316a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d533538504156645875646461746141a0
    remote-subscription-change: a46474797065781a72656d6f74652d737562736372697074696f6e2d6368616e67656873656e6465724964616168746172676574496461626361646481627331
    remote-heads-changed: a564747970657472656d6f74652d68656164732d6368616e6765646873656e6465724964616168746172676574496461626a646f63756d656e744964781c344e4d4e6e6b4d684c386a5872644a396a616d533538504156645875686e65774865616473a1627331a26568656164738161686974696d657374616d70fb4278fcf690433000
    foo: a1647479706563666f6f
    ");
}

#[test]
fn every_sample_round_trips_and_ciborium_agrees_it_is_one_map() {
    for m in sample_messages() {
        let bytes = encode(&m);
        assert_eq!(decode(&bytes, &limits()).unwrap(), m);
        let mut slice = bytes.as_slice();
        let value: ciborium::Value = ciborium::from_reader(&mut slice).unwrap();
        assert!(slice.is_empty(), "ciborium left trailing bytes");
        assert!(value.is_map());
    }
}

#[test]
fn encoding_reads_back_in_ciborium_as_the_js_object() {
    use ciborium::Value;
    let bytes = encode(&Message::Join {
        sender_id: peer("c"),
        peer_metadata: Some(PeerMetadata {
            storage_id: Some("s".into()),
            is_ephemeral: false,
        }),
        supported_protocol_versions: Some(vec!["1".into()]),
    });
    let value: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
    let text = |s: &str| Value::Text(s.into());
    assert_eq!(
        value,
        Value::Map(vec![
            (text("type"), text("join")),
            (text("senderId"), text("c")),
            (
                text("peerMetadata"),
                Value::Map(vec![
                    (text("storageId"), text("s")),
                    (text("isEphemeral"), Value::Bool(false)),
                ])
            ),
            (
                text("supportedProtocolVersions"),
                Value::Array(vec![text("1")])
            ),
        ])
    );
}

#[test]
fn numbers_are_written_the_way_cbor_x_writes_them() {
    let mut out = Vec::new();
    let mut number = |n: u64| {
        out.clear();
        write_number(&mut out, n);
        hex(&out)
    };
    assert_eq!(number(0), "00");
    assert_eq!(number(23), "17");
    assert_eq!(number(24), "1818");
    assert_eq!(number(u64::from(u32::MAX)), "1affffffff");
    // cbor-x: `value >>> 0 !== value`, so float64.
    assert_eq!(number(u64::from(u32::MAX) + 1), "fb41f0000000000000");
    assert_eq!(number(MAX_SAFE_INTEGER), "fb433fffffffffffff");
    // Beyond what a JS number holds: exact uint64.
    assert_eq!(number(MAX_SAFE_INTEGER + 1), "1b0020000000000000");
    assert_eq!(number(u64::MAX), "1bffffffffffffffff");
}

#[test]
fn half_floats_decode() {
    assert_eq!(f16_to_f64(0x3c00), 1.0);
    assert_eq!(f16_to_f64(0xc000), -2.0);
    assert_eq!(f16_to_f64(0x7bff), 65504.0);
    assert_eq!(f16_to_f64(0x0001), 2f64.powi(-24));
    assert!(f16_to_f64(0x7c00).is_infinite());
    assert!(f16_to_f64(0x7e00).is_nan());
}

#[test]
fn error_messages_read_well() {
    let messages: Vec<String> = [
        WireError::FrameTooLarge { len: 9, max: 8 },
        WireError::Empty,
        WireError::NonTextKey {
            at: Location::Field("newHeads".into()),
            found: "a map",
        },
        WireError::KeyTooLong {
            at: Location::Message,
            len: 2000,
            max: 1024,
        },
        WireError::NumberOutOfRange {
            field: "count".into(),
        },
        WireError::InvalidId {
            field: "documentId".into(),
            source: IdError::WrongLength { len: 8 },
        },
    ]
    .iter()
    .inspect(|e| assert_message_style(e))
    .map(ToString::to_string)
    .collect();
    assert_snapshot!(messages.join("\n"), @"
    frame is 9 bytes, more than the limit of 8
    frame is empty
    field `newHeads` has a key that is not a text string (found a map)
    the message has a key of 2000 bytes, more than the limit of 1024
    field `count` must be a whole number from 0 to 2^53 - 1
    field `documentId` is invalid: document id holds 8 bytes instead of 16
    ");
}

// ---------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------

const KNOWN_TYPES: [&str; 10] = [
    "join",
    "peer",
    "leave",
    "error",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "remote-subscription-change",
    "remote-heads-changed",
];

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9-]{0,40}",
        any::<String>().prop_filter("within the string limit", |s| s.len() <= 1024),
    ]
}

fn arb_peer_id() -> impl Strategy<Value = PeerId> {
    arb_text().prop_filter_map("non-empty", |s| PeerId::new(s).ok())
}

fn arb_document_id() -> impl Strategy<Value = DocumentId> {
    any::<[u8; 16]>().prop_map(DocumentId::from_bytes)
}

fn arb_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..2000),
    ]
}

fn arb_number() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=u64::from(u32::MAX),
        (u64::from(u32::MAX) + 1)..=MAX_SAFE_INTEGER,
        Just(0),
        Just(u64::from(u32::MAX)),
        Just(MAX_SAFE_INTEGER),
    ]
}

fn arb_list() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(arb_text(), 0..5)
}

fn arb_metadata() -> impl Strategy<Value = PeerMetadata> {
    (prop::option::of(arb_text()), any::<bool>()).prop_map(|(storage_id, is_ephemeral)| {
        PeerMetadata {
            storage_id,
            is_ephemeral,
        }
    })
}

fn arb_new_heads() -> impl Strategy<Value = BTreeMap<String, RemoteHeads>> {
    prop::collection::btree_map(
        arb_text(),
        (arb_list(), arb_number()).prop_map(|(heads, timestamp)| RemoteHeads { heads, timestamp }),
        0..4,
    )
}

fn arb_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            arb_peer_id(),
            prop::option::of(arb_metadata()),
            prop::option::of(arb_list())
        )
            .prop_map(|(sender_id, peer_metadata, supported_protocol_versions)| {
                Message::Join {
                    sender_id,
                    peer_metadata,
                    supported_protocol_versions,
                }
            }),
        (
            arb_peer_id(),
            arb_peer_id(),
            prop::option::of(arb_metadata()),
            arb_text()
        )
            .prop_map(
                |(sender_id, target_id, peer_metadata, selected_protocol_version)| {
                    Message::Peer {
                        sender_id,
                        target_id,
                        peer_metadata,
                        selected_protocol_version,
                    }
                }
            ),
        arb_peer_id().prop_map(|sender_id| Message::Leave { sender_id }),
        (
            prop::option::of(arb_peer_id()),
            prop::option::of(arb_peer_id()),
            arb_text()
        )
            .prop_map(|(sender_id, target_id, message)| Message::Error {
                sender_id,
                target_id,
                message,
            }),
        (arb_peer_id(), arb_peer_id(), arb_document_id(), arb_data()).prop_map(
            |(sender_id, target_id, document_id, data)| Message::Request {
                sender_id,
                target_id,
                document_id,
                data,
            }
        ),
        (arb_peer_id(), arb_peer_id(), arb_document_id(), arb_data()).prop_map(
            |(sender_id, target_id, document_id, data)| Message::Sync {
                sender_id,
                target_id,
                document_id,
                data,
            }
        ),
        (arb_peer_id(), arb_peer_id(), arb_document_id()).prop_map(
            |(sender_id, target_id, document_id)| Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            }
        ),
        (
            arb_peer_id(),
            arb_peer_id(),
            arb_number(),
            arb_text(),
            arb_document_id(),
            arb_data()
        )
            .prop_map(
                |(sender_id, target_id, count, session_id, document_id, data)| {
                    Message::Ephemeral {
                        sender_id,
                        target_id,
                        count,
                        session_id,
                        document_id,
                        data,
                    }
                }
            ),
        (
            arb_peer_id(),
            arb_peer_id(),
            prop::option::of(arb_list()),
            prop::option::of(arb_list())
        )
            .prop_map(|(sender_id, target_id, add, remove)| {
                Message::RemoteSubscriptionChange {
                    sender_id,
                    target_id,
                    add,
                    remove,
                }
            }),
        (
            arb_peer_id(),
            arb_peer_id(),
            arb_document_id(),
            arb_new_heads()
        )
            .prop_map(|(sender_id, target_id, document_id, new_heads)| {
                Message::RemoteHeadsChanged {
                    sender_id,
                    target_id,
                    document_id,
                    new_heads,
                }
            }),
        arb_text()
            .prop_filter("not a known type", |s| !KNOWN_TYPES.contains(&s.as_str()))
            .prop_map(|type_name| Message::Unknown { type_name }),
    ]
}

/// Arbitrary well-formed CBOR, written by ciborium.
fn arb_value() -> impl Strategy<Value = ciborium::Value> {
    use ciborium::Value;
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| Value::Integer(i.into())),
        any::<f64>().prop_map(Value::Float),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        "[a-z]{0,8}".prop_map(Value::Text),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (0u64..100_000, inner).prop_map(|(tag, v)| Value::Tag(tag, Box::new(v))),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=u8::MAX).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match *mutation {
        Mutation::Flip(i, b) => bytes[i % len] ^= b,
        Mutation::Set(i, b) => bytes[i % len] = b,
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
        Mutation::Remove(i) => {
            bytes.remove(i % len);
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

/// Whatever decode says about any input: no panic, a well-styled error, and
/// anything it accepts survives a re-encode unchanged.
fn check_decode_is_total(bytes: &[u8], limits: &Limits) {
    match decode(bytes, limits) {
        Ok(m) => {
            let again = encode(&m);
            assert_eq!(decode(&again, &Limits::default()), Ok(m));
        }
        Err(e) => assert_message_style(&e),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(m in arb_message()) {
        let bytes = encode(&m);
        prop_assert_eq!(decode(&bytes, &Limits::default()), Ok(m.clone()));
        // Encoding is a function of the message alone.
        let again = decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(encode(&again), bytes);
    }

    #[test]
    fn ciborium_reads_every_encoding_as_one_item(m in arb_message()) {
        let bytes = encode(&m);
        let mut slice = bytes.as_slice();
        let value: Result<ciborium::Value, _> = ciborium::from_reader(&mut slice);
        prop_assert!(value.is_ok());
        prop_assert!(slice.is_empty());
    }

    #[test]
    fn unknown_keys_with_any_value_are_skipped(m in arb_message(), extra in arb_value()) {
        let bytes = encode(&m);
        // Our maps have fewer than 23 keys: one-byte header.
        prop_assume!(bytes[0] >= 0xa0 && bytes[0] < 0xb7);
        let mut with_extra = vec![bytes[0] + 1];
        with_extra.extend_from_slice(&bytes[1..]);
        with_extra.extend(t("x-extension"));
        ciborium::into_writer(&extra, &mut with_extra).unwrap();
        prop_assert_eq!(decode(&with_extra, &Limits::default()), Ok(m));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_decode_is_total(&bytes, &Limits::default());
    }

    #[test]
    fn arbitrary_bytes_after_a_map_header_never_panic(
        header in 0xa0u8..=0xbf,
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut frame = vec![header];
        frame.extend(bytes);
        check_decode_is_total(&frame, &Limits::default());
    }

    #[test]
    fn mutated_frames_never_panic(
        m in arb_message(),
        mutations in prop::collection::vec(arb_mutation(), 1..6),
    ) {
        let mut bytes = encode(&m);
        for mutation in &mutations {
            mutate(&mut bytes, mutation);
        }
        check_decode_is_total(&bytes, &Limits::default());
    }

    #[test]
    fn tight_limits_never_panic(
        m in arb_message(),
        max_frame_bytes in 0usize..256,
        max_string_bytes in 0usize..16,
        max_list_len in 0usize..8,
        max_nesting in 0usize..5,
    ) {
        let limits = Limits { max_frame_bytes, max_string_bytes, max_list_len, max_nesting };
        check_decode_is_total(&encode(&m), &limits);
    }

    #[test]
    fn safe_integers_convert_exactly(n in 1..=MAX_SAFE_INTEGER) {
        #[allow(clippy::cast_precision_loss)] // exact below 2^53; the reference
        let reference = n as f64;
        prop_assert_eq!(safe_integer_to_f64_bits(n), reference.to_bits());
        prop_assert_eq!(f64_to_safe_integer(reference), Some(n));
    }

    #[test]
    fn floats_are_accepted_only_when_whole_and_safe(
        x in prop_oneof![
            any::<f64>(),
            (0u64..(1 << 54)).prop_map(|n| n as f64),
            (0u64..(1 << 40)).prop_map(|n| n as f64 + 0.5),
            (0u64..(1 << 54)).prop_map(|n| -(n as f64)),
        ],
    ) {
        match f64_to_safe_integer(x) {
            Some(0) => prop_assert_eq!(x, 0.0),
            Some(n) => {
                prop_assert!(n <= MAX_SAFE_INTEGER);
                prop_assert_eq!(safe_integer_to_f64_bits(n), x.to_bits());
            }
            None => prop_assert!(
                !x.is_finite()
                    || x.fract() != 0.0
                    || !(0.0..=9_007_199_254_740_991.0).contains(&x)
            ),
        }
    }
}

#[test]
fn a_full_size_frame_of_tiny_items_is_skipped_without_building_it() {
    // 8 MiB of one-byte items in an unknown field: ciborium::Value would
    // build a 32-byte node for each; the skipper keeps nothing.
    let items = Limits::default().max_frame_bytes - 64;
    let mut value = vec![0x9a];
    value.extend_from_slice(&u32::try_from(items).unwrap().to_be_bytes());
    value.resize(value.len() + items, 0x00);
    let bytes = frame(&[("type", t("leave")), ("senderId", t("a")), ("x", value)]);
    assert!(bytes.len() <= Limits::default().max_frame_bytes);
    assert_eq!(
        decode(&bytes, &limits()).unwrap(),
        Message::Leave {
            sender_id: peer("a")
        }
    );
}

#[test]
fn change_rejected_notices_round_trip() {
    let n = ChangeRejected {
        rule: "server_field".into(),
        reason: "only the relay writes `server`".into(),
        changes: vec!["ab".repeat(32)],
    };
    assert_eq!(
        ChangeRejected::decode(&n.encode(), &Limits::default()),
        Some(n)
    );
    assert_eq!(ChangeRejected::decode(b"\xa0", &Limits::default()), None);
    assert_eq!(ChangeRejected::decode(&[0xff; 3], &Limits::default()), None);
}
