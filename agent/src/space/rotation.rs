//! Key rotation in a space: starting a new key epoch sealed to the members in, granting
//! the epochs' keys to a member admitted after them, and taking in those a log carries.

use cobox_keys::Secret32;
use cobox_keys::epoch::{Digest, Epoch, Grant};

use super::epoch_file::Kind;
use super::epochs::{Epochs, Learnt};
use super::message::Message;
use super::{Space, SpaceError, learn_epoch_record};

impl Space {
    /// The key epochs known here.
    pub fn epochs(&self) -> &Epochs {
        &self.epochs
    }

    /// This device's identity.
    pub fn identity(&self) -> [u8; 32] {
        self.identity.public.0
    }

    /// Start a new key epoch: a fresh random key sealed to `members` (this device always
    /// among them), answering the removals of digests `answered`. Blocks written from
    /// now on are sealed under it. Returns the epoch's (number, digest) and its message's
    /// size in bytes.
    pub async fn rotate(
        &mut self,
        members: &[[u8; 32]],
        answered: Vec<Digest>,
    ) -> Result<(u32, Digest, usize), SpaceError> {
        if self.epochs.known().len() >= super::epochs::MAX_EPOCHS {
            return Err(SpaceError::Index(format!(
                "space {} knows {} key epochs, the most it keeps: no new one is started",
                self.keys.name,
                super::epochs::MAX_EPOCHS
            )));
        }
        let (number, parent) = self.epochs.next();
        let mut to = members.to_vec();
        to.push(self.identity.public.0);
        let key = Secret32::random();
        let epoch = Epoch::new(
            &self.identity,
            self.keys.address.0,
            number,
            parent,
            answered,
            &key,
            &to,
        )
        .map_err(|e| SpaceError::Index(format!("key epoch: {e}")))?;
        let bytes = epoch.encode();
        let size = bytes.len();
        self.append(&[Message::Epoch(bytes)]).await?;
        self.refresh().await?;
        tracing::info!(space = %self.keys.name, epoch = number, members = to.len(), "started a new key epoch");
        Ok((number, epoch.digest(), size))
    }

    /// Give `member` the keys of every epoch after the first held here.
    pub async fn grant(&mut self, member: [u8; 32]) -> Result<(), SpaceError> {
        let held = self.epochs.held_after_first();
        if held.is_empty() {
            return Ok(());
        }
        let grant = Grant::new(&self.identity, self.keys.address.0, member, &held)
            .map_err(|e| SpaceError::Index(format!("key grant: {e}")))?;
        self.append(&[Message::Grant(grant.encode())]).await?;
        self.refresh().await?;
        tracing::info!(space = %self.keys.name, member = %cobox_keys::secret::hex(&member), "granted the space's key epochs");
        Ok(())
    }

    /// Read log `key` from `from` to `len` for epoch messages and grants only (they are
    /// sealed under the first key, so they open whatever waits before them), up to the
    /// first entry not downloaded yet; each entry is looked at once.
    pub(super) async fn scan_for_keys(
        &mut self,
        key: &[u8; 32],
        from: u64,
        len: u64,
    ) -> Result<(), SpaceError> {
        let start = self.scanned.get(key).copied().unwrap_or(0).max(from);
        let mut at = start;
        while at < len {
            // An entry not downloaded yet ends the search, to go on from it next time.
            let Some(entry) = self.open_entry(key, at).await? else {
                break;
            };
            match entry {
                Ok(super::Decoded::Known(Message::Epoch(bytes))) => {
                    self.take_epoch_record(Kind::Epoch, &bytes)?
                }
                Ok(super::Decoded::Known(Message::Grant(bytes))) => {
                    self.take_epoch_record(Kind::Grant, &bytes)?
                }
                _ => {}
            }
            at += 1;
        }
        self.scanned.insert(*key, at);
        Ok(())
    }

    /// Take in an epoch message or grant read from a log: kept in the epoch file first
    /// (the entry counts as read only once that is durable), then its keys are held.
    pub(super) fn take_epoch_record(&mut self, kind: Kind, bytes: &[u8]) -> Result<(), SpaceError> {
        let mut probe = self.epochs.clone();
        if learn_epoch_record(&mut probe, &self.identity, kind, bytes) == Learnt::Nothing {
            return Ok(());
        }
        self.epoch_file
            .append(kind, bytes)
            .map_err(|e| SpaceError::Index(format!("epochs: {e}")))?;
        self.epochs = probe;
        self.block = std::sync::Arc::new(self.epochs.keyring().clone());
        Ok(())
    }
}
