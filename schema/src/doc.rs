// Long file: the Automerge layout of every document kind, read and written in one place so reader and writer cannot drift.
//! Reading and writing the document shapes in Automerge: the one module that
//! knows how a [`Ticket`], [`Household`] or [`Inbox`] is laid out in a document.
//!
//! Readers are lenient where writers differ (DESIGN.md §2): JavaScript
//! automerge writes strings as collaborative text and numbers as int, uint or
//! float, so a string is read from text or a scalar string, a whole number
//! from int, uint or a float with no fraction, and a time from an RFC 3339
//! string or an Automerge timestamp. Anything else is a [`ShapeError`] that
//! names the path.
//!
//! Writers produce scalar strings, `Int`s and RFC 3339 UTC strings; the ticket
//! description and the household access notes are `Text`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::str::FromStr;

use automerge::hydrate::{Map, Value};
use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

use crate::household::{Arrear, Contact, Equipment, Household, HouseholdPrivate, Resident};
use crate::ids::{DocUrl, EventId};
use crate::inbox::{DocKind, Inbox, InboxEntry};
use crate::money::Fen;
use crate::serial::Serial;
use crate::ticket::{
    Attachment, Caller, Event, EventData, Material, Note, Reported, SCHEMA_VERSION, ServerSection,
    Ticket, TicketHeader, VerdictRecord,
};

/// A document whose content is not the shape its `type` promises.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {path}: {problem}")]
pub struct ShapeError {
    /// Where, e.g. `events[3].data.labour_min`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Automerge refused the operation.
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// The document is not of the expected shape.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// A serial number, once set, never changes.
    #[error("the ticket already has serial {0}")]
    SerialAlreadySet(Serial),
}

/// Formats a time the way every document and wire message carries it.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------- reading

type ReadResult<T> = Result<T, ShapeError>;

fn bad<T>(path: String, problem: impl Into<String>) -> ReadResult<T> {
    Err(ShapeError {
        path,
        problem: problem.into(),
    })
}

fn as_map<'a>(v: &'a Value, path: &dyn Fn() -> String) -> ReadResult<&'a Map> {
    match v {
        Value::Map(m) => Ok(m),
        _ => bad(path(), "expected a map"),
    }
}

/// A present, non-null map entry.
fn entry<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    m.get(key)
        .filter(|v| !matches!(v, Value::Scalar(ScalarValue::Null)))
}

fn read_str(v: &Value, path: &dyn Fn() -> String) -> ReadResult<String> {
    match v {
        Value::Scalar(ScalarValue::Str(s)) => Ok(s.to_string()),
        Value::Text(t) => Ok(String::from(t)),
        _ => bad(path(), "expected a string"),
    }
}

fn read_int(v: &Value, path: &dyn Fn() -> String) -> ReadResult<i64> {
    match v {
        Value::Scalar(ScalarValue::Int(i)) => Ok(*i),
        Value::Scalar(ScalarValue::Uint(u)) => {
            i64::try_from(*u).or_else(|_| bad(path(), "whole number out of range"))
        }
        Value::Scalar(ScalarValue::F64(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            // Exact: |f| < 2^53 with no fraction.
            #[allow(
                clippy::cast_possible_truncation,
                reason = "checked whole and in range above"
            )]
            Ok(*f as i64)
        }
        _ => bad(path(), "expected a whole number"),
    }
}

fn read_bool(v: &Value, path: &dyn Fn() -> String) -> ReadResult<bool> {
    match v {
        Value::Scalar(ScalarValue::Boolean(b)) => Ok(*b),
        _ => bad(path(), "expected true or false"),
    }
}

fn read_time(v: &Value, path: &dyn Fn() -> String) -> ReadResult<DateTime<Utc>> {
    match v {
        Value::Scalar(ScalarValue::Timestamp(ms)) => Utc
            .timestamp_millis_opt(*ms)
            .single()
            .map_or_else(|| bad(path(), "timestamp out of range"), Ok),
        _ => {
            let s = read_str(v, path)?;
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| bad(path(), "expected an RFC 3339 time"))
        }
    }
}

fn read_parsed<T: FromStr>(v: &Value, path: &dyn Fn() -> String) -> ReadResult<T>
where
    T::Err: Display,
{
    let s = read_str(v, path)?;
    s.parse::<T>().or_else(|e| bad(path(), e.to_string()))
}

