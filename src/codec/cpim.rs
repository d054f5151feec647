//! message/cpim (RFC 3862) wrap and unwrap: CPIM headers, a blank line, the inner MIME
//! headers, a blank line, the inner content.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CPIM: {msg} (at byte {offset})")]
pub struct CpimError {
    pub offset: usize,
    pub msg: String,
}

/// A CPIM message, headers kept in order and octet for octet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpim {
    /// CPIM headers (`From`, `To`, `DateTime`, `NS`, `imdn.Message-ID`, …) in order.
    pub headers: Vec<(String, String)>,
    /// Inner MIME headers (at least `Content-Type`).
    pub content_headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Cpim {
    /// Builds the usual large-message wrapper around `content`.
    pub fn wrap(_from: &str, _to: &str, _message_id: &str, _content_type: &str, _content: Bytes) -> Cpim {
        todo!()
    }

    /// The CPIM object's bytes.
    pub fn encode(&self) -> Vec<u8> {
        todo!()
    }

    /// Just the header part (everything before the inner body), for streaming senders.
    pub fn encode_head(&self) -> Vec<u8> {
        todo!()
    }

    /// Parses a complete CPIM object.
    pub fn parse(_bytes: &[u8]) -> Result<Cpim, CpimError> {
        todo!()
    }

    /// Streaming receivers: if `prefix` holds the complete header part, returns the parsed
    /// headers (body left empty) and the header part's length, i.e. the offset of the inner
    /// body; `Ok(None)` when more bytes are needed.
    pub fn parse_head(_prefix: &[u8]) -> Result<Option<(Cpim, usize)>, CpimError> {
        todo!()
    }
}
