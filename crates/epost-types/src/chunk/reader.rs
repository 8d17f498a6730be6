//! The reading side: tells the caller which object to fetch next, checks
//! each one against what its parent promised, and hands back data in
//! order. A lying or corrupt tree produces an error, never wrong bytes.

use crate::capability::Capability;
use crate::chunk::{ChildRef, Manifest, ManifestError};
use crate::convergent::{self, Kind, OpenError};
use crate::id::ObjectId;

/// An object the reader wants next. Fetch its ciphertext by `id` and hand
/// both back to [`ObjectReader::feed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needed {
    pub id: ObjectId,
    capability: Capability,
    expect: Expect,
}

/// What the parent promised about an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The root: anything, as long as it opens.
    Root,
    Data {
        len: u64,
    },
    Manifest {
        depth: u8,
        len: u64,
    },
}

impl Needed {
    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// Whether the object must be opened to learn what lies below it:
    /// true for manifests and for the root, whose kind only its plaintext
    /// tells. False only for an object known to be a data chunk.
    pub fn is_manifest(&self) -> bool {
        !matches!(self.expect, Expect::Data { .. })
    }

    /// The data bytes this object stands for, as its parent declared
    /// (`None` for the root).
    pub fn expected_len(&self) -> Option<u64> {
        match self.expect {
            Expect::Root => None,
            Expect::Data { len } | Expect::Manifest { len, .. } => Some(len),
        }
    }
}

/// Why reading stopped. The reader is left as it was before the failing
/// call, so a caller may retry with another copy of the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("the reader needs nothing more")]
    NothingNeeded,
    #[error("objects must be fed in order: expected {expected}, got {got}")]
    OutOfOrder { expected: ObjectId, got: ObjectId },
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("object {id} is a {found:?} object where its parent lists a {expected:?} object")]
    UnexpectedKind { id: ObjectId, expected: Kind, found: Kind },
    #[error("chunk {id} holds {found} bytes; its manifest says {expected}")]
    ChunkLength { id: ObjectId, expected: u64, found: u64 },
    #[error("manifest {id} covers {found} bytes; its parent says {expected}")]
    ManifestLength { id: ObjectId, expected: u64, found: u64 },
    #[error("manifest {id} has depth {found}; its parent says {expected}")]
    Depth { id: ObjectId, expected: u8, found: u8 },
    #[error("manifest {id} has chunk size {found}; the root says {expected}")]
    ChunkSize { id: ObjectId, expected: u32, found: u32 },
    #[error("the object is incomplete: {next} was never read")]
    Incomplete { next: ObjectId },
    #[error("the root declares {declared} bytes but {delivered} were read")]
    TotalLength { declared: u64, delivered: u64 },
}

/// Walks the tree under a capability, depth first, left to right.
#[derive(Debug)]
pub struct ObjectReader {
    head: Option<Needed>,
    /// Children not yet visited, one list per manifest level entered.
    stack: Vec<Level>,
    /// From the root once opened: total bytes and (for a tree) chunk size.
    declared: Option<u64>,
    chunk_size: Option<u32>,
    delivered: u64,
    skipped: bool,
}

#[derive(Debug)]
struct Level {
    depth: u8,
    rest: std::vec::IntoIter<ChildRef>,
}

impl ObjectReader {
    pub fn new(root: Capability) -> Self {
        let head = Needed { id: root.id, capability: root, expect: Expect::Root };
        ObjectReader {
            head: Some(head),
            stack: Vec::new(),
            declared: None,
            chunk_size: None,
            delivered: 0,
            skipped: false,
        }
    }

    /// The next object to fetch, or `None` when everything was read.
    pub fn next_needed(&self) -> Option<Needed> {
        self.head.clone()
    }