fn read_list<'a>(v: &'a Value, path: &dyn Fn() -> String) -> ReadResult<Vec<&'a Value>> {
    match v {
        Value::List(l) => Ok(l.iter().map(|lv| &lv.value).collect()),
        _ => bad(path(), "expected a list"),
    }
}

/// `base.key`, or `key` at the root.
fn join(base: &dyn Fn() -> String, key: &str) -> String {
    let b = base();
    if b.is_empty() {
        key.to_owned()
    } else {
        format!("{b}.{key}")
    }
}

/// Reads an optional field with `f`.
fn opt<T>(
    m: &Map,
    key: &str,
    base: &dyn Fn() -> String,
    f: impl Fn(&Value, &dyn Fn() -> String) -> ReadResult<T>,
) -> ReadResult<Option<T>> {
    match entry(m, key) {
        None => Ok(None),
        Some(v) => f(v, &|| join(base, key)).map(Some),
    }
}

/// Reads a required field with `f`.
fn req<T>(
    m: &Map,
    key: &str,
    base: &dyn Fn() -> String,
    f: impl Fn(&Value, &dyn Fn() -> String) -> ReadResult<T>,
) -> ReadResult<T> {
    opt(m, key, base, f)?.map_or_else(|| bad(join(base, key), "missing"), Ok)
}

/// Reads a list field (absent means empty) with `f` per item.
fn list_of<T>(
    m: &Map,
    key: &str,
    base: &dyn Fn() -> String,
    f: impl Fn(&Value, &dyn Fn() -> String) -> ReadResult<T>,
) -> ReadResult<Vec<T>> {
    let Some(v) = entry(m, key) else {
        return Ok(Vec::new());
    };
    let items = read_list(v, &|| join(base, key))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| f(item, &|| format!("{}[{i}]", join(base, key))))
        .collect()
}

fn check_type(root: &Map, expected: &str) -> ReadResult<()> {
    let base = || String::new();
    let ty: String = req(root, "type", &base, read_str)?;
    if ty != expected {
        return bad(
            "type".into(),
            format!("expected {expected:?}, found {ty:?}"),
        );
    }
    let schema = opt(root, "schema", &base, read_int)?.unwrap_or(SCHEMA_VERSION);
    if schema != SCHEMA_VERSION {
        return bad(
            "schema".into(),
            format!("unsupported schema version {schema}"),
        );
    }
    Ok(())
}

