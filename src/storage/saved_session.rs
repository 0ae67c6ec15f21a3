//! The user and the open session, saved on every change so they survive restarts and kills.
//! Byte map: `format::saved_session`.

use std::path::Path;

use super::format::saved_session::VERSION;
use super::mapping::Flusher;
use super::slot_file::SlotFile;
use crate::error::Error;
use crate::session::{OpenSession, SessionState};

/// The saved session's slot file.
pub struct SavedSession {
    file: SlotFile,
    buffer: Vec<u8>,
}

impl SavedSession {
    /// Opens the saved state; foreground always starts false.
    pub fn open(path: &Path) -> Result<(SavedSession, SessionState), Error> {
        let (file, value) =
            SlotFile::open(path).map_err(|e| Error::storage("cannot open the session state", e))?;
        let state = value.as_deref().and_then(decode).unwrap_or_default();
        Ok((
            SavedSession {
                file,
                buffer: Vec::with_capacity(1100),
            },
            state,
        ))
    }

    /// Saves `state` (kill-safe at once).
    pub fn save(&mut self, state: &SessionState) {
        encode(state, &mut self.buffer);
        self.file.write(&self.buffer);
    }

    /// `save`, leaving nothing of earlier states in the file (data wiped).
    pub fn scrub(&mut self, state: &SessionState) {
        encode(state, &mut self.buffer);
        self.file.scrub(&self.buffer);
    }

    /// Makes the saved state durable against power loss.
    pub fn sync(&self, later: &mut Vec<Flusher>) -> std::io::Result<()> {
        self.file.sync(later)
    }
}

fn encode(state: &SessionState, out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    let user = state.user.as_deref().unwrap_or("");
    out.push(state.user.is_some() as u8);
    out.extend_from_slice(&(user.len() as u16).to_le_bytes());
    out.extend_from_slice(user.as_bytes());
    match &state.session {
        None => out.push(0),
        Some(session) => {
            out.push(1);
            out.push(session.id.len() as u8);
            out.extend_from_slice(session.id.as_bytes());
            out.extend_from_slice(&session.start.to_le_bytes());
            out.extend_from_slice(&session.last_activity.to_le_bytes());
        }
    }
}

fn decode(bytes: &[u8]) -> Option<SessionState> {
    let mut reader = Reader(bytes);
    if reader.take(1)?[0] != VERSION {
        return None;
    }
    let has_user = reader.take(1)?[0] == 1;
    let user_len = u16::from_le_bytes(reader.take(2)?.try_into().ok()?) as usize;
    let user = String::from_utf8(reader.take(user_len)?.to_vec()).ok()?;
    let session = match reader.take(1)?[0] {
        0 => None,
        _ => {
            let id_len = reader.take(1)?[0] as usize;
            let id = String::from_utf8(reader.take(id_len)?.to_vec()).ok()?;
            let start = i64::from_le_bytes(reader.take(8)?.try_into().ok()?);
            let last_activity = i64::from_le_bytes(reader.take(8)?.try_into().ok()?);
            Some(OpenSession {
                id: id.into(),
                start,
                last_activity,
            })
        }
    };
    Some(SessionState {
        user: has_user.then(|| user.into()),
        session,
        foreground: false,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_without_foreground() {
        let dir = crate::test_support::temp_dir("saved-session");
        let state = SessionState {
            user: Some("älice".into()),
            session: Some(OpenSession {
                id: "5f0c2a8e-1d3b-4c6e-8f9a-0b1c2d3e4f5a".into(),
                start: 1_764_190_000_123,
                last_activity: 1_764_190_999_999,
            }),
            foreground: true,
        };
        let (mut saved, empty) = SavedSession::open(&dir.join("s")).unwrap();
        assert_eq!(empty, SessionState::default());
        saved.save(&state);
        drop(saved);
        let (_, restored) = SavedSession::open(&dir.join("s")).unwrap();
        assert_eq!(
            restored,
            SessionState {
                foreground: false,
                ..state
            }
        );
    }

    #[test]
    fn garbage_decodes_to_nothing() {
        assert_eq!(decode(&[1, 1, 200, 0]), None);
        assert_eq!(decode(&[]), None);
    }
}
