//! Hard rules on incoming changes (DESIGN.md §5): what may never enter a
//! document, whoever sends it.
//!
//! A change breaks a hard rule when it is malformed or oversized, when its
//! actor is the relay's or is bound to another device, when it touches
//! `server`, deletes or rewrites an entry of an append-only list, or writes a
//! field its author's role may not write, or (checked after a trial merge)
//! when an event, note or attachment it adds names another author or device,
//! or does not read as the schema says. Such a change is not merged; its
//! descendants in the same message are refused with it.
//!
//! The checks here read the change's own operations against the document's
//! layout (which object is `events`, `notes`, …), never a full-document diff.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};

use automerge::{ActorId, Automerge, Change, ChangeHash, ObjType, ROOT, ReadDoc};
use schema::Role;
use schema::doc::EntryList;

/// A hard rule, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HardRule {
    /// Bytes that do not decode as Automerge changes, or an automerge panic.
    Malformed,
    /// Over a size, count or counter bound.
    Oversized,
    /// The actor is bound to another device, or is the relay's.
    ActorNotBound,
    /// An event, note or attachment names a user or device other than the binding.
    ForgedAuthor,
    /// Touches the relay-only `server` section.
    ServerField,
    /// Deletes or rewrites an entry of an append-only list.
    AppendOnly,
    /// Writes a field the author's role may not write.
    FieldNotWritable,
    /// Adds an event, note or attachment whose id the document already has
    /// (on any branch).
    DuplicateId,
    /// Adds a note or attachment to a ticket taken from its author (an
    /// engineer transferred away keeps read access only).
    ReadOnly,
    /// The document does not read as its schema says after the change.
    BadShape,
}

impl HardRule {
    /// The stable name stored in the ledger and shown to managers.
    pub fn name(self) -> &'static str {
        match self {
            HardRule::Malformed => "malformed_change",
            HardRule::Oversized => "oversized_change",
            HardRule::ActorNotBound => "actor_not_bound",
            HardRule::ForgedAuthor => "forged_author",
            HardRule::ServerField => "server_field",
            HardRule::AppendOnly => "append_only",
            HardRule::FieldNotWritable => "field_not_writable",
            HardRule::DuplicateId => "duplicate_id",
            HardRule::ReadOnly => "read_only",
            HardRule::BadShape => "bad_shape",
        }
    }
}

/// Why a change is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub rule: HardRule,
    pub reason: String,
}

impl Rejection {
    pub fn new(rule: HardRule, reason: impl Into<String>) -> Self {
        Self {
            rule,
            reason: reason.into(),
        }
    }
}

/// Size and count bounds.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_change_bytes: usize,
    pub max_ops_per_change: usize,
    pub max_changes_per_message: usize,
    /// Largest op counter or seq accepted: far below 2^32, where automerge panics.
    pub max_counter: u64,
    /// Most bytes a whole-document chunk's columns may inflate to.
    pub max_document_bytes: u64,
    /// Most operations a whole-document chunk may hold.
    pub max_document_ops: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_change_bytes: 256 * 1024,
            max_ops_per_change: 50_000,
            max_changes_per_message: 10_000,
            max_counter: 1 << 31,
            max_document_bytes: 32 << 20,
            max_document_ops: 1_000_000,
        }
    }
}

/// Runs `f`, turning an automerge panic into a `Malformed` rejection.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, Rejection> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|_| Rejection::new(HardRule::Malformed, format!("{what} made automerge fail")))
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Splits bytes that hold one or more concatenated Automerge chunks
/// (magic, checksum, type, LEB128 length, body) into the chunks.
fn split_chunks(mut bytes: &[u8]) -> Result<Vec<&[u8]>, Rejection> {
    let bad = |why: &str| {
        Rejection::new(
            HardRule::Malformed,
            format!("a sync message chunk is malformed: {why}"),
        )
    };
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 10 || bytes[..4] != MAGIC {
            return Err(bad("it is not an Automerge chunk"));
        }
        let mut len: u64 = 0;
        let mut shift = 0;
        let mut i = 9;
        loop {
            let b = *bytes.get(i).ok_or_else(|| bad("its length is cut off"))?;
            if shift > 56 {
                return Err(bad("its length is too long"));
            }
            len |= u64::from(b & 0x7f) << shift;
            shift += 7;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(i))
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| bad("it is shorter than its length says"))?;
        out.push(&bytes[..end]);
        bytes = &bytes[end..];
    }
    Ok(out)
}

