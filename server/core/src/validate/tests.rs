//! Hard rules on crafted changes: each forbidden edit is named, allowed ones pass.

use std::num::NonZeroU64;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, Change, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::{TimeZone, Utc};
use schema::doc;
use schema::ticket::{Channel, Reported, TicketHeader};
use schema::{DeviceId, Event, EventData, EventId, Kind, Role, UserId};

use super::*;

fn relay_doc() -> AutoCommit {
    let mut d = AutoCommit::new();
    let header = TicketHeader {
        kind: Kind::Repair,
        household: None,
        location: "B1 lobby".into(),
        title: "Light out".into(),
        description: "flickers".into(),
        reported: Reported {
            by: UserId::new("frontdesk").unwrap(),
            channel: Channel::Phone,
            at: Utc::now(),
        },
        caller: None,
    };
    doc::create_ticket(&mut d, &header).unwrap();
    doc::append_event(&mut d, &event("frontdesk")).unwrap();
    d.commit();
    d
}

fn event(by: &str) -> Event {
    Event {
        id: EventId::random(),
        action: "accept".into(),
        by: UserId::new(by).unwrap(),
        device: DeviceId::new(format!("{by}-phone")).unwrap(),
        at: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(),
        data: EventData::default(),
    }
}

/// The change a device makes with `f` on a copy of `relay`.
fn change_by(relay: &mut AutoCommit, f: impl FnOnce(&mut AutoCommit)) -> Change {
    let mut device = relay.fork();
    f(&mut device);
    device.commit();
    let mut changes = device.get_changes(&relay.get_heads());
    assert_eq!(changes.len(), 1);
    changes.remove(0)
}

fn check(relay: &mut AutoCommit, change: &Change, role: Role) -> Result<(), HardRule> {
    let mut layout = Layout::of(relay.document());
    check_ops(change, &mut layout, role, &Limits::default())
        .map(|_| ())
        .map_err(|r| r.rule)
}

fn events_id(d: &AutoCommit) -> automerge::ObjId {
    d.get(ROOT, "events").unwrap().unwrap().1
}

#[test]
fn appending_an_event_passes() {
    let mut relay = relay_doc();
    let c = change_by(&mut relay, |d| {
        doc::append_event(d, &event("eng1")).unwrap()
    });
    assert_eq!(check(&mut relay, &c, Role::Engineer), Ok(()));
}

#[test]
fn deleting_or_rewriting_an_event_is_refused() {
    let mut relay = relay_doc();
    let c = change_by(&mut relay, |d| {
        let ev = events_id(d);
        d.delete(&ev, 0).unwrap();
    });
    assert_eq!(
        check(&mut relay, &c, Role::Manager),
        Err(HardRule::AppendOnly)
    );
    let c = change_by(&mut relay, |d| {
        let ev = events_id(d);
        let first = d.get(&ev, 0).unwrap().unwrap().1;
        d.put(&first, "by", "eng2").unwrap();
    });
    assert_eq!(
        check(&mut relay, &c, Role::Manager),
        Err(HardRule::AppendOnly)
    );
    let c = change_by(&mut relay, |d| {
        let ev = events_id(d);
        d.put(&ev, 0, "x").unwrap();
    });
    assert_eq!(
        check(&mut relay, &c, Role::Manager),
        Err(HardRule::AppendOnly)
    );
}

#[test]
fn writing_server_is_refused() {
    let mut relay = relay_doc();
    let c = change_by(&mut relay, |d| {
        let s = d.put_object(ROOT, "server", ObjType::Map).unwrap();
        d.put(&s, "serial", "RO-2026-000001").unwrap();
    });
    assert_eq!(
        check(&mut relay, &c, Role::Manager),
        Err(HardRule::ServerField)
    );
}

