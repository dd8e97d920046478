//! The gate's in-memory lookup snapshot: every permit, vehicle, tag credential and list row the
//! lane decides from, indexed for O(1) lookups by EPC, plate + colour, permit id, vehicle id and
//! person.
//!
//! What it is for: a full build ([`IndexBuild`]) makes an immutable [`Index`] tagged with a
//! `data_version` from two halves filled apart — the permits, and the vehicles with their tags
//! — so the gate's start reads and indexes each half on its own thread straight from the store
//! ([`crate::gate::store::Store::load_index`]); [`IndexBuilder::build`] is the same build from
//! plain `Vec`s of domain values (a synced snapshot, tests). [`Index::apply`] makes the next
//! snapshot from a change ([`IndexDelta`]) without rebuilding the whole. The runtime swaps
//! whole snapshots behind an `Arc`: a decision sees one snapshot, never half an update.
//!
//! How a change stays cheap: every large array (rows, link arrays, hash-table slots, text) is
//! stored in fixed-size chunks behind `Arc`s (`Chunked`). Cloning an index clones only the
//! chunk pointers (a few thousand for a million permits); writing a row copies just the chunk
//! it lives in (copy-on-write). So a revocation among a million permits copies a few pages,
//! and the old snapshot, still read by decisions in flight, is untouched. Rows that a change
//! leaves unreachable (a replaced vehicle's permit list, a deleted tag) stay in the arrays as
//! garbage until the next full build; [`Index::garbage`] counts them.
//!
//! What it never does: IO, clock reads, decisions (see [`crate::gate::decision`]) or edits to a
//! snapshot someone holds. A snapshot with an inconsistency (duplicate EPC, a vehicle pointing
//! at a permit that does not exist, …) is refused whole with a [`BuildError`], so the gate keeps
//! deciding from the previous good snapshot rather than from a silently repaired one; a delta
//! that would make one is refused the same way.
//!
//! Memory: a million permits must fit comfortably in a lane controller. Rows are compact (u32 ids,
//! interned departments, reasons, gate rights and schedules, chunked text, inline 16-byte plates
//! and EPCs) and the hash indexes are open-addressing tables of `u32` row numbers (4 bytes a
//! slot, load ≤ 1/2 after a build, ≤ 3/4 before a table grows) whose keys live in the rows
//! themselves; ids hash in blocks of neighbouring slots (`KeyHasher`), so lookups by id in
//! id order walk the tables in order, and a full build lays each table down in one sorted
//! pass (`SlotTable::from_hashes`). Measured for a million permits (one vehicle and one
//! TID-bound tag each, release build, shared 2-core machine): from domain values, build
//! 0.4–0.6 s (1.0–1.2 s inserting row by row, 1.8–2.4 s with ids hashed at random too); read
//! from the store and built, the two halves side by side, 0.6–0.9 s in all (`cargo bench
//! --bench gate_latency`); index 182–192 MiB, where a revocation's delta takes milliseconds.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, RandomState};
use std::num::NonZeroU16;
use std::sync::Arc;

use crate::domain::{
    BlacklistEntry, BlacklistId, BlacklistSubject, BookingId, Credential, Epc, GateRights, Holder,
    LockEntry, LockId, Permit, PermitId, PermitStatus, PersonCategory, PersonId, PlateIdentity,
    Schedule, Tid, UtcMinute, Vehicle, VehicleId, VisitorBooking,
};

/// Why a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Two permits share an id.
    #[error("permit {0} appears twice")]
    DuplicatePermit(PermitId),
    /// Two vehicles share an id.
    #[error("vehicle {0} appears twice")]
    DuplicateVehicle(VehicleId),
    /// Two vehicles share a plate and colour.
    #[error("plate {0} belongs to two vehicles")]
    DuplicatePlate(PlateIdentity),
    /// Two credentials share an EPC.
    #[error("tag {0} is issued twice")]
    DuplicateEpc(Epc),
    /// A vehicle holds a permit that is not in the snapshot.
    #[error("vehicle {vehicle} holds permit {permit}, which is not in the snapshot")]
    UnknownPermit {
        /// The vehicle.
        vehicle: VehicleId,
        /// The missing permit.
        permit: PermitId,
    },
    /// A credential is issued to a vehicle that is not in the snapshot.
    #[error("tag {epc} is issued to vehicle {vehicle}, which is not in the snapshot")]
    UnknownVehicle {
        /// The tag.
        epc: Epc,
        /// The missing vehicle.
        vehicle: VehicleId,
    },
    /// More rows of one kind than a `u32` row number can address.
    #[error("more than 4 billion rows of one kind")]
    TooManyRows,
}

/// Why [`Index::apply`] did not make the next snapshot. Either way the caller still has the
/// previous snapshot; it may build the next one whole from the store instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The result would be an inconsistent snapshot.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The delta names a key twice (written twice, or written and deleted), which only the
    /// store's order of statements settles.
    #[error("the change names {0} more than once")]
    Ambiguous(String),
}

const CHUNK_BITS: u32 = 12;
/// Elements per chunk: 4,096 (a permit chunk is about 200 KiB, a slot chunk 16 KiB).
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK - 1;

/// A vector stored in chunks of [`CHUNK`] elements behind `Arc`s: `clone` shares every chunk,
/// a write copies only the chunk written (`Arc::make_mut`).
#[derive(Debug)]
struct Chunked<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Clone for Chunked<T> {
    fn clone(&self) -> Self {
        Chunked {
            chunks: self.chunks.clone(),
            len: self.len,
        }
    }
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Chunked<T> {
    fn from_vec(v: Vec<T>) -> Chunked<T> {
        let len = v.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut items = v.into_iter();
        while chunks.len() * CHUNK < len {
            chunks.push(Arc::new(items.by_ref().take(CHUNK).collect::<Vec<T>>()));
        }
        Chunked { chunks, len }
    }

    #[inline]
    fn get(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & CHUNK_MASK]
    }

    fn get_mut(&mut self, i: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[i >> CHUNK_BITS])[i & CHUNK_MASK]
    }

    /// Appends `v` and returns its position.
    fn push(&mut self, v: T) -> usize {
        let i = self.len;
        if i & CHUNK_MASK == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        Arc::make_mut(self.chunks.last_mut().expect("a chunk was just ensured")).push(v);
        self.len += 1;
        i
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

/// Reference to a string in the index's text arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Text(u32);

/// Bytes per text chunk (a longer string gets a chunk of its own).
const TEXT_CHUNK: usize = 1 << 16;

/// Where a string lives: its chunk, start and length.
#[derive(Debug, Clone, Copy)]
struct Span {
    chunk: u32,
    start: u32,
    len: u32,
}

/// All strings, in chunked buffers (a change copies only the last chunk), with optional
/// interning for repeated values.
#[derive(Debug, Clone, Default)]
struct TextArena {
    chunks: Vec<Arc<String>>,
    spans: Chunked<Span>,
    /// Interned strings (departments, reasons).
    interned: Arc<TextMap<Text>>,
}

/// A map keyed by text that never compares the empty string. A `HashMap` would compare `""`
/// with its stored key, and glibc's AVX-512 `memcmp` reads an empty slice's dangling pointer
/// with a masked load whose fault suppression costs about 150 ns here, against 11 ns for a
/// short text: 0.15 s of a million-permit start, where every active permit's reason and most
/// schedules are empty. The text arena's interned strings and the store's parsed rules use it.
#[derive(Debug, Clone)]
pub(crate) struct TextMap<V> {
    by_text: HashMap<Box<str>, V>,
    empty: Option<V>,
}

impl<V> Default for TextMap<V> {
    fn default() -> Self {
        TextMap {
            by_text: HashMap::new(),
            empty: None,
        }
    }
}

impl<V: Copy> TextMap<V> {
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        match key {
            "" => self.empty,
            _ => self.by_text.get(key).copied(),
        }
    }

    pub(crate) fn insert(&mut self, key: &str, v: V) {
        match key {
            "" => self.empty = Some(v),
            _ => drop(self.by_text.insert(key.into(), v)),
        }
    }
}

impl TextArena {
    fn push(&mut self, s: &str) -> Text {
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + s.len() <= TEXT_CHUNK || c.is_empty());
        if !fits {
            self.chunks
                .push(Arc::new(String::with_capacity(TEXT_CHUNK.max(s.len()))));
        }
        let chunk = self.chunks.len() - 1;
        let buf = Arc::make_mut(&mut self.chunks[chunk]);
        let start = buf.len();
        buf.push_str(s);
        let i = self.spans.push(Span {
            chunk: chunk as u32,
            start: start as u32,
            len: s.len() as u32,
        });
        Text(i as u32)
    }

    fn intern(&mut self, s: &str) -> Text {
        if let Some(t) = self.interned.get(s) {
            return t;
        }
        let t = self.push(s);
        Arc::make_mut(&mut self.interned).insert(s, t);
        t
    }

    #[inline]
    fn get(&self, t: Text) -> &str {
        let s = self.spans.get(t.0 as usize);
        &self.chunks[s.chunk as usize][s.start as usize..(s.start + s.len) as usize]
    }

    fn shrink_last(&mut self) {
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).shrink_to_fit();
        }
    }

    fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum::<usize>()
            + self.spans.len() * std::mem::size_of::<Span>()
    }
}

/// Interns repeated values (gate rights, schedules) into a table of distinct values.
#[derive(Debug, Clone)]
struct ValueInterner<T> {
    seen: HashMap<T, u32>,
    values: Vec<T>,
}

impl<T: Hash + Eq + Clone> ValueInterner<T> {
    fn new() -> Self {
        ValueInterner {
            seen: HashMap::new(),
            values: Vec::new(),
        }
    }

    fn find(&self, v: &T) -> Option<u32> {
        self.seen.get(v).copied()
    }

    fn intern(&mut self, v: T) -> u32 {
        if let Some(i) = self.seen.get(&v) {
            return *i;
        }
        let i = self.values.len() as u32;
        self.values.push(v.clone());
        self.seen.insert(v, i);
        i
    }
}

/// Interns `v` into a shared table, copying the table only when `v` is new.
fn intern_shared<T: Hash + Eq + Clone>(table: &mut Arc<ValueInterner<T>>, v: &T) -> u32 {
    match table.find(v) {
        Some(i) => i,
        None => Arc::make_mut(table).intern(v.clone()),
    }
}

/// How the slot tables hash their keys. Ids (permit, vehicle, person) are numbers the centre
/// hands out in sequence, and the build and most changes walk rows in id order; so ids hash
/// in blocks ([`dense`]): the ids of one block of 64 take neighbouring slots, and only the
/// blocks are scattered. Walking ids in order then walks each id table a block at a time
/// instead of missing the cache once per row, which halves the build of a million permits.
/// Tags and plates come from outside and hash with a random key, as `HashMap`'s keys do.
#[derive(Debug, Clone, Default)]
struct KeyHasher(RandomState);

impl KeyHasher {
    #[inline]
    fn hash_one<K: SlotKey>(&self, key: K) -> u64 {
        key.slot_hash(&self.0)
    }
}

/// A key of a slot table (see [`KeyHasher`]).
trait SlotKey {
    fn slot_hash(&self, random: &RandomState) -> u64;
}

impl<K: SlotKey> SlotKey for &K {
    #[inline]
    fn slot_hash(&self, random: &RandomState) -> u64 {
        (**self).slot_hash(random)
    }
}

/// Ids per block of neighbouring slots (bits).
const ID_BLOCK_BITS: u32 = 6;

/// A sequence-assigned id's slot hash: its block (the id without its low
/// [`ID_BLOCK_BITS`]) mixed by SplitMix64's finaliser, above the id's place in the block. The
/// ids of one block never collide with each other, and a run of ids becomes a scatter of
/// blocks, not one long cluster that probing would have to walk.
#[inline]
fn dense(id: u32) -> u64 {
    let mut z = u64::from(id >> ID_BLOCK_BITS).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z << ID_BLOCK_BITS) | u64::from(id & ((1 << ID_BLOCK_BITS) - 1))
}