/// The changes carried by a sync message's chunks: single changes (V1),
/// several changes concatenated, or whole documents (V2), unpacked change by
/// change.
///
/// # Errors
/// A chunk that is not an Automerge chunk, too many changes, an automerge panic.
pub fn changes_in<'a>(
    chunks: impl Iterator<Item = &'a [u8]>,
    limits: &Limits,
) -> Result<Vec<Change>, Rejection> {
    let mut out = Vec::new();
    for element in chunks {
        for chunk in split_chunks(element)? {
            match chunk[8] {
                1 | 2 => {
                    if chunk.len() > limits.max_change_bytes {
                        return Err(Rejection::new(
                            HardRule::Oversized,
                            format!(
                                "a change of {} bytes is over the {} byte limit",
                                chunk.len(),
                                limits.max_change_bytes
                            ),
                        ));
                    }
                    let change = guarded("a change", || Change::from_bytes(chunk.to_vec()))?
                        .map_err(|e| {
                            Rejection::new(
                                HardRule::Malformed,
                                format!("a change does not decode: {e}"),
                            )
                        })?;
                    out.push(change);
                }
                0 => {
                    // Measured before it is loaded: a few kilobytes of
                    // run-length encoded or deflated columns can claim
                    // gigabytes or a billion operations.
                    let caps = document_chunk::Caps {
                        bytes: limits.max_document_bytes,
                        changes: limits.max_changes_per_message as u64,
                        ops: limits.max_document_ops,
                    };
                    document_chunk::measure(chunk, caps).map_err(|e| {
                        Rejection::new(
                            HardRule::Oversized,
                            format!("a document chunk is refused: {e}"),
                        )
                    })?;
                    let doc =
                        guarded("a document chunk", || Automerge::load(chunk))?.map_err(|e| {
                            Rejection::new(
                                HardRule::Malformed,
                                format!("a document chunk does not load: {e}"),
                            )
                        })?;
                    let stats = doc.stats();
                    if stats.num_ops > limits.max_document_ops
                        || stats.num_changes > limits.max_changes_per_message as u64
                    {
                        return Err(Rejection::new(
                            HardRule::Oversized,
                            format!(
                                "a document chunk holds {} changes and {} operations",
                                stats.num_changes, stats.num_ops
                            ),
                        ));
                    }
                    out.extend(guarded("a document chunk", || doc.get_changes(&[]))?);
                }
                t => {
                    return Err(Rejection::new(
                        HardRule::Malformed,
                        format!("unknown Automerge chunk type {t}"),
                    ));
                }
            }
            if out.len() > limits.max_changes_per_message {
                return Err(Rejection::new(
                    HardRule::Oversized,
                    "too many changes in one message",
                ));
            }
        }
    }
    Ok(out)
}

/// An object id as automerge's legacy ops name it.
type Obj = (u64, ActorId);

/// Where the objects of a document are, to check what a change touches.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// The document has a `type` already (it is not being created).
    pub exists: bool,
    /// `ticket`, `household`, `household_private`, `inbox`.
    pub doc_type: Option<String>,
    appendable: HashMap<Obj, EntryList>,
    text: HashSet<Obj>,
    /// `server` and every object under it.
    server: HashSet<Obj>,
}

fn obj_of(id: &automerge::ObjId) -> Option<Obj> {
    match id {
        automerge::ObjId::Root => None,
        automerge::ObjId::Id(ctr, actor, _) => Some((*ctr, actor.clone())),
    }
}

