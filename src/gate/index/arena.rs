//! The index's storage: vectors in copy-on-write chunks ([`Chunked`]), the text arena that
//! holds every string a row refers to, and the interners for repeated values. A change to a
//! snapshot copies only the chunks it writes. Nothing here knows what a permit or a vehicle is.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

const CHUNK_BITS: u32 = 12;
/// Elements per chunk: 4,096 (a permit chunk is about 200 KiB, a slot chunk 16 KiB).
const CHUNK: usize = 1 << CHUNK_BITS;
const CHUNK_MASK: usize = CHUNK - 1;

/// A vector stored in chunks of [`CHUNK`] elements behind `Arc`s: `clone` shares every chunk,
/// a write copies only the chunk written (`Arc::make_mut`).
#[derive(Debug)]
pub(super) struct Chunked<T> {
    pub(super) chunks: Vec<Arc<Vec<T>>>,
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
    /// The chunks of `v`, cut from its end while `v` is shrunk behind them, so that the rows
    /// are never held twice: copying a whole `Vec` into chunks first doubled the rows' memory
    /// at the peak of a gate's start (benches/README.md, gate_scale). Shrinking in place is a
    /// cheap `realloc` (glibc and jemalloc shrink a block without copying it).
    pub(super) fn from_vec(mut v: Vec<T>) -> Chunked<T> {
        let len = v.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        while !v.is_empty() {
            let at = (v.len() - 1) / CHUNK * CHUNK;
            chunks.push(Arc::new(v.split_off(at)));
            if chunks.len() % 16 == 0 {
                v.shrink_to_fit();
            }
        }
        chunks.reverse();
        Chunked { chunks, len }
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & CHUNK_MASK]
    }

    pub(super) fn get_mut(&mut self, i: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[i >> CHUNK_BITS])[i & CHUNK_MASK]
    }

    /// Appends `v` and returns its position.
    pub(super) fn push(&mut self, v: T) -> usize {
        let i = self.len;
        if i & CHUNK_MASK == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        Arc::make_mut(self.chunks.last_mut().expect("a chunk was just ensured")).push(v);
        self.len += 1;
        i
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

/// Reference to a string in the index's text arena: its chunk (high 16 bits) and where its
/// length prefix starts in that chunk (low 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Text(u32);

/// Bits of a [`Text`] that say where in its chunk a string starts.
const TEXT_START_BITS: u32 = 16;
/// Bytes per text chunk: every string starts within the first 64 KiB of its chunk (a longer
/// string gets a chunk of its own, starting at 0).
const TEXT_CHUNK: usize = 1 << TEXT_START_BITS;
/// Lengths below this are written as one `char` (one byte below 128); a longer string's
/// length follows [`LONG`] in decimal, ended by `;`.
const SHORT_LEN: u32 = 0xD800;
const LONG: char = '\u{10FFFF}';

/// All strings, in chunked buffers (a change copies only the last chunk), with optional
/// interning for repeated values.
///
/// Each string is stored after its length, written as a character so that a chunk stays a
/// `String` (most names are shorter than 128 bytes: one byte of length); a [`Text`] is the
/// position of that length. A table of spans (chunk, start, length: 12 bytes a string) used to
/// sit in between; ten million holder names made it 120 MB (benches/README.md, gate_scale).
#[derive(Debug, Clone, Default)]
pub(super) struct TextArena {
    chunks: Vec<Arc<String>>,
    /// Interned strings (departments, reasons).
    interned: Arc<TextMap<Text>>,
    /// Set when a string could not be addressed (more than 65,536 chunks, 4 GiB of text): the
    /// snapshot is then refused (see [`TextArena::overflowed`]).
    overflowed: bool,
}

/// A map keyed by text that never compares the empty string. A `HashMap` would compare `""`
/// with its stored key, and glibc's AVX-512 `memcmp` reads an empty slice's dangling pointer
/// with a masked load whose fault suppression is slow (benches/README.md), and every active
/// permit's reason and most schedules are empty. The text arena's interned strings and the
/// store's parsed rules use it.
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

/// Writes `len` as [`TextArena`] stores it in front of a string.
fn push_len(buf: &mut String, len: usize) {
    match u32::try_from(len) {
        Ok(n) if n < SHORT_LEN => buf.push(char::from_u32(n).expect("below the surrogates")),
        _ => {
            buf.push(LONG);
            buf.push_str(&len.to_string());
            buf.push(';');
        }
    }
}

/// Bytes [`push_len`] writes for `len`.
fn len_bytes(len: usize) -> usize {
    match u32::try_from(len) {
        Ok(n) if n < SHORT_LEN => char::from_u32(n).map_or(4, char::len_utf8),
        _ => LONG.len_utf8() + len.to_string().len() + 1,
    }
}

impl TextArena {
    pub(super) fn push(&mut self, s: &str) -> Text {
        let need = len_bytes(s.len()) + s.len();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + need <= TEXT_CHUNK || c.is_empty());
        if !fits {
            if self.chunks.len() >= 1 << (32 - TEXT_START_BITS) {
                self.overflowed = true;
                return Text(0);
            }
            self.chunks
                .push(Arc::new(String::with_capacity(TEXT_CHUNK.max(need))));
        }
        let chunk = self.chunks.len() - 1;
        let buf = Arc::make_mut(&mut self.chunks[chunk]);
        let start = buf.len();
        push_len(buf, s.len());
        buf.push_str(s);
        Text(((chunk as u32) << TEXT_START_BITS) | start as u32)
    }

    pub(super) fn intern(&mut self, s: &str) -> Text {
        if let Some(t) = self.interned.get(s) {
            return t;
        }
        let t = self.push(s);
        Arc::make_mut(&mut self.interned).insert(s, t);
        t
    }

    #[inline]
    pub(super) fn get(&self, t: Text) -> &str {
        let Some(chunk) = self.chunks.get((t.0 >> TEXT_START_BITS) as usize) else {
            return ""; // only in a snapshot refused for overflowing
        };
        let at = &chunk[(t.0 & ((1 << TEXT_START_BITS) - 1)) as usize..];
        let mut chars = at.char_indices();
        let (len, from) = match chars.next() {
            Some((_, LONG)) => {
                let rest = &at[LONG.len_utf8()..];
                let digits = rest.find(';').unwrap_or(0);
                (
                    rest[..digits].parse().unwrap_or(0),
                    LONG.len_utf8() + digits + 1,
                )
            }
            Some((_, c)) => (c as usize, c.len_utf8()),
            None => (0, 0),
        };
        &at[from..from + len]
    }

    /// Whether a string could not be stored: the snapshot holding this arena must be refused.
    pub(super) fn overflowed(&self) -> bool {
        self.overflowed
    }

    pub(super) fn shrink_last(&mut self) {
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).shrink_to_fit();
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum::<usize>()
    }
}