fn read_root(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Value {
    doc.hydrate(heads)
}

/// The `type` of a document, if it has a string one.
pub fn doc_type(doc: &Automerge) -> Option<String> {
    match doc.get(ROOT, "type").ok().flatten()? {
        (automerge::Value::Scalar(s), _) => s.as_str().map(str::to_owned),
        (automerge::Value::Object(ObjType::Text), id) => doc.text(id).ok(),
        _ => None,
    }
}

fn read_event(v: &Value, path: &dyn Fn() -> String) -> ReadResult<Event> {
    let m = as_map(v, path)?;
    let data = match entry(m, "data") {
        None => EventData::default(),
        Some(d) => read_event_data(d, &|| format!("{}.data", path()))?,
    };
    Ok(Event {
        id: req(m, "id", path, read_parsed)?,
        action: req(m, "action", path, read_str)?,
        by: req(m, "by", path, read_parsed)?,
        device: req(m, "device", path, read_parsed)?,
        at: req(m, "at", path, read_time)?,
        data,
    })
}

fn read_material(v: &Value, path: &dyn Fn() -> String) -> ReadResult<Material> {
    let m = as_map(v, path)?;
    Ok(Material {
        name: req(m, "name", path, read_str)?,
        qty: req(m, "qty", path, read_int)?,
        unit_fen: Fen::new(req(m, "unit_fen", path, read_int)?),
    })
}

fn read_event_data(v: &Value, path: &dyn Fn() -> String) -> ReadResult<EventData> {
    let m = as_map(v, path)?;
    let fen = |v: &Value, p: &dyn Fn() -> String| read_int(v, p).map(Fen::new);
    Ok(EventData {
        assignee: opt(m, "assignee", path, read_parsed)?,
        appointment: opt(m, "appointment", path, read_str)?,
        reason: opt(m, "reason", path, read_str)?,
        result: opt(m, "result", path, read_str)?,
        labour_min: opt(m, "labour_min", path, read_int)?,
        materials: match entry(m, "materials") {
            None => None,
            Some(_) => Some(list_of(m, "materials", path, read_material)?),
        },
        photos: list_of(m, "photos", path, read_str)?,
        signature: opt(m, "signature", path, read_str)?,
        resident_absent: opt(m, "resident_absent", path, read_bool)?,
        witness: opt(m, "witness", path, read_str)?,
        quote_fen: opt(m, "quote_fen", path, fen)?,
        amount_fen: opt(m, "amount_fen", path, fen)?,
        receipt: opt(m, "receipt", path, read_str)?,
        method: opt(m, "method", path, read_str)?,
        contact_result: opt(m, "contact_result", path, read_parsed)?,
        satisfaction: opt(m, "satisfaction", path, read_parsed)?,
        comments: opt(m, "comments", path, read_str)?,
        department: opt(m, "department", path, read_parsed)?,
        category: opt(m, "category", path, read_str)?,
        urgency: opt(m, "urgency", path, read_parsed)?,
        paid: opt(m, "paid", path, read_bool)?,
        contractor: opt(m, "contractor", path, read_str)?,
        linked: opt(m, "linked", path, read_parsed)?,
        target: opt(m, "target", path, read_parsed)?,
        owner: opt(m, "owner", path, read_parsed)?,
        next_step: opt(m, "next_step", path, read_str)?,
        due_at: opt(m, "due_at", path, read_time)?,
        copy_received: opt(m, "copy_received", path, read_bool)?,
    })
}

fn read_note(v: &Value, path: &dyn Fn() -> String) -> ReadResult<Note> {
    let m = as_map(v, path)?;
    Ok(Note {
        id: req(m, "id", path, read_parsed)?,
        by: req(m, "by", path, read_parsed)?,
        device: req(m, "device", path, read_parsed)?,
        at: req(m, "at", path, read_time)?,
        text: req(m, "text", path, read_str)?,
    })
}

fn read_attachment(v: &Value, path: &dyn Fn() -> String) -> ReadResult<Attachment> {
    let m = as_map(v, path)?;
    let size = req(m, "size", path, read_int)?;
    Ok(Attachment {
        id: req(m, "id", path, read_parsed)?,
        sha256: req(m, "sha256", path, read_str)?,
        mime: req(m, "mime", path, read_str)?,
        size: u64::try_from(size).or_else(|_| bad(format!("{}.size", path()), "negative size"))?,
        caption: opt(m, "caption", path, read_str)?.unwrap_or_default(),
        by: req(m, "by", path, read_parsed)?,
        device: req(m, "device", path, read_parsed)?,
        at: req(m, "at", path, read_time)?,
    })
}

fn read_verdict(v: &Value, path: &dyn Fn() -> String) -> ReadResult<VerdictRecord> {
    let m = as_map(v, path)?;
    let seq = req(m, "seq", path, read_int)?;
    Ok(VerdictRecord {
        seq: u64::try_from(seq).or_else(|_| bad(format!("{}.seq", path()), "negative seq"))?,
        outcome: req(m, "outcome", path, read_parsed)?,
        rule: req(m, "rule", path, read_str)?,
        reason: req(m, "reason", path, read_str)?,
        at: req(m, "at", path, read_time)?,
    })
}

fn read_server(v: &Value, path: &dyn Fn() -> String) -> ReadResult<ServerSection> {
    let m = as_map(v, path)?;
    let mut verdicts = BTreeMap::new();
    if let Some(vs) = entry(m, "verdicts") {
        let vp = || format!("{}.verdicts", path());
        for (key, mv) in as_map(vs, &vp)?.iter() {
            let id: EventId = key
                .parse()
                .or_else(|e: crate::IdError| bad(vp(), e.to_string()))?;
            verdicts.insert(id, read_verdict(&mv.value, &|| format!("{}.{key}", vp()))?);
        }
    }
    Ok(ServerSection {
        serial: opt(m, "serial", path, read_parsed)?,
        received_at: opt(m, "received_at", path, read_time)?,
        verdicts,
    })
}

/// Reads a ticket document, at `heads` or now.
///
/// # Errors
/// When the document is not a ticket of this schema, with the path of the
/// first value that is not of its shape.
pub fn read_ticket(doc: &Automerge, heads: Option<&[ChangeHash]>) -> Result<Ticket, ShapeError> {
    ticket_from_value(&read_root(doc, heads))
}

/// Reads a ticket from an already hydrated root value.
///
/// # Errors
/// As [`read_ticket`].
pub fn ticket_from_value(root: &Value) -> Result<Ticket, ShapeError> {
    let base = || String::new();
    let root = as_map(root, &|| "(root)".into())?;
    check_type(root, "ticket")?;
    let rp = || "reported".to_owned();
    let reported = req(root, "reported", &base, |v, p| {
        let m = as_map(v, p)?;
        Ok(Reported {
            by: req(m, "by", &rp, read_parsed)?,
            channel: req(m, "channel", &rp, read_parsed)?,
            at: req(m, "at", &rp, read_time)?,
        })
    })?;
    let header = TicketHeader {
        kind: req(root, "kind", &base, read_parsed)?,
        household: opt(root, "household", &base, read_parsed)?,
        location: opt(root, "location", &base, read_str)?.unwrap_or_default(),
        title: req(root, "title", &base, read_str)?,
        description: opt(root, "description", &base, read_str)?.unwrap_or_default(),
        reported,
        caller: read_caller(root)?,
    };
    let list_base = String::new;
    let ticket = Ticket {
        header,
        events: list_of(root, "events", &list_base, read_event)?,
        notes: list_of(root, "notes", &list_base, read_note)?,
        attachments: list_of(root, "attachments", &list_base, read_attachment)?,
        server: match entry(root, "server") {
            None => ServerSection::default(),
            Some(v) => read_server(v, &|| "server".into())?,
        },
    };
    unique_ids(&ticket)?;
    Ok(ticket)
}

/// The optional `caller {name, phone, read_back}`: absent or null is none;
/// a missing name or number reads as empty, a missing `read_back` as false.
fn read_caller(root: &Map) -> ReadResult<Option<Caller>> {
    let base = || "caller".to_owned();
    match entry(root, "caller") {
        None | Some(Value::Scalar(ScalarValue::Null)) => Ok(None),
        Some(v) => {
            let m = as_map(v, &base)?;
            Ok(Some(Caller {
                name: opt(m, "name", &base, read_str)?.unwrap_or_default(),
                phone: opt(m, "phone", &base, read_str)?.unwrap_or_default(),
                read_back: opt(m, "read_back", &base, read_bool)?.unwrap_or(false),
            }))
        }
    }
}

/// Refuses a ticket in which two entries (events, notes, attachments, on
/// any branch) share an id: a verdict is keyed by id, so two bodies under
/// one id would both take it (DESIGN.md §2).
fn unique_ids(t: &Ticket) -> ReadResult<()> {
    let mut seen: HashMap<&str, String> = HashMap::new();
    let entries = (t.events.iter().enumerate())
        .map(|(i, e)| (e.id.as_str(), format!("events[{i}]")))
        .chain((t.notes.iter().enumerate()).map(|(i, n)| (n.id.as_str(), format!("notes[{i}]"))))
        .chain(
            (t.attachments.iter().enumerate())
                .map(|(i, a)| (a.id.as_str(), format!("attachments[{i}]"))),
        );
    for (id, path) in entries {
        if let Some(first) = seen.insert(id, path.clone()) {
            return bad(
                format!("{path}.id"),
                format!("id {id} is already used by {first}"),
            );
        }
    }
    Ok(())
}

/// Which append-only list of a ticket an entry sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryList {
    /// `events`.
    Events,
    /// `notes`.
    Notes,
    /// `attachments`.
    Attachments,
}

