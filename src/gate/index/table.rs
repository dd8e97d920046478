//! The index's hash tables: open-addressing tables of row numbers ([`SlotTable`]) whose keys
//! live in the rows themselves, and how they hash their keys ([`KeyHasher`]). A table never
//! stores or compares a key itself: the caller does, against its rows.

use std::hash::{BuildHasher, RandomState};

use super::arena::Chunked;
use crate::domain::{Epc, PermitId, PersonId, PlateIdentity, VehicleId};

/// How the slot tables hash their keys. Ids (permit, vehicle, person) are numbers the centre
/// hands out in sequence, and the build and most changes walk rows in id order; so ids hash
/// in blocks ([`dense`]): the ids of one block of 64 take neighbouring slots, and only the
/// blocks are scattered. Walking ids in order then walks each id table a block at a time
/// instead of missing the cache once per row (benches/README.md).
/// Tags and plates come from outside and hash with a random key ([`Seed`]).
#[derive(Debug, Clone, Default)]
pub(super) struct KeyHasher(Seed);

impl KeyHasher {
    #[inline]
    pub(super) fn hash_one<K: SlotKey>(&self, key: K) -> u64 {
        key.slot_hash(&self.0)
    }
}

/// The random key that tags and plates hash with: drawn from the standard library's random
/// source for each build, like a `HashMap`'s.
#[derive(Debug, Clone, Copy)]
pub(super) struct Seed([u64; 3]);

impl Default for Seed {
    fn default() -> Self {
        let random = RandomState::new();
        Seed([0u64, 1, 2].map(|i| random.hash_one(i)))
    }
}

/// The high and low halves of a 128-bit product, folded: every input bit reaches the low
/// bits, which pick the slot.
#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Seed {
    /// A keyed hash of at most 16 bytes and a tag: two folded multiplies over the bytes read as
    /// two words. SipHash through `Hash` wrote a 17-byte tag or plate a field at a time and
    /// took about a twentieth of a ten-million-permit start (benches/README.md, gate_scale).
    #[inline]
    fn hash_bytes(&self, bytes: &[u8], tag: u64) -> u64 {
        let mut words = [0u8; 16];
        let n = bytes.len().min(16);
        words[..n].copy_from_slice(&bytes[..n]);
        let lo = u64::from_le_bytes(words[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(words[8..].try_into().expect("8 bytes"));
        let [k0, k1, k2] = self.0;
        let h = fold_mul(lo ^ k0, hi ^ k1 ^ (tag << 8 | n as u64));
        fold_mul(h ^ k2, 0x9E37_79B9_7F4A_7C15)
    }
}

/// A key of a slot table (see [`KeyHasher`]).
pub(super) trait SlotKey {
    fn slot_hash(&self, seed: &Seed) -> u64;
}

impl<K: SlotKey> SlotKey for &K {
    #[inline]
    fn slot_hash(&self, seed: &Seed) -> u64 {
        (**self).slot_hash(seed)
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
            fn slot_hash(&self, _: &Seed) -> u64 {
                dense(self.0)
            }
        }
    )*};
}
dense_keys!(PermitId, VehicleId, PersonId);

impl SlotKey for Epc {
    #[inline]
    fn slot_hash(&self, seed: &Seed) -> u64 {
        seed.hash_bytes(self.as_bytes(), 0)
    }
}

impl SlotKey for PlateIdentity {
    #[inline]
    fn slot_hash(&self, seed: &Seed) -> u64 {
        seed.hash_bytes(self.plate.as_str().as_bytes(), 1 + self.colour as u64)
    }
}

