//! The persistent map behind every context: ContextVar (by identity) to value.
//!
//! A hash array mapped trie with bitmap-compressed nodes, 32 ways per level.
//! Keys are always ContextVars, compared by pointer; each var carries a
//! unique 64-bit hash (a bijective mix of a counter, see `var.rs`), so two
//! keys always part before the hash runs out (13 levels) and no collision
//! nodes exist. Maps are immutable: `insert` and `remove` copy the path they
//! change and share everything else, so a copy of a context is one pointer
//! and a set is O(log n). Lookups allocate nothing and write nothing.
//!
//! Nodes are reference counted atomically (copies on other threads share
//! them) and allocated on the fallible path; a failed allocation leaves the
//! original map untouched.
//!
//! A delta root: setting a variable in a map whose root is shared (the first
//! Sets after a Copy or CopyCurrent, the common task pattern) does not copy
//! the root, which for a map of 100 variables holds 32 slots. It puts a small
//! delta node in front instead: up to [`DELTA_MAX`] entries that shadow the
//! base map below it. Lookups scan the delta first. When the delta is full,
//! or a key is removed, its entries are folded into the base. Deltas only
//! ever appear at the root.

use std::alloc::Layout;
use std::ptr::NonNull;
#[cfg(not(contextvars_tsan))]
use std::sync::atomic::fence;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::errors::PyErr;
use crate::object::{decref, incref, PyObject};

const BITS: u32 = 5;
const MASK: u64 = (1 << BITS) - 1;
/// Most entries a delta root holds before it is folded into its base.
const DELTA_MAX: usize = 8;

/// One node: a header followed by its entries, then its children. A trie
/// node has popcount(datamap) entries and popcount(nodemap) children; a
/// delta node (`delta > 0`, maps 0) has `delta` entries and one child, the
/// base map it shadows.
#[repr(C)]
struct Node {
    refcnt: AtomicUsize,
    /// Slots holding an entry.
    datamap: u32,
    /// Slots holding a child node.
    nodemap: u32,
    /// Distinct keys in this subtree (for a delta: in it and its base).
    size: u32,
    /// Entries of a delta node; 0 for a trie node.
    delta: u32,
}

/// A key and its value, each a strong reference owned by the node.
#[repr(C)]
#[derive(Clone, Copy)]
struct Entry {
    key: *mut PyObject,
    value: *mut PyObject,
}

fn layout(entries: usize, children: usize) -> Layout {
    let bytes = size_of::<Node>() + entries * size_of::<Entry>() + children * size_of::<*mut Node>();
    Layout::from_size_align(bytes, align_of::<Node>()).expect("node size is small")
}

#[inline]
fn slot_bit(hash: u64, shift: u32) -> u32 {
    1 << ((hash >> shift) & MASK)
}

#[inline]
fn index(map: u32, bit: u32) -> usize {
    (map & (bit - 1)).count_ones() as usize
}

impl Node {
    #[inline]
    fn entry_count(&self) -> usize {
        if self.delta != 0 { self.delta as usize } else { self.datamap.count_ones() as usize }
    }

    #[inline]
    fn child_count(&self) -> usize {
        if self.delta != 0 { 1 } else { self.nodemap.count_ones() as usize }
    }

    #[inline]
    fn entries(&self) -> &[Entry] {
        // SAFETY: a live node holds entry_count() initialised entries right
        // after its header.
        unsafe {
            let p = (self as *const Node).add(1).cast::<Entry>();
            std::slice::from_raw_parts(p, self.entry_count())
        }
    }

    #[inline]
    fn children(&self) -> &[NodeRef] {
        // SAFETY: children (owned NodeRefs, pointer-sized) follow the entries.
        unsafe {
            let p = (self as *const Node).add(1).cast::<Entry>().add(self.entry_count());
            std::slice::from_raw_parts(p.cast::<NodeRef>(), self.child_count())
        }
    }

    /// The header of a new delta node (count 1).
    fn delta_header(entries: usize, size: usize) -> Node {
        Node { refcnt: AtomicUsize::new(1), datamap: 0, nodemap: 0, size: size as u32, delta: entries as u32 }
    }

    /// Distinct keys in this subtree.
    #[inline]
    fn len(&self) -> usize {
        self.size as usize
    }