impl EntryList {
    /// Every list, in document order.
    pub const ALL: [EntryList; 3] = [EntryList::Events, EntryList::Notes, EntryList::Attachments];

    /// The list's key in the ticket's root map.
    pub fn key(self) -> &'static str {
        match self {
            EntryList::Events => "events",
            EntryList::Notes => "notes",
            EntryList::Attachments => "attachments",
        }
    }

    /// The list of that key, if it is one.
    pub fn of_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.key() == key)
    }
}

/// One entry of a ticket's append-only lists, read on its own (what a
/// change adds, found by the list element it inserted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A lifecycle event.
    Event(Box<Event>),
    /// A note.
    Note(Note),
    /// An attachment reference.
    Attachment(Attachment),
}

impl Entry {
    /// Its id (one namespace across the three lists).
    pub fn id(&self) -> &EventId {
        match self {
            Entry::Event(e) => &e.id,
            Entry::Note(n) => &n.id,
            Entry::Attachment(a) => &a.id,
        }
    }

    /// Who it says wrote it, on which device.
    pub fn author(&self) -> (&crate::UserId, &crate::DeviceId) {
        match self {
            Entry::Event(e) => (&e.by, &e.device),
            Entry::Note(n) => (&n.by, &n.device),
            Entry::Attachment(a) => (&a.by, &a.device),
        }
    }
}