macro_rules! dense_keys {
    ($($t:ty),*) => {$(
        impl SlotKey for $t {
            #[inline]
            fn slot_hash(&self, _: &RandomState) -> u64 {
                dense(self.0)
            }
        }
    )*};
}
dense_keys!(PermitId, VehicleId, PersonId);

macro_rules! random_keys {
    ($($t:ty),*) => {$(
        impl SlotKey for $t {
            #[inline]
            fn slot_hash(&self, random: &RandomState) -> u64 {
                random.hash_one(self)
            }
        }
    )*};
}
random_keys!(Epc, PlateIdentity);

/// Where an open-addressing table keeps its slots: a plain `Vec` while building, chunks in a
/// snapshot.
trait Slots {
    fn slot(&self, i: usize) -> u32;
    fn set_slot(&mut self, i: usize, v: u32);
}

impl Slots for Vec<u32> {
    #[inline]
    fn slot(&self, i: usize) -> u32 {
        self[i]
    }
    fn set_slot(&mut self, i: usize, v: u32) {
        self[i] = v;
    }
}

impl Slots for Chunked<u32> {
    #[inline]
    fn slot(&self, i: usize) -> u32 {
        *self.get(i)
    }
    fn set_slot(&mut self, i: usize, v: u32) {
        *self.get_mut(i) = v;
    }
}

/// An open-addressing hash table of row numbers (stored +1, 0 = empty), linear probing, load
/// ≤ 1/2 when built. Keys are not stored: the caller compares against the row, and gives the
/// hash of a row's key where the table must move entries (removal, growth).
#[derive(Debug, Clone)]
struct SlotTable<S = Chunked<u32>> {
    slots: S,
    mask: usize,
    used: usize,
}

fn capacity_for(n: usize) -> usize {
    (n * 2).next_power_of_two().max(8)
}

impl SlotTable<Vec<u32>> {
    fn for_rows(n: usize) -> SlotTable<Vec<u32>> {
        let cap = capacity_for(n);
        SlotTable {
            slots: vec![0; cap],
            mask: cap - 1,
            used: 0,
        }
    }

    /// A table of `keys` (each row's key hash and its row), built in one pass. The pairs are
    /// sorted by home slot and laid down left to right, each at its home or just after the
    /// one before: the same table that inserting them one by one in that order would give,
    /// but written sequentially instead of one cache miss per row at a random slot (a
    /// million tags or plates: 8 MiB of slots each). Keys that hash alike sit side by side
    /// after the sort, so a duplicate is found by comparing neighbours (`same_key`), not by
    /// reading rows on every probe. A duplicate fails the build with one of its rows.
    fn from_hashes(
        mut keys: Vec<(u64, u32)>,
        same_key: impl Fn(u32, u32) -> bool,
    ) -> Result<SlotTable<Vec<u32>>, u32> {
        let mut table = SlotTable::for_rows(keys.len());
        let bits = table.mask.count_ones();
        // By home slot (the low bits), then by the whole hash: equal keys end up adjacent.
        keys.sort_unstable_by_key(|&(h, _)| h.rotate_right(bits));
        for run in keys.chunk_by(|a, b| a.0 == b.0) {
            for (j, &(_, row)) in run.iter().enumerate().skip(1) {
                if run[..j].iter().any(|&(_, other)| same_key(other, row)) {
                    return Err(row);
                }
            }
        }
        let mut next = 0usize;
        let mut wrapped = Vec::new();
        for &(hash, row) in &keys {
            let at = (hash as usize & table.mask).max(next);
            if at > table.mask {
                wrapped.push((hash, row));
                continue;
            }
            table.slots[at] = row + 1;
            next = at + 1;
        }
        table.used = keys.len() - wrapped.len();
        // The few whose run passed the end continue from slot 0, as a probe would.
        for (hash, row) in wrapped {
            let _ = table.insert(hash, row, |_| false);
        }
        Ok(table)
    }

    fn into_chunked(self) -> SlotTable {
        SlotTable {
            slots: Chunked::from_vec(self.slots),
            mask: self.mask,
            used: self.used,
        }
    }
}