    /// A delta node's base (the trie it shadows).
    #[inline]
    fn base(&self) -> &NodeRef {
        debug_assert!(self.delta != 0);
        &self.children()[0]
    }
}

/// An owned reference to a node.
#[repr(transparent)]
struct NodeRef(NonNull<Node>);

// SAFETY: nodes are immutable once built and their counts are atomic.
unsafe impl Send for NodeRef {}
// SAFETY: as above.
unsafe impl Sync for NodeRef {}

impl NodeRef {
    #[inline]
    fn node(&self) -> &Node {
        // SAFETY: we hold a reference, so the node is live.
        unsafe { self.0.as_ref() }
    }
}

impl Clone for NodeRef {
    fn clone(&self) -> Self {
        // Relaxed: made from an existing reference (as for objects).
        self.node().refcnt.fetch_add(1, Ordering::Relaxed);
        NodeRef(self.0)
    }
}

impl Drop for NodeRef {
    fn drop(&mut self) {
        // The only reference (count 1, read with Acquire) cannot change under
        // us: skip the atomic decrement, as `object::decref` does.
        let rc = &self.node().refcnt;
        if rc.load(Ordering::Acquire) != 1 {
            if rc.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            #[cfg(not(contextvars_tsan))]
            fence(Ordering::Acquire);
            // As in object.rs `decref`: ThreadSanitizer does not model fences.
            #[cfg(contextvars_tsan)]
            rc.load(Ordering::Acquire);
        }
        let node = self.node();
        let (entries, children) = (node.entry_count(), node.child_count());
        for e in node.entries() {
            // SAFETY: the node owned a reference to each key and value.
            unsafe {
                decref(e.key);
                decref(e.value);
            }
        }
        // SAFETY: the count reached zero: drop the owned children (depth is
        // at most 14 with a delta root, so this recursion is bounded), then
        // free the block.
        unsafe {
            let kids = node.children().as_ptr() as *mut NodeRef;
            for i in 0..children {
                std::ptr::drop_in_place(kids.add(i));
            }
            crate::alloc::free(self.0.cast(), layout(entries, children));
            crate::live::on_free(crate::live::Kind::MapNode);
        }
    }
}

/// How a rebuilt node's entries differ from the original's.
#[derive(Clone, Copy)]
enum EntryEdit {
    Keep,
    /// The entry at this index gets a new value.
    Replace(usize, Entry),
    Insert(usize, Entry),
    Remove(usize),
    /// Two entries, in slot order, for a node built from nothing.
    Two(Entry, Entry),
}

/// How a rebuilt node's children differ from the original's.
enum ChildEdit {
    Keep,
    Replace(usize, NodeRef),
    Insert(usize, NodeRef),
    Remove(usize),
}

/// Allocates a node and fills it from `old` (or nothing) with one edit to
/// each array. Copied and inserted keys and values gain a reference; edited
/// children are moved in. Allocation comes first, so on failure nothing has
/// been touched (the edits are dropped, releasing any new child).
fn build(
    old: Option<&Node>,
    datamap: u32,
    nodemap: u32,
    size: usize,
    entry_edit: EntryEdit,
    child_edit: ChildEdit,
) -> Result<NodeRef, PyErr> {
    let (n_entries, n_children) = (datamap.count_ones() as usize, nodemap.count_ones() as usize);
    let mem = crate::alloc::allocate(layout(n_entries, n_children)).ok_or_else(PyErr::no_memory)?;
    crate::live::on_alloc(crate::live::Kind::MapNode);
    let node = mem.cast::<Node>();
    let old_entries: &[Entry] = old.map_or(&[], Node::entries);
    let old_children: &[NodeRef] = old.map_or(&[], Node::children);
    // SAFETY: the block is fresh and sized for exactly n_entries entries and
    // n_children children; every slot is written once below. The counts of
    // the edits match the maps (checked in debug builds).
    unsafe {
        node.as_ptr().write(Node { refcnt: AtomicUsize::new(1), datamap, nodemap, size: size as u32, delta: 0 });
        let entries = node.as_ptr().add(1).cast::<Entry>();
        let children = entries.add(n_entries).cast::<NodeRef>();

        let mut written = 0;
        let mut put_entry = |e: Entry| {
            incref(e.key);
            incref(e.value);
            entries.add(written).write(e);
            written += 1;
        };
        for (i, e) in old_entries.iter().enumerate() {
            match entry_edit {
                EntryEdit::Replace(at, new) if at == i => put_entry(new),
                EntryEdit::Insert(at, new) if at == i => {
                    put_entry(new);
                    put_entry(*e);
                }
                EntryEdit::Remove(at) if at == i => {}
                _ => put_entry(*e),
            }
        }
        match entry_edit {
            EntryEdit::Insert(at, new) if at == old_entries.len() => put_entry(new),
            EntryEdit::Two(first, second) => {
                put_entry(first);
                put_entry(second);
            }
            _ => {}
        }
        debug_assert_eq!(written, n_entries);

        let mut written = 0;
        let mut put_child = |c: NodeRef| {
            children.add(written).write(c);
            written += 1;
        };
        let mut edit = Some(child_edit);
        for (i, c) in old_children.iter().enumerate() {
            match edit.take() {
                Some(ChildEdit::Replace(at, new)) if at == i => put_child(new),
                Some(ChildEdit::Insert(at, new)) if at == i => {
                    put_child(new);
                    put_child(c.clone());
                }
                Some(ChildEdit::Remove(at)) if at == i => {}
                other => {
                    edit = other;
                    put_child(c.clone());
                }
            }
        }
        if let Some(ChildEdit::Insert(_, new)) = edit.take() {
            put_child(new);
        }
        debug_assert_eq!(written, n_children);
        Ok(NodeRef(node))
    }
}