/// Reads one entry of `list` from its hydrated value.
///
/// # Errors
/// When it is not an entry of this schema.
pub fn entry_from_value(list: EntryList, v: &Value) -> Result<Entry, ShapeError> {
    let path = || format!("{}[new]", list.key());
    Ok(match list {
        EntryList::Events => Entry::Event(Box::new(read_event(v, &path)?)),
        EntryList::Notes => Entry::Note(read_note(v, &path)?),
        EntryList::Attachments => Entry::Attachment(read_attachment(v, &path)?),
    })
}

/// Reads a public household file.
///
/// # Errors
/// When the document is not a household file of this schema.
pub fn read_household(doc: &Automerge) -> Result<Household, ShapeError> {
    let v = read_root(doc, None);
    let base = || String::new();
    let root = as_map(&v, &|| "(root)".into())?;
    check_type(root, "household")?;
    Ok(Household {
        building: req(root, "building", &base, read_str)?,
        unit: req(root, "unit", &base, read_str)?,
        residents: list_of(root, "residents", &base, |v, p| {
            let m = as_map(v, p)?;
            Ok(Resident {
                name: req(m, "name", p, read_str)?,
                relation: req(m, "relation", p, read_str)?,
            })
        })?,
        access_notes: opt(root, "access_notes", &base, read_str)?.unwrap_or_default(),
        equipment: list_of(root, "equipment", &base, |v, p| {
            let m = as_map(v, p)?;
            Ok(Equipment {
                name: req(m, "name", p, read_str)?,
                notes: opt(m, "notes", p, read_str)?.unwrap_or_default(),
            })
        })?,
        private: opt(root, "private", &base, read_parsed)?,
    })
}

/// Reads a private household file.
///
/// # Errors
/// When the document is not a private household file of this schema.
pub fn read_household_private(doc: &Automerge) -> Result<HouseholdPrivate, ShapeError> {
    let v = read_root(doc, None);
    let base = || String::new();
    let root = as_map(&v, &|| "(root)".into())?;
    check_type(root, "household_private")?;
    Ok(HouseholdPrivate {
        household: req(root, "household", &base, read_parsed)?,
        contacts: list_of(root, "contacts", &base, |v, p| {
            let m = as_map(v, p)?;
            Ok(Contact {
                name: req(m, "name", p, read_str)?,
                phone: req(m, "phone", p, read_str)?,
            })
        })?,
        arrears: list_of(root, "arrears", &base, |v, p| {
            let m = as_map(v, p)?;
            Ok(Arrear {
                item: req(m, "item", p, read_str)?,
                period: req(m, "period", p, read_str)?,
                amount: Fen::new(req(m, "amount_fen", p, read_int)?),
            })
        })?,
    })
}

/// Reads an inbox.
///
/// # Errors
/// When the document is not an inbox of this schema.
pub fn read_inbox(doc: &Automerge) -> Result<Inbox, ShapeError> {
    let v = read_root(doc, None);
    let base = || String::new();
    let root = as_map(&v, &|| "(root)".into())?;
    check_type(root, "inbox")?;
    let mut docs = BTreeMap::new();
    if let Some(d) = entry(root, "docs") {
        let dp = || "docs".to_owned();
        for (key, mv) in as_map(d, &dp)?.iter() {
            let url: DocUrl = key
                .parse()
                .or_else(|e: crate::IdError| bad(dp(), e.to_string()))?;
            let p = || format!("docs.{key}");
            let m = as_map(&mv.value, &p)?;
            docs.insert(
                url,
                InboxEntry {
                    kind: req(m, "kind", &p, read_parsed)?,
                    access: req(m, "access", &p, read_parsed)?,
                    label: opt(m, "label", &p, read_str)?.unwrap_or_default(),
                },
            );
        }
    }
    Ok(Inbox {
        user: req(root, "user", &base, read_parsed)?,
        docs,
    })
}

// ---------------------------------------------------------------- writing

fn s(v: impl Into<String>) -> Value {
    Value::Scalar(ScalarValue::Str(v.into().into()))
}

fn t(v: DateTime<Utc>) -> Value {
    s(rfc3339(v))
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<String, Value> = entries
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Value::Map(m.into())
}