impl<S: Slots> SlotTable<S> {
    /// Inserts `row`; returns the existing row if one with the same key is present.
    fn insert(&mut self, hash: u64, row: u32, same_key: impl Fn(u32) -> bool) -> Result<(), u32> {
        let mut i = hash as usize & self.mask;
        loop {
            match self.slots.slot(i) {
                0 => {
                    self.slots.set_slot(i, row + 1);
                    self.used += 1;
                    return Ok(());
                }
                s if same_key(s - 1) => return Err(s - 1),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    fn find_slot(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<usize> {
        let mut i = hash as usize & self.mask;
        loop {
            match self.slots.slot(i) {
                0 => return None,
                s if is_key(s - 1) => return Some(i),
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    #[inline]
    fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, is_key).map(|i| self.slots.slot(i) - 1)
    }

    fn bytes(&self) -> usize {
        (self.mask + 1) * 4
    }
}

impl SlotTable {
    /// Removes the entry whose row `is_key`, closing the gap by moving later entries of the
    /// probe run back (no tombstones, so lookups never slow down). `home` is the hash of the
    /// key of a row in the table.
    fn remove(
        &mut self,
        hash: u64,
        is_key: impl Fn(u32) -> bool,
        home: impl Fn(u32) -> u64,
    ) -> Option<u32> {
        let mut hole = self.find_slot(hash, is_key)?;
        let removed = self.slots.slot(hole) - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let s = self.slots.slot(j);
            if s == 0 {
                break;
            }
            let h = home(s - 1) as usize & self.mask;
            // The entry at j may move to the hole if the hole lies on its probe path [h, j).
            if (j.wrapping_sub(h) & self.mask) >= (j.wrapping_sub(hole) & self.mask) {
                self.slots.set_slot(hole, s);
                hole = j;
            }
        }
        self.slots.set_slot(hole, 0);
        self.used -= 1;
        Some(removed)
    }

    /// Makes room for one more entry: above 3/4 full, the table is rebuilt twice as large.
    fn reserve_one(&mut self, hash_of: impl Fn(u32) -> u64) {
        let cap = self.mask + 1;
        if (self.used + 1) * 4 <= cap * 3 {
            return;
        }
        let mut grown = SlotTable::<Vec<u32>>::for_rows((self.used + 1).max(cap / 2 + 1));
        for c in self.slots.iter() {
            if *c != 0 {
                let _ = grown.insert(hash_of(c - 1), c - 1, |_| false);
            }
        }
        *self = grown.into_chunked();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusKind {
    Active,
    Suspended,
    Revoked,
}

#[derive(Debug, Clone)]
struct PermitRow {
    id: PermitId,
    version: u32,
    valid_from: UtcMinute,
    valid_until: UtcMinute,
    person: PersonId,
    name: Text,
    department: Text,
    /// Status reason; meaningless when `status` is `Active`.
    reason: Text,
    gates: u32,
    schedule: u32,
    vehicles_start: u32,
    max_inside: Option<NonZeroU16>,
    vehicles_len: u16,
    category: PersonCategory,
    status: StatusKind,
    single_use: bool,
}

#[derive(Debug, Clone)]
struct VehicleRow {
    id: VehicleId,
    plate: PlateIdentity,
    permits_start: u32,
    permits_len: u16,
}

#[derive(Debug, Clone)]
struct CredentialRow {
    epc: Epc,
    tid: Option<Tid>,
    vehicle: u32,
}

/// Ends a person's run appended by a change in `person_permits` (never a row number).
const RUN_END: u32 = u32::MAX;

/// The text, gate-rights and schedule tables a permit row refers to.
#[derive(Debug, Clone)]
struct Shared {
    text: TextArena,
    gate_rights: Arc<ValueInterner<GateRights>>,
    schedules: Arc<ValueInterner<Schedule>>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            text: TextArena::default(),
            gate_rights: Arc::new(ValueInterner::new()),
            schedules: Arc::new(ValueInterner::new()),
        }
    }

    /// A permit's row, its links to vehicles left empty.
    fn permit_row(&mut self, p: PermitFields<'_>) -> PermitRow {
        let (status, reason) = match p.status {
            PermitStatus::Active => (StatusKind::Active, self.text.intern("")),
            PermitStatus::Suspended { reason } => (StatusKind::Suspended, self.text.intern(reason)),
            PermitStatus::Revoked { reason } => (StatusKind::Revoked, self.text.intern(reason)),
        };
        PermitRow {
            id: p.id,
            version: p.version,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            person: p.person,
            name: self.text.push(p.name),
            department: self.text.intern(p.department),
            reason,
            gates: intern_shared(&mut self.gate_rights, p.gates),
            schedule: intern_shared(&mut self.schedules, p.schedule),
            vehicles_start: 0,
            vehicles_len: 0,
            max_inside: p.max_inside,
            category: p.category,
            status,
            single_use: p.single_use,
        }
    }
}

/// The blacklist, lock list and bookings with their lookup maps: small, rebuilt whole when
/// one of them changes.
#[derive(Debug, Default)]
struct Lists {
    blacklist: Vec<BlacklistEntry>,
    black_plate: HashMap<crate::domain::Plate, Vec<u32>>,
    black_tag: HashMap<Epc, Vec<u32>>,
    black_person: HashMap<PersonId, Vec<u32>>,
    locks: Vec<LockEntry>,
    lock_by_plate: HashMap<crate::domain::Plate, Vec<u32>>,
    bookings: Vec<VisitorBooking>,
    booking_by_plate: HashMap<crate::domain::Plate, Vec<u32>>,
}

impl Lists {
    fn new(
        blacklist: Vec<BlacklistEntry>,
        locks: Vec<LockEntry>,
        bookings: Vec<VisitorBooking>,
    ) -> Lists {
        let mut black_plate: HashMap<_, Vec<u32>> = HashMap::new();
        let mut black_tag: HashMap<Epc, Vec<u32>> = HashMap::new();
        let mut black_person: HashMap<PersonId, Vec<u32>> = HashMap::new();
        for (i, e) in blacklist.iter().enumerate() {
            let i = i as u32;
            match e.subject {
                BlacklistSubject::Plate { plate, .. } => {
                    black_plate.entry(plate).or_default().push(i)
                }
                BlacklistSubject::Tag(epc) => black_tag.entry(epc).or_default().push(i),
                BlacklistSubject::Person(p) => black_person.entry(p).or_default().push(i),
            }
        }
        let mut lock_by_plate: HashMap<_, Vec<u32>> = HashMap::new();
        for (i, l) in locks.iter().enumerate() {
            lock_by_plate.entry(l.plate).or_default().push(i as u32);
        }
        let mut booking_by_plate: HashMap<_, Vec<u32>> = HashMap::new();
        for (i, b) in bookings.iter().enumerate() {
            booking_by_plate.entry(b.plate).or_default().push(i as u32);
        }
        Lists {
            blacklist,
            black_plate,
            black_tag,
            black_person,
            locks,
            lock_by_plate,
            bookings,
            booking_by_plate,
        }
    }
}

/// Collects the rows of one snapshot as `Vec`s of domain values and builds the [`Index`]: the
/// form for tests, a synced snapshot and the importer. The controller's start reads the store
/// straight into an [`IndexBuild`]'s two halves instead.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    /// Version of the data this snapshot holds (monotonic, from the centre's sync).
    pub data_version: u64,
    /// Every permit, whatever its status (a revoked permit must be found to be refused by name).
    pub permits: Vec<Permit>,
    /// Every registered vehicle.
    pub vehicles: Vec<Vehicle>,
    /// Every issued tag.
    pub credentials: Vec<Credential>,
    /// Blacklist entries (expired ones may be included; they are ignored at decision time).
    pub blacklist: Vec<BlacklistEntry>,
    /// Lock-vehicle entries.
    pub locks: Vec<LockEntry>,
    /// Visitor bookings in any status.
    pub bookings: Vec<VisitorBooking>,
}

impl IndexBuilder {
    /// An empty builder for data version `data_version`.
    pub fn new(data_version: u64) -> IndexBuilder {
        IndexBuilder {
            data_version,
            ..IndexBuilder::default()
        }
    }

    /// Builds the immutable snapshot, consuming the rows.
    pub fn build(self) -> Result<Index, BuildError> {
        let build = IndexBuild::new();
        let mut permits = build.permits(self.permits.len());
        for p in &self.permits {
            permits.push(p.into())?;
        }
        drop(self.permits);
        let permits = permits.seal()?;
        let mut vehicles = build.vehicles(self.vehicles.len(), self.credentials.len());
        for v in &self.vehicles {
            vehicles.push_vehicle(v.id, v.plate, v.permit_ids.iter().copied())?;
        }
        drop(self.vehicles);
        for c in self.credentials {
            vehicles.push_credential(c)?;
        }
        build.finish(
            self.data_version,
            permits,
            vehicles.seal()?,
            self.blacklist,
            self.locks,
            self.bookings,
        )
    }
}

/// A permit's fields, borrowed: how a bulk read hands a row to [`PermitRows`] without first
/// making a [`Permit`] (two boxed strings a row) only for the build to take it apart again.
#[derive(Debug, Clone, Copy)]
pub struct PermitFields<'a> {
    pub id: PermitId,
    pub category: PersonCategory,
    pub person: PersonId,
    pub name: &'a str,
    pub department: &'a str,
    pub status: &'a PermitStatus,
    pub valid_from: UtcMinute,
    pub valid_until: UtcMinute,
    pub gates: &'a GateRights,
    pub schedule: &'a Schedule,
    pub single_use: bool,
    pub max_inside: Option<NonZeroU16>,
    pub version: u32,
}

impl PermitFields<'_> {
    /// The permit these fields describe, as an owned domain value.
    pub fn to_permit(&self) -> Permit {
        Permit {
            id: self.id,
            category: self.category,
            holder: Holder {
                person_id: self.person,
                name: self.name.into(),
                department: self.department.into(),
            },
            status: self.status.clone(),
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            gates: self.gates.clone(),
            schedule: self.schedule.clone(),
            single_use: self.single_use,
            max_inside: self.max_inside,
            version: self.version,
        }
    }
}

impl<'a> From<&'a Permit> for PermitFields<'a> {
    fn from(p: &'a Permit) -> PermitFields<'a> {
        PermitFields {
            id: p.id,
            category: p.category,
            person: p.holder.person_id,
            name: &p.holder.name,
            department: &p.holder.department,
            status: &p.status,
            valid_from: p.valid_from,
            valid_until: p.valid_until,
            gates: &p.gates,
            schedule: &p.schedule,
            single_use: p.single_use,
            max_inside: p.max_inside,
            version: p.version,
        }
    }
}

/// One full build in two halves that fill apart and meet in [`IndexBuild::finish`]: the
/// permits ([`PermitRows`]) and the vehicles with their tags ([`VehicleRows`]). Each half
/// converts its rows as they arrive and lays down its own hash tables when sealed, so the
/// controller's start reads and builds the two on two threads at once, the permits straight
/// from their store rows; only joining vehicles to permits is left for `finish`.
///
/// The halves share the build's key hasher; halves of different builds cannot be joined.
#[derive(Debug)]
pub struct IndexBuild {
    hasher: KeyHasher,
    /// Tells this build's halves from another's.
    id: u64,
}

/// Numbers [`IndexBuild`]s.
static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Refuses a half with more rows than a `u32` row number (plus one for "empty") addresses.
fn room_for(rows: usize) -> Result<(), BuildError> {
    if rows >= u32::MAX as usize - 1 {
        return Err(BuildError::TooManyRows);
    }
    Ok(())
}

/// A slot table of `rows` by `key`, laid down in one pass; a key found twice fails the build
/// with `twice`'s error.
fn table_of<R, K: SlotKey + PartialEq + Copy>(
    hasher: &KeyHasher,
    rows: &[R],
    key: impl Fn(&R) -> K,
    twice: impl FnOnce(K) -> BuildError,
) -> Result<SlotTable<Vec<u32>>, BuildError> {
    let keys = rows
        .iter()
        .enumerate()
        .map(|(r, row)| (hasher.hash_one(key(row)), r as u32))
        .collect();
    SlotTable::from_hashes(keys, |a, b| {
        key(&rows[a as usize]) == key(&rows[b as usize])
    })
    .map_err(|r| twice(key(&rows[r as usize])))
}

impl Default for IndexBuild {
    fn default() -> Self {
        IndexBuild::new()
    }
}

impl IndexBuild {
    /// A new build with its own key hasher.
    pub fn new() -> IndexBuild {
        IndexBuild {
            hasher: KeyHasher::default(),
            id: BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The empty permit half, with room for `capacity` permits.
    pub fn permits(&self, capacity: usize) -> PermitRows {
        PermitRows {
            build: self.id,
            hasher: self.hasher.clone(),
            shared: Shared::new(),
            rows: Vec::with_capacity(capacity),
        }
    }

    /// The empty vehicle half, with room for `vehicles` vehicles and `credentials` tags.
    pub fn vehicles(&self, vehicles: usize, credentials: usize) -> VehicleRows {
        VehicleRows {
            build: self.id,
            hasher: self.hasher.clone(),
            rows: Vec::with_capacity(vehicles),
            permits: Vec::with_capacity(vehicles),
            credentials: Vec::with_capacity(credentials),
        }
    }

    /// Joins the sealed halves and the lists into the snapshot of `data_version`: each
    /// vehicle's permits found by id (a vehicle holding a permit that is not there fails the
    /// build), and the reverse, each permit's vehicles.
    ///
    /// # Panics
    /// If a half comes from another build (a programming error: its tables hash differently).
    pub fn finish(
        self,
        data_version: u64,
        permits: PermitTable,
        vehicles: VehicleTable,
        blacklist: Vec<BlacklistEntry>,
        locks: Vec<LockEntry>,
        bookings: Vec<VisitorBooking>,
    ) -> Result<Index, BuildError> {
        assert!(
            permits.build == self.id && vehicles.build == self.id,
            "index halves from another build"
        );
        let hasher = self.hasher;
        let PermitTable {
            mut shared,
            mut rows,
            by_permit,
            person_permits,
            by_person,
            ..
        } = permits;
        let VehicleTable {
            rows: vehicle_rows,
            permits: mut vehicle_permits,
            credentials,
            by_vehicle,
            by_plate,
            by_epc,
            ..
        } = vehicles;

        // Each vehicle's permit ids become permit rows, in place; count each permit's vehicles.
        let mut permit_vehicle_count = vec![0u32; rows.len()];
        for v in vehicle_rows.iter() {
            let s = v.permits_start as usize;
            for p in &mut vehicle_permits[s..s + usize::from(v.permits_len)] {
                let id = PermitId(*p);
                let r = by_permit
                    .find(hasher.hash_one(id), |r| rows[r as usize].id == id)
                    .ok_or(BuildError::UnknownPermit {
                        vehicle: v.id,
                        permit: id,
                    })?;
                *p = r;
                permit_vehicle_count[r as usize] += 1;
            }
        }

        // Permit → vehicles (the reverse), for max_inside quotas.
        let mut start = 0u32;
        for (row, count) in rows.iter_mut().zip(&permit_vehicle_count) {
            row.vehicles_start = start;
            row.vehicles_len = u16::try_from(*count).map_err(|_| BuildError::TooManyRows)?;
            start += count;
        }
        let mut fill = permit_vehicle_count;
        fill.fill(0);
        let mut permit_vehicles = vec![0u32; start as usize];
        for (vi, v) in vehicle_rows.iter().enumerate() {
            let s = v.permits_start as usize;
            for &p in &vehicle_permits[s..s + usize::from(v.permits_len)] {
                let at = rows[p as usize].vehicles_start + fill[p as usize];
                permit_vehicles[at as usize] = vi as u32;
                fill[p as usize] += 1;
            }
        }
        drop(fill);

        shared.text.shrink_last();
        let (live_permits, live_vehicles, live_credentials) =
            (rows.len(), vehicle_rows.len(), credentials.len());
        Ok(Index {
            data_version,
            hasher,
            shared,
            permits: Chunked::from_vec(rows),
            vehicles: vehicle_rows,
            credentials,
            vehicle_permits: Chunked::from_vec(vehicle_permits),
            permit_vehicles: Chunked::from_vec(permit_vehicles),
            person_permits,
            by_permit: by_permit.into_chunked(),
            by_vehicle,
            by_plate,
            by_epc,
            by_person,
            lists: Arc::new(Lists::new(blacklist, locks, bookings)),
            live_permits,
            live_vehicles,
            live_credentials,
            garbage: 0,
        })
    }
}

/// The permit half of an [`IndexBuild`], filling.
#[derive(Debug)]
pub struct PermitRows {
    build: u64,
    hasher: KeyHasher,
    shared: Shared,
    rows: Vec<PermitRow>,
}

impl PermitRows {
    /// Adds a permit (whatever its status: a revoked permit must be found to be refused by
    /// name).
    pub fn push(&mut self, p: PermitFields<'_>) -> Result<(), BuildError> {
        room_for(self.rows.len() + 1)?;
        let row = self.shared.permit_row(p);
        self.rows.push(row);
        Ok(())
    }

    /// Lays down the permit-id and person tables; a permit id given twice fails the build.
    pub fn seal(self) -> Result<PermitTable, BuildError> {
        let PermitRows {
            build,
            hasher,
            shared,
            rows,
        } = self;
        let by_permit = table_of(&hasher, &rows, |p| p.id, BuildError::DuplicatePermit)?;

        // Person → permits: permit rows sorted by person, runs found through a slot table.
        let mut person_permits: Vec<u32> = (0..rows.len() as u32).collect();
        person_permits.sort_unstable_by_key(|&r| rows[r as usize].person);
        let mut by_person = SlotTable::for_rows(rows.len());
        for (pos, &r) in person_permits.iter().enumerate() {
            let person = rows[r as usize].person;
            let run_start = pos == 0 || rows[person_permits[pos - 1] as usize].person != person;
            if run_start {
                by_person
                    .insert(hasher.hash_one(person), pos as u32, |_| false)
                    .ok();
            }
        }
        Ok(PermitTable {
            build,
            shared,
            rows,
            by_permit,
            person_permits: Chunked::from_vec(person_permits),
            by_person: by_person.into_chunked(),
        })
    }
}

/// The permit half of an [`IndexBuild`], sealed: ready for [`IndexBuild::finish`].
#[derive(Debug)]
pub struct PermitTable {
    build: u64,
    shared: Shared,
    /// Their links to vehicles are set by `finish`.
    rows: Vec<PermitRow>,
    by_permit: SlotTable<Vec<u32>>,
    person_permits: Chunked<u32>,
    by_person: SlotTable,
}

/// The vehicle half of an [`IndexBuild`], filling: vehicles, then or meanwhile their tags.
#[derive(Debug)]
pub struct VehicleRows {
    build: u64,
    hasher: KeyHasher,
    rows: Vec<VehicleRow>,
    /// Every vehicle's permits, flattened; permit ids until `finish` finds their rows.
    permits: Vec<u32>,
    /// Their `vehicle` holds the vehicle's id until `seal` finds its row.
    credentials: Vec<CredentialRow>,
}

impl VehicleRows {
    /// Adds a vehicle holding `permits` (at most 65,535).
    pub fn push_vehicle(
        &mut self,
        id: VehicleId,
        plate: PlateIdentity,
        permits: impl IntoIterator<Item = PermitId>,
    ) -> Result<(), BuildError> {
        room_for(self.rows.len() + 1)?;
        let start = self.permits.len();
        self.permits.extend(permits.into_iter().map(|p| p.0));
        room_for(self.permits.len())?;
        self.rows.push(VehicleRow {
            id,
            plate,
            permits_start: start as u32,
            permits_len: u16::try_from(self.permits.len() - start)
                .map_err(|_| BuildError::TooManyRows)?,
        });
        Ok(())
    }

    /// Adds an issued tag; its vehicle may come before or after it.
    pub fn push_credential(&mut self, c: Credential) -> Result<(), BuildError> {
        room_for(self.credentials.len() + 1)?;
        self.credentials.push(CredentialRow {
            epc: c.epc,
            tid: c.tid,
            vehicle: c.vehicle_id.0,
        });
        Ok(())
    }

    /// Lays down the vehicle-id, plate and tag tables and finds each tag's vehicle. A vehicle
    /// id, plate or EPC given twice, or a tag issued to a vehicle that is not there, fails the
    /// build.
    pub fn seal(self) -> Result<VehicleTable, BuildError> {
        let VehicleRows {
            build,
            hasher,
            rows,
            permits,
            mut credentials,
        } = self;
        let by_vehicle = table_of(&hasher, &rows, |v| v.id, BuildError::DuplicateVehicle)?;
        let by_plate = table_of(&hasher, &rows, |v| v.plate, BuildError::DuplicatePlate)?;

        for c in &mut credentials {
            let id = VehicleId(c.vehicle);
            c.vehicle = by_vehicle
                .find(hasher.hash_one(id), |r| rows[r as usize].id == id)
                .ok_or(BuildError::UnknownVehicle {
                    epc: c.epc,
                    vehicle: id,
                })?;
        }
        let by_epc = table_of(&hasher, &credentials, |c| c.epc, BuildError::DuplicateEpc)?;
        Ok(VehicleTable {
            build,
            rows: Chunked::from_vec(rows),
            permits,
            credentials: Chunked::from_vec(credentials),
            by_vehicle: by_vehicle.into_chunked(),
            by_plate: by_plate.into_chunked(),
            by_epc: by_epc.into_chunked(),
        })
    }
}

/// The vehicle half of an [`IndexBuild`], sealed: ready for [`IndexBuild::finish`].
#[derive(Debug)]
pub struct VehicleTable {
    build: u64,
    rows: Chunked<VehicleRow>,
    /// Permit ids, as in [`VehicleRows`].
    permits: Vec<u32>,
    credentials: Chunked<CredentialRow>,
    by_vehicle: SlotTable,
    by_plate: SlotTable,
    by_epc: SlotTable,
}

/// A change to a snapshot, in domain values: rows to add or replace (permits, vehicles and list
/// entries by id, credentials by EPC) and keys to delete. It means what the gate store's
/// `Update` means: a deleted vehicle takes its tags with it, a deleted permit is struck from
/// the vehicles that held it.
#[derive(Debug, Clone, Default)]
pub struct IndexDelta {
    /// The data version of the snapshot after the change.
    pub data_version: u64,
    pub permits: Vec<Permit>,
    pub delete_permits: Vec<PermitId>,
    pub vehicles: Vec<Vehicle>,
    pub delete_vehicles: Vec<VehicleId>,
    pub credentials: Vec<Credential>,
    pub delete_credentials: Vec<Epc>,
    pub blacklist: Vec<BlacklistEntry>,
    pub delete_blacklist: Vec<BlacklistId>,
    pub locks: Vec<LockEntry>,
    pub delete_locks: Vec<LockId>,
    pub bookings: Vec<VisitorBooking>,
    pub delete_bookings: Vec<BookingId>,
}

/// Refuses a delta that names one key twice.
fn once<K: Hash + Eq + std::fmt::Display>(
    what: &str,
    keys: impl Iterator<Item = K>,
) -> Result<(), DeltaError> {
    let mut seen = HashSet::new();
    for k in keys {
        if seen.contains(&k) {
            return Err(DeltaError::Ambiguous(format!("{what} {k}")));
        }
        seen.insert(k);
    }
    Ok(())
}

/// An immutable snapshot of everything a lane decides from. Build one with [`IndexBuilder`];
/// make the next one with [`Index::apply`]. Cloning is cheap (chunks are shared).
#[derive(Debug, Clone)]
pub struct Index {
    data_version: u64,
    hasher: KeyHasher,
    shared: Shared,
    permits: Chunked<PermitRow>,
    vehicles: Chunked<VehicleRow>,
    credentials: Chunked<CredentialRow>,
    vehicle_permits: Chunked<u32>,
    permit_vehicles: Chunked<u32>,
    /// Permit rows grouped by person: the builder's sorted runs, then runs appended by changes
    /// (each ended by [`RUN_END`]).
    person_permits: Chunked<u32>,
    by_permit: SlotTable,
    by_vehicle: SlotTable,
    by_plate: SlotTable,
    by_epc: SlotTable,
    /// Person → the position of their run in `person_permits`.
    by_person: SlotTable,
    lists: Arc<Lists>,
    live_permits: usize,
    live_vehicles: usize,
    live_credentials: usize,
    /// Rows and link entries left unreachable by changes since the build.
    garbage: usize,
}

/// A permit's status as seen through the index (reasons borrowed from the snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRef<'i> {
    /// In force.
    Active,
    /// Suspended, with the reason.
    Suspended(&'i str),
    /// Revoked, with the reason.
    Revoked(&'i str),
}

/// A permit in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct PermitView<'i> {
    index: &'i Index,
    row: &'i PermitRow,
}

impl<'i> PermitView<'i> {
    /// Identity.
    pub fn id(&self) -> PermitId {
        self.row.id
    }
    /// Version from the centre.
    pub fn version(&self) -> u32 {
        self.row.version
    }
    /// Holder category.
    pub fn category(&self) -> PersonCategory {
        self.row.category
    }
    /// Holder.
    pub fn person_id(&self) -> PersonId {
        self.row.person
    }
    /// Holder's name.
    pub fn holder_name(&self) -> &'i str {
        self.index.shared.text.get(self.row.name)
    }
    /// Holder's department.
    pub fn department(&self) -> &'i str {
        self.index.shared.text.get(self.row.department)
    }
    /// Status with its reason.
    pub fn status(&self) -> StatusRef<'i> {
        let text = &self.index.shared.text;
        match self.row.status {
            StatusKind::Active => StatusRef::Active,
            StatusKind::Suspended => StatusRef::Suspended(text.get(self.row.reason)),
            StatusKind::Revoked => StatusRef::Revoked(text.get(self.row.reason)),
        }
    }
    /// First valid minute (inclusive).
    pub fn valid_from(&self) -> UtcMinute {
        self.row.valid_from
    }
    /// End of validity (exclusive).
    pub fn valid_until(&self) -> UtcMinute {
        self.row.valid_until
    }
    /// Gates and directions.
    pub fn gates(&self) -> &'i GateRights {
        &self.index.shared.gate_rights.values[self.row.gates as usize]
    }
    /// Weekday/time windows.
    pub fn schedule(&self) -> &'i Schedule {
        &self.index.shared.schedules.values[self.row.schedule as usize]
    }
    /// Whether it is a one-off pass.
    pub fn single_use(&self) -> bool {
        self.row.single_use
    }
    /// How many of its vehicles may be inside at once.
    pub fn max_inside(&self) -> Option<NonZeroU16> {
        self.row.max_inside
    }
    /// The vehicles holding this permit.
    pub fn vehicles(&self) -> impl ExactSizeIterator<Item = VehicleView<'i>> + use<'i> {
        let index = self.index;
        let s = self.row.vehicles_start as usize;
        (s..s + usize::from(self.row.vehicles_len)).map(move |i| VehicleView {
            index,
            row: index.vehicles.get(*index.permit_vehicles.get(i) as usize),
        })
    }
}