/// A delta node: `entries` (each gaining a reference) in front of `base`
/// (moved in). Allocation comes first: on failure nothing was touched.
fn build_delta(entries: &[Entry], base: NodeRef, size: usize) -> Result<NodeRef, PyErr> {
    debug_assert!(!entries.is_empty() && entries.len() <= DELTA_MAX && base.node().delta == 0);
    let mem = crate::alloc::allocate(layout(entries.len(), 1)).ok_or_else(PyErr::no_memory)?;
    crate::live::on_alloc(crate::live::Kind::MapNode);
    let node = mem.cast::<Node>();
    // SAFETY: the block is fresh and sized for the entries and one child,
    // each written once; the entries' keys and values are live (they come
    // from live maps or the caller's references).
    unsafe {
        node.as_ptr().write(Node::delta_header(entries.len(), size));
        let slots = node.as_ptr().add(1).cast::<Entry>();
        for (i, e) in entries.iter().enumerate() {
            incref(e.key);
            incref(e.value);
            slots.add(i).write(*e);
        }
        slots.add(entries.len()).cast::<NodeRef>().write(base);
    }
    Ok(NodeRef(node))
}

/// The value bound to `key` in a trie (not a delta) node. The hot path of
/// every Get: it indexes the arrays directly rather than through `entries()`
/// and `children()`, which would count each array's length too.
#[inline]
fn trie_get(mut node: &Node, key: *mut PyObject, hash: u64) -> Option<*mut PyObject> {
    let mut shift = 0;
    loop {
        debug_assert_eq!(node.delta, 0);
        let bit = slot_bit(hash, shift);
        let base = (node as *const Node).wrapping_add(1).cast::<Entry>();
        if node.datamap & bit != 0 {
            // SAFETY: the slot's bit is set, so its index is below
            // popcount(datamap): an initialised entry of this live node.
            let e = unsafe { *base.add(index(node.datamap, bit)) };
            return (e.key == key).then_some(e.value);
        }
        if node.nodemap & bit == 0 {
            return None;
        }
        // SAFETY: as above for the children, which follow the entries; a
        // live node's children are live.
        node = unsafe {
            let children = base.add(node.datamap.count_ones() as usize).cast::<NodeRef>();
            (*children.add(index(node.nodemap, bit))).node()
        };
        shift += BITS;
    }
}

/// A trie with `key` bound to `value`.
fn trie_insert(root: Option<&NodeRef>, key: *mut PyObject, hash: u64, value: *mut PyObject) -> Result<NodeRef, PyErr> {
    match root {
        None => build(None, slot_bit(hash, 0), 0, 1, EntryEdit::Insert(0, Entry { key, value }), ChildEdit::Keep),
        Some(root) => Ok(insert_at(root, 0, key, hash, value)?.0),
    }
}

/// A delta's entries applied to its base, as a trie; `skip` is left out.
fn fold(delta: &Node, skip: *mut PyObject) -> Result<NodeRef, PyErr> {
    let mut trie = delta.base().clone();
    for e in delta.entries().iter().filter(|e| e.key != skip) {
        trie = trie_insert(Some(&trie), e.key, crate::var::var_hash_of(e.key), e.value)?;
    }
    Ok(trie)
}

