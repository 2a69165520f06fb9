//! Opening a feed: creating it, replaying the entries an older writer left, loading and
//! checking the signed roots, unmarking blocks past the length and cutting what was written
//! past the last commit (the checks and repairs a crash or an older writer can call for).

use super::*;

impl Core {
    /// Open the feed in `dir` with public key `public`, creating it when there is none.
    /// With `seed` (the ed25519 seed of that key) the feed is writable.
    pub fn open(dir: &Path, public: [u8; 32], seed: Option<&[u8; 32]>) -> Result<Core, CoreError> {
        Self::open_reporting(dir, public, seed).map(|(core, _)| core)
    }

    /// [`Core::open`], also saying what the opening found and repaired.
    pub fn open_reporting(
        dir: &Path,
        public: [u8; 32],
        seed: Option<&[u8; 32]>,
    ) -> Result<(Core, Opened), CoreError> {
        crypto::init();
        let dir_err = |what| {
            let dir = dir.to_path_buf();
            move |source| CoreError::Io { dir, what, source }
        };
        let supplied = seed.map(Signer::from_seed);
        if let Some(s) = &supplied
            && s.public() != public
        {
            return Err(CoreError::WrongKey {
                dir: dir.to_path_buf(),
                expected: hex(&public),
                found: hex(&s.public()),
            });
        }
        let files = Files::open(dir).map_err(dir_err("cannot open its files"))?;
        let oplog = files::read_all(&files.oplog).map_err(dir_err("cannot read oplog"))?;
        let existing = header::read(&oplog).map_err(|e| CoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("oplog: {e}"),
        })?;
        let fresh = existing.is_none();
        let (header, slots) =
            existing.unwrap_or_else(|| (Header::new(public, seed.copied()), Slots::INITIAL));
        if header.key != public || header.public != public {
            return Err(CoreError::WrongKey {
                dir: dir.to_path_buf(),
                expected: hex(&public),
                found: hex(&header.key),
            });
        }
        let checked = std::fs::read(dir.join(FORMAT_FILE)).is_ok_and(|f| f == FORMAT);
        let mut core = Core {
            dir: dir.to_path_buf(),
            files,
            public,
            signer: None,
            length: header.tree.length,
            fork: header.tree.fork,
            signature: header.tree.signature.as_slice().try_into().ok(),
            unsigned: false,
            header,
            slots,
            header_dirty: fresh,
            oplog_unsized: oplog.len() != ENTRIES_START,
            byte_length: 0,
            roots: vec![],
            pending: BTreeMap::new(),
            bitfield: Bitfield::default(),
            contiguous: 0,
            data_dirty: false,
            tree_dirty: false,
            punch: vec![],
            last_read: None,
        };
        core.signer = match (supplied, core.header.seed) {
            (Some(s), Some(h)) if s.seed() != &h => {
                return Err(core.corrupt("its header holds another secret key"));
            }
            (Some(s), None) => {
                // Our own feed, opened as a replica before (restored from paper keys).
                core.header.seed = Some(*s.seed());
                core.header_dirty = true;
                Some(s)
            }
            (Some(s), Some(_)) => Some(s),
            (None, Some(h)) => {
                let s = Signer::from_seed(&h);
                if s.public() != public {
                    return Err(core.corrupt("its header holds a secret key of another feed"));
                }
                Some(s)
            }
            (None, None) => None,
        };
        let bits =
            files::read_all(&core.files.bitfield).map_err(core.io("cannot read bitfield"))?;
        core.bitfield = Bitfield::from_bytes(&bits);
        let mut report = Opened::default();
        if !fresh {
            let replay = entries::replay(&oplog, core.slots.entries_bit());
            report.cut = replay.cut;
            report.migrated = !replay.entries.is_empty();
            for e in replay.entries {
                core.apply_entry(e);
            }
        }
        core.load_roots()?;
        if core.signer.is_some() && core.header.contiguous >= core.length {
            // A writer that held every block at its last commit: its bitfield may lag.
            core.bitfield.set_range(0, core.length, true);
        }
        report.unmarked = core.check_bitfield(!checked && !fresh)?;
        report.truncated = core.cut_uncommitted()?;
        core.contiguous = core.bitfield.first_unset(0).min(core.length);
        core.last_read = None;
        if report != Opened::default() || !checked {
            core.header_dirty = true;
        }
        core.commit()?;
        if !checked {
            let path = dir.join(FORMAT_FILE);
            std::fs::write(&path, FORMAT)
                .and_then(|()| File::open(&path)?.sync_all())
                .map_err(core.io("cannot mark its format"))?;
        }
        Ok((core, report))
    }

    /// Apply a log entry written by hypercore (see [`entries`]).
    fn apply_entry(&mut self, e: entries::Entry) {
        for n in e.nodes {
            self.pending.insert(n.index, n);
        }
        if let Some(u) = e.upgrade {
            self.length = u.length;
            self.fork = u.fork;
            self.signature = u.signature.as_slice().try_into().ok();
            self.header_dirty = true;
        }
        if let Some(b) = e.bitfield {
            let end = b.start.saturating_add(b.length);
            self.bitfield.set_range(b.start, end, !b.drop);
        }
    }

    /// Read the roots of the tree's length and check them against the writer's signature.
    fn load_roots(&mut self) -> Result<(), CoreError> {
        if self.length >= proof::MAX_LENGTH {
            return Err(self.corrupt(format!("length {} is impossible", self.length)));
        }
        let mut indices = vec![];
        flat_tree::full_roots(2 * self.length, &mut indices);
        let mut roots = Vec::with_capacity(indices.len());
        for i in indices {
            let n = self
                .nodes()
                .node(i)
                .map_err(self.io("cannot read tree"))?
                .ok_or_else(|| {
                    self.corrupt(format!(
                        "root node {i} of length {} is missing",
                        self.length
                    ))
                })?;
            roots.push(n);
        }
        self.byte_length = roots.iter().map(|r| r.size).sum();
        self.roots = roots;
        if self.length == 0 {
            self.header.tree = header::TreeHead {
                fork: self.fork,
                ..Default::default()
            };
            return Ok(());
        }
        let hash = crypto::tree_hash(&self.roots);
        let signed = self.signature.is_some_and(|s| {
            crypto::verify(
                &self.public,
                &crypto::signable(&hash, self.length, self.fork),
                &s,
            )
        });
        if !signed {
            return Err(self.corrupt(format!(
                "its tree of {} blocks does not match the writer's signature",
                self.length
            )));
        }
        self.header.tree = header::TreeHead {
            fork: self.fork,
            length: self.length,
            root_hash: hash.to_vec(),
            signature: self.signature.expect("checked").to_vec(),
        };
        Ok(())
    }

    /// Unmark blocks the feed cannot hold: past its length, and (`deep`, for a feed last
    /// written by hypercore, whose reading of bitfields past 32,768 blocks could write
    /// garbage pages back) any block past the first page whose leaf node is not stored.
    fn check_bitfield(&mut self, deep: bool) -> Result<u64, CoreError> {
        let mut unmarked = 0;
        let end = self.bitfield.end();
        if end > self.length {
            let mut i = self.length;
            while let Some(s) = self.bitfield.first_set(i) {
                let e = self.bitfield.first_unset(s);
                unmarked += e - s;
                i = e;
            }
            self.bitfield.set_range(self.length, end, false);
        }
        if deep {
            let mut i = PAGE_BITS;
            while let Some(b) = self.bitfield.first_set(i) {
                if b >= self.length {
                    break;
                }
                if self
                    .nodes()
                    .node(2 * b)
                    .map_err(self.io("cannot read tree"))?
                    .is_none()
                {
                    self.bitfield.set_range(b, b + 1, false);
                    unmarked += 1;
                }
                i = b + 1;
            }
        }
        Ok(unmarked)
    }

    /// Cut data and tree nodes written past the committed feed (by a process that died
    /// before its commit); returns the bytes cut.
    fn cut_uncommitted(&mut self) -> Result<u64, CoreError> {
        let tree_end = (2 * self.length).saturating_sub(1) * NODE_BYTES;
        let mut cut = 0;
        for (file, end, what) in [
            (&self.files.data, self.byte_length, "cannot cut data"),
            (&self.files.tree, tree_end, "cannot cut tree"),
        ] {
            let len = file.metadata().map_err(self.io(what))?.len();
            if files::cut(file, end).map_err(self.io(what))? {
                cut += len - end;
                file.sync_data().map_err(self.io(what))?;
            }
        }
        self.pending
            .retain(|&i, _| i < (2 * self.length).saturating_sub(1));
        Ok(cut)
    }
}
