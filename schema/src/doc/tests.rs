//! Round trips through Automerge, the lenient reader, shape errors, serials.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::Duration;
use proptest::prelude::*;

use super::*;
use crate::household::{Arrear, Contact, Equipment, Household, HouseholdPrivate, Resident};
use crate::inbox::{Access, DocKind, InboxEntry};
use crate::lifecycle::Action;
use crate::role::Role;
use crate::serial::Series;
use crate::testkit::{event, staff, t0, user};
use crate::ticket::{Channel, Kind, Material};
use crate::{DocId, EventData, Outcome};

fn header() -> TicketHeader {
    TicketHeader {
        kind: Kind::Repair,
        household: Some(DocId::from_bytes([3; 16]).url()),
        location: "B1-1203 kitchen".into(),
        title: "Leaking tap".into(),
        description: "Drips all night.".into(),
        reported: Reported {
            by: user("frontdesk"),
            channel: Channel::Phone,
            at: t0(),
        },
        caller: None,
    }
}

fn complete_event() -> Event {
    let eng = staff(Role::Engineer);
    event(
        &eng,
        Action::Complete,
        t0() + Duration::hours(2),
        EventData {
            result: Some("replaced the washer".into()),
            labour_min: Some(40),
            materials: Some(vec![Material {
                name: "washer".into(),
                qty: 2,
                unit_fen: Fen::new(150),
            }]),
            photos: vec!["a".repeat(64)],
            quote_fen: Some(Fen::new(3_000)),
            resident_absent: Some(false),
            due_at: Some(t0()),
            ..EventData::default()
        },
    )
}

#[test]
fn a_caller_round_trips_and_is_read_leniently() {
    let mut h = header();
    h.caller = Some(crate::ticket::Caller {
        name: "王芳".into(),
        phone: "139 **** 5678".into(),
        read_back: true,
    });
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &h).unwrap();
    assert_eq!(read_ticket(doc.document(), None).unwrap().header, h);
    // Written by another client: text for strings, no read_back.
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    let c = doc.put_object(ROOT, "caller", ObjType::Map).unwrap();
    let name = doc.put_object(&c, "name", ObjType::Text).unwrap();
    doc.splice_text(&name, 0, 0, "李敏").unwrap();
    let t = read_ticket(doc.document(), None).unwrap();
    assert_eq!(
        t.header.caller,
        Some(crate::ticket::Caller {
            name: "李敏".into(),
            phone: String::new(),
            read_back: false,
        })
    );
    // A caller that is not a map is a shape error naming it.
    doc.put(ROOT, "caller", 7).unwrap();
    let e = read_ticket(doc.document(), None).unwrap_err();
    assert_eq!(e.path, "caller");
}

#[test]
fn phone_numbers_are_masked_once_and_for_all() {
    use crate::ticket::{is_masked, mask_phone};
    assert_eq!(mask_phone("13912345678"), "139****5678");
    assert_eq!(mask_phone("139 1234 5678"), "139 **** 5678");
    assert_eq!(mask_phone("+86 139 1234 5678"), "+86 1** **** 5678");
    assert_eq!(mask_phone("6275 1234"), "**** 1234");
    assert_eq!(mask_phone("123"), "123");
    assert_eq!(mask_phone(""), "");
    for p in ["13912345678", "139 1234 5678", "010-6275-1234", "62751234"] {
        assert!(!is_masked(p), "{p}");
        assert!(is_masked(&mask_phone(p)), "{p}");
        assert_eq!(mask_phone(&mask_phone(p)), mask_phone(p));
    }
}

#[test]
fn a_ticket_round_trips_through_automerge() {
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    let e = complete_event();
    append_event(&mut doc, &e).unwrap();
    let n = Note {
        id: EventId::random(),
        by: user("eng1"),
        device: staff(Role::Engineer).device,
        at: t0(),
        text: "key under the mat".into(),
    };
    append_note(&mut doc, &n).unwrap();
    let a = Attachment {
        id: EventId::random(),
        sha256: "b".repeat(64),
        mime: "image/jpeg".into(),
        size: 12345,
        caption: "after".into(),
        by: user("eng1"),
        device: staff(Role::Engineer).device,
        at: t0(),
    };
    append_attachment(&mut doc, &a).unwrap();
    let v = VerdictRecord {
        seq: 1,
        outcome: Outcome::Accepted,
        rule: "allowed".into(),
        reason: "ok".into(),
        at: t0(),
    };
    put_verdict(&mut doc, &e.id, &v).unwrap();
    let serial = Serial::new(Series::Ro, 2026, 42).unwrap();
    set_serial(&mut doc, serial).unwrap();
    set_received_at(&mut doc, t0()).unwrap();

    let t = read_ticket(doc.document(), None).unwrap();
    assert_eq!(t.header, header());
    assert_eq!(t.events, vec![e.clone()]);
    assert_eq!(t.notes, vec![n]);
    assert_eq!(t.attachments, vec![a]);
    assert_eq!(t.server.serial, Some(serial));
    assert_eq!(t.server.received_at, Some(t0()));
    assert_eq!(t.server.verdicts.get(&e.id), Some(&v));
    assert_eq!(doc_type(doc.document()).as_deref(), Some("ticket"));
}