/// Interns repeated values (gate rights, schedules) into a table of distinct values.
#[derive(Debug, Clone)]
pub(super) struct ValueInterner<T> {
    seen: HashMap<T, u32>,
    pub(super) values: Vec<T>,
}

impl<T: Hash + Eq + Clone> ValueInterner<T> {
    pub(super) fn new() -> Self {
        ValueInterner {
            seen: HashMap::new(),
            values: Vec::new(),
        }
    }

    pub(super) fn find(&self, v: &T) -> Option<u32> {
        self.seen.get(v).copied()
    }

    pub(super) fn intern(&mut self, v: T) -> u32 {
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
pub(super) fn intern_shared<T: Hash + Eq + Clone>(table: &mut Arc<ValueInterner<T>>, v: &T) -> u32 {
    match table.find(v) {
        Some(i) => i,
        None => Arc::make_mut(table).intern(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_string_reads_back_as_written_whatever_its_length() {
        let mut arena = TextArena::default();
        let long = "长".repeat(30_000); // 90,000 bytes: past a chunk, past one-char lengths
        let texts: Vec<String> = ["", "张三", "a", &"x".repeat(127), &"y".repeat(128)]
            .into_iter()
            .map(String::from)
            .chain([long, "z".repeat(0xD7FF), "w".repeat(0xD800)])
            .chain((0..20_000).map(|i| format!("教职工{i}")))
            .collect();
        let refs: Vec<Text> = texts.iter().map(|t| arena.push(t)).collect();
        for (t, r) in texts.iter().zip(&refs) {
            assert_eq!(arena.get(*r), t.as_str());
        }
        assert!(!arena.overflowed());
        let shared = arena.intern("计算机学院");
        assert_eq!(arena.intern("计算机学院"), shared);
        assert_eq!(arena.get(shared), "计算机学院");
        // A copy shares the chunks; writing to it leaves the original as it was.
        let mut copy = arena.clone();
        let added = copy.push("新");
        assert_eq!(copy.get(added), "新");
        assert_eq!(arena.get(refs[1]), "张三");
        assert_eq!(copy.get(refs[1]), "张三");
    }
}