fn event_value(e: &Event) -> Value {
    let d = &e.data;
    let mut data: Vec<(&str, Value)> = Vec::new();
    let mut text = |k, v: &Option<String>| {
        if let Some(v) = v {
            data.push((k, s(v.as_str())));
        }
    };
    text("appointment", &d.appointment);
    text("reason", &d.reason);
    text("result", &d.result);
    text("signature", &d.signature);
    text("witness", &d.witness);
    text("receipt", &d.receipt);
    text("method", &d.method);
    text("comments", &d.comments);
    text("category", &d.category);
    text("contractor", &d.contractor);
    text("next_step", &d.next_step);
    let mut put = |k, v: Option<Value>| {
        if let Some(v) = v {
            data.push((k, v));
        }
    };
    put("assignee", d.assignee.as_ref().map(|u| s(u.as_str())));
    put("labour_min", d.labour_min.map(Value::from));
    put(
        "materials",
        d.materials.as_ref().map(|ms| {
            Value::from(
                ms.iter()
                    .map(|m| {
                        map(vec![
                            ("name", s(m.name.as_str())),
                            ("qty", Value::from(m.qty)),
                            ("unit_fen", Value::from(m.unit_fen.get())),
                        ])
                    })
                    .collect::<Vec<_>>(),
            )
        }),
    );
    put(
        "photos",
        (!d.photos.is_empty())
            .then(|| Value::from(d.photos.iter().map(|p| s(p.as_str())).collect::<Vec<_>>())),
    );
    put(
        "resident_absent",
        d.resident_absent
            .map(|b| Value::Scalar(ScalarValue::Boolean(b))),
    );
    put("quote_fen", d.quote_fen.map(|f| Value::from(f.get())));
    put("amount_fen", d.amount_fen.map(|f| Value::from(f.get())));
    put("contact_result", d.contact_result.map(|c| s(c.as_str())));
    put("satisfaction", d.satisfaction.map(|c| s(c.as_str())));
    put("department", d.department.map(|c| s(c.as_str())));
    put("urgency", d.urgency.map(|c| s(c.as_str())));
    put(
        "paid",
        d.paid.map(|b| Value::Scalar(ScalarValue::Boolean(b))),
    );
    put("linked", d.linked.map(|u| s(u.to_string())));
    put("target", d.target.as_ref().map(|u| s(u.as_str())));
    put("owner", d.owner.as_ref().map(|u| s(u.as_str())));
    put("due_at", d.due_at.map(t));
    put(
        "copy_received",
        d.copy_received
            .map(|b| Value::Scalar(ScalarValue::Boolean(b))),
    );
    map(vec![
        ("id", s(e.id.as_str())),
        ("action", s(e.action.as_str())),
        ("by", s(e.by.as_str())),
        ("device", s(e.device.as_str())),
        ("at", t(e.at)),
        ("data", map(data)),
    ])
}

fn list_obj(doc: &mut impl Transactable, key: &str) -> Result<ObjId, DocError> {
    match doc.get(ROOT, key)? {
        Some((automerge::Value::Object(ObjType::List), id)) => Ok(id),
        _ => Err(ShapeError {
            path: key.into(),
            problem: "expected a list".into(),
        }
        .into()),
    }
}

fn append(doc: &mut impl Transactable, key: &str, value: &Value) -> Result<(), DocError> {
    let list = list_obj(doc, key)?;
    let len = doc.length(&list);
    doc.batch_create_object(&list, len, value, true)?;
    Ok(())
}

/// Writes a new ticket's header and empty lists into an empty document.
///
/// # Errors
/// When Automerge refuses the operations.
pub fn create_ticket(doc: &mut impl Transactable, h: &TicketHeader) -> Result<(), DocError> {
    doc.put(ROOT, "type", "ticket")?;
    doc.put(ROOT, "schema", SCHEMA_VERSION)?;
    doc.put(ROOT, "kind", h.kind.as_str())?;
    match h.household {
        Some(url) => doc.put(ROOT, "household", url.to_string())?,
        None => doc.put(ROOT, "household", ScalarValue::Null)?,
    }
    doc.put(ROOT, "location", h.location.as_str())?;
    doc.put(ROOT, "title", h.title.as_str())?;
    let desc = doc.put_object(ROOT, "description", ObjType::Text)?;
    doc.splice_text(&desc, 0, 0, &h.description)?;
    doc.batch_create_object(
        ROOT,
        "reported",
        &map(vec![
            ("by", s(h.reported.by.as_str())),
            ("channel", s(h.reported.channel.as_str())),
            ("at", t(h.reported.at)),
        ]),
        false,
    )?;
    if let Some(c) = &h.caller {
        doc.batch_create_object(
            ROOT,
            "caller",
            &map(vec![
                ("name", s(c.name.as_str())),
                ("phone", s(c.phone.as_str())),
                (
                    "read_back",
                    Value::Scalar(ScalarValue::Boolean(c.read_back)),
                ),
            ]),
            false,
        )?;
    }
    for key in ["events", "notes", "attachments"] {
        doc.put_object(ROOT, key, ObjType::List)?;
    }
    Ok(())
}