/// Where an open-addressing table keeps its slots: a plain `Vec` while building, chunks in a
/// snapshot.
pub(super) trait Slots {
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
/// between 3/8 and 3/4 when built (see [`capacity_for`]). Keys are not stored: the caller compares against the row, and gives the
/// hash of a row's key where the table must move entries (removal, growth).
#[derive(Debug, Clone)]
pub(super) struct SlotTable<S = Chunked<u32>> {
    pub(super) slots: S,
    mask: usize,
    used: usize,
}

/// Slots for `n` entries: the power of two that keeps the load at most 3/4 (the load at which
/// [`SlotTable::reserve_one`] grows a table). Load ≤ 1/2 (twice `n`, rounded up) cost ten
/// million permits 64 MiB more per table than this (2^25 slots instead of 2^24) for probes a
/// fraction shorter (benches/README.md, gate_scale).
fn capacity_for(n: usize) -> usize {
    (n * 4).div_ceil(3).next_power_of_two().max(8)
}

impl SlotTable<Vec<u32>> {
    pub(super) fn for_rows(n: usize) -> SlotTable<Vec<u32>> {
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
    /// but written sequentially instead of one cache miss per row at a random slot (ten
    /// million tags or plates: 64 MiB of slots each). Keys that hash alike sit side by side
    /// after the sort, so a duplicate is found by comparing neighbours (`same_key`), not by
    /// reading rows on every probe. A duplicate fails the build with one of its rows.
    ///
    /// Each pair is sorted as one `u64`: the home slot and as many more bits of the hash as
    /// fit in 32, above the row (8 bytes a row instead of 16 with padding: the sort's buffer
    /// is most of what a build holds beside the rows while it runs).
    pub(super) fn from_hashes<I>(
        keys: I,
        same_key: impl Fn(u32, u32) -> bool,
    ) -> Result<SlotTable<Vec<u32>>, u32>
    where
        I: IntoIterator<Item = (u64, u32)>,
        I::IntoIter: ExactSizeIterator,
    {
        let keys = keys.into_iter();
        let mut table = SlotTable::for_rows(keys.len());
        let bits = table.mask.count_ones();
        if bits > 32 {
            // More than 2^32 slots (never at a gate): one by one.
            for (hash, row) in keys {
                table.insert(hash, row, |other| same_key(other, row))?;
            }
            return Ok(table);
        }
        // The home slot (the low bits) on top, then the hash's next bits, then the row.
        let mut sorted: Vec<u64> = keys
            .map(|(h, row)| (h.rotate_right(bits) >> 32 << 32) | u64::from(row))
            .collect();
        sorted.sort_unstable();
        let row_of = |k: u64| k as u32;
        for run in sorted.chunk_by(|a, b| a >> 32 == b >> 32) {
            for (j, &k) in run.iter().enumerate().skip(1) {
                if run[..j]
                    .iter()
                    .any(|&other| same_key(row_of(other), row_of(k)))
                {
                    return Err(row_of(k));
                }
            }
        }
        let mut next = 0usize;
        let mut wrapped = Vec::new();
        for &k in &sorted {
            let home = (k >> (64 - bits)) as usize;
            let at = home.max(next);
            if at > table.mask {
                wrapped.push((home as u64, row_of(k)));
                continue;
            }
            table.slots[at] = row_of(k) + 1;
            next = at + 1;
        }
        table.used = sorted.len() - wrapped.len();
        // The few whose run passed the end continue from slot 0, as a probe would.
        for (home, row) in wrapped {
            let _ = table.insert(home, row, |_| false);
        }
        Ok(table)
    }

    pub(super) fn into_chunked(self) -> SlotTable {
        SlotTable {
            slots: Chunked::from_vec(self.slots),
            mask: self.mask,
            used: self.used,
        }
    }
}

impl<S: Slots> SlotTable<S> {
    /// Inserts `row`; returns the existing row if one with the same key is present.
    pub(super) fn insert(
        &mut self,
        hash: u64,
        row: u32,
        same_key: impl Fn(u32) -> bool,
    ) -> Result<(), u32> {
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
    pub(super) fn find(&self, hash: u64, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        self.find_slot(hash, is_key).map(|i| self.slots.slot(i) - 1)
    }

    pub(super) fn bytes(&self) -> usize {
        (self.mask + 1) * 4
    }
}

impl SlotTable {
    /// Removes the entry whose row `is_key`, closing the gap by moving later entries of the
    /// probe run back (no tombstones, so lookups never slow down). `home` is the hash of the
    /// key of a row in the table.
    pub(super) fn remove(
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
    pub(super) fn reserve_one(&mut self, hash_of: impl Fn(u32) -> u64) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PermitId;

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
    fn tags_and_plates_that_differ_in_a_few_bytes_scatter_over_the_table() {
        use crate::gate::index::synthetic::{epc, plate};
        let hasher = KeyHasher::default();
        let n = 200_000u32;
        // Counted tags and plates: neighbours differ in one or two bytes only.
        let by_tag =
            SlotTable::from_hashes((0..n).map(|i| (hasher.hash_one(epc(i)), i)), |a, b| a == b)
                .unwrap();
        let by_plate =
            SlotTable::from_hashes((0..n).map(|i| (hasher.hash_one(plate(i)), i)), |a, b| {
                a == b
            })
            .unwrap();
        for table in [&by_tag, &by_plate] {
            let longest = longest_cluster(table);
            assert!(longest < 200, "longest cluster {longest} slots");
        }
        // The colour is part of a plate's hash.
        let blue = plate(7);
        let yellow = blue.plate.with_colour(crate::domain::PlateColour::Yellow);
        assert_ne!(hasher.hash_one(blue), hasher.hash_one(yellow));
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
}