#[test]
fn header_fields_by_role() {
    let mut relay = relay_doc();
    let c = change_by(&mut relay, |d| {
        d.put(ROOT, "title", "Light out (corridor)").unwrap()
    });
    assert_eq!(
        check(&mut relay, &c, Role::Engineer),
        Err(HardRule::FieldNotWritable)
    );
    assert_eq!(check(&mut relay, &c, Role::FrontDesk), Ok(()));
    let c = change_by(&mut relay, |d| d.put(ROOT, "kind", "praise").unwrap());
    assert_eq!(
        check(&mut relay, &c, Role::FrontDesk),
        Err(HardRule::FieldNotWritable)
    );
    let c = change_by(&mut relay, |d| {
        d.put(ROOT, "counter", ScalarValue::counter(1)).unwrap()
    });
    assert!(check(&mut relay, &c, Role::FrontDesk).is_err());
}

#[test]
fn a_forged_start_op_near_2_pow_32_is_refused_before_automerge_sees_it() {
    let mut relay = relay_doc();
    let c = change_by(&mut relay, |d| {
        doc::append_event(d, &event("eng1")).unwrap()
    });
    let mut expanded = c.decode();
    expanded.start_op = NonZeroU64::new((1u64 << 32) - 3).unwrap();
    let forged = Change::from(expanded);
    assert_eq!(
        check(&mut relay, &forged, Role::Engineer),
        Err(HardRule::Oversized)
    );
}

#[test]
fn garbage_and_oversized_chunks_are_refused() {
    let limits = Limits::default();
    let r = changes_in([&b"not automerge at all"[..]].into_iter(), &limits).unwrap_err();
    assert_eq!(r.rule, HardRule::Malformed);
    let mut bad = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
    bad.extend_from_slice(&[0xff; 40]);
    assert_eq!(
        changes_in([&bad[..]].into_iter(), &limits)
            .unwrap_err()
            .rule,
        HardRule::Malformed
    );
    let body = limits.max_change_bytes;
    let mut huge = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1];
    let mut n = body;
    while n >= 0x80 {
        huge.push(u8::try_from(n & 0x7f).unwrap() | 0x80);
        n >>= 7;
    }
    huge.push(u8::try_from(n).unwrap());
    huge.resize(huge.len() + body, 0);
    assert_eq!(
        changes_in([&huge[..]].into_iter(), &limits)
            .unwrap_err()
            .rule,
        HardRule::Oversized
    );
}

#[test]
fn concatenated_changes_are_split() {
    let mut relay = relay_doc();
    let mut device = relay.fork();
    doc::append_event(&mut device, &event("eng1")).unwrap();
    device.commit();
    doc::append_event(&mut device, &event("eng1")).unwrap();
    device.commit();
    let joined = device.save_after(&relay.get_heads());
    let changes = changes_in([&joined[..]].into_iter(), &Limits::default()).unwrap();
    assert_eq!(changes.len(), 2);
    let mut cut = joined.clone();
    cut.pop();
    assert_eq!(
        changes_in([&cut[..]].into_iter(), &Limits::default())
            .unwrap_err()
            .rule,
        HardRule::Malformed
    );
}

#[test]
fn a_whole_document_chunk_is_unpacked_change_by_change() {
    let mut relay = relay_doc();
    let saved = relay.save();
    let changes = changes_in([&saved[..]].into_iter(), &Limits::default()).unwrap();
    assert_eq!(changes.len(), relay.get_changes(&[]).len());
}

#[test]
fn changes_are_ordered_and_orphans_wait() {
    let mut relay = relay_doc();
    let mut device = relay.fork();
    doc::append_event(&mut device, &event("eng1")).unwrap();
    device.commit();
    doc::append_event(&mut device, &event("eng1")).unwrap();
    device.commit();
    let mut both = device.get_changes(&relay.get_heads());
    both.reverse();
    let (ready, waiting) = applicable(relay.document(), both.clone());
    assert_eq!(
        ready.iter().map(Change::hash).collect::<Vec<_>>(),
        vec![both[1].hash(), both[0].hash()]
    );
    assert!(waiting.is_empty());
    let (ready, waiting) = applicable(relay.document(), vec![both[0].clone()]);
    assert!(ready.is_empty());
    assert_eq!(waiting.len(), 1);
}