/// Appends an event.
///
/// # Errors
/// When the document has no `events` list or Automerge refuses.
pub fn append_event(doc: &mut impl Transactable, e: &Event) -> Result<(), DocError> {
    append(doc, "events", &event_value(e))
}

/// Appends a note.
///
/// # Errors
/// When the document has no `notes` list or Automerge refuses.
pub fn append_note(doc: &mut impl Transactable, n: &Note) -> Result<(), DocError> {
    append(
        doc,
        "notes",
        &map(vec![
            ("id", s(n.id.as_str())),
            ("by", s(n.by.as_str())),
            ("device", s(n.device.as_str())),
            ("at", t(n.at)),
            ("text", s(n.text.as_str())),
        ]),
    )
}

/// Appends an attachment reference (the bytes go to the blob store).
///
/// # Errors
/// When the document has no `attachments` list or Automerge refuses.
pub fn append_attachment(doc: &mut impl Transactable, a: &Attachment) -> Result<(), DocError> {
    let size = i64::try_from(a.size).unwrap_or(i64::MAX);
    append(
        doc,
        "attachments",
        &map(vec![
            ("id", s(a.id.as_str())),
            ("sha256", s(a.sha256.as_str())),
            ("mime", s(a.mime.as_str())),
            ("size", Value::from(size)),
            ("caption", s(a.caption.as_str())),
            ("by", s(a.by.as_str())),
            ("device", s(a.device.as_str())),
            ("at", t(a.at)),
        ]),
    )
}

/// The `server` map, created on first use (by the relay's actor only).
fn server_obj(doc: &mut impl Transactable) -> Result<ObjId, DocError> {
    match doc.get(ROOT, "server")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Ok(doc.put_object(ROOT, "server", ObjType::Map)?),
    }
}

/// Writes a verdict under `server.verdicts` (relay only).
///
/// # Errors
/// When Automerge refuses.
pub fn put_verdict(
    doc: &mut impl Transactable,
    event: &EventId,
    v: &VerdictRecord,
) -> Result<(), DocError> {
    let server = server_obj(doc)?;
    let verdicts = match doc.get(&server, "verdicts")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        _ => doc.put_object(&server, "verdicts", ObjType::Map)?,
    };
    let seq = i64::try_from(v.seq).unwrap_or(i64::MAX);
    doc.batch_create_object(
        &verdicts,
        event.as_str(),
        &map(vec![
            ("seq", Value::from(seq)),
            ("outcome", s(v.outcome.as_str())),
            ("rule", s(v.rule.as_str())),
            ("reason", s(v.reason.as_str())),
            ("at", t(v.at)),
        ]),
        false,
    )?;
    Ok(())
}

/// Sets the serial number (relay only). A serial, once set, never changes.
///
/// # Errors
/// [`DocError::SerialAlreadySet`] when the ticket has one; Automerge errors.
pub fn set_serial(doc: &mut impl Transactable, serial: Serial) -> Result<(), DocError> {
    let server = server_obj(doc)?;
    if let Some((automerge::Value::Scalar(existing), _)) = doc.get(&server, "serial")?
        && let Some(existing) = existing.as_str().and_then(|s| s.parse().ok())
    {
        return Err(DocError::SerialAlreadySet(existing));
    }
    doc.put(&server, "serial", serial.to_string())?;
    Ok(())
}

/// Sets when the relay first received the ticket (relay only; kept if set).
///
/// # Errors
/// When Automerge refuses.
pub fn set_received_at(doc: &mut impl Transactable, at: DateTime<Utc>) -> Result<(), DocError> {
    let server = server_obj(doc)?;
    if doc.get(&server, "received_at")?.is_none() {
        doc.put(&server, "received_at", rfc3339(at))?;
    }
    Ok(())
}