impl Layout {
    /// The layout of `doc` as it is now.
    pub fn of(doc: &Automerge) -> Self {
        let doc_type = schema::doc::doc_type(doc);
        let mut l = Layout {
            exists: doc_type.is_some(),
            doc_type,
            ..Layout::default()
        };
        let lists: &[&str] = match l.doc_type.as_deref() {
            Some("ticket") => &["events", "notes", "attachments"],
            _ => &[],
        };
        for key in lists {
            if let Ok(Some((automerge::Value::Object(ObjType::List), id))) = doc.get(ROOT, *key)
                && let Some(o) = obj_of(&id)
                && let Some(list) = EntryList::of_key(key)
            {
                l.appendable.insert(o, list);
            }
        }
        if let Ok(Some((automerge::Value::Object(_), server))) = doc.get(ROOT, "server") {
            let mut stack = vec![server];
            while let Some(obj) = stack.pop() {
                if let Some(o) = obj_of(&obj) {
                    l.server.insert(o);
                }
                for item in doc.map_range(&obj, ..) {
                    if let automerge::ValueRef::Object(_) = item.value {
                        stack.push(item.id());
                    }
                }
            }
        }
        let texts: &[&str] = match l.doc_type.as_deref() {
            Some("ticket") => &["description"],
            Some("household") => &["access_notes"],
            _ => &[],
        };
        for key in texts {
            if let Ok(Some((automerge::Value::Object(ObjType::Text), id))) = doc.get(ROOT, *key)
                && let Some(o) = obj_of(&id)
            {
                l.text.insert(o);
            }
        }
        l
    }

