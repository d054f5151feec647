//! TLS in captures: the real TLS records of a TLS case are on the wire, and its key log (NSS
//! `SSLKEYLOGFILE` format) beside the capture (`<case>.keys`). Wireshark decodes them with
//! `-o tls.keylog_file:<case>.keys`; the reader decodes them here, so `analyze` and `show` read
//! the same SIP and MSRP the harness recorded.
//!
//! [`decrypt_events`] takes the events of a capture read as plain TCP: a connection whose opener
//! starts with a TLS handshake record is replaced by a `tls` event and the sessions' plaintext
//! (MSRP as `TcpData`, SIP framed as `Sip` over `Tls`). TLS 1.3 and TLS 1.2 with AES-GCM or
//! ChaCha20-Poly1305 (the suites rustls offers) are decoded: TLS 1.3 from the traffic secrets
//! (RFC 8446 §7), TLS 1.2 from the master secret (`CLIENT_RANDOM` lines) through the PRF's key
//! expansion (RFC 5246 §5, §6.3; RFC 5288, RFC 7905 for the nonces). Anything else is left as
//! it was, with a warning.

use crate::codec::sip::{Limits as SipLimits, SipFramer, Transport};
use crate::trace::WireEvent;
use bytes::Bytes;
use ring::{aead, hkdf, hmac};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Secrets by client random (bytes) and label.
#[derive(Debug, Default, Clone)]
pub struct KeyLog(HashMap<Vec<u8>, HashMap<String, Vec<u8>>>);

impl KeyLog {
    /// Parses NSS key log lines (`LABEL <client_random hex> <secret hex>`); others are skipped.
    pub fn parse(text: &str) -> KeyLog {
        let mut k = KeyLog::default();
        for l in text.lines() {
            let mut w = l.split_whitespace();
            let (Some(label), Some(cr), Some(secret)) = (w.next(), w.next(), w.next()) else {
                continue;
            };
            if let (Ok(cr), Ok(secret)) = (hex::decode(cr), hex::decode(secret)) {
                k.0.entry(cr).or_default().insert(label.to_string(), secret);
            }
        }
        k
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn secret(&self, cr: &[u8], label: &str) -> Option<&[u8]> {
        self.0.get(cr)?.get(label).map(Vec::as_slice)
    }
}

/// The key log beside a capture: `<case>.keys` for `<case>.pcap[.gz]` / `<case>.pcapng[.gz]`.
pub fn keys_path(capture: &Path) -> PathBuf {
    let name = capture
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.strip_suffix(".gz").unwrap_or(&name);
    let base = base
        .strip_suffix(".pcapng")
        .or_else(|| base.strip_suffix(".pcap"))
        .unwrap_or(base);
    capture.with_file_name(format!("{base}.keys"))
}

/// The client randoms of the ClientHellos at the start of `data` (one direction of a TLS
/// connection), hex: what a case's key log is filtered by.
pub fn client_random(data: &[u8]) -> Option<Vec<u8>> {
    // Record header (5), handshake header (4), legacy version (2), random (32).
    if data.len() < 43 || data[0] != 0x16 || data[5] != 1 {
        return None;
    }
    Some(data[11..43].to_vec())
}

struct Suite {
    alg: &'static aead::Algorithm,
    hash: hkdf::Algorithm,
}

fn suite(id: u16) -> Option<Suite> {
    Some(match id {
        0x1301 => Suite {
            alg: &aead::AES_128_GCM,
            hash: hkdf::HKDF_SHA256,
        },
        0x1302 => Suite {
            alg: &aead::AES_256_GCM,
            hash: hkdf::HKDF_SHA384,
        },
        0x1303 => Suite {
            alg: &aead::CHACHA20_POLY1305,
            hash: hkdf::HKDF_SHA256,
        },
        _ => return None,
    })
}

/// A TLS 1.2 AEAD suite: its cipher, the PRF's hash and the fixed IV's length (4 for
/// AES-GCM, whose records carry an 8-byte explicit nonce, RFC 5288 §3; 12 for
/// ChaCha20-Poly1305, RFC 7905 §2).
struct Suite12 {
    alg: &'static aead::Algorithm,
    prf: hmac::Algorithm,
    iv_len: usize,
}

fn suite12(id: u16) -> Option<Suite12> {
    let (alg, prf, iv_len) = match id {
        // ECDHE_ECDSA / ECDHE_RSA with AES_128_GCM_SHA256
        0xc02b | 0xc02f => (&aead::AES_128_GCM, hmac::HMAC_SHA256, 4),
        // … with AES_256_GCM_SHA384
        0xc02c | 0xc030 => (&aead::AES_256_GCM, hmac::HMAC_SHA384, 4),
        // … with CHACHA20_POLY1305_SHA256
        0xcca9 | 0xcca8 => (&aead::CHACHA20_POLY1305, hmac::HMAC_SHA256, 12),
        _ => return None,
    };
    Some(Suite12 { alg, prf, iv_len })
}

/// The TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed) cut to `len` bytes.
fn prf12(alg: hmac::Algorithm, secret: &[u8], label: &[u8], seed: &[u8], len: usize) -> Vec<u8> {
    let key = hmac::Key::new(alg, secret);
    let mut label_seed = label.to_vec();
    label_seed.extend_from_slice(seed);
    let mut out = Vec::with_capacity(len + 64);
    // A(1) = HMAC(secret, label + seed); A(i) = HMAC(secret, A(i-1)).
    let mut a = hmac::sign(&key, &label_seed).as_ref().to_vec();
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(&a);
        ctx.update(&label_seed);
        out.extend_from_slice(ctx.sign().as_ref());
        a = hmac::sign(&key, &a).as_ref().to_vec();
    }
    out.truncate(len);
    out
}