/// A vehicle in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct VehicleView<'i> {
    index: &'i Index,
    row: &'i VehicleRow,
}

impl<'i> VehicleView<'i> {
    /// Identity.
    pub fn id(&self) -> VehicleId {
        self.row.id
    }
    /// Plate and colour.
    pub fn plate(&self) -> PlateIdentity {
        self.row.plate
    }
    /// The permits it holds, in the order the store gave them.
    pub fn permits(&self) -> impl ExactSizeIterator<Item = PermitView<'i>> + use<'i> {
        let index = self.index;
        let s = self.row.permits_start as usize;
        (s..s + usize::from(self.row.permits_len)).map(move |i| PermitView {
            index,
            row: index.permits.get(*index.vehicle_permits.get(i) as usize),
        })
    }
}

/// A tag credential in the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct CredentialView<'i> {
    index: &'i Index,
    row: &'i CredentialRow,
}

impl<'i> CredentialView<'i> {
    /// The EPC.
    pub fn epc(&self) -> Epc {
        self.row.epc
    }
    /// The bound factory TID, if any.
    pub fn tid(&self) -> Option<Tid> {
        self.row.tid
    }
    /// The vehicle it is issued to.
    pub fn vehicle(&self) -> VehicleView<'i> {
        VehicleView {
            index: self.index,
            row: self.index.vehicles.get(self.row.vehicle as usize),
        }
    }
}

/// Approximate heap bytes of a snapshot, by part (see [`Index::memory`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Permit, vehicle and credential rows plus their link arrays.
    pub rows: usize,
    /// The hash tables.
    pub tables: usize,
    /// Names and other text.
    pub text: usize,
}

impl MemoryUse {
    /// Sum of the parts.
    pub fn total(&self) -> usize {
        self.rows + self.tables + self.text
    }
}

impl Index {
    /// The version of the data this snapshot was built from.
    pub fn data_version(&self) -> u64 {
        self.data_version
    }

    /// Number of permits.
    pub fn permit_count(&self) -> usize {
        self.live_permits
    }

    /// Number of vehicles.
    pub fn vehicle_count(&self) -> usize {
        self.live_vehicles
    }

    /// Number of tag credentials.
    pub fn credential_count(&self) -> usize {
        self.live_credentials
    }

    /// Rows and link entries that changes since the last full build left unreachable; a full
    /// build (from the store) drops them.
    pub fn garbage(&self) -> usize {
        self.garbage
    }

    /// Whether so much of the snapshot is garbage that the next change should rebuild it whole:
    /// more garbage than live rows.
    pub fn wants_rebuild(&self) -> bool {
        self.garbage > 10_000 && self.garbage > self.live_permits + self.live_vehicles
    }

    fn find_permit(&self, id: PermitId) -> Option<u32> {
        self.by_permit.find(self.hasher.hash_one(id), |r| {
            self.permits.get(r as usize).id == id
        })
    }

    fn find_vehicle(&self, id: VehicleId) -> Option<u32> {
        self.by_vehicle.find(self.hasher.hash_one(id), |r| {
            self.vehicles.get(r as usize).id == id
        })
    }

    fn find_epc(&self, epc: &Epc) -> Option<u32> {
        self.by_epc.find(self.hasher.hash_one(epc), |r| {
            self.credentials.get(r as usize).epc == *epc
        })
    }

