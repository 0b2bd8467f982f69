//! Judging random and mutated Automerge changes against a real ticket as the
//! relay judges a batch: arbitrary chunks, a real change (an engineer's
//! `accept`) with bytes overwritten, and changes built on an older version of
//! a ticket with a history (automerge's `changeAt`), adding an event, note or
//! attachment that may reuse an id already in the document or claim another
//! author, then mutated. Unpacking and judging never panic, and a merged batch
//! always reads as a ticket (no id twice); automerge panics in
//! the trial merge are caught as the hub catches them (`guarded`), so the
//! panic hook libfuzzer installs (abort) is replaced by a silent one: only a
//! panic that escapes the relay's guard is a finding.
#![no_main]

use std::sync::OnceLock;

use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge};
use libfuzzer_sys::fuzz_target;
use server::schema::doc;
use server::schema::ticket::{Channel, Reported, TicketHeader};
use server::schema::{DeviceId, Event, EventData, EventId, Kind, Role, UserId};

struct Fixture {
    ticket: Automerge,
    change: Vec<u8>,
    branches: server::fuzzing::Branches,
}

fn event(by: &str, device: &str, action: &str) -> Event {
    Event {
        id: EventId::random(),
        action: action.into(),
        by: UserId::new(by).expect("user"),
        device: DeviceId::new(device).expect("device"),
        at: chrono::Utc::now(),
        data: EventData::default(),
    }
}

/// A repair issued at the desk, and eng1's `accept` on it as raw bytes.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        std::panic::set_hook(Box::new(|_| {}));
        let mut ticket = Automerge::new().with_actor(ActorId::random());
        let mut tx = ticket.transaction();
        doc::create_ticket(
            &mut tx,
            &TicketHeader {
                kind: Kind::Repair,
                household: None,
                location: "B2-301".into(),
                title: "Door lock jammed".into(),
                description: String::new(),
                reported: Reported {
                    by: UserId::new("frontdesk").expect("user"),
                    channel: Channel::WalkIn,
                    at: chrono::Utc::now(),
                },
                caller: None,
            },
        )
        .expect("create");
        doc::append_event(&mut tx, &event("frontdesk", "frontdesk-web", "issue")).expect("issue");
        tx.commit();
        let mut phone = ticket.fork().with_actor(ActorId::random());
        let mut tx = phone.transaction();
        doc::append_event(&mut tx, &event("eng1", "eng1-phone", "accept")).expect("accept");
        tx.put(automerge::ROOT, "title", "Door lock jammed (2)").ok();
        tx.commit();
        let change = phone
            .get_last_local_change()
            .expect("a change")
            .raw_bytes()
            .to_vec();
        Fixture {
            ticket,
            change,
            branches: server::fuzzing::Branches::new(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let role = Role::ALL[usize::from(mode >> 4) % Role::ALL.len()];
    if mode & 3 == 2 {
        // A change on an older version of a ticket with a history.
        let change = f.branches.change(rest);
        f.branches.judge(&change);
    } else if mode & 1 == 0 {
        // Arbitrary chunks: the next bytes say where to split.
        let mut chunks = Vec::new();
        let mut rest = rest;
        while let Some((&len, tail)) = rest.split_first() {
            let n = usize::from(len).min(tail.len());
            let (chunk, more) = tail.split_at(if len == 0xff { tail.len() } else { n });
            chunks.push(chunk);
            rest = more;
        }
        server::fuzzing::validate_changes(&f.ticket, &chunks, role);
    } else {
        // A real change with bytes overwritten: (offset, value) pairs.
        let mut change = f.change.clone();
        for pair in rest.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % change.len();
            change[at] = pair[2];
        }
        server::fuzzing::validate_changes(&f.ticket, &[&change], role);
    }
});
