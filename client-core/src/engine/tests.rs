//! Engine tests with no store and no relay: the messages it sends for the
//! inputs it gets.

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ROOT};
use schema::wire::{Message, PeerId};

use super::*;

fn engine(docs: Vec<LocalDoc>) -> Engine {
    Engine::new(
        EngineConfig {
            peer_id: PeerId::new("dev-1").unwrap(),
            actor: ActorId::from(b"device-actor-001".to_vec()),
            inbox: None,
            relay_epoch: None,
        },
        docs,
    )
}

fn peer() -> Input {
    Input::Received(Message::Peer {
        sender_id: PeerId::new("relay").unwrap(),
        target_id: PeerId::new("dev-1").unwrap(),
        peer_metadata: None,
        selected_protocol_version: "1".into(),
    })
}

fn sends(effects: &[Effect]) -> Vec<&Message> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(m) => Some(m),
            _ => None,
        })
        .collect()
}

#[test]
fn join_first_then_request_without_a_copy_and_sync_with_one() {
    let empty = DocId::random();
    let held = DocId::random();
    let mut doc = Automerge::new().with_actor(ActorId::from(b"device-actor-001".to_vec()));
    let mut tx = doc.transaction();
    tx.put(ROOT, "type", "ticket").unwrap();
    tx.commit();
    let mut e = engine(vec![
        LocalDoc {
            id: empty,
            doc: Automerge::new(),
            sync_state: None,
            listing: Listing::Listed,
            unacked: vec![],
        },
        LocalDoc {
            id: held,
            doc,
            sync_state: None,
            listing: Listing::Local,
            unacked: vec![],
        },
    ]);
    let out = e.handle(Input::Connected);
    assert!(matches!(
        sends(&out)[..],
        [Message::Join { supported_protocol_versions: Some(v), peer_metadata: Some(m), .. }]
            if v == &["1"] && !m.is_ephemeral
    ));
    assert!(!e.is_connected());
    let out = e.handle(peer());
    let mut kinds: Vec<(DocId, &str)> = sends(&out)
        .iter()
        .map(|m| match m {
            Message::Request { document_id, .. } => (DocId::from(document_id), "request"),
            Message::Sync { document_id, .. } => (DocId::from(document_id), "sync"),
            other => panic!("{other:?}"),
        })
        .collect();
    kinds.sort();
    let mut want = vec![(empty, "request"), (held, "sync")];
    want.sort();
    assert_eq!(kinds, want);
    assert!(!e.is_idle(), "nothing heard back yet");
}

#[test]
fn an_error_from_the_relay_asks_to_close_and_unknown_messages_are_ignored() {
    let mut e = engine(vec![]);
    e.handle(Input::Connected);
    e.handle(peer());
    let out = e.handle(Input::Received(Message::Error {
        sender_id: None,
        target_id: None,
        message: "token revoked".into(),
    }));
    assert!(matches!(&out[..], [Effect::Close { reason }] if reason == "token revoked"));
    let out = e.handle(Input::Received(Message::Unknown {
        type_name: "future-thing".into(),
    }));
    assert!(out.is_empty());
}

#[test]
fn a_change_rejected_notice_resets_the_document_and_requests_it_afresh() {
    let id = DocId::random();
    let actor = ActorId::from(b"device-actor-001".to_vec());
    let mut doc = Automerge::new().with_actor(actor);
    let mut tx = doc.transaction();
    tx.put(ROOT, "x", 1).unwrap();
    tx.commit();
    let mine = doc.get_last_local_change().unwrap().hash();
    let mut e = engine(vec![LocalDoc {
        id,
        doc,
        sync_state: None,
        listing: Listing::Listed,
        unacked: vec![mine],
    }]);
    e.handle(Input::Connected);
    e.handle(peer());
    let mut data = Vec::new();
    ciborium::into_writer(
        &ciborium::Value::Map(vec![
            ("type".into(), "change-rejected".into()),
            ("rule".into(), "actor_not_bound".into()),
            ("reason".into(), "actor belongs to another device".into()),
            (
                "changes".into(),
                ciborium::Value::Array(vec![mine.to_string().into()]),
            ),
        ]),
        &mut data,
    )
    .unwrap();
    let out = e.handle(Input::Received(Message::Ephemeral {
        sender_id: PeerId::new("relay").unwrap(),
        target_id: PeerId::new("dev-1").unwrap(),
        count: 1,
        session_id: "s".into(),
        document_id: id.into(),
        data,
    }));
    assert!(matches!(
        &out[0],
        Effect::Reset { quarantine, rule, .. } if rule == "actor_not_bound" && quarantine.len() == 1 && quarantine[0].hash() == mine
    ));
    assert!(matches!(&out[1], Effect::Send(Message::Request { .. })));
    assert!(
        e.doc(id).unwrap().get_heads().is_empty(),
        "local copy dropped"
    );
    assert_eq!(e.stats().resets, 1);
}