#[test]
fn reading_at_heads_sees_the_past() {
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    let before = doc.get_heads();
    append_event(&mut doc, &complete_event()).unwrap();
    assert_eq!(
        read_ticket(doc.document(), Some(&before))
            .unwrap()
            .events
            .len(),
        0
    );
    assert_eq!(read_ticket(doc.document(), None).unwrap().events.len(), 1);
}

#[test]
fn an_id_used_twice_on_two_branches_is_a_shape_error() {
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    doc.commit();
    let mut branch = doc.fork();
    let real = complete_event();
    append_event(&mut doc, &real).unwrap();
    // The same id with another body, appended on a branch that never saw the first.
    let mut forged = real.clone();
    forged.action = "close".into();
    append_event(&mut branch, &forged).unwrap();
    doc.merge(&mut branch).unwrap();
    let err = read_ticket(doc.document(), None).unwrap_err();
    assert!(err.problem.contains("already used by events["), "{err}");
    // Each branch alone reads.
    assert!(read_ticket(branch.document(), None).is_ok());
}

#[test]
fn an_id_is_unique_across_events_notes_and_attachments() {
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    let e = complete_event();
    append_event(&mut doc, &e).unwrap();
    let n = Note {
        id: e.id.clone(),
        by: user("eng1"),
        device: staff(Role::Engineer).device,
        at: t0(),
        text: "same id as the event".into(),
    };
    append_note(&mut doc, &n).unwrap();
    let err = read_ticket(doc.document(), None).unwrap_err();
    assert_eq!(err.path, "notes[0].id");
}

#[test]
fn a_serial_once_set_never_changes() {
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    let first = Serial::new(Series::Ro, 2026, 1).unwrap();
    set_serial(&mut doc, first).unwrap();
    let err = set_serial(&mut doc, Serial::new(Series::Ro, 2026, 2).unwrap()).unwrap_err();
    assert!(matches!(err, DocError::SerialAlreadySet(s) if s == first));
    assert_eq!(
        read_ticket(doc.document(), None).unwrap().server.serial,
        Some(first)
    );
}

/// What JavaScript automerge writes: text for strings, floats for numbers,
/// uints, timestamps.
#[test]
fn the_reader_is_lenient_where_writers_differ() {
    let mut doc = AutoCommit::new();
    let text = |doc: &mut AutoCommit, obj: &automerge::ObjId, key: &str, value: &str| {
        let id = doc.put_object(obj, key, ObjType::Text).unwrap();
        doc.splice_text(&id, 0, 0, value).unwrap();
    };
    text(&mut doc, &ROOT, "type", "ticket");
    doc.put(ROOT, "schema", 1.0_f64).unwrap();
    text(&mut doc, &ROOT, "kind", "repair");
    text(&mut doc, &ROOT, "title", "Lift stuck");
    let rep = doc.put_object(ROOT, "reported", ObjType::Map).unwrap();
    text(&mut doc, &rep, "by", "frontdesk");
    text(&mut doc, &rep, "channel", "walk_in");
    doc.put(&rep, "at", ScalarValue::Timestamp(t0().timestamp_millis()))
        .unwrap();
    let events = doc.put_object(ROOT, "events", ObjType::List).unwrap();
    let ev = doc.insert_object(&events, 0, ObjType::Map).unwrap();
    text(&mut doc, &ev, "id", "3f0c1f0e-1111-4222-8333-444455556666");
    text(&mut doc, &ev, "action", "complete");
    text(&mut doc, &ev, "by", "eng1");
    text(&mut doc, &ev, "device", "phone-1");
    text(&mut doc, &ev, "at", "2026-11-02T10:00:00+08:00");
    let data = doc.put_object(&ev, "data", ObjType::Map).unwrap();
    doc.put(&data, "labour_min", 30.0_f64).unwrap();
    doc.put(&data, "quote_fen", ScalarValue::Uint(1200))
        .unwrap();
    doc.put(&data, "assignee", ScalarValue::Null).unwrap();
    doc.put(&data, "some_future_field", "ignored").unwrap();

    let t = read_ticket(doc.document(), None).unwrap();
    assert_eq!(t.header.title, "Lift stuck");
    assert_eq!(t.header.reported.at, t0());
    let e = &t.events[0];
    assert_eq!(e.at, t0() - Duration::hours(7), "10:00+08:00 is 02:00Z");
    assert_eq!(e.data.labour_min, Some(30));
    assert_eq!(e.data.quote_fen, Some(Fen::new(1200)));
    assert_eq!(e.data.assignee, None);
}