/// A node holding two entries whose hashes agree below `shift`.
fn pair(a: Entry, hash_a: u64, b: Entry, hash_b: u64, shift: u32) -> Result<NodeRef, PyErr> {
    debug_assert!(shift < 64, "hashes are unique");
    let (bit_a, bit_b) = (slot_bit(hash_a, shift), slot_bit(hash_b, shift));
    if bit_a == bit_b {
        let child = pair(a, hash_a, b, hash_b, shift + BITS)?;
        return build(None, 0, bit_a, 2, EntryEdit::Keep, ChildEdit::Insert(0, child));
    }
    let (first, second) = if bit_a < bit_b { (a, b) } else { (b, a) };
    build(None, bit_a | bit_b, 0, 2, EntryEdit::Two(first, second), ChildEdit::Keep)
}

/// Result of an insert below a node: the new node, and whether it grew.
fn insert_at(node: &NodeRef, shift: u32, key: *mut PyObject, hash: u64, value: *mut PyObject) -> Result<(NodeRef, bool), PyErr> {
    let n = node.node();
    let bit = slot_bit(hash, shift);
    let new = Entry { key, value };
    if n.datamap & bit != 0 {
        let i = index(n.datamap, bit);
        let e = n.entries()[i];
        if e.key == key {
            if e.value == value {
                return Ok((node.clone(), false));
            }
            let rebuilt = build(Some(n), n.datamap, n.nodemap, n.len(), EntryEdit::Replace(i, new), ChildEdit::Keep)?;
            return Ok((rebuilt, false));
        }
        let child = pair(e, crate::var::var_hash_of(e.key), new, hash, shift + BITS)?;
        let nodemap = n.nodemap | bit;
        let rebuilt = build(
            Some(n),
            n.datamap & !bit,
            nodemap,
            n.len() + 1,
            EntryEdit::Remove(i),
            ChildEdit::Insert(index(nodemap, bit), child),
        )?;
        return Ok((rebuilt, true));
    }
    if n.nodemap & bit != 0 {
        let j = index(n.nodemap, bit);
        let (child, added) = insert_at(&n.children()[j], shift + BITS, key, hash, value)?;
        if child.0 == n.children()[j].0 {
            return Ok((node.clone(), false));
        }
        let size = n.len() + added as usize;
        return Ok((build(Some(n), n.datamap, n.nodemap, size, EntryEdit::Keep, ChildEdit::Replace(j, child))?, added));
    }
    let datamap = n.datamap | bit;
    let rebuilt = build(Some(n), datamap, n.nodemap, n.len() + 1, EntryEdit::Insert(index(datamap, bit), new), ChildEdit::Keep)?;
    Ok((rebuilt, true))
}

enum Removed {
    NotFound,
    /// The subtree is now empty.
    Gone,
    Node(NodeRef),
}

fn remove_at(node: &NodeRef, shift: u32, key: *mut PyObject, hash: u64) -> Result<Removed, PyErr> {
    let n = node.node();
    let bit = slot_bit(hash, shift);
    if n.datamap & bit != 0 {
        let i = index(n.datamap, bit);
        if n.entries()[i].key != key {
            return Ok(Removed::NotFound);
        }
        if n.len() == 1 {
            return Ok(Removed::Gone);
        }
        let rebuilt = build(Some(n), n.datamap & !bit, n.nodemap, n.len() - 1, EntryEdit::Remove(i), ChildEdit::Keep)?;
        return Ok(Removed::Node(rebuilt));
    }
    if n.nodemap & bit == 0 {
        return Ok(Removed::NotFound);
    }
    let j = index(n.nodemap, bit);
    let rebuilt = match remove_at(&n.children()[j], shift + BITS, key, hash)? {
        Removed::NotFound => return Ok(Removed::NotFound),
        Removed::Gone if n.len() == 1 => return Ok(Removed::Gone),
        Removed::Gone => build(Some(n), n.datamap, n.nodemap & !bit, n.len() - 1, EntryEdit::Keep, ChildEdit::Remove(j))?,
        Removed::Node(child) => {
            let c = child.node();
            if c.nodemap == 0 && c.size == 1 {
                // A lone entry moves up into this node (canonical form).
                let datamap = n.datamap | bit;
                let e = c.entries()[0];
                build(Some(n), datamap, n.nodemap & !bit, n.len() - 1, EntryEdit::Insert(index(datamap, bit), e), ChildEdit::Remove(j))?
            } else {
                build(Some(n), n.datamap, n.nodemap, n.len() - 1, EntryEdit::Keep, ChildEdit::Replace(j, child))?
            }
        }
    };
    Ok(Removed::Node(rebuilt))
}