/// Writes a new public household file into an empty document.
///
/// # Errors
/// When Automerge refuses.
pub fn create_household(doc: &mut impl Transactable, h: &Household) -> Result<(), DocError> {
    doc.put(ROOT, "type", "household")?;
    doc.put(ROOT, "schema", SCHEMA_VERSION)?;
    doc.put(ROOT, "building", h.building.as_str())?;
    doc.put(ROOT, "unit", h.unit.as_str())?;
    let residents: Vec<Value> = h
        .residents
        .iter()
        .map(|r| {
            map(vec![
                ("name", s(r.name.as_str())),
                ("relation", s(r.relation.as_str())),
            ])
        })
        .collect();
    doc.batch_create_object(ROOT, "residents", &Value::from(residents), false)?;
    let notes = doc.put_object(ROOT, "access_notes", ObjType::Text)?;
    doc.splice_text(&notes, 0, 0, &h.access_notes)?;
    let equipment: Vec<Value> = h
        .equipment
        .iter()
        .map(|e| {
            map(vec![
                ("name", s(e.name.as_str())),
                ("notes", s(e.notes.as_str())),
            ])
        })
        .collect();
    doc.batch_create_object(ROOT, "equipment", &Value::from(equipment), false)?;
    match h.private {
        Some(url) => doc.put(ROOT, "private", url.to_string())?,
        None => doc.put(ROOT, "private", ScalarValue::Null)?,
    }
    Ok(())
}

/// Writes a new private household file into an empty document.
///
/// # Errors
/// When Automerge refuses.
pub fn create_household_private(
    doc: &mut impl Transactable,
    h: &HouseholdPrivate,
) -> Result<(), DocError> {
    doc.put(ROOT, "type", "household_private")?;
    doc.put(ROOT, "schema", SCHEMA_VERSION)?;
    doc.put(ROOT, "household", h.household.to_string())?;
    let contacts: Vec<Value> = h
        .contacts
        .iter()
        .map(|c| {
            map(vec![
                ("name", s(c.name.as_str())),
                ("phone", s(c.phone.as_str())),
            ])
        })
        .collect();
    doc.batch_create_object(ROOT, "contacts", &Value::from(contacts), false)?;
    let arrears: Vec<Value> = h
        .arrears
        .iter()
        .map(|a| {
            map(vec![
                ("item", s(a.item.as_str())),
                ("period", s(a.period.as_str())),
                ("amount_fen", Value::from(a.amount.get())),
            ])
        })
        .collect();
    doc.batch_create_object(ROOT, "arrears", &Value::from(arrears), false)?;
    Ok(())
}

/// Writes a new, empty inbox.
///
/// # Errors
/// When Automerge refuses.
pub fn create_inbox(doc: &mut impl Transactable, user: &crate::UserId) -> Result<(), DocError> {
    doc.put(ROOT, "type", "inbox")?;
    doc.put(ROOT, "schema", SCHEMA_VERSION)?;
    doc.put(ROOT, "user", user.as_str())?;
    doc.put_object(ROOT, "docs", ObjType::Map)?;
    Ok(())
}

fn inbox_docs(doc: &mut impl Transactable) -> Result<ObjId, DocError> {
    match doc.get(ROOT, "docs")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => Err(ShapeError {
            path: "docs".into(),
            problem: "expected a map".into(),
        }
        .into()),
    }
}

/// Lists a document in an inbox (or updates its entry).
///
/// # Errors
/// When the document is not an inbox or Automerge refuses.
pub fn inbox_put(doc: &mut impl Transactable, url: DocUrl, e: &InboxEntry) -> Result<(), DocError> {
    let docs = inbox_docs(doc)?;
    doc.batch_create_object(
        &docs,
        url.to_string(),
        &map(vec![
            ("kind", s(e.kind.as_str())),
            ("access", s(e.access.as_str())),
            ("label", s(e.label.as_str())),
        ]),
        false,
    )?;
    Ok(())
}

/// Removes a document from an inbox.
///
/// # Errors
/// When the document is not an inbox or Automerge refuses.
pub fn inbox_remove(doc: &mut impl Transactable, url: DocUrl) -> Result<(), DocError> {
    let docs = inbox_docs(doc)?;
    if doc.get(&docs, url.to_string())?.is_some() {
        doc.delete(&docs, url.to_string())?;
    }
    Ok(())
}

/// What kind of document this is, by its `type`.
pub fn doc_kind(doc: &Automerge) -> Option<DocKind> {
    doc_type(doc)?.parse().ok()
}

#[cfg(test)]
mod tests;