#[test]
fn shape_errors_name_the_path() {
    let mut doc = AutoCommit::new();
    create_ticket(&mut doc, &header()).unwrap();
    let events = match doc.get(ROOT, "events").unwrap() {
        Some((_, id)) => id,
        None => unreachable!(),
    };
    let ev = doc.insert_object(&events, 0, ObjType::Map).unwrap();
    doc.put(&ev, "id", "e1").unwrap();
    doc.put(&ev, "action", "complete").unwrap();
    doc.put(&ev, "by", "eng1").unwrap();
    doc.put(&ev, "device", "p1").unwrap();
    doc.put(&ev, "at", "2026-11-02T09:00:00Z").unwrap();
    let data = doc.put_object(&ev, "data", ObjType::Map).unwrap();
    doc.put(&data, "labour_min", 2.5_f64).unwrap();
    let err = read_ticket(doc.document(), None).unwrap_err();
    assert_eq!(err.path, "events[0].data.labour_min");
    assert_eq!(
        err.to_string(),
        "at events[0].data.labour_min: expected a whole number"
    );

    let mut doc = AutoCommit::new();
    doc.put(ROOT, "type", "household").unwrap();
    let err = read_ticket(doc.document(), None).unwrap_err();
    assert_eq!(err.path, "type");
}

#[test]
fn households_and_inboxes_round_trip() {
    let private_url = DocId::from_bytes([5; 16]).url();
    let public_url = DocId::from_bytes([6; 16]).url();
    let h = Household {
        building: "B1".into(),
        unit: "B1-1203".into(),
        residents: vec![Resident {
            name: "Wang Fang".into(),
            relation: "owner".into(),
        }],
        access_notes: "dog; call first".into(),
        equipment: vec![Equipment {
            name: "water heater".into(),
            notes: "2019".into(),
        }],
        private: Some(private_url),
    };
    let mut doc = AutoCommit::new();
    create_household(&mut doc, &h).unwrap();
    assert_eq!(read_household(doc.document()).unwrap(), h);
    assert_eq!(doc_kind(doc.document()), Some(DocKind::Household));

    let p = HouseholdPrivate {
        household: public_url,
        contacts: vec![Contact {
            name: "Wang Fang".into(),
            phone: "138 0000 0000".into(),
        }],
        arrears: vec![Arrear {
            item: "property fee".into(),
            period: "2026-10".into(),
            amount: Fen::new(32_000),
        }],
    };
    let mut doc = AutoCommit::new();
    create_household_private(&mut doc, &p).unwrap();
    assert_eq!(read_household_private(doc.document()).unwrap(), p);

    let mut doc = AutoCommit::new();
    create_inbox(&mut doc, &user("eng1")).unwrap();
    let entry = InboxEntry {
        kind: DocKind::Ticket,
        access: Access::ReadWrite,
        label: "RO-2026-000001".into(),
    };
    inbox_put(&mut doc, public_url, &entry).unwrap();
    inbox_put(&mut doc, private_url, &entry).unwrap();
    inbox_remove(&mut doc, private_url).unwrap();
    let inbox = read_inbox(doc.document()).unwrap();
    assert_eq!(inbox.user, user("eng1"));
    assert_eq!(
        inbox.docs.into_iter().collect::<Vec<_>>(),
        vec![(public_url, entry)]
    );
}

proptest! {
    /// Whatever serials a relay tries to write, the first one stays.
    #[test]
    fn the_first_serial_stays(numbers in proptest::collection::vec(1u32..1_000_000, 1..8)) {
        let mut doc = AutoCommit::new();
        create_ticket(&mut doc, &header()).unwrap();
        let serials: Vec<Serial> = numbers.iter().map(|n| Serial::new(Series::Ro, 2026, *n).unwrap()).collect();
        for s in &serials {
            let _ = set_serial(&mut doc, *s);
            let mut saved = AutoCommit::load(&doc.save()).unwrap();
            prop_assert_eq!(read_ticket(saved.document(), None).unwrap().server.serial, Some(serials[0]));
        }
    }

    /// Events survive the trip whatever text and numbers they carry.
    #[test]
    fn events_round_trip(reason in ".{0,40}", labour in 0i64..10_000, amount in 0i64..10_000_000) {
        let mut e = complete_event();
        e.data.reason = Some(reason);
        e.data.labour_min = Some(labour);
        e.data.amount_fen = Some(Fen::new(amount));
        let mut doc = AutoCommit::new();
        create_ticket(&mut doc, &header()).unwrap();
        append_event(&mut doc, &e).unwrap();
        let t = read_ticket(doc.document(), None).unwrap();
        prop_assert_eq!(&t.events[0], &e);
    }
}
