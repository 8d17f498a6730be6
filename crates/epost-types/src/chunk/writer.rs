//! The writing side: bytes in, sealed objects out as soon as they exist.

use crate::capability::Capability;
use crate::chunk::{ChildRef, Layout, MANIFEST_VERSION, Manifest};
use crate::convergent::{self, ConvergenceSecret, Kind, SealedObject};
use crate::limits::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, OBJECT_OVERHEAD};

/// Turns a stream of bytes into objects. Feed it with
/// [`push`](Self::push), store every object it hands back, then call
/// [`finish`](Self::finish) for the last objects and the capability.
pub struct ObjectWriter {
    secret: ConvergenceSecret,
    layout: Layout,
    /// The chunk being filled, already framed: the data kind byte first,
    /// then up to `chunk_size` bytes, with room for the tag.
    chunk: Vec<u8>,
    /// `levels[i]`: children of the depth-(i + 1) manifest being filled.
    levels: Vec<Vec<ChildRef>>,
    len: u64,
}

/// The end of a write.
#[derive(Debug)]
pub struct Finished {
    /// Reads the whole input back.
    pub capability: Capability,
    /// Objects sealed by `finish`, to store like those `push` returned
    /// (children before the manifests that list them).
    pub objects: Vec<SealedObject>,
    /// Bytes of input.
    pub len: u64,
}

impl ObjectWriter {
    /// A writer with `chunk_size` (clamped to
    /// [`MIN_CHUNK_SIZE`]`..=`[`MAX_CHUNK_SIZE`]) and the default fanout.
    /// Use [`with_layout`](Self::with_layout) to have a bad size refused
    /// rather than clamped.
    pub fn new(secret: ConvergenceSecret, chunk_size: usize) -> Self {
        let chunk_size = chunk_size.clamp(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
        let layout = Layout::new(chunk_size, Layout::DEFAULT.fanout()).unwrap_or_default();
        Self::with_layout(secret, layout)
    }

    pub fn with_layout(secret: ConvergenceSecret, layout: Layout) -> Self {
        ObjectWriter {
            secret,
            layout,
            chunk: vec![Kind::Data.as_byte()],
            levels: Vec::new(),
            len: 0,
        }
    }

    /// Bytes pushed so far.
    pub fn total_len(&self) -> u64 {
        self.len
    }

    /// Takes more input; returns the objects it completed, in the order
    /// they should be stored.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<SealedObject> {
        let mut sealed = Vec::new();
        let chunk_size = self.layout.chunk_size();
        while !data.is_empty() {
            let room = chunk_size - (self.chunk.len() - 1);
            let (now, later) = data.split_at(room.min(data.len()));
            self.reserve(now.len());
            self.chunk.extend_from_slice(now);
            self.len = self.len.saturating_add(now.len() as u64);
            data = later;
            if self.chunk.len() - 1 == chunk_size {
                self.seal_chunk(&mut sealed);
            }
        }
        sealed
    }

    /// Seals what is left and the manifests above it.
    pub fn finish(mut self) -> Finished {
        let mut sealed = Vec::new();
        // A partial last chunk, or the single empty object of an empty input.
        if self.chunk.len() > 1 || self.len == 0 {
            self.seal_chunk(&mut sealed);
        }
        let mut level = 0;
        let root = loop {
            let above = self.levels.get(level + 1..).unwrap_or_default();
            let is_top = above.iter().all(Vec::is_empty);
            match self.levels.get_mut(level) {
                Some(children) if is_top && children.len() == 1 => break children.pop(),
                Some(children) if !children.is_empty() => self.seal_level(level, &mut sealed),
                Some(_) => {}
                None => break None,
            }
            level += 1;
        };
        // Every input seals at least one chunk, so a root always exists;
        // the fallback only keeps this function total.
        let capability = match root {
            Some(root) => root.capability,
            None => {
                let empty = convergent::seal(&self.secret, Kind::Data, &[]);
                let capability = empty.capability();
                sealed.push(empty);
                capability
            }
        };
        Finished { capability, objects: sealed, len: self.len }
    }

    /// Grows the chunk buffer geometrically but never past one framed
    /// chunk plus tag, so memory stays at the chunk size.
    fn reserve(&mut self, more: usize) {
        let needed = self.chunk.len() + more;
        if needed > self.chunk.capacity() {
            let most = self.layout.chunk_size() + OBJECT_OVERHEAD;
            let target = (self.chunk.capacity() * 2).max(needed).min(most);
            self.chunk.reserve_exact(target - self.chunk.len());
        }
    }

    fn seal_chunk(&mut self, sealed: &mut Vec<SealedObject>) {
        let framed = std::mem::replace(&mut self.chunk, vec![Kind::Data.as_byte()]);
        let len = (framed.len() - 1) as u64;
        let object = convergent::seal_framed(&self.secret, framed);
        let child = ChildRef { capability: object.capability(), len };
        sealed.push(object);
        self.add_child(0, child, sealed);
    }

    fn add_child(&mut self, level: usize, child: ChildRef, sealed: &mut Vec<SealedObject>) {
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        let children = &mut self.levels[level];
        children.push(child);
        if children.len() == self.layout.fanout() {
            self.seal_level(level, sealed);
        }
    }

    /// Seals the children collected at `level` into a manifest and lists
    /// it one level up.
    fn seal_level(&mut self, level: usize, sealed: &mut Vec<SealedObject>) {
        let children = self.levels.get_mut(level).map(std::mem::take).unwrap_or_default();
        let total_len = children.iter().fold(0u64, |sum, c| sum.saturating_add(c.len));
        let manifest = Manifest {
            v: MANIFEST_VERSION,
            // A valid layout keeps the tree within MAX_TREE_DEPTH (16) levels.
            depth: u8::try_from(level + 1).unwrap_or(u8::MAX),
            chunk_size: u32::try_from(self.layout.chunk_size()).unwrap_or(u32::MAX),
            total_len,
            children,
        };
        let mut framed = vec![Kind::Manifest.as_byte()];
        crate::cbor::encode_into(&manifest, &mut framed);
        let object = convergent::seal_framed(&self.secret, framed);
        let child = ChildRef { capability: object.capability(), len: total_len };
        sealed.push(object);
        self.add_child(level + 1, child, sealed);
    }
}

impl std::fmt::Debug for ObjectWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectWriter")
            .field("layout", &self.layout)
            .field("len", &self.len)
            .field("levels", &self.levels.iter().map(Vec::len).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