/// An immutable map from ContextVar to value.
#[derive(Clone, Default)]
#[repr(transparent)]
pub(crate) struct Map {
    root: Option<NodeRef>,
}

impl Map {
    /// The empty map.
    pub(crate) const fn new() -> Map {
        Map { root: None }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.root.as_ref().map_or(0, |r| r.node().size as usize)
    }

    /// The value bound to `key` (borrowed: valid while this map lives).
    #[inline]
    pub(crate) fn get(&self, key: *mut PyObject, hash: u64) -> Option<*mut PyObject> {
        let mut node = self.root.as_ref()?.node();
        if node.delta != 0 {
            if let Some(e) = node.entries().iter().find(|e| e.key == key) {
                return Some(e.value);
            }
            node = node.base().node();
        }
        trie_get(node, key, hash)
    }

    /// A map with `key` bound to `value` (the same map if it already was).
    pub(crate) fn insert(&self, key: *mut PyObject, hash: u64, value: *mut PyObject) -> Result<Map, PyErr> {
        let Some(root) = &self.root else {
            return Ok(Map { root: Some(trie_insert(None, key, hash, value)?) });
        };
        let n = root.node();
        let new = Entry { key, value };
        let root = if n.delta != 0 {
            let entries = n.entries();
            if let Some(i) = entries.iter().position(|e| e.key == key) {
                if entries[i].value == value {
                    return Ok(self.clone());
                }
                let mut edited = [new; DELTA_MAX];
                edited[..entries.len()].copy_from_slice(entries);
                edited[i] = new;
                build_delta(&edited[..entries.len()], n.base().clone(), n.len())?
            } else if entries.len() < DELTA_MAX {
                let mut grown = [new; DELTA_MAX];
                grown[..entries.len()].copy_from_slice(entries);
                let size = n.len() + trie_get(n.base().node(), key, hash).is_none() as usize;
                build_delta(&grown[..=entries.len()], n.base().clone(), size)?
            } else {
                trie_insert(Some(&fold(n, key)?), key, hash, value)?
            }
        } else if root.node().refcnt.load(Ordering::Relaxed) > 1 {
            // Shared (another context holds this map): shadow instead of
            // copying the root. A stale count only costs a copy.
            match trie_get(n, key, hash) {
                Some(v) if v == value => return Ok(self.clone()),
                found => build_delta(&[new], root.clone(), n.len() + found.is_none() as usize)?,
            }
        } else {
            insert_at(root, 0, key, hash, value)?.0
        };
        Ok(Map { root: Some(root) })
    }

    /// A map without `key`, or `None` if `key` is not bound.
    pub(crate) fn remove(&self, key: *mut PyObject, hash: u64) -> Result<Option<Map>, PyErr> {
        let Some(root) = &self.root else { return Ok(None) };
        if root.node().delta != 0 {
            if self.get(key, hash).is_none() {
                return Ok(None);
            }
            let folded = fold(root.node(), key)?;
            let trie = Map { root: Some(folded) };
            return Ok(Some(trie.remove(key, hash)?.unwrap_or(trie)));
        }
        Ok(match remove_at(root, 0, key, hash)? {
            Removed::NotFound => None,
            Removed::Gone => Some(Map::new()),
            Removed::Node(n) => Some(Map { root: Some(n) }),
        })
    }