/// One direction's TLS 1.2 write key, fixed IV and record counter (from the ChangeCipherSpec
/// on, starting with Finished).
struct Keys12 {
    key: aead::LessSafeKey,
    iv: Vec<u8>,
    seq: u64,
}

impl Keys12 {
    /// The keys of the client's (`client`) or the server's direction, from the master secret
    /// and both randoms (RFC 5246 §6.3: AEAD suites have no MAC keys).
    fn new(s: &Suite12, master: &[u8], cr: &[u8], sr: &[u8], client: bool) -> Option<Keys12> {
        let kl = s.alg.key_len();
        let mut seed = sr.to_vec();
        seed.extend_from_slice(cr);
        let block = prf12(
            s.prf,
            master,
            b"key expansion",
            &seed,
            2 * kl + 2 * s.iv_len,
        );
        let (ck, rest) = block.split_at(kl);
        let (sk, rest) = rest.split_at(kl);
        let (civ, siv) = rest.split_at(s.iv_len);
        let (key, iv) = if client { (ck, civ) } else { (sk, siv) };
        Some(Keys12 {
            key: aead::LessSafeKey::new(aead::UnboundKey::new(s.alg, key).ok()?),
            iv: iv.to_vec(),
            seq: 0,
        })
    }

    /// Opens one record: its plaintext (the record's type is the outer one in TLS 1.2).
    fn open(&mut self, header: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        let tag = aead::MAX_TAG_LEN;
        let (nonce, sealed) = if self.iv.len() == 4 {
            let explicit = body.get(..8)?;
            let mut n = [0u8; 12];
            n[..4].copy_from_slice(&self.iv);
            n[4..].copy_from_slice(explicit);
            (n, &body[8..])
        } else {
            let mut n: [u8; 12] = self.iv.as_slice().try_into().ok()?;
            for (i, b) in self.seq.to_be_bytes().iter().enumerate() {
                n[4 + i] ^= b;
            }
            (n, body)
        };
        let plain_len = sealed.len().checked_sub(tag)?;
        let mut aad = [0u8; 13];
        aad[..8].copy_from_slice(&self.seq.to_be_bytes());
        aad[8..11].copy_from_slice(&header[..3]);
        aad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
        let mut buf = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut buf,
            )
            .ok()?;
        self.seq += 1;
        Some(plain.to_vec())
    }
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(hash: hkdf::Algorithm, secret: &[u8], label: &str, len: usize) -> Option<Vec<u8>> {
    let prk = hkdf::Prk::new_less_safe(hash, secret);
    let full = format!("tls13 {label}");
    let l = (len as u16).to_be_bytes();
    let ll = [full.len() as u8];
    let ctx = [0u8];
    let info: [&[u8]; 4] = [&l, &ll, full.as_bytes(), &ctx];
    let okm = prk.expand(&info, Len(len)).ok()?;
    let mut out = vec![0u8; len];
    okm.fill(&mut out).ok()?;
    Some(out)
}

/// One direction's traffic keys and record counter.
struct Keys {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Keys {
    fn new(s: &Suite, secret: &[u8]) -> Option<Keys> {
        let key = expand_label(s.hash, secret, "key", s.alg.key_len())?;
        let iv = expand_label(s.hash, secret, "iv", 12)?;
        Some(Keys {
            key: aead::LessSafeKey::new(aead::UnboundKey::new(s.alg, &key).ok()?),
            iv: iv.try_into().ok()?,
            seq: 0,
        })
    }