    /// Adds the lists a creating change makes at the root (so later changes in
    /// the same message may append to them).
    fn learn_from_creation(&mut self, change: &automerge::ExpandedChange) {
        for (i, op) in change.operations.iter().enumerate() {
            if op.obj == automerge::legacy::ObjectId::Root
                && let automerge::legacy::Key::Map(key) = &op.key
            {
                let id = (change.start_op.get() + i as u64, change.actor_id.clone());
                match (key.as_str(), &op.action) {
                    (
                        "events" | "notes" | "attachments",
                        automerge::legacy::OpType::Make(ObjType::List),
                    ) => {
                        if let Some(list) = EntryList::of_key(key) {
                            self.appendable.insert(id, list);
                        }
                    }
                    (
                        "description" | "access_notes",
                        automerge::legacy::OpType::Make(ObjType::Text),
                    ) => {
                        self.text.insert(id);
                    }
                    ("type", automerge::legacy::OpType::Put(v)) => {
                        self.doc_type = v.as_str().map(str::to_owned);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Roles that may edit a ticket's header fields and description after creation.
pub(crate) fn edits_headers(role: Role) -> bool {
    matches!(role, Role::FrontDesk | Role::Supervisor | Role::Manager)
}

/// Roles that may edit household files.
fn edits_households(role: Role, private: bool) -> bool {
    match role {
        Role::FrontDesk | Role::Supervisor | Role::Manager => true,
        Role::Cashier => private,
        _ => false,
    }
}

const TICKET_ROOT_KEYS: &[&str] = &[
    "type",
    "schema",
    "kind",
    "household",
    "location",
    "title",
    "description",
    "reported",
    "caller",
    "events",
    "notes",
    "attachments",
];
const HEADER_KEYS: &[&str] = &["title", "location", "household"];

/// An entry a change inserted into one of a ticket's append-only lists,
/// named by the list element (the map object) it created: wherever it sits
/// in the list and whatever the author's view of the list was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inserted {
    pub list: EntryList,
    pub obj: automerge::ObjId,
}

/// Checks one change's size, counters and operations against `layout`, and
/// returns the entries it inserts into the append-only lists.
///
/// # Errors
/// The first hard rule the change breaks.
pub fn check_ops(
    change: &Change,
    layout: &mut Layout,
    role: Role,
    limits: &Limits,
) -> Result<Vec<Inserted>, Rejection> {
    if change.raw_bytes().len() > limits.max_change_bytes {
        return Err(Rejection::new(
            HardRule::Oversized,
            "the change is over the size limit",
        ));
    }
    if change.len() > limits.max_ops_per_change {
        return Err(Rejection::new(
            HardRule::Oversized,
            format!("{} operations in one change", change.len()),
        ));
    }
    let start = change.start_op().get();
    if start > limits.max_counter
        || change.max_op() > limits.max_counter
        || change.seq() > limits.max_counter
        || start.checked_add(change.len() as u64).is_none()
    {
        return Err(Rejection::new(
            HardRule::Oversized,
            format!("start_op {start} or seq {} is out of bounds", change.seq()),
        ));
    }
    let expanded = guarded("decoding a change", || change.decode())?;
    if !layout.exists {
        layout.learn_from_creation(&expanded);
    }
    let created: HashSet<Obj> = expanded
        .operations
        .iter()
        .enumerate()
        .filter(|(_, op)| matches!(op.action, automerge::legacy::OpType::Make(_)))
        .map(|(i, _)| (start + i as u64, expanded.actor_id.clone()))
        .collect();
    let doc_type = layout.doc_type.clone().unwrap_or_default();
    let creating = !layout.exists;
    let mut inserted = Vec::new();
    for (i, op) in expanded.operations.iter().enumerate() {
        if let automerge::legacy::ObjectId::Id(id) = &op.obj
            && op.insert
            && let Some(list) = layout.appendable.get(&(id.counter(), id.actor().clone()))
        {
            if !matches!(op.action, automerge::legacy::OpType::Make(ObjType::Map)) {
                return Err(Rejection::new(
                    HardRule::BadShape,
                    format!("an entry of `{}` must be a map", list.key()),
                ));
            }
            inserted.push(Inserted {
                list: *list,
                obj: automerge::ObjId::Id(start + i as u64, expanded.actor_id.clone(), 0),
            });
        }
    }
    for op in &expanded.operations {
        use automerge::legacy::{Key, ObjectId, OpType};
        if matches!(
            op.action,
            OpType::Increment(_) | OpType::MarkBegin(_) | OpType::MarkEnd(_)
        ) {
            return Err(Rejection::new(
                HardRule::FieldNotWritable,
                "counters and marks are not part of any document",
            ));
        }
        let target = match &op.obj {
            ObjectId::Root => None,
            ObjectId::Id(id) => Some((id.counter(), id.actor().clone())),
        };
        match target {
            None => {
                let Key::Map(key) = &op.key else {
                    return Err(Rejection::new(
                        HardRule::Malformed,
                        "a list operation on the root map",
                    ));
                };
                if key == "server" {
                    return Err(Rejection::new(
                        HardRule::ServerField,
                        "only the relay writes `server`",
                    ));
                }
                if doc_type == "inbox" {
                    return Err(Rejection::new(
                        HardRule::FieldNotWritable,
                        "only the relay writes inboxes",
                    ));
                }
                if matches!(op.action, OpType::Delete) {
                    return Err(Rejection::new(
                        HardRule::AppendOnly,
                        format!("`{key}` may not be deleted"),
                    ));
                }
                match doc_type.as_str() {
                    "ticket" if creating => {
                        if !TICKET_ROOT_KEYS.contains(&key.as_str()) {
                            return Err(Rejection::new(
                                HardRule::FieldNotWritable,
                                format!("a ticket has no `{key}`"),
                            ));
                        }
                    }
                    "ticket" => {
                        if !(HEADER_KEYS.contains(&key.as_str()) && edits_headers(role)) {
                            return Err(Rejection::new(
                                HardRule::FieldNotWritable,
                                format!("a {role} may not rewrite the ticket's `{key}`"),
                            ));
                        }
                    }
                    "household" | "household_private" => {
                        if key == "type" && !creating {
                            return Err(Rejection::new(
                                HardRule::FieldNotWritable,
                                "a document's type never changes",
                            ));
                        }
                        if !edits_households(role, doc_type == "household_private") {
                            return Err(Rejection::new(
                                HardRule::FieldNotWritable,
                                format!("a {role} may not edit household files"),
                            ));
                        }
                    }
                    _ if creating && doc_type.is_empty() => {
                        return Err(Rejection::new(
                            HardRule::BadShape,
                            "a new document must say its type first",
                        ));
                    }
                    other => {
                        return Err(Rejection::new(
                            HardRule::FieldNotWritable,
                            format!("documents of type {other:?} are not accepted from devices"),
                        ));
                    }
                }
            }
            Some(obj) if created.contains(&obj) => {}
            Some(obj) if layout.server.contains(&obj) => {
                return Err(Rejection::new(
                    HardRule::ServerField,
                    "only the relay writes `server`",
                ));
            }
            Some(obj) if layout.appendable.contains_key(&obj) => {
                if !op.insert || matches!(op.action, OpType::Delete) {
                    return Err(Rejection::new(
                        HardRule::AppendOnly,
                        "events, notes and attachments are append-only: nothing may be deleted or rewritten",
                    ));
                }
            }
            Some(obj) if layout.text.contains(&obj) => {
                let may = match doc_type.as_str() {
                    "ticket" => edits_headers(role),
                    _ => edits_households(role, false),
                };
                if !may {
                    return Err(Rejection::new(
                        HardRule::FieldNotWritable,
                        format!("a {role} may not edit this text"),
                    ));
                }
            }
            Some(_) => {
                if doc_type.starts_with("household")
                    && edits_households(role, doc_type == "household_private")
                {
                    continue;
                }
                return Err(Rejection::new(
                    HardRule::AppendOnly,
                    "the change rewrites an existing entry (events, notes, attachments, `reported` and `server` never change)",
                ));
            }
        }
    }
    Ok(inserted)
}

/// Orders `changes` so every change follows its dependencies; drops those
/// already in `doc` and those whose dependencies are neither in `doc` nor
/// among `changes` (they wait for a later message).
pub fn applicable(doc: &Automerge, changes: Vec<Change>) -> (Vec<Change>, Vec<Change>) {
    let mut pending: HashMap<ChangeHash, Change> = HashMap::new();
    for c in changes {
        if doc.get_change_by_hash(&c.hash()).is_none() {
            pending.insert(c.hash(), c);
        }
    }
    let mut ready = Vec::new();
    let mut have: HashSet<ChangeHash> = HashSet::new();
    loop {
        let next: Vec<ChangeHash> = pending
            .values()
            .filter(|c| {
                c.deps()
                    .iter()
                    .all(|d| have.contains(d) || doc.get_change_by_hash(d).is_some())
            })
            .map(Change::hash)
            .collect();
        if next.is_empty() {
            break;
        }
        let mut next = next;
        next.sort();
        for h in next {
            if let Some(c) = pending.remove(&h) {
                have.insert(h);
                ready.push(c);
            }
        }
    }
    (ready, pending.into_values().collect())
}

mod document_chunk;

/// Most `have` entries, heads or hashes in `need` a sync message may carry.
const MAX_SYNC_LIST: usize = 4_096;

/// Checks what a sync message carries besides its changes: the lengths of
/// its lists and the parameters of its bloom filters. Automerge trusts a
/// bloom filter's parameters: zero bits divides by zero when the relay next
/// answers (a panic), and four billion probes allocates 16 GiB per change.
///
/// # Errors
/// The first thing out of bounds, as `Malformed`.
pub fn sync_message(m: &automerge::sync::Message) -> Result<(), Rejection> {
    let bad = |why: String| Rejection::new(HardRule::Malformed, why);
    if m.heads.len() > MAX_SYNC_LIST || m.need.len() > MAX_SYNC_LIST || m.have.len() > 64 {
        return Err(bad(format!(
            "a sync message with {} heads, {} needs and {} haves",
            m.heads.len(),
            m.need.len(),
            m.have.len()
        )));
    }
    for have in &m.have {
        if have.last_sync.len() > MAX_SYNC_LIST {
            return Err(bad("a have with too many heads".into()));
        }
        let bytes = have.bloom.to_bytes();
        if bytes.is_empty() {
            continue;
        }
        let mut i = document_chunk::Reader::new(&bytes);
        let (entries, bits, probes) = (i.uleb(), i.uleb(), i.uleb());
        let (Ok(entries), Ok(bits), Ok(probes)) = (entries, bits, probes) else {
            return Err(bad("a bloom filter does not decode".into()));
        };
        if entries > 0 && (!(1..=64).contains(&bits) || !(1..=32).contains(&probes)) {
            return Err(bad(format!(
                "a bloom filter of {entries} entries, {bits} bits each and {probes} probes"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