    /// Up to `max` objects that will be needed next, in order, starting
    /// with [`next_needed`](Self::next_needed): a caller may fetch them in
    /// parallel, but must feed them in this order. The list stops after
    /// the first manifest, whose children are not known yet.
    pub fn upcoming(&self, max: usize) -> Vec<Needed> {
        let mut out = Vec::new();
        let Some(head) = &self.head else { return out };
        out.push(head.clone());
        if head.is_manifest() {
            out.truncate(max);
            return out;
        }
        'levels: for level in self.stack.iter().rev() {
            for child in level.rest.as_slice() {
                if out.len() >= max {
                    break 'levels;
                }
                let next = Needed::child(child, level.depth);
                let is_manifest = next.is_manifest();
                out.push(next);
                if is_manifest {
                    break 'levels;
                }
            }
        }
        out.truncate(max);
        out
    }

    /// Takes the ciphertext of `needed` (which must be the object
    /// [`next_needed`](Self::next_needed) returned), verifies it and what
    /// its parent said of it, and returns its data if it is a chunk.
    pub fn feed(
        &mut self,
        needed: &Needed,
        ciphertext: &[u8],
    ) -> Result<Option<Vec<u8>>, ReadError> {
        let head = self.head.as_ref().ok_or(ReadError::NothingNeeded)?;
        if head != needed {
            return Err(ReadError::OutOfOrder { expected: head.id, got: needed.id });
        }
        let id = head.id;
        let opened = convergent::open(&head.capability, ciphertext)?;
        let found = opened.body.len() as u64;
        match (head.expect, opened.kind) {
            (Expect::Root, Kind::Data) => {
                self.declared = Some(found);
                self.deliver(found);
                Ok(Some(opened.body))
            }
            (Expect::Data { len }, Kind::Data) if len == found => {
                self.deliver(found);
                Ok(Some(opened.body))
            }
            (Expect::Data { len }, Kind::Data) => {
                Err(ReadError::ChunkLength { id, expected: len, found })
            }
            (Expect::Root, Kind::Manifest) => {
                let manifest = Manifest::decode(&opened.body)?;
                self.declared = Some(manifest.total_len);
                self.chunk_size = Some(manifest.chunk_size);
                self.enter(manifest);
                Ok(None)
            }
            (Expect::Manifest { depth, len }, Kind::Manifest) => {
                let manifest = Manifest::decode(&opened.body)?;
                if manifest.depth != depth {
                    return Err(ReadError::Depth { id, expected: depth, found: manifest.depth });
                }
                if manifest.total_len != len {
                    return Err(ReadError::ManifestLength {
                        id,
                        expected: len,
                        found: manifest.total_len,
                    });
                }
                if let Some(expected) = self.chunk_size.filter(|s| *s != manifest.chunk_size) {
                    return Err(ReadError::ChunkSize { id, expected, found: manifest.chunk_size });
                }
                self.enter(manifest);
                Ok(None)
            }
            (Expect::Data { .. }, found) => {
                Err(ReadError::UnexpectedKind { id, expected: Kind::Data, found })
            }
            (Expect::Manifest { .. }, found) => {
                Err(ReadError::UnexpectedKind { id, expected: Kind::Manifest, found })
            }
        }
    }

    /// Passes over `needed` without fetching it (and, for a manifest,
    /// everything under it): for callers that only list ids.
    pub fn skip(&mut self, needed: &Needed) -> Result<(), ReadError> {
        let head = self.head.as_ref().ok_or(ReadError::NothingNeeded)?;
        if head != needed {
            return Err(ReadError::OutOfOrder { expected: head.id, got: needed.id });
        }
        self.skipped = true;
        self.advance();
        Ok(())
    }

    /// Whether every object has been fed or skipped.
    pub fn is_done(&self) -> bool {
        self.head.is_none()
    }

    /// Ends the read: checks nothing is left and, unless something was
    /// skipped, that the bytes read are the bytes the root declared.
    /// Returns the data bytes delivered.
    pub fn finish(self) -> Result<u64, ReadError> {
        if let Some(next) = self.head {
            return Err(ReadError::Incomplete { next: next.id });
        }
        match self.declared {
            Some(declared) if !self.skipped && declared != self.delivered => {
                Err(ReadError::TotalLength { declared, delivered: self.delivered })
            }
            _ => Ok(self.delivered),
        }
    }

    fn deliver(&mut self, len: u64) {
        self.delivered = self.delivered.saturating_add(len);
        self.advance();
    }

    fn enter(&mut self, manifest: Manifest) {
        self.stack.push(Level { depth: manifest.depth, rest: manifest.children.into_iter() });
        self.advance();
    }

    /// Moves the head to the next child in depth-first order.
    fn advance(&mut self) {
        self.head = None;
        while let Some(level) = self.stack.last_mut() {
            if let Some(child) = level.rest.next() {
                self.head = Some(Needed::child(&child, level.depth));
                return;
            }
            self.stack.pop();
        }
    }
}

impl Needed {
    fn child(child: &ChildRef, parent_depth: u8) -> Self {
        let expect = match parent_depth {
            0 | 1 => Expect::Data { len: child.len },
            depth => Expect::Manifest { depth: depth - 1, len: child.len },
        };
        Needed { id: child.capability.id, capability: child.capability.clone(), expect }
    }
}
