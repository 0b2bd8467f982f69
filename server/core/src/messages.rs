//! The relay's messages to a peer, one constructor each.

use automerge::ChangeHash;
use schema::DocId;
use schema::wire::{self, ChangeRejected, Message, PeerId};

use crate::validate::Rejection;

/// A sync message for a document.
pub fn sync(relay: &PeerId, peer: &PeerId, id: DocId, data: Vec<u8>) -> Message {
    Message::Sync {
        sender_id: relay.clone(),
        target_id: peer.clone(),
        document_id: id.into(),
        data,
    }
}

/// The document is not available to this peer (unknown, or not theirs).
pub fn unavailable(relay: &PeerId, peer: &PeerId, id: DocId) -> Message {
    Message::DocUnavailable {
        sender_id: relay.clone(),
        target_id: peer.clone(),
        document_id: id.into(),
    }
}

/// An `error` for the peer (`None`: before it joined).
pub fn error(relay: &PeerId, peer: Option<&PeerId>, message: &str) -> Message {
    Message::Error {
        sender_id: Some(relay.clone()),
        target_id: peer.cloned(),
        message: message.to_owned(),
    }
}

/// The `change-rejected` notice: an ephemeral message naming the rule, the
/// reason and the refused changes; `count` must grow per connection
/// (automerge-repo drops a notice whose count is not higher than the last).
pub fn change_rejected(
    relay: &PeerId,
    peer: &PeerId,
    id: DocId,
    r: &Rejection,
    changes: &[ChangeHash],
    count: u64,
) -> Message {
    let payload = ChangeRejected {
        rule: r.rule.name().to_owned(),
        reason: r.reason.clone(),
        changes: changes.iter().map(ToString::to_string).collect(),
    }
    .encode();
    Message::Ephemeral {
        sender_id: relay.clone(),
        target_id: peer.clone(),
        count,
        session_id: "relay".into(),
        document_id: id.into(),
        data: payload,
    }
}

/// The relay's answer to `join`.
pub fn peer(relay: &PeerId, joining: PeerId) -> Message {
    Message::Peer {
        sender_id: relay.clone(),
        target_id: joining,
        peer_metadata: Some(wire::PeerMetadata {
            storage_id: None,
            is_ephemeral: false,
        }),
        selected_protocol_version: "1".into(),
    }
}