    /// The permit rows of `person`'s run.
    fn person_rows(&self, person: PersonId) -> impl Iterator<Item = u32> + use<'_> {
        let start = self.by_person.find(self.hasher.hash_one(person), |pos| {
            self.person_at(pos as usize) == Some(person)
        });
        let (from, to) = match start {
            Some(s) => (s as usize, self.person_permits.len()),
            None => (0, 0),
        };
        (from..to)
            .map(move |i| *self.person_permits.get(i))
            .take_while(move |&r| r != RUN_END && self.permits.get(r as usize).person == person)
    }

    /// The person whose run starts at `pos`.
    fn person_at(&self, pos: usize) -> Option<PersonId> {
        match *self.person_permits.get(pos) {
            RUN_END => None,
            r => Some(self.permits.get(r as usize).person),
        }
    }

    /// The credential whose EPC is `epc`.
    pub fn credential(&self, epc: &Epc) -> Option<CredentialView<'_>> {
        let r = self.find_epc(epc)?;
        Some(CredentialView {
            index: self,
            row: self.credentials.get(r as usize),
        })
    }

    /// The vehicle with this plate and colour.
    pub fn vehicle_by_plate(&self, plate: PlateIdentity) -> Option<VehicleView<'_>> {
        let r = self.by_plate.find(self.hasher.hash_one(plate), |r| {
            self.vehicles.get(r as usize).plate == plate
        })?;
        Some(VehicleView {
            index: self,
            row: self.vehicles.get(r as usize),
        })
    }

    /// The vehicle with this id.
    pub fn vehicle(&self, id: VehicleId) -> Option<VehicleView<'_>> {
        let r = self.find_vehicle(id)?;
        Some(VehicleView {
            index: self,
            row: self.vehicles.get(r as usize),
        })
    }

    /// The permit with this id.
    pub fn permit(&self, id: PermitId) -> Option<PermitView<'_>> {
        let r = self.find_permit(id)?;
        Some(PermitView {
            index: self,
            row: self.permits.get(r as usize),
        })
    }

    /// The permits held by `person`.
    pub fn permits_of_person(
        &self,
        person: PersonId,
    ) -> impl Iterator<Item = PermitView<'_>> + use<'_> {
        self.person_rows(person).map(move |r| PermitView {
            index: self,
            row: self.permits.get(r as usize),
        })
    }

    /// Blacklist entries about `plate` (any colour entry, or one naming its colour) in force at `now`.
    pub fn blacklist_for_plate(
        &self,
        plate: PlateIdentity,
        now: UtcMinute,
    ) -> impl Iterator<Item = &BlacklistEntry> + use<'_> {
        self.list_hits(&self.lists.black_plate, &plate.plate, now)
            .filter(move |e| match e.subject {
                BlacklistSubject::Plate { colour, .. } => colour.is_none_or(|c| c == plate.colour),
                _ => false,
            })
    }

    /// Blacklist entries about the tag `epc` in force at `now`.
    pub fn blacklist_for_tag(
        &self,
        epc: &Epc,
        now: UtcMinute,
    ) -> impl Iterator<Item = &BlacklistEntry> + use<'_> {
        self.list_hits(&self.lists.black_tag, epc, now)
    }

    /// Blacklist entries about `person` in force at `now`.
    pub fn blacklist_for_person(
        &self,
        person: PersonId,
        now: UtcMinute,
    ) -> impl Iterator<Item = &BlacklistEntry> + use<'_> {
        self.list_hits(&self.lists.black_person, &person, now)
    }

    fn list_hits<'a, K: Hash + Eq>(
        &'a self,
        map: &'a HashMap<K, Vec<u32>>,
        key: &K,
        now: UtcMinute,
    ) -> impl Iterator<Item = &'a BlacklistEntry> + use<'a, K> {
        map.get(key)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(move |&i| &self.lists.blacklist[i as usize])
            .filter(move |e| now.within(e.from, e.until))
    }

    /// Lock entries on `plate` in force at `now`.
    pub fn locks_for(
        &self,
        plate: PlateIdentity,
        now: UtcMinute,
    ) -> impl Iterator<Item = &LockEntry> + use<'_> {
        self.lists
            .lock_by_plate
            .get(&plate.plate)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(move |&i| &self.lists.locks[i as usize])
            .filter(move |l| l.matches(plate) && now.within(l.from, l.until))
    }

    /// Visitor bookings for `plate`, in any status and slot.
    pub fn bookings_for(
        &self,
        plate: PlateIdentity,
    ) -> impl Iterator<Item = &VisitorBooking> + use<'_> {
        self.lists
            .booking_by_plate
            .get(&plate.plate)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .map(move |&i| &self.lists.bookings[i as usize])
            .filter(move |b| b.matches(plate))
    }

    /// Approximate heap use of the large parts (rows, tables, text); the small lists are left out.
    pub fn memory(&self) -> MemoryUse {
        use std::mem::size_of;
        MemoryUse {
            rows: self.permits.len() * size_of::<PermitRow>()
                + self.vehicles.len() * size_of::<VehicleRow>()
                + self.credentials.len() * size_of::<CredentialRow>()
                + (self.vehicle_permits.len()
                    + self.permit_vehicles.len()
                    + self.person_permits.len())
                    * 4,
            tables: self.by_permit.bytes()
                + self.by_vehicle.bytes()
                + self.by_plate.bytes()
                + self.by_epc.bytes()
                + self.by_person.bytes(),
            text: self.shared.text.bytes(),
        }
    }

    /// The next snapshot: this one with `delta` applied, without rebuilding what the delta does
    /// not touch. `self` is unchanged (decisions in flight keep reading it); the result shares
    /// every chunk the delta did not write. The cost is proportional to the delta (plus a scan
    /// of the tags when vehicles are deleted), not to the snapshot.
    ///
    /// Refused (and nothing is made) when the result would be inconsistent — the same
    /// [`BuildError`]s a full build gives — or when the delta names a key twice.
    pub fn apply(&self, delta: IndexDelta) -> Result<Index, DeltaError> {
        let IndexDelta {
            data_version,
            permits,
            delete_permits,
            vehicles,
            delete_vehicles,
            credentials,
            delete_credentials,
            blacklist,
            delete_blacklist,
            locks,
            delete_locks,
            bookings,
            delete_bookings,
        } = delta;
        once(
            "permit",
            permits
                .iter()
                .map(|p| p.id)
                .chain(delete_permits.iter().copied()),
        )?;
        once(
            "vehicle",
            vehicles
                .iter()
                .map(|v| v.id)
                .chain(delete_vehicles.iter().copied()),
        )?;
        once(
            "tag",
            credentials
                .iter()
                .map(|c| c.epc)
                .chain(delete_credentials.iter().copied()),
        )?;
        once(
            "blacklist entry",
            blacklist
                .iter()
                .map(|b| b.id)
                .chain(delete_blacklist.iter().copied()),
        )?;
        once(
            "lock entry",
            locks
                .iter()
                .map(|l| l.id)
                .chain(delete_locks.iter().copied()),
        )?;
        once(
            "booking",
            bookings
                .iter()
                .map(|b| b.id)
                .chain(delete_bookings.iter().copied()),
        )?;
        if self.permits.len() + permits.len() >= u32::MAX as usize - 1
            || self.vehicles.len() + vehicles.len() >= u32::MAX as usize - 1
            || self.credentials.len() + credentials.len() >= u32::MAX as usize - 1
        {
            return Err(BuildError::TooManyRows.into());
        }

        let mut ix = self.clone();
        ix.data_version = data_version;
        let hasher = self.hasher.clone();

        // 1. Whose permit runs change, and their runs now (read before any row changes, so
        //    that every table's keys still match its rows while entries are removed).
        let mut persons: HashSet<PersonId> = HashSet::new();
        for id in &delete_permits {
            if let Some(p) = self.permit(*id) {
                persons.insert(p.person_id());
            }
        }
        for p in &permits {
            match self.permit(p.id) {
                Some(old) if old.person_id() == p.holder.person_id => {}
                Some(old) => {
                    persons.insert(old.person_id());
                    persons.insert(p.holder.person_id);
                }
                None => {
                    persons.insert(p.holder.person_id);
                }
            }
        }
        let old_runs: HashMap<PersonId, Vec<u32>> = persons
            .iter()
            .map(|&p| (p, self.person_rows(p).collect()))
            .collect();
        for &person in &persons {
            let removed = ix.by_person.remove(
                hasher.hash_one(person),
                |pos| self.person_at(pos as usize) == Some(person),
                |pos| {
                    self.person_at(pos as usize)
                        .map_or(0, |p| hasher.hash_one(p))
                },
            );
            if removed.is_some() {
                ix.garbage += old_runs[&person].len();
            }
        }
        // Vehicles that are deleted or change plate leave the plate table now.
        let delete_vehicles: HashSet<VehicleId> = delete_vehicles.into_iter().collect();
        let mut deleted_vehicles: HashSet<u32> = HashSet::new();
        for id in &delete_vehicles {
            if let Some(v) = self.find_vehicle(*id) {
                deleted_vehicles.insert(v);
            }
        }
        for v in &vehicles {
            if let Some(r) = self.find_vehicle(v.id)
                && self.vehicles.get(r as usize).plate != v.plate
            {
                deleted_vehicles.insert(r); // leaves the plate table only; see below
            }
        }
        for &r in &deleted_vehicles {
            let plate = self.vehicles.get(r as usize).plate;
            ix.by_plate.remove(
                hasher.hash_one(plate),
                |x| x == r,
                |x| hasher.hash_one(self.vehicles.get(x as usize).plate),
            );
        }
        deleted_vehicles.retain(|&r| delete_vehicles.contains(&self.vehicles.get(r as usize).id));

        // 2. Permits: deleted ones leave (and are struck from their vehicles), others are
        //    written in place or appended.
        let mut struck: HashSet<u32> = HashSet::new();
        for id in &delete_permits {
            let Some(r) = ix.by_permit.remove(
                hasher.hash_one(id),
                |r| ix.permits.get(r as usize).id == *id,
                |r| hasher.hash_one(ix.permits.get(r as usize).id),
            ) else {
                continue;
            };
            ix.live_permits -= 1;
            ix.garbage += 1;
            let row = ix.permits.get(r as usize);
            let s = row.vehicles_start as usize;
            for i in s..s + usize::from(row.vehicles_len) {
                struck.insert(*ix.permit_vehicles.get(i));
            }
        }
        let mut joined: Vec<(PersonId, u32)> = Vec::new();
        for p in permits {
            let person = p.holder.person_id;
            let mut row = ix.shared.permit_row((&p).into());
            match ix.find_permit(row.id) {
                Some(r) => {
                    let slot = ix.permits.get_mut(r as usize);
                    row.vehicles_start = slot.vehicles_start;
                    row.vehicles_len = slot.vehicles_len;
                    *slot = row;
                    if persons.contains(&person) {
                        joined.push((person, r));
                    }
                }
                None => {
                    let id = row.id;
                    let r = ix.permits.push(row) as u32;
                    ix.by_permit
                        .reserve_one(|x| hasher.hash_one(ix.permits.get(x as usize).id));
                    let _ = ix.by_permit.insert(hasher.hash_one(id), r, |_| false);
                    ix.live_permits += 1;
                    joined.push((person, r));
                }
            }
        }

        // 3. Vehicles: deleted ones leave (with their tags); written ones get their permit
        //    list appended when it changed; plates go back into the plate table.
        let permit_alive =
            |ix: &Index, r: u32| ix.find_permit(ix.permits.get(r as usize).id) == Some(r);
        let mut relist: HashSet<u32> = HashSet::new();
        for &v in &deleted_vehicles {
            let id = self.vehicles.get(v as usize).id;
            ix.by_vehicle.remove(
                hasher.hash_one(id),
                |x| x == v,
                |x| hasher.hash_one(ix.vehicles.get(x as usize).id),
            );
            ix.live_vehicles -= 1;
            ix.garbage += 1;
            let row = ix.vehicles.get(v as usize);
            let s = row.permits_start as usize;
            for i in s..s + usize::from(row.permits_len) {
                relist.insert(*ix.vehicle_permits.get(i));
            }
        }
        let mut plates: Vec<u32> = Vec::new();
        let mut written: Vec<u32> = Vec::new();
        for v in vehicles {
            let mut rows = Vec::with_capacity(v.permit_ids.len());
            for pid in v.permit_ids.iter() {
                rows.push(ix.find_permit(*pid).ok_or(BuildError::UnknownPermit {
                    vehicle: v.id,
                    permit: *pid,
                })?);
            }
            let len = u16::try_from(rows.len()).map_err(|_| BuildError::TooManyRows)?;
            match ix.find_vehicle(v.id) {
                Some(r) => {
                    let old = ix.vehicles.get(r as usize).clone();
                    let s = old.permits_start as usize;
                    let old_rows: Vec<u32> = (s..s + usize::from(old.permits_len))
                        .map(|i| *ix.vehicle_permits.get(i))
                        .collect();
                    let mut start = old.permits_start;
                    if old_rows != rows {
                        relist.extend(old_rows.iter().copied().chain(rows.iter().copied()));
                        start = ix.vehicle_permits.len() as u32;
                        for &p in &rows {
                            ix.vehicle_permits.push(p);
                        }
                        ix.garbage += old_rows.len();
                    }
                    let slot = ix.vehicles.get_mut(r as usize);
                    slot.permits_start = start;
                    slot.permits_len = len;
                    if old.plate != v.plate {
                        slot.plate = v.plate;
                        plates.push(r);
                    }
                    struck.remove(&r);
                    written.push(r);
                }
                None => {
                    let start = ix.vehicle_permits.len() as u32;
                    for &p in &rows {
                        ix.vehicle_permits.push(p);
                    }
                    let r = ix.vehicles.push(VehicleRow {
                        id: v.id,
                        plate: v.plate,
                        permits_start: start,
                        permits_len: len,
                    }) as u32;
                    ix.by_vehicle
                        .reserve_one(|x| hasher.hash_one(ix.vehicles.get(x as usize).id));
                    let _ = ix.by_vehicle.insert(hasher.hash_one(v.id), r, |_| false);
                    ix.live_vehicles += 1;
                    relist.extend(rows.iter().copied());
                    plates.push(r);
                    written.push(r);
                }
            }
        }
        for r in plates {
            let plate = ix.vehicles.get(r as usize).plate;
            ix.by_plate
                .reserve_one(|x| hasher.hash_one(ix.vehicles.get(x as usize).plate));
            ix.by_plate
                .insert(hasher.hash_one(plate), r, |x| {
                    ix.vehicles.get(x as usize).plate == plate
                })
                .map_err(|_| BuildError::DuplicatePlate(plate))?;
        }
        // Vehicles that held a deleted permit (and were not written) lose it.
        for v in struck {
            if deleted_vehicles.contains(&v) {
                continue;
            }
            let row = ix.vehicles.get(v as usize).clone();
            let s = row.permits_start as usize;
            let old: Vec<u32> = (s..s + usize::from(row.permits_len))
                .map(|i| *ix.vehicle_permits.get(i))
                .collect();
            let kept: Vec<u32> = old
                .iter()
                .copied()
                .filter(|&p| permit_alive(&ix, p))
                .collect();
            let start = ix.vehicle_permits.len() as u32;
            for &p in &kept {
                ix.vehicle_permits.push(p);
            }
            ix.garbage += old.len();
            let slot = ix.vehicles.get_mut(v as usize);
            slot.permits_start = start;
            slot.permits_len = kept.len() as u16;
        }

        // 4. Tags: deleted ones and those of deleted vehicles leave; written ones replace the
        //    row of their EPC or are appended.
        let mut gone: Vec<u32> = delete_credentials
            .iter()
            .filter_map(|epc| ix.find_epc(epc))
            .collect();
        if !deleted_vehicles.is_empty() {
            gone.extend(
                ix.credentials
                    .iter()
                    .enumerate()
                    .filter(|(r, c)| {
                        deleted_vehicles.contains(&c.vehicle)
                            && ix.find_epc(&c.epc) == Some(*r as u32)
                    })
                    .map(|(r, _)| r as u32),
            );
        }
        gone.sort_unstable();
        gone.dedup();
        for r in gone {
            let epc = ix.credentials.get(r as usize).epc;
            let removed = ix.by_epc.remove(
                hasher.hash_one(epc),
                |x| x == r,
                |x| hasher.hash_one(ix.credentials.get(x as usize).epc),
            );
            if removed.is_some() {
                ix.live_credentials -= 1;
                ix.garbage += 1;
            }
        }
        for c in credentials {
            let vehicle = ix
                .find_vehicle(c.vehicle_id)
                .ok_or(BuildError::UnknownVehicle {
                    epc: c.epc,
                    vehicle: c.vehicle_id,
                })?;
            let row = CredentialRow {
                epc: c.epc,
                tid: c.tid,
                vehicle,
            };
            match ix.find_epc(&c.epc) {
                Some(r) => *ix.credentials.get_mut(r as usize) = row,
                None => {
                    let r = ix.credentials.push(row) as u32;
                    ix.by_epc
                        .reserve_one(|x| hasher.hash_one(ix.credentials.get(x as usize).epc));
                    let _ = ix.by_epc.insert(hasher.hash_one(c.epc), r, |_| false);
                    ix.live_credentials += 1;
                }
            }
        }

        // 5. Permit → vehicles for every permit whose holders changed.
        let vehicle_alive =
            |ix: &Index, v: u32| ix.find_vehicle(ix.vehicles.get(v as usize).id) == Some(v);
        let holds = |ix: &Index, v: u32, p: u32| {
            let row = ix.vehicles.get(v as usize);
            let s = row.permits_start as usize;
            (s..s + usize::from(row.permits_len)).any(|i| *ix.vehicle_permits.get(i) == p)
        };
        let mut newly: HashMap<u32, Vec<u32>> = HashMap::new();
        for &v in &written {
            let row = ix.vehicles.get(v as usize);
            let s = row.permits_start as usize;
            for i in s..s + usize::from(row.permits_len) {
                let p = *ix.vehicle_permits.get(i);
                if relist.contains(&p) {
                    newly.entry(p).or_default().push(v);
                }
            }
        }
        for p in relist {
            if !permit_alive(&ix, p) {
                continue;
            }
            let row = ix.permits.get(p as usize);
            let s = row.vehicles_start as usize;
            let old: Vec<u32> = (s..s + usize::from(row.vehicles_len))
                .map(|i| *ix.permit_vehicles.get(i))
                .collect();
            let mut list: Vec<u32> = old
                .iter()
                .copied()
                .filter(|&v| vehicle_alive(&ix, v) && holds(&ix, v, p))
                .collect();
            for &v in newly.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
                if !list.contains(&v) {
                    list.push(v);
                }
            }
            if list == old {
                continue;
            }
            let len = u16::try_from(list.len()).map_err(|_| BuildError::TooManyRows)?;
            let start = ix.permit_vehicles.len() as u32;
            for &v in &list {
                ix.permit_vehicles.push(v);
            }
            ix.garbage += old.len();
            let slot = ix.permits.get_mut(p as usize);
            slot.vehicles_start = start;
            slot.vehicles_len = len;
        }

        // 6. A new run for every person whose permits changed.
        for person in persons {
            let mut run: Vec<u32> = old_runs[&person]
                .iter()
                .copied()
                .filter(|&r| permit_alive(&ix, r) && ix.permits.get(r as usize).person == person)
                .collect();
            for &(p, r) in &joined {
                if p == person && !run.contains(&r) {
                    run.push(r);
                }
            }
            if run.is_empty() {
                continue;
            }
            let pos = ix.person_permits.len() as u32;
            for r in run {
                ix.person_permits.push(r);
            }
            ix.person_permits.push(RUN_END);
            ix.by_person.reserve_one(|x| {
                let r = *ix.person_permits.get(x as usize);
                hasher.hash_one(ix.permits.get(r as usize).person)
            });
            let _ = ix.by_person.insert(hasher.hash_one(person), pos, |_| false);
        }

        // 7. The lists, rebuilt whole if any of them changed.
        let lists_changed = !(blacklist.is_empty()
            && delete_blacklist.is_empty()
            && locks.is_empty()
            && delete_locks.is_empty()
            && bookings.is_empty()
            && delete_bookings.is_empty());
        if lists_changed {
            let drop_black: HashSet<BlacklistId> = delete_blacklist
                .iter()
                .copied()
                .chain(blacklist.iter().map(|e| e.id))
                .collect();
            let drop_lock: HashSet<LockId> = delete_locks
                .iter()
                .copied()
                .chain(locks.iter().map(|e| e.id))
                .collect();
            let drop_booking: HashSet<BookingId> = delete_bookings
                .iter()
                .copied()
                .chain(bookings.iter().map(|e| e.id))
                .collect();
            let mut black: Vec<BlacklistEntry> = self
                .lists
                .blacklist
                .iter()
                .filter(|e| !drop_black.contains(&e.id))
                .cloned()
                .collect();
            black.extend(blacklist);
            black.sort_by_key(|e| e.id);
            let mut lock: Vec<LockEntry> = self
                .lists
                .locks
                .iter()
                .filter(|e| !drop_lock.contains(&e.id))
                .cloned()
                .collect();
            lock.extend(locks);
            lock.sort_by_key(|e| e.id);
            let mut book: Vec<VisitorBooking> = self
                .lists
                .bookings
                .iter()
                .filter(|e| !drop_booking.contains(&e.id))
                .cloned()
                .collect();
            book.extend(bookings);
            book.sort_by_key(|e| e.id);
            ix.lists = Arc::new(Lists::new(black, lock, book));
        }
        Ok(ix)
    }
}