    /// Replaces the value of a key already bound, editing the nodes in place,
    /// when every node on the path is uniquely owned; returns the replaced
    /// value (its reference passes to the caller). `None` (nothing changed)
    /// when the key is absent or a node is shared: then use [`Map::insert`].
    ///
    /// # Safety
    /// No other thread may take a new reference to this map's root while
    /// this runs (the context's map lock ensures it), and `value` must be a
    /// live object.
    pub(crate) unsafe fn replace_in_place(&self, key: *mut PyObject, hash: u64, value: *mut PyObject) -> Option<*mut PyObject> {
        let mut node = self.root.as_ref()?.0;
        let mut shift = 0;
        loop {
            // SAFETY: nodes reachable from a live map are live.
            let n = unsafe { node.as_ref() };
            // Acquire pairs with the Release decrement of any other holder
            // that just let go, so its reads of the node come before our write.
            if n.refcnt.load(Ordering::Acquire) != 1 {
                return None;
            }
            if n.delta != 0 {
                if let Some(i) = n.entries().iter().position(|e| e.key == key) {
                    // SAFETY: as below: the delta node is uniquely ours.
                    unsafe {
                        let entry = node.as_ptr().add(1).cast::<Entry>().add(i);
                        incref(value);
                        return Some(std::mem::replace(&mut (*entry).value, value));
                    }
                }
                node = n.base().0;
                continue;
            }
            let bit = slot_bit(hash, shift);
            if n.datamap & bit != 0 {
                let i = index(n.datamap, bit);
                if n.entries()[i].key != key {
                    return None;
                }
                // SAFETY: the path is uniquely ours (count 1 at every level,
                // and no new references can be taken meanwhile), so no one
                // else can be reading this entry; the pointer comes from the
                // allocation, not from a shared reference.
                unsafe {
                    let entry = node.as_ptr().add(1).cast::<Entry>().add(i);
                    incref(value);
                    return Some(std::mem::replace(&mut (*entry).value, value));
                }
            }
            if n.nodemap & bit == 0 {
                return None;
            }
            node = n.children()[index(n.nodemap, bit)].0;
            shift += BITS;
        }
    }

    /// Whether [`Map::grow_unique_delta`] would grow this map by `key` (a
    /// hint unless the caller holds the context's map lock).
    pub(crate) fn delta_can_grow(&self, key: *mut PyObject) -> bool {
        let Some(root) = &self.root else { return false };
        let n = root.node();
        let count = n.delta as usize;
        // Acquire: as in replace_in_place.
        count != 0 && count < DELTA_MAX && n.refcnt.load(Ordering::Acquire) == 1 && !n.entries().iter().any(|e| e.key == key)
    }

    /// Adds `key` to a uniquely owned delta root with room, by moving the
    /// delta's entries and base into a node one entry larger: only the new
    /// entry gains references (copying would add and drop one per entry).
    /// Gives back the map to keep (the grown one, or `self` unchanged if the
    /// root is not a unique delta with room, or already binds `key` in its
    /// delta) and whether it grew, or MemoryError with `self` unchanged.
    ///
    /// # Safety
    /// As for [`Map::replace_in_place`]: no other thread may take a new
    /// reference to the root while this runs; `key` and `value` are live.
    pub(crate) unsafe fn grow_unique_delta(self, key: *mut PyObject, hash: u64, value: *mut PyObject) -> (Map, Result<bool, PyErr>) {
        if !self.delta_can_grow(key) {
            return (self, Ok(false));
        }
        let root = self.root.as_ref().expect("checked");
        let n = root.node();
        let count = n.delta as usize;
        let size = n.len() + trie_get(n.base().node(), key, hash).is_none() as usize;
        let Some(mem) = crate::alloc::allocate(layout(count + 1, 1)) else {
            return (self, Err(PyErr::no_memory()));
        };
        let old = root.0;
        std::mem::forget(self);
        let node = mem.cast::<Node>();
        // SAFETY: the old root is uniquely ours (count 1, no new references
        // meanwhile), so its entries' and base's references move bitwise into
        // the fresh block, sized for count + 1 entries and one child; then the
        // old block is freed without dropping what moved out of it.
        unsafe {
            node.as_ptr().write(Node::delta_header(count + 1, size));
            let from = old.as_ptr().add(1).cast::<Entry>();
            let to = node.as_ptr().add(1).cast::<Entry>();
            std::ptr::copy_nonoverlapping(from, to, count);
            incref(key);
            incref(value);
            to.add(count).write(Entry { key, value });
            to.add(count + 1).cast::<NodeRef>().write(from.add(count).cast::<NodeRef>().read());
            // One node replaces another: the live count is unchanged.
            crate::alloc::free(old.cast(), layout(count, 1));
        }
        (Map { root: Some(NodeRef(node)) }, Ok(true))
    }