fn held_doc(n: u64) -> Automerge {
    let mut doc = Automerge::new().with_actor(ActorId::from(n.to_be_bytes().to_vec()));
    let mut tx = doc.transaction();
    tx.put(ROOT, "n", n).unwrap();
    tx.commit();
    doc
}

fn opened(effects: &[Effect]) -> Vec<DocId> {
    sends(effects)
        .iter()
        .filter_map(|m| match m {
            Message::Request { document_id, .. } | Message::Sync { document_id, .. } => {
                Some(DocId::from(document_id))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn documents_open_a_window_at_a_time_and_each_answer_opens_the_next() {
    let ids: Vec<DocId> = (0..100).map(|_| DocId::random()).collect();
    let mut e = engine(
        ids.iter()
            .map(|id| LocalDoc {
                id: *id,
                doc: Automerge::new(),
                sync_state: None,
                listing: Listing::Listed,
                unacked: vec![],
            })
            .collect(),
    );
    e.handle(Input::Connected);
    let first = opened(&e.handle(peer()));
    assert_eq!(first.len(), WINDOW, "only a window's worth is asked for");
    // The relay has none of them: each answer frees a place for the next.
    let mut asked: BTreeSet<DocId> = first.iter().copied().collect();
    let mut pending: VecDeque<DocId> = first.into_iter().collect();
    while let Some(id) = pending.pop_front() {
        let out = e.handle(Input::Received(Message::DocUnavailable {
            sender_id: PeerId::new("relay").unwrap(),
            target_id: PeerId::new("dev-1").unwrap(),
            document_id: id.into(),
        }));
        let next = opened(&out);
        assert!(next.len() <= 1, "one answer opens at most one more");
        for n in next {
            assert!(asked.insert(n), "{n} asked twice");
            pending.push_back(n);
        }
    }
    assert_eq!(
        asked.len(),
        ids.len(),
        "every document was asked for in the end"
    );
}

#[test]
fn a_reconnect_asks_by_digest_and_syncs_only_what_the_relay_names() {
    let inbox = DocId::random();
    let ids: Vec<DocId> = (0..10).map(|_| DocId::random()).collect();
    let mut docs: Vec<LocalDoc> = ids
        .iter()
        .zip(1..)
        .map(|(id, n)| LocalDoc {
            id: *id,
            doc: held_doc(n),
            sync_state: None,
            listing: Listing::Listed,
            unacked: vec![],
        })
        .collect();
    docs.push(LocalDoc {
        id: inbox,
        doc: held_doc(99),
        sync_state: None,
        listing: Listing::Listed,
        unacked: vec![],
    });
    let mut e = Engine::new(
        EngineConfig {
            peer_id: PeerId::new("dev-1").unwrap(),
            actor: ActorId::from(b"device-actor-001".to_vec()),
            inbox: Some(inbox),
            relay_epoch: None,
        },
        docs,
    );
    e.handle(Input::Connected);
    let out = e.handle(peer());
    assert_eq!(
        opened(&out),
        vec![inbox],
        "only the inbox is synced at once"
    );
    let question = sends(&out)
        .into_iter()
        .find_map(|m| match m {
            Message::Ephemeral {
                document_id, data, ..
            } => {
                assert_eq!(DocId::from(document_id), inbox);
                wire::HeadsDigests::decode(data, &wire::Limits::default())
            }
            _ => None,
        })
        .expect("the digests of the held documents");
    let named: BTreeSet<DocId> = question.docs.iter().map(|(id, _)| *id).collect();
    assert_eq!(named, ids.iter().copied().collect());
    assert!(!e.is_idle(), "not idle while the question is open");
    // The relay names two as changed: those two are synced, no others.
    let out = e.handle(Input::Received(Message::Ephemeral {
        sender_id: PeerId::new("relay").unwrap(),
        target_id: PeerId::new("dev-1").unwrap(),
        count: 1,
        session_id: "relay".into(),
        document_id: inbox.into(),
        data: Stale {
            docs: vec![ids[3], ids[7]],
        }
        .encode(),
    }));
    let mut synced = opened(&out);
    synced.sort();
    let mut want = vec![ids[3], ids[7]];
    want.sort();
    assert_eq!(synced, want);
}

fn peer_with_epoch(epoch: &str) -> Input {
    Input::Received(Message::Peer {
        sender_id: PeerId::new("relay").unwrap(),
        target_id: PeerId::new("dev-1").unwrap(),
        peer_metadata: Some(schema::wire::PeerMetadata {
            storage_id: Some(epoch.into()),
            is_ephemeral: false,
        }),
        selected_protocol_version: "1".into(),
    })
}

/// What the device's first sync message says the relay already has.
fn last_sync_sent(out: &[Effect]) -> Vec<ChangeHash> {
    let data = sends(out)
        .iter()
        .find_map(|m| match m {
            Message::Sync { data, .. } => Some(data.clone()),
            _ => None,
        })
        .expect("a sync message");
    let msg = sync::Message::decode(&data).unwrap();
    msg.have
        .first()
        .map(|h| h.last_sync.clone())
        .unwrap_or_default()
}

#[test]
fn a_relay_with_a_new_storage_epoch_makes_the_device_forget_what_it_believed_the_relay_has() {
    let id = DocId::random();
    let mut doc = Automerge::new().with_actor(ActorId::from(b"device-actor-001".to_vec()));
    let mut tx = doc.transaction();
    tx.put(ROOT, "type", "ticket").unwrap();
    tx.commit();
    let heads = doc.get_heads();
    // A saved state that says the relay has every change.
    let mut state = sync::State::new();
    state.shared_heads = heads.clone();
    let local = |doc: &Automerge| LocalDoc {
        id,
        doc: doc.clone(),
        sync_state: Some(state.encode()),
        listing: Listing::Listed,
        unacked: vec![],
    };
    let with_epoch = |epoch: Option<&str>, doc: &Automerge| {
        Engine::new(
            EngineConfig {
                peer_id: PeerId::new("dev-1").unwrap(),
                actor: ActorId::from(b"device-actor-001".to_vec()),
                inbox: None,
                relay_epoch: epoch.map(str::to_owned),
            },
            vec![local(doc)],
        )
    };
    // The same epoch: the saved state is trusted.
    let mut same = with_epoch(Some("epoch-1"), &doc);
    same.handle(Input::Connected);
    let out = same.handle(peer_with_epoch("epoch-1"));
    assert!(!out.iter().any(|e| matches!(e, Effect::RelayEpoch { .. })));
    assert_eq!(last_sync_sent(&out), heads);
    // A new epoch (the relay was restored): forgotten, and remembered anew.
    let mut restored = with_epoch(Some("epoch-1"), &doc);
    restored.handle(Input::Connected);
    let out = restored.handle(peer_with_epoch("epoch-2"));
    assert!(matches!(
        &out[0],
        Effect::RelayEpoch { epoch } if epoch == "epoch-2"
    ));
    assert!(last_sync_sent(&out).is_empty(), "nothing assumed shared");
    // A relay that sends no epoch changes nothing.
    let mut old = with_epoch(Some("epoch-1"), &doc);
    old.handle(Input::Connected);
    let out = old.handle(peer());
    assert_eq!(last_sync_sent(&out), heads);
}