#[cfg(test)]
pub(crate) mod synthetic {
    use crate::domain::*;

    pub(crate) fn plate(i: u32) -> PlateIdentity {
        let p = crate::domain::plate::PROVINCES[(i % 31) as usize];
        let letter = char::from(b'A' + ((i / 31) % 26) as u8);
        Plate::parse(&format!("{p}{letter}{:05}", i / (31 * 26)))
            .unwrap()
            .with_colour(PlateColour::Blue)
    }

    pub(crate) fn epc(i: u32) -> Epc {
        let b = i.to_be_bytes();
        Epc::from_bytes(&[0xE2, 0x80, 0x11, 0x60, 0, 0, 0, 0, b[0], b[1], b[2], b[3]]).unwrap()
    }

    pub(crate) fn tid(i: u32) -> Tid {
        let b = i.to_be_bytes();
        Tid::from_bytes(&[0xE2, 0x00, 0x68, 0x11, 0, 0, 0, 0, b[0], b[1], b[2], b[3]]).unwrap()
    }

    pub(crate) fn builder(n: u32) -> super::IndexBuilder {
        let departments = ["计算机学院", "物理学院", "后勤处", "图书馆", "保卫处"];
        let mut b = super::IndexBuilder::new(7);
        b.permits = (0..n)
            .map(|i| Permit {
                id: PermitId(i),
                category: PersonCategory::Staff,
                holder: Holder {
                    person_id: PersonId(i / 2),
                    name: format!("张{i}").into(),
                    department: departments[i as usize % departments.len()].into(),
                },
                status: PermitStatus::Active,
                valid_from: UtcMinute::MIN,
                valid_until: UtcMinute::MAX,
                gates: GateRights::All(DirectionSet::BOTH),
                schedule: Schedule::always(),
                single_use: false,
                max_inside: None,
                version: 1,
            })
            .collect();
        b.vehicles = (0..n)
            .map(|i| Vehicle {
                id: VehicleId(i),
                plate: plate(i),
                permit_ids: vec![PermitId(i)].into(),
            })
            .collect();
        b.credentials = (0..n)
            .map(|i| Credential {
                epc: epc(i),
                tid: Some(tid(i)),
                vehicle_id: VehicleId(i),
            })
            .collect();
        b
    }
}