    /// Whether both maps are the same object (not a content comparison).
    pub(crate) fn same(&self, other: &Map) -> bool {
        self.root.as_ref().map(|r| r.0) == other.root.as_ref().map(|r| r.0)
    }

    /// Calls `f` with each (key, value), borrowed: a delta's entries first,
    /// then the base's in trie order, each key once.
    pub(crate) fn for_each(&self, mut f: impl FnMut(*mut PyObject, *mut PyObject)) {
        fn walk(n: &Node, shadowed: &[Entry], f: &mut dyn FnMut(*mut PyObject, *mut PyObject)) {
            for e in n.entries() {
                if !shadowed.iter().any(|s| s.key == e.key) {
                    f(e.key, e.value);
                }
            }
            for c in n.children() {
                walk(c.node(), shadowed, f);
            }
        }
        let Some(r) = &self.root else { return };
        let n = r.node();
        if n.delta != 0 {
            for e in n.entries() {
                f(e.key, e.value);
            }
            walk(n.base().node(), n.entries(), &mut f);
        } else {
            walk(n, &[], &mut f);
        }
    }

    /// Gives up the map as a raw pointer (NULL for empty), for atomic storage.
    pub(crate) fn into_raw(self) -> *mut () {
        let p = self.root.as_ref().map_or(std::ptr::null_mut(), |r| r.0.as_ptr().cast());
        std::mem::forget(self);
        p
    }

    /// Takes back a map given up with `into_raw`.
    ///
    /// # Safety
    /// `p` must come from `into_raw` and be taken back once.
    pub(crate) unsafe fn from_raw(p: *mut ()) -> Map {
        Map { root: NonNull::new(p.cast::<Node>()).map(NodeRef) }
    }

    /// A new handle to the map at `p` without taking over its reference.
    ///
    /// # Safety
    /// `p` must be a live map pointer from `into_raw` whose reference is held
    /// elsewhere for the duration of this call.
    pub(crate) unsafe fn clone_from_raw(p: *mut ()) -> Map {
        // SAFETY: per the caller, `p` is live; the clone adds a reference.
        let borrowed = std::mem::ManuallyDrop::new(unsafe { Map::from_raw(p) });
        (*borrowed).clone()
    }

    /// Borrows the map at `p` without touching its count.
    ///
    /// # Safety
    /// As for `clone_from_raw`, and the map must outlive the use of the result.
    pub(crate) unsafe fn borrow_raw(p: &*mut ()) -> &Map {
        // SAFETY: Map is a transparent Option<NonNull<Node>>-sized wrapper of
        // the same pointer (NULL = None), so the pointer's storage reads as a
        // Map.
        unsafe { &*(p as *const *mut () as *const Map) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Owned, PyObject};
    use crate::var::{new_var, ContextVar};
    use crate::values::long_from;
    use std::collections::HashMap;

    fn vars(n: usize) -> Vec<Owned<ContextVar>> {
        (0..n).map(|_| new_var(c"v", None).unwrap()).collect()
    }

    fn key(v: &Owned<ContextVar>) -> (*mut PyObject, u64) {
        (v.as_ptr(), crate::var::var_hash_of(v.as_ptr()))
    }

    fn refcnt(o: *mut PyObject) -> isize {
        // SAFETY: tests only pass live objects.
        unsafe { (*o).ob_refcnt.load(std::sync::atomic::Ordering::Relaxed) }
    }

    /// Random inserts and removes agree with a HashMap model, and the maps
    /// they came from are never changed (persistence).
    #[test]
    fn matches_model_and_is_persistent() {
        model_run(false);
    }

    /// The same with every map shared when it is changed (as after a Copy),
    /// so every insert goes through a delta root, and deltas fill and fold.
    #[test]
    fn matches_model_through_delta_roots() {
        model_run(true);
    }

    fn model_run(share_each: bool) {
        let vs = vars(600);
        let values: Vec<Owned> = (0..50).map(|i| long_from(1000 + i).unwrap()).collect();
        let baseline: Vec<isize> = values.iter().map(|v| refcnt(v.as_ptr())).collect();
        let mut map = Map::new();
        let mut model: HashMap<usize, usize> = HashMap::new();
        let mut history: Vec<(Map, HashMap<usize, usize>)> = Vec::new();
        let mut seed = 12345u64;
        for step in 0..20000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let k = (seed >> 33) as usize % vs.len();
            let (kp, kh) = key(&vs[k]);
            let _shared = share_each.then(|| map.clone());
            if (seed >> 20) % 7 == 0 {
                let removed = map.remove(kp, kh).unwrap();
                assert_eq!(removed.is_some(), model.remove(&k).is_some());
                if let Some(m) = removed {
                    map = m;
                }
            } else {
                let v = (seed >> 40) as usize % values.len();
                map = map.insert(kp, kh, values[v].as_ptr()).unwrap();
                model.insert(k, v);
            }
            assert_eq!(map.len(), model.len());
            if step % 1000 == 0 {
                history.push((map.clone(), model.clone()));
            }
        }
        history.push((map, model));
        if share_each {
            let deltas = history.iter().filter(|(m, _)| m.root.as_ref().is_some_and(|r| r.node().delta != 0)).count();
            assert!(deltas > 0, "no delta root was made");
        }
        for (m, model) in &history {
            let mut seen = 0;
            m.for_each(|_, _| seen += 1);
            assert_eq!(seen, model.len());
            for (i, v) in vs.iter().enumerate() {
                let (kp, kh) = key(v);
                assert_eq!(m.get(kp, kh), model.get(&i).map(|&x| values[x].as_ptr()));
            }
        }
        drop(history);
        let after: Vec<isize> = values.iter().map(|v| refcnt(v.as_ptr())).collect();
        assert_eq!(after, baseline, "references to values balance");
        assert!(vs.iter().all(|v| refcnt(v.as_ptr()) == 1), "references to keys balance");
    }

