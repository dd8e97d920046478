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
    pub(super) fn from_vec(v: Vec<T>) -> Chunked<T> {
        let len = v.len();
        let mut chunks = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut items = v.into_iter();
        while chunks.len() * CHUNK < len {
            chunks.push(Arc::new(items.by_ref().take(CHUNK).collect::<Vec<T>>()));
        }
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

/// Reference to a string in the index's text arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Text(u32);

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
pub(super) struct TextArena {
    chunks: Vec<Arc<String>>,
    spans: Chunked<Span>,
    /// Interned strings (departments, reasons).
    interned: Arc<TextMap<Text>>,
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

impl TextArena {
    pub(super) fn push(&mut self, s: &str) -> Text {
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
        let s = self.spans.get(t.0 as usize);
        &self.chunks[s.chunk as usize][s.start as usize..(s.start + s.len) as usize]
    }

    pub(super) fn shrink_last(&mut self) {
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).shrink_to_fit();
        }
    }

    pub(super) fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.capacity()).sum::<usize>()
            + self.spans.len() * std::mem::size_of::<Span>()
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
}