    /// Opens one record (`header` its 5 bytes): the inner plaintext and its content type.
    fn open(&mut self, header: &[u8], body: &[u8]) -> Option<(u8, Vec<u8>)> {
        let mut nonce = self.iv;
        for (i, b) in self.seq.to_be_bytes().iter().enumerate() {
            nonce[4 + i] ^= b;
        }
        let mut buf = body.to_vec();
        let plain = self
            .key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(header),
                &mut buf,
            )
            .ok()?;
        self.seq += 1;
        let end = plain.iter().rposition(|&b| b != 0)?;
        Some((plain[end], plain[..end].to_vec()))
    }
}

/// One direction of a TLS connection being decoded.
#[derive(Default)]
struct Dir {
    buf: Vec<u8>,
    /// Handshake keys, then application keys.
    hs: Option<Keys>,
    app: Option<Keys>,
    on_app: bool,
    /// TLS 1.2: the direction sent its ChangeCipherSpec; its records are encrypted from here.
    ccs: bool,
    k12: Option<Keys12>,
    failed: bool,
}

/// Replaces the TLS connections of `events` by their plaintext (see the module docs);
/// returns warnings for connections that could not be decoded.
pub fn decrypt_events(events: &mut Vec<(Duration, WireEvent)>, keys: &KeyLog) -> Vec<String> {
    let mut warnings = Vec::new();
    // Connections (unordered pair) whose first data byte is a TLS handshake record.
    let mut first: HashMap<(SocketAddr, SocketAddr), bool> = HashMap::new();
    let pair = |a: SocketAddr, b: SocketAddr| if a <= b { (a, b) } else { (b, a) };
    for (_, e) in events.iter() {
        if let WireEvent::TcpData { from, to, data } = e {
            first
                .entry(pair(*from, *to))
                .or_insert_with(|| data.len() >= 3 && data[0] == 0x16 && data[1] == 0x03);
        }
    }
    if !first.values().any(|&t| t) {
        return warnings;
    }
    struct Conn {
        client: Option<SocketAddr>,
        cr: Option<Vec<u8>>,
        sr: Option<Vec<u8>>,
        suite: Option<u16>,
        dirs: HashMap<SocketAddr, Dir>,
        framers: HashMap<SocketAddr, Option<SipFramer>>,
        announced: bool,
        undecodable: bool,
    }
    let mut conns: HashMap<(SocketAddr, SocketAddr), Conn> = HashMap::new();
    let mut out = Vec::with_capacity(events.len());
    for (t, e) in events.drain(..) {
        let WireEvent::TcpData { from, to, data } = &e else {
            out.push((t, e));
            continue;
        };
        let k = pair(*from, *to);
        if !first.get(&k).copied().unwrap_or(false) {
            out.push((t, e));
            continue;
        }
        let c = conns.entry(k).or_insert_with(|| Conn {
            client: None,
            cr: None,
            sr: None,
            suite: None,
            dirs: HashMap::new(),
            framers: HashMap::new(),
            announced: false,
            undecodable: false,
        });
        let (from, to) = (*from, *to);
        let d = c.dirs.entry(from).or_default();
        d.buf.extend_from_slice(data);
        let mut plain = Vec::new();
        loop {
            let d = c.dirs.get_mut(&from).expect("entry above");
            if d.buf.len() < 5 {
                break;
            }
            let len = u16::from_be_bytes([d.buf[3], d.buf[4]]) as usize;
            if d.buf.len() < 5 + len {
                break;
            }
            let rec: Vec<u8> = d.buf.drain(..5 + len).collect();
            let (header, body) = rec.split_at(5);
            let s12 = c.suite.and_then(suite12);
            // TLS 1.2, after this direction's ChangeCipherSpec: every record is encrypted
            // (Finished first, then application data and alerts).
            if let Some(s12) = s12.as_ref().filter(|_| d.ccs) {
                if d.failed || !matches!(header[0], 0x15..=0x17) {
                    continue;
                }
                if d.k12.is_none() {
                    let client_side = c.client == Some(from);
                    let master =
                        c.cr.as_deref()
                            .and_then(|cr| keys.secret(cr, "CLIENT_RANDOM"));
                    d.k12 = match (master, &c.cr, &c.sr) {
                        (Some(m), Some(cr), Some(sr)) => Keys12::new(s12, m, cr, sr, client_side),
                        _ => None,
                    };
                }
                match d.k12.as_mut().map(|k| k.open(header, body)) {
                    Some(Some(p)) if header[0] == 0x17 => plain.extend_from_slice(&p),
                    Some(Some(_)) => {}
                    _ => {
                        d.failed = true;
                        c.undecodable = true;
                    }
                }
                continue;
            }
            match header[0] {
                0x14 if s12.is_some() => d.ccs = true,
                // Handshake in the clear: ClientHello (the random), ServerHello (the suite).
                0x16 if body.first() == Some(&1) && body.len() >= 38 => {
                    c.client = Some(from);
                    c.cr = Some(body[6..38].to_vec());
                }
                0x16 if body.first() == Some(&2) && body.len() >= 39 => {
                    c.sr = Some(body[6..38].to_vec());
                    let sid = body[38] as usize;
                    if let Some(s) = body.get(39 + sid..41 + sid) {
                        c.suite = Some(u16::from_be_bytes([s[0], s[1]]));
                    }
                }
                0x17 => {
                    let client_side = c.client == Some(from);
                    let (Some(cr), Some(sid)) = (c.cr.clone(), c.suite) else {
                        c.undecodable = true;
                        continue;
                    };
                    let Some(s) = suite(sid) else {
                        c.undecodable = true;
                        continue;
                    };
                    let d = c.dirs.get_mut(&from).expect("entry above");
                    if d.failed {
                        continue;
                    }
                    let (hs_label, app_label) = if client_side {
                        ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0")
                    } else {
                        ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0")
                    };
                    if d.hs.is_none() && d.app.is_none() {
                        d.hs = keys.secret(&cr, hs_label).and_then(|x| Keys::new(&s, x));
                        d.app = keys.secret(&cr, app_label).and_then(|x| Keys::new(&s, x));
                        if d.app.is_none() {
                            d.failed = true;
                            c.undecodable = true;
                            continue;
                        }
                    }
                    let mut opened = None;
                    if !d.on_app {
                        opened = d.hs.as_mut().and_then(|k| k.open(header, body));
                        if opened.is_none() {
                            d.on_app = true;
                        }
                    }
                    if opened.is_none() && d.on_app {
                        opened = d.app.as_mut().and_then(|k| k.open(header, body));
                    }
                    match opened {
                        Some((0x17, p)) => plain.extend_from_slice(&p),
                        Some(_) => {}
                        None => {
                            d.failed = true;
                            c.undecodable = true;
                        }
                    }
                }
                _ => {}
            }
        }
        if !c.announced && c.suite.is_some() {
            if let Some(client) = c.client {
                c.announced = true;
                let server = if client == from { to } else { from };
                out.push((
                    t,
                    WireEvent::Tls {
                        from: client,
                        to: server,
                        version: if c.suite.and_then(suite12).is_some() {
                            "TLSv1.2".into()
                        } else {
                            "TLSv1.3".into()
                        },
                        failed: None,
                    },
                ));
            }
        }
        if plain.is_empty() {
            continue;
        }
        // SIP over TLS is framed as SIP; anything else (MSRP) passes as bytes.
        let framer = c.framers.entry(from).or_insert_with(|| {
            let sip = plain.starts_with(b"SIP/2.0 ")
                || plain
                    .split(|&b| b == b'\n')
                    .next()
                    .is_some_and(|l| l.ends_with(b"SIP/2.0\r"));
            sip.then(|| SipFramer::new(SipLimits::default()))
        });
        match framer {
            Some(f) => {
                f.push(&plain);
                while let Ok(Some(msg)) = f.next() {
                    out.push((
                        t,
                        WireEvent::Sip {
                            transport: Transport::Tls,
                            from,
                            to,
                            raw: msg.raw,
                        },
                    ));
                }
            }
            None => out.push((
                t,
                WireEvent::TcpData {
                    from,
                    to,
                    data: Bytes::from(plain),
                },
            )),
        }
    }
    for (k, c) in &conns {
        if c.undecodable {
            warnings.push(format!(
                "TLS {} <-> {}: not decoded (no key log entry for it, or not TLS 1.2 or 1.3 \
                 with AES-GCM or ChaCha20-Poly1305)",
                k.0, k.1
            ));
        }
    }
    *events = out;
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TLS 1.2 PRF with SHA-256 against a published known-answer vector (secret, seed,
    /// label "test label", 100 bytes), so a key-expansion bug shows here and not only as an
    /// undecodable capture.
    #[test]
    fn tls12_prf_known_answer() {
        let secret = hex::decode("9bbe436ba940f017b17652849a71db35").unwrap();
        let seed = hex::decode("a0ba9f936cda311827a6f796ffd5198c").unwrap();
        let out = prf12(hmac::HMAC_SHA256, &secret, b"test label", &seed, 100);
        assert_eq!(
            hex::encode(out),
            "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a4\
             6b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082\
             d122ee42c5a72e5a5110fff70187347b66"
        );
    }

    /// TLS 1.2's suites map to their cipher, PRF hash and fixed-IV length; TLS 1.3's and CBC
    /// suites are not TLS 1.2 AEAD suites.
    #[test]
    fn tls12_suites() {
        for (id, iv) in [(0xc02b, 4), (0xc030, 4), (0xcca9, 12), (0xcca8, 12)] {
            assert_eq!(suite12(id).map(|s| s.iv_len), Some(iv), "{id:#x}");
        }
        assert!(suite12(0x1301).is_none() && suite12(0xc013).is_none());
    }
}