    /// Growing a unique delta in place keeps every binding and balances
    /// references; a shared delta is left alone.
    #[test]
    fn unique_delta_grows_in_place() {
        let vs = vars(12);
        let val = long_from(654321).unwrap();
        let before = refcnt(val.as_ptr());
        let mut map = Map::new();
        for v in &vs[..4] {
            let (kp, kh) = key(v);
            map = map.insert(kp, kh, val.as_ptr()).unwrap();
        }
        let shared = map.clone();
        let (kp, kh) = key(&vs[4]);
        map = map.insert(kp, kh, val.as_ptr()).unwrap();
        assert!(map.root.as_ref().unwrap().node().delta == 1);
        let keep = map.clone();
        let (kp, kh) = key(&vs[5]);
        // SAFETY: single-threaded test.
        let (same, grown) = unsafe { map.grow_unique_delta(kp, kh, val.as_ptr()) };
        assert!(!grown.unwrap(), "a shared delta must not grow in place");
        map = same;
        drop(keep);
        for v in &vs[5..11] {
            let (kp, kh) = key(v);
            // SAFETY: single-threaded test.
            let (m, grown) = unsafe { map.grow_unique_delta(kp, kh, val.as_ptr()) };
            map = m;
            assert!(grown.unwrap());
        }
        assert_eq!(map.len(), 11);
        assert_eq!(map.root.as_ref().unwrap().node().delta, 7);
        for (i, v) in vs.iter().enumerate() {
            let (kp, kh) = key(v);
            assert_eq!(map.get(kp, kh).is_some(), i < 11);
        }
        drop(map);
        drop(shared);
        assert_eq!(refcnt(val.as_ptr()), before);
        assert!(vs.iter().all(|v| refcnt(v.as_ptr()) == 1));
    }

    #[test]
    fn same_value_gives_same_map_and_references_balance() {
        let vs = vars(100);
        let val = long_from(123456).unwrap();
        let before = refcnt(val.as_ptr());
        let mut map = Map::new();
        for v in &vs {
            let (kp, kh) = key(v);
            map = map.insert(kp, kh, val.as_ptr()).unwrap();
        }
        assert_eq!(refcnt(val.as_ptr()), before + 100);
        let (kp, kh) = key(&vs[7]);
        assert!(map.insert(kp, kh, val.as_ptr()).unwrap().same(&map));
        let copy = map.clone();
        for v in &vs {
            let (kp, kh) = key(v);
            map = map.remove(kp, kh).unwrap().unwrap();
        }
        assert_eq!(map.len(), 0);
        assert_eq!(copy.len(), 100);
        assert_eq!(refcnt(val.as_ptr()), before + 100);
        drop(copy);
        assert_eq!(refcnt(val.as_ptr()), before);
        assert_eq!(refcnt(vs[0].as_ptr()), 1);
    }
}