#[cfg(test)]
mod tests {
    use super::synthetic::*;
    use super::*;
    use crate::domain::*;

    fn rss_kib(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The longest run of occupied slots: what a search for an absent key may have to walk.
    fn longest_cluster(table: &SlotTable<Vec<u32>>) -> usize {
        let (mut longest, mut run) = (0, 0);
        for &slot in table.slots.iter().chain(table.slots.iter()) {
            run = if slot == 0 { 0 } else { run + 1 };
            longest = longest.max(run);
        }
        longest
    }

    #[test]
    fn a_run_of_ids_takes_neighbouring_slots_in_blocks_without_one_long_cluster() {
        let hasher = KeyHasher::default();
        // Within a block, the next id is the next slot.
        assert_eq!(
            hasher.hash_one(PermitId(64 * 7 + 5)),
            hasher.hash_one(PermitId(64 * 7)) + 5
        );
        let n = 200_000u32;
        let mut table = SlotTable::for_rows(n as usize);
        for id in 1..=n {
            table
                .insert(hasher.hash_one(PermitId(id)), id, |r| r == id)
                .unwrap();
        }
        // Hashing ids to themselves would leave one cluster of 200,000 slots, walked whole by
        // any search for an id that wraps onto it (one above the table's size, say).
        let longest = longest_cluster(&table);
        assert!(longest < 2_000, "longest cluster {longest} slots");
        for id in [n + 1, n + 1 + table.slots.len() as u32, u32::MAX] {
            assert_eq!(table.find(hasher.hash_one(PermitId(id)), |r| r == id), None);
        }
        assert_eq!(
            table.find(hasher.hash_one(PermitId(777)), |r| r == 777),
            Some(777)
        );
    }

    #[test]
    fn a_table_built_in_one_pass_finds_every_key_even_past_the_end_and_refuses_duplicates() {
        // Keys are rows' numbers; many share a home slot, several hash alike without being
        // the same key, and a crowd at the last slots must wrap to slot 0.
        let n = 1_000u32;
        let hash = |k: u32| -> u64 {
            match k % 10 {
                0..=3 => 2047 - u64::from(k % 5), // the last slots: the run wraps
                4 => 77,                          // one crowded home slot
                5 => 1 << 40 | 500,               // same home slot as 6, other hash
                6 => 2 << 40 | 500,
                _ => u64::from(k) * 0x9E37_79B9, // scattered
            }
        };
        let keys: Vec<(u64, u32)> = (0..n).map(|k| (hash(k), k)).collect();
        let table = SlotTable::from_hashes(keys.clone(), |a, b| a == b).unwrap();
        assert_eq!(table.slots.len(), 2048);
        assert_eq!(table.used, n as usize);
        for k in 0..n {
            assert_eq!(table.find(hash(k), |r| r == k), Some(k), "key {k}");
        }
        assert!(
            table.slots[..8].iter().any(|&s| s != 0),
            "the crowd wrapped"
        );
        assert_eq!(table.find(hash(3), |r| r == n + 3), None);
        // The same table as inserting them one by one: each key is found from its home slot
        // without crossing an empty slot (checked above), and no slot is taken twice.
        let mut rows: Vec<u32> = table
            .slots
            .iter()
            .filter(|&&s| s != 0)
            .map(|s| s - 1)
            .collect();
        rows.sort_unstable();
        assert_eq!(rows, (0..n).collect::<Vec<_>>());

        // Two rows with one key (here: the same key modulo n) are refused, wherever they sit.
        let mut dup = keys;
        dup.push((hash(4), n + 4));
        let refused = SlotTable::from_hashes(dup, |a, b| a % n == b % n).unwrap_err();
        assert!(refused == 4 || refused == n + 4, "{refused}");
    }

    #[test]
    fn a_snapshot_of_100k_permits_answers_every_kind_of_lookup() {
        let n = 100_000;
        let index = builder(n).build().unwrap();
        assert_eq!(index.data_version(), 7);
        assert_eq!(
            (
                index.permit_count(),
                index.vehicle_count(),
                index.credential_count()
            ),
            (n as usize, n as usize, n as usize)
        );
        for i in (0..n).step_by(997).chain([0, n - 1]) {
            let c = index.credential(&epc(i)).expect("tag found");
            assert_eq!(c.tid(), Some(tid(i)));
            let v = c.vehicle();
            assert_eq!((v.id(), v.plate()), (VehicleId(i), plate(i)));
            assert_eq!(index.vehicle_by_plate(plate(i)).unwrap().id(), VehicleId(i));
            assert_eq!(index.vehicle(VehicleId(i)).unwrap().plate(), plate(i));
            let p = index.permit(PermitId(i)).unwrap();
            assert_eq!(p.holder_name(), format!("张{i}"));
            assert_eq!(
                p.vehicles().map(|v| v.id()).collect::<Vec<_>>(),
                [VehicleId(i)]
            );
            assert_eq!(
                v.permits().map(|p| p.id()).collect::<Vec<_>>(),
                [PermitId(i)]
            );
            let mut of_person: Vec<_> = index
                .permits_of_person(PersonId(i / 2))
                .map(|p| p.id().0)
                .collect();
            of_person.sort();
            let first = i / 2 * 2;
            assert_eq!(of_person, [first, first + 1]);
        }
        assert!(index.credential(&epc(n)).is_none());
        assert!(index.vehicle_by_plate(plate(n)).is_none());
        assert!(
            index
                .vehicle_by_plate(plate(1).plate.with_colour(PlateColour::Yellow))
                .is_none()
        );
        assert!(index.permit(PermitId(n)).is_none());
        assert_eq!(index.permits_of_person(PersonId(n)).count(), 0);
        // Compactness: about 200 bytes per permit with its vehicle and tag, hash tables included.
        let per_permit = index.memory().total() / n as usize;
        assert!(per_permit <= 220, "{per_permit} bytes per permit");
    }

    #[test]
    fn departments_and_reasons_are_stored_once_however_many_permits_share_them() {
        let index = builder(1000).build().unwrap();
        let a = index.permit(PermitId(0)).unwrap().department();
        let b = index.permit(PermitId(5)).unwrap().department();
        assert_eq!(a, "计算机学院");
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn a_snapshot_with_a_duplicate_or_dangling_row_is_refused_whole() {
        let mut b = builder(10);
        b.credentials[3].epc = epc(4);
        assert_eq!(b.build().unwrap_err(), BuildError::DuplicateEpc(epc(4)));

        let mut b = builder(10);
        b.vehicles[3].plate = plate(4);
        assert_eq!(b.build().unwrap_err(), BuildError::DuplicatePlate(plate(4)));

        let mut b = builder(10);
        b.permits[3].id = PermitId(4);
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::DuplicatePermit(PermitId(4))
        );

        let mut b = builder(10);
        b.vehicles[3].id = VehicleId(4);
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::DuplicateVehicle(VehicleId(4))
        );

        let mut b = builder(10);
        b.vehicles[3].permit_ids = vec![PermitId(99)].into();
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::UnknownPermit {
                vehicle: VehicleId(3),
                permit: PermitId(99)
            }
        );

        let mut b = builder(10);
        b.credentials[3].vehicle_id = VehicleId(99);
        assert_eq!(
            b.build().unwrap_err(),
            BuildError::UnknownVehicle {
                epc: epc(3),
                vehicle: VehicleId(99)
            }
        );
    }

    #[test]
    fn an_empty_snapshot_builds_and_finds_nothing() {
        let index = IndexBuilder::new(0).build().unwrap();
        assert!(index.credential(&epc(0)).is_none());
        assert!(index.vehicle_by_plate(plate(0)).is_none());
    }

    /// A tiny deterministic generator (xorshift64) for the change sequences below.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// What the gate store would hold: the rows by key, changed by the store's rules.
    #[derive(Default, Clone)]
    struct Model {
        permits: std::collections::BTreeMap<u32, Permit>,
        vehicles: std::collections::BTreeMap<u32, Vehicle>,
        credentials: std::collections::BTreeMap<Epc, Credential>,
        blacklist: std::collections::BTreeMap<u32, BlacklistEntry>,
    }

    impl Model {
        fn from(b: &IndexBuilder) -> Model {
            Model {
                permits: b.permits.iter().map(|p| (p.id.0, p.clone())).collect(),
                vehicles: b.vehicles.iter().map(|v| (v.id.0, v.clone())).collect(),
                credentials: b.credentials.iter().map(|c| (c.epc, *c)).collect(),
                blacklist: b.blacklist.iter().map(|e| (e.id.0, e.clone())).collect(),
            }
        }

        fn builder(&self, version: u64) -> IndexBuilder {
            IndexBuilder {
                data_version: version,
                permits: self.permits.values().cloned().collect(),
                vehicles: self.vehicles.values().cloned().collect(),
                credentials: self.credentials.values().copied().collect(),
                blacklist: self.blacklist.values().cloned().collect(),
                ..IndexBuilder::default()
            }
        }

        fn apply(&mut self, d: &IndexDelta) {
            for id in &d.delete_permits {
                self.permits.remove(&id.0);
                for v in self.vehicles.values_mut() {
                    v.permit_ids = v.permit_ids.iter().copied().filter(|p| p != id).collect();
                }
            }
            for id in &d.delete_vehicles {
                self.vehicles.remove(&id.0);
                self.credentials.retain(|_, c| c.vehicle_id != *id);
            }
            for epc in &d.delete_credentials {
                self.credentials.remove(epc);
            }
            for id in &d.delete_blacklist {
                self.blacklist.remove(&id.0);
            }
            for p in &d.permits {
                self.permits.insert(p.id.0, p.clone());
            }
            for v in &d.vehicles {
                self.vehicles.insert(v.id.0, v.clone());
            }
            for c in &d.credentials {
                self.credentials.insert(c.epc, *c);
            }
            for e in &d.blacklist {
                self.blacklist.insert(e.id.0, e.clone());
            }
        }
    }

    fn permit(id: u32, person: u32, revoked: bool) -> Permit {
        let mut b = builder(1);
        let mut p = b.permits.remove(0);
        p.id = PermitId(id);
        p.holder.person_id = PersonId(person);
        p.holder.name = format!("持证人{id}-{person}").into();
        if revoked {
            p.status = PermitStatus::Revoked {
                reason: format!("离校{}", id % 3).into(),
            };
        }
        p
    }

    /// A random change that a centre could send: permits revoked, re-assigned, added and
    /// deleted; vehicles added, re-plated, re-permitted and deleted; tags issued, moved and
    /// withdrawn; blacklist entries added and lifted.
    fn random_delta(rng: &mut Rng, m: &Model, version: u64, next_id: &mut u32) -> IndexDelta {
        let mut d = IndexDelta {
            data_version: version,
            ..IndexDelta::default()
        };
        let mut used_permits = HashSet::new();
        let mut used_vehicles = HashSet::new();
        let mut used_epcs = HashSet::new();
        let pick = |rng: &mut Rng, keys: Vec<u32>| -> Option<u32> {
            (!keys.is_empty()).then(|| keys[rng.below(keys.len() as u64) as usize])
        };
        for _ in 0..1 + rng.below(6) {
            match rng.below(10) {
                0 | 1 => {
                    // Revoke or re-assign an existing permit.
                    if let Some(id) = pick(rng, m.permits.keys().copied().collect())
                        && used_permits.insert(id)
                    {
                        let person = if rng.below(2) == 0 {
                            m.permits[&id].holder.person_id.0
                        } else {
                            rng.below(40) as u32
                        };
                        d.permits.push(permit(id, person, rng.below(2) == 0));
                    }
                }
                2 => {
                    *next_id += 1;
                    used_permits.insert(*next_id);
                    d.permits
                        .push(permit(*next_id, rng.below(40) as u32, false));
                }
                3 => {
                    if let Some(id) = pick(rng, m.permits.keys().copied().collect())
                        && used_permits.insert(id)
                    {
                        d.delete_permits.push(PermitId(id));
                    }
                }
                4 | 5 => {
                    // A new or changed vehicle holding some live permits.
                    let id = if rng.below(2) == 0 {
                        *next_id += 1;
                        *next_id
                    } else {
                        match pick(rng, m.vehicles.keys().copied().collect()) {
                            Some(id) => id,
                            None => continue,
                        }
                    };
                    if !used_vehicles.insert(id) {
                        continue;
                    }
                    let live: Vec<u32> = m
                        .permits
                        .keys()
                        .copied()
                        .filter(|p| !d.delete_permits.contains(&PermitId(*p)))
                        .collect();
                    let mut held = Vec::new();
                    for _ in 0..rng.below(3) {
                        if let Some(p) = pick(rng, live.clone())
                            && !held.contains(&PermitId(p))
                        {
                            held.push(PermitId(p));
                        }
                    }
                    let plate = match m.vehicles.get(&id) {
                        Some(v) if rng.below(2) == 0 => v.plate,
                        _ => {
                            *next_id += 1;
                            plate(100_000 + *next_id)
                        }
                    };
                    d.vehicles.push(Vehicle {
                        id: VehicleId(id),
                        plate,
                        permit_ids: held.into(),
                    });
                }
                6 => {
                    if let Some(id) = pick(rng, m.vehicles.keys().copied().collect())
                        && used_vehicles.insert(id)
                    {
                        d.delete_vehicles.push(VehicleId(id));
                    }
                }
                7 => {
                    // Issue a new tag, or move an existing one, to a vehicle that stays.
                    let stays: Vec<u32> = m
                        .vehicles
                        .keys()
                        .copied()
                        .filter(|v| !d.delete_vehicles.contains(&VehicleId(*v)))
                        .collect();
                    let Some(v) = pick(rng, stays) else { continue };
                    let epc = if rng.below(2) == 0 {
                        *next_id += 1;
                        epc(200_000 + *next_id)
                    } else {
                        let epcs: Vec<Epc> = m.credentials.keys().copied().collect();
                        if epcs.is_empty() {
                            continue;
                        }
                        epcs[rng.below(epcs.len() as u64) as usize]
                    };
                    if used_epcs.insert(epc) {
                        d.credentials.push(Credential {
                            epc,
                            tid: None,
                            vehicle_id: VehicleId(v),
                        });
                    }
                }
                8 => {
                    let epcs: Vec<Epc> = m.credentials.keys().copied().collect();
                    if !epcs.is_empty() {
                        let epc = epcs[rng.below(epcs.len() as u64) as usize];
                        if used_epcs.insert(epc) {
                            d.delete_credentials.push(epc);
                        }
                    }
                }
                _ => {
                    let id = rng.below(8) as u32;
                    if d.blacklist.iter().any(|e| e.id.0 == id)
                        || d.delete_blacklist.contains(&BlacklistId(id))
                    {
                        continue;
                    }
                    if rng.below(2) == 0 {
                        d.delete_blacklist.push(BlacklistId(id));
                    } else {
                        d.blacklist.push(BlacklistEntry {
                            id: BlacklistId(id),
                            subject: BlacklistSubject::Plate {
                                plate: plate(id).plate,
                                colour: None,
                            },
                            reason: "被盗车辆".into(),
                            from: UtcMinute::MIN,
                            until: UtcMinute::MAX,
                            alarm: AlarmLevel::Urgent,
                        });
                    }
                }
            }
        }
        // A vehicle written in this delta may not hold a permit the delta deletes, and a tag
        // may not go to a vehicle the delta deletes (the centre never sends either).
        for v in &mut d.vehicles {
            v.permit_ids = v
                .permit_ids
                .iter()
                .copied()
                .filter(|p| !d.delete_permits.contains(p))
                .collect();
        }
        d
    }

    /// Everything a decision can ask, as plain values, for every key the test ever used.
    fn answers(index: &Index, keys: u32) -> Vec<String> {
        let now = UtcMinute(1);
        let mut out = vec![format!(
            "counts {} {} {}",
            index.permit_count(),
            index.vehicle_count(),
            index.credential_count()
        )];
        for i in 0..keys {
            if let Some(p) = index.permit(PermitId(i)) {
                let mut vs: Vec<u32> = p.vehicles().map(|v| v.id().0).collect();
                vs.sort();
                out.push(format!(
                    "permit {i} {:?} {} {} {} {:?} {:?}",
                    p.status(),
                    p.person_id(),
                    p.holder_name(),
                    p.department(),
                    p.gates(),
                    vs
                ));
            }
            if let Some(v) = index.vehicle(VehicleId(i)) {
                let ps: Vec<u32> = v.permits().map(|p| p.id().0).collect();
                out.push(format!("vehicle {i} {} {ps:?}", v.plate()));
            }
            for plate in [plate(i), plate(100_000 + i)] {
                if let Some(v) = index.vehicle_by_plate(plate) {
                    out.push(format!("plate {plate} {}", v.id()));
                }
                if index.blacklist_for_plate(plate, now).next().is_some() {
                    out.push(format!("blacklisted {plate}"));
                }
            }
            for epc in [epc(i), epc(200_000 + i)] {
                if let Some(c) = index.credential(&epc) {
                    out.push(format!("tag {epc} {:?} {}", c.tid(), c.vehicle().id()));
                }
            }
            let mut of: Vec<u32> = index
                .permits_of_person(PersonId(i))
                .map(|p| p.id().0)
                .collect();
            of.sort();
            if !of.is_empty() {
                out.push(format!("person {i} {of:?}"));
            }
        }
        out
    }

    #[test]
    fn a_text_map_finds_the_empty_text_and_others_apart() {
        let mut m = TextMap::default();
        assert_eq!(m.get(""), None);
        m.insert("", 1);
        m.insert("计算机学院", 2);
        assert_eq!(
            (m.get(""), m.get("计算机学院"), m.get("x")),
            (Some(1), Some(2), None)
        );
        m.insert("", 3);
        assert_eq!(m.get(""), Some(3));
    }

    #[test]
    #[should_panic(expected = "index halves from another build")]
    fn halves_of_two_builds_are_never_joined() {
        let (one, other) = (IndexBuild::new(), IndexBuild::new());
        let permits = one.permits(0).seal().unwrap();
        let vehicles = other.vehicles(0, 0).seal().unwrap();
        let _ = one.finish(1, permits, vehicles, vec![], vec![], vec![]);
    }

    #[test]
    fn a_delta_applied_to_a_snapshot_answers_every_lookup_like_a_snapshot_built_whole() {
        let start = builder(60);
        let mut model = Model::from(&start);
        let mut index = start.build().unwrap();
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        let mut next_id = 1_000;
        let mut applied = 0;
        for version in 8..600u64 {
            let delta = random_delta(&mut rng, &model, version, &mut next_id);
            let before = answers(&index, next_id + 1);
            match index.apply(delta.clone()) {
                Ok(next) => {
                    model.apply(&delta);
                    let whole = model.builder(version).build().unwrap_or_else(|e| {
                        panic!("delta {version} applied, but the whole build refuses: {e}")
                    });
                    assert_eq!(
                        answers(&next, next_id + 1),
                        answers(&whole, next_id + 1),
                        "after delta {version}: {delta:?}"
                    );
                    assert_eq!(next.data_version(), version);
                    // The previous snapshot, still held by decisions in flight, is unchanged.
                    assert_eq!(answers(&index, next_id + 1), before);
                    index = next;
                    applied += 1;
                }
                Err(e) => {
                    // Refused only when a whole build of the same rows is refused too.
                    let mut m = model.clone();
                    m.apply(&delta);
                    assert!(
                        m.builder(version).build().is_err(),
                        "delta {version} refused ({e}) but the rows are consistent: {delta:?}"
                    );
                }
            }
        }
        assert!(applied > 500, "{applied} deltas applied");
        assert!(index.garbage() > 0);
    }

    #[test]
    fn a_revocation_among_100k_permits_copies_a_few_chunks_and_leaves_the_old_snapshot_alone() {
        let index = builder(100_000).build().unwrap();
        let mut revoked = permit(70_000, 35_000, true);
        revoked.holder.name = "张70000".into();
        let next = index
            .apply(IndexDelta {
                data_version: 8,
                permits: vec![revoked],
                ..IndexDelta::default()
            })
            .unwrap();
        assert!(matches!(
            next.permit(PermitId(70_000)).unwrap().status(),
            StatusRef::Revoked(_)
        ));
        assert_eq!(
            index.permit(PermitId(70_000)).unwrap().status(),
            StatusRef::Active
        );
        // Shared chunks: all but the one permit chunk (and the text's last chunk).
        let shared = index
            .permits
            .chunks
            .iter()
            .zip(&next.permits.chunks)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, index.permits.chunks.len() - 1);
        assert!(Arc::ptr_eq(
            &index.by_epc.slots.chunks[0],
            &next.by_epc.slots.chunks[0]
        ));
        assert_eq!(next.permit_count(), 100_000);
        let mut of: Vec<u32> = next
            .permits_of_person(PersonId(35_000))
            .map(|p| p.id().0)
            .collect();
        of.sort();
        assert_eq!(of, [70_000, 70_001]);
    }

    #[test]
    fn a_delta_that_names_a_permit_twice_or_breaks_a_reference_is_refused() {
        let index = builder(10).build().unwrap();
        let twice = IndexDelta {
            permits: vec![permit(3, 1, true)],
            delete_permits: vec![PermitId(3)],
            ..IndexDelta::default()
        };
        assert!(matches!(index.apply(twice), Err(DeltaError::Ambiguous(_))));
        let dangling = IndexDelta {
            vehicles: vec![Vehicle {
                id: VehicleId(77),
                plate: plate(77),
                permit_ids: vec![PermitId(99)].into(),
            }],
            ..IndexDelta::default()
        };
        assert_eq!(
            index.apply(dangling).unwrap_err(),
            DeltaError::Build(BuildError::UnknownPermit {
                vehicle: VehicleId(77),
                permit: PermitId(99)
            })
        );
        let taken = IndexDelta {
            vehicles: vec![Vehicle {
                id: VehicleId(77),
                plate: plate(4),
                permit_ids: vec![].into(),
            }],
            ..IndexDelta::default()
        };
        assert_eq!(
            index.apply(taken).unwrap_err(),
            DeltaError::Build(BuildError::DuplicatePlate(plate(4)))
        );
    }

    /// Measures a million permits. Run by hand, in release:
    /// `cargo test --release --lib gate::index::tests::measure_a_million -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement, run by hand in release mode"]
    fn measure_a_million_permits_build_time_and_memory() {
        let n = 1_000_000;
        let before = rss_kib("VmRSS:").unwrap_or(0);
        let rows = builder(n);
        let with_rows = rss_kib("VmRSS:").unwrap_or(0);
        let t = std::time::Instant::now();
        let index = rows.build().unwrap();
        let build = t.elapsed();
        let after = rss_kib("VmRSS:").unwrap_or(0);
        let m = index.memory();
        println!(
            "1M permits: build {build:?}; index {:.1} MiB (rows {:.1}, tables {:.1}, text {:.1}); \
             RSS before rows {} MiB, with rows {} MiB, after build {} MiB, peak {} MiB",
            m.total() as f64 / 1048576.0,
            m.rows as f64 / 1048576.0,
            m.tables as f64 / 1048576.0,
            m.text as f64 / 1048576.0,
            before / 1024,
            with_rows / 1024,
            after / 1024,
            rss_kib("VmHWM:").unwrap_or(0) / 1024,
        );
        assert!(index.credential(&epc(n - 1)).is_some());
    }
}
