//! The envelope's fast path: a scanner for the envelopes senders actually write (known fields,
//! strings without escapes), which serde's generic visitor parsed at a third of a 100-byte
//! receive and which scanned base64 eight bytes at a time (43 % of a 1 MB receive).
//!
//! It accepts a strict subset of what the serde path accepts and builds the same `EnvelopeRef`;
//! anything else (an escape, an unknown or repeated field, a malformed value) returns None and
//! the message goes through serde, which also words every error. Values it does not read
//! itself (metadata, `error`, non-string `data`) are read by serde from where they start.

use super::{DataRef, EnvelopeRef, ErrorBody, PayloadRef};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The envelope of `text`, or None when the serde path must decide.
pub(super) fn scan(text: &str) -> Option<EnvelopeRef<'_>> {
    let mut s = Scanner { text, pos: 0 };
    let envelope = s.envelope()?;
    s.skip_ws();
    (s.pos == text.len()).then_some(envelope)
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    /// A string without escapes or control characters, borrowed; None for anything else.
    fn plain_str(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let len = plain_len(&self.bytes()[start..])?;
        self.pos = start + len + 1;
        // The quote and backslash are ASCII, so both ends are on character boundaries.
        Some(&self.text[start..start + len])
    }

    /// A string field as the serde path's `cow_or_null` reads it: a string, or null as "".
    fn str_or_null(&mut self) -> Option<Cow<'a, str>> {
        self.skip_ws();
        if self.text[self.pos..].starts_with("null") {
            self.pos += 4;
            return Some(Cow::Borrowed(""));
        }
        self.plain_str().map(Cow::Borrowed)
    }

    /// A non-negative integer that fits in a u64 (a fraction or exponent stops the scan at the next
    /// separator).
    fn size(&mut self) -> Option<u64> {
        self.skip_ws();
        let digits = self.bytes()[self.pos..].iter().take_while(|b| b.is_ascii_digit()).count();
        let text = &self.text[self.pos..self.pos + digits];
        if digits == 0 || (digits > 1 && text.starts_with('0')) {
            return None;
        }
        self.pos += digits;
        text.parse().ok()
    }

    /// One value read by serde from here on, borrowing as the serde path does.
    fn serde<T: Deserialize<'a>>(&mut self) -> Option<T> {
        self.skip_ws();
        let mut values = serde_json::Deserializer::from_str(&self.text[self.pos..]).into_iter::<T>();
        let value = values.next()?.ok()?;
        self.pos += values.byte_offset();
        Some(value)
    }

    /// An object's members: `member(self, key)` reads each value; false ends the scan.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let key = self.plain_str()?;
            if !self.eat(b':') {
                return None;
            }
            member(self, key)?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn envelope(&mut self) -> Option<EnvelopeRef<'a>> {
        let mut e = EnvelopeRef::default();
        let mut seen = 0u32;
        self.members(|s, key| {
            let (bit, field) = match key {
                "correlation_id" => (0, &mut e.correlation_id),
                "msg_id" => (1, &mut e.msg_id),
                "timestamp" => (2, &mut e.timestamp),
                "send_to" => (3, &mut e.send_to),
                "msg_purpose" => (4, &mut e.msg_purpose),
                "sender_name" => (5, &mut e.sender_name),
                "sender_id" => (6, &mut e.sender_id),
                "receiver_name" => (7, &mut e.receiver_name),
                "receiver_id" => (8, &mut e.receiver_id),
                "reply_to" => (9, &mut e.reply_to),
                "reply_to_msg_id" => (10, &mut e.reply_to_msg_id),
                "broker_url" => (11, &mut e.broker_url),
                "metadata" => {
                    first(&mut seen, 12)?;
                    e.metadata = s.metadata()?;
                    return Some(());
                }
                "payloads" => {
                    first(&mut seen, 13)?;
                    e.payloads = s.payloads()?;
                    return Some(());
                }
                "error" => {
                    first(&mut seen, 14)?;
                    e.error = s.serde::<Option<ErrorBody>>()?;
                    return Some(());
                }
                _ => return None,
            };
            first(&mut seen, bit)?;
            *field = s.str_or_null()?;
            Some(())
        })?;
        Some(e)
    }

    fn metadata(&mut self) -> Option<Map<String, Value>> {
        self.skip_ws();
        if self.text[self.pos..].starts_with("{}") {
            self.pos += 2;
            return Some(Map::new());
        }
        Some(self.serde::<Option<Map<String, Value>>>()?.unwrap_or_default())
    }

    fn payloads(&mut self) -> Option<Option<Vec<PayloadRef<'a>>>> {
        self.skip_ws();
        if self.text[self.pos..].starts_with("null") {
            self.pos += 4;
            return Some(None);
        }
        if !self.eat(b'[') {
            return None;
        }
        let mut payloads = Vec::new();
        if self.eat(b']') {
            return Some(Some(payloads));
        }
        loop {
            payloads.push(self.payload()?);
            if self.eat(b']') {
                return Some(Some(payloads));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn payload(&mut self) -> Option<PayloadRef<'a>> {
        let (mut id, mut encoding, mut metadata) = (Cow::Borrowed(""), Cow::Borrowed(""), Map::new());
        let (mut dataname, mut payload_type, mut transport, mut size, mut data) = (None, None, None, None, None);
        let mut seen = 0u32;
        self.members(|s, key| {
            match key {
                "id" => {
                    first(&mut seen, 0)?;
                    id = s.str_or_null()?;
                }
                "dataname" => {
                    first(&mut seen, 1)?;
                    dataname = Some(s.plain_str()?);
                }
                "payload_type" => {
                    first(&mut seen, 2)?;
                    payload_type = Some(s.plain_str()?);
                }
                "transport" => {
                    first(&mut seen, 3)?;
                    transport = Some(s.plain_str()?);
                }
                "encoding" => {
                    first(&mut seen, 4)?;
                    encoding = s.str_or_null()?;
                }
                "size" => {
                    first(&mut seen, 5)?;
                    size = Some(s.size()?);
                }
                "data" => {
                    first(&mut seen, 6)?;
                    data = Some(s.data()?);
                }
                "metadata" => {
                    first(&mut seen, 7)?;
                    metadata = s.metadata()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PayloadRef {
            id,
            dataname: Cow::Borrowed(dataname?),
            payload_type: Cow::Borrowed(payload_type?),
            transport: Cow::Borrowed(transport?),
            encoding,
            size: size?,
            data: data?,
            metadata,
        })
    }

    fn data(&mut self) -> Option<DataRef<'a>> {
        self.skip_ws();
        if self.peek() == Some(b'"') {
            return self.plain_str().map(|s| DataRef::Str(Cow::Borrowed(s)));
        }
        self.serde::<DataRef<'a>>()
    }
}

/// Marks field `bit` as read; None when it was already (serde refuses a repeated field).
fn first(seen: &mut u32, bit: u32) -> Option<()> {
    let was = *seen & (1 << bit) != 0;
    *seen |= 1 << bit;
    (!was).then_some(())
}

/// The length of the string that starts `bytes`, up to its closing quote; None when a backslash
/// or a control character comes first, or nothing closes it.
fn plain_len(bytes: &[u8]) -> Option<usize> {
    // Ids, names and type words are short: eight bytes at a time in a register costs less than
    // memchr's set-up. Longer strings (base64) go to memchr and the vectorized control check.
    const SHORT: usize = 64;
    let mut i = 0;
    while i < SHORT {
        let Some(word) = bytes.get(i..i + 8) else {
            let j = i + bytes[i..].iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            return (bytes[j] == b'"').then_some(j);
        };
        let stops = stop_bytes(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        if stops != 0 {
            let j = i + stops.trailing_zeros() as usize / 8;
            return (bytes[j] == b'"').then_some(j);
        }
        i += 8;
    }
    let len = SHORT + memchr::memchr2(b'"', b'\\', &bytes[SHORT..])?;
    (bytes[len] == b'"' && no_control(&bytes[SHORT..len])).then_some(len)
}

/// The high bit of each byte of `word` that is a quote, a backslash or below 0x20. Exact up to
/// the first such byte (a borrow may mark bytes after it), which is all `plain_len` reads.
fn stop_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    (quote | backslash | control) & HIGH
}

/// No byte below 0x20 (JSON forbids them raw in strings). A byte-wise minimum over wide chunks
/// vectorizes: base64 `data` is nearly all of a large message.
fn no_control(bytes: &[u8]) -> bool {
    bytes.chunks(512).all(|c| c.iter().fold(u8::MAX, |m, &b| m.min(b)) >= 0x20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Envelope, PayloadType, direct_payload, link_payload};

    /// Every message of spec/vectors, compact and pretty-printed, raw ones as they are.
    fn vector_messages() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/vectors");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).expect("spec/vectors") {
            let vector: Value = serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
            if let Some(env) = vector.get("envelope") {
                out.push(serde_json::to_vec(env).unwrap());
                out.push(serde_json::to_vec_pretty(env).unwrap());
            }
            if let Some(raw) = vector.get("raw").and_then(Value::as_str) {
                out.push(raw.as_bytes().to_vec());
            }
        }
        assert!(out.len() > 100, "vectors not found");
        out
    }

    /// The serde path alone, as it was before the scanner.
    fn serde_parse(bytes: &[u8]) -> Option<EnvelopeRef<'_>> {
        serde_json::from_str(std::str::from_utf8(bytes).ok()?).ok()
    }

    /// The scanner agrees with serde: whatever it accepts, serde reads the same.
    fn agrees(bytes: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(bytes) else { return true };
        match scan(text) {
            None => true,
            Some(fast) => serde_parse(bytes).is_some_and(|slow| slow == fast),
        }
    }

    #[test]
    fn own_envelopes_take_the_fast_path_and_read_as_serde_reads_them() {
        let mut env = Envelope::new("a.subject");
        env.metadata.insert("k".into(), serde_json::json!({"nested": [1, 2.5, null]}));
        env.payloads.push(direct_payload("msg", PayloadType::Text, b"Hello World", true));
        env.payloads.push(link_payload("big", PayloadType::Binary, 5, "nats-obj://b/o".into(), "ab".into()));
        env.payloads.push(direct_payload("j", PayloadType::Dictionary, b"{}", false));
        env.payloads[2].data = serde_json::json!({"inline": ["json", 1]});
        env.payloads[2].encoding = "json".into();
        let json = env.to_json();
        let fast = scan(&json).expect("the fast path reads our own envelopes");
        assert!(serde_parse(json.as_bytes()).is_some_and(|slow| slow == fast));
        assert!(matches!(&fast.payloads.as_ref().unwrap()[0].data, DataRef::Str(Cow::Borrowed(_))));
    }

    #[test]
    fn golden_vectors_read_as_serde_reads_them() {
        let mut fast = 0;
        for message in vector_messages() {
            assert!(agrees(&message), "{}", String::from_utf8_lossy(&message));
            fast += usize::from(std::str::from_utf8(&message).is_ok_and(|t| scan(t).is_some()));
        }
        assert!(fast > 100, "only {fast} vector messages took the fast path");
    }

    /// Every one-byte deletion, duplication and replacement (by a byte that matters to JSON) of
    /// small envelopes: the scanner never accepts what serde refuses or reads it differently.
    #[test]
    fn mutated_envelopes_read_as_serde_reads_them_or_fall_back() {
        let mut env = Envelope::new("s");
        env.metadata.insert("m".into(), 1.into());
        env.payloads.push(direct_payload("p", PayloadType::Binary, b"\x00\x01xyz", false));
        env.error = Some(ErrorBody { code: "TIMEOUT".into(), message: "m".into(), details: Value::Null });
        let mut seeds = vec![env.to_json().into_bytes()];
        seeds.push(
            br#"{"payloads":[{"dataname":"d","payload_type":"text","transport":"direct","size":10,"data":"aGk="}]}"#
                .to_vec(),
        );
        seeds.push(br#" { "sender_id" : null , "payloads" : null , "metadata" : { } } "#.to_vec());
        // Strings longer than the short-string pass, a base64 one across the control check's chunks.
        let mut long = Envelope::new("s");
        long.sender_name = "n".repeat(100);
        long.payloads.push(direct_payload("p", PayloadType::Binary, &[7; 700], false));
        seeds.push(long.to_json().into_bytes());
        let replacements = b"\"\\{}[],:0 n-.e\x01a";
        let mut checked = 0;
        for seed in &seeds {
            for i in 0..seed.len() {
                let mut deleted = seed.clone();
                deleted.remove(i);
                let mut doubled = seed.clone();
                doubled.insert(i, seed[i]);
                for m in [deleted, doubled] {
                    assert!(agrees(&m), "{}", String::from_utf8_lossy(&m));
                    checked += 1;
                }
                for &r in replacements {
                    let mut replaced = seed.clone();
                    replaced[i] = r;
                    assert!(agrees(&replaced), "{}", String::from_utf8_lossy(&replaced));
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
    }

    /// `plain_len` against the byte-at-a-time rule: every byte value at every offset of strings
    /// around the short pass's word and length boundaries.
    #[test]
    fn plain_len_finds_the_first_quote_backslash_or_control_byte() {
        let naive = |bytes: &[u8]| {
            let j = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
            (bytes[j] == b'"').then_some(j)
        };
        for len in [0, 1, 7, 8, 9, 36, 63, 64, 65, 100, 600, 1100] {
            for at in (0..len).filter(|at| *at < 10 || at % 7 == 0 || *at + 2 >= len) {
                for b in 0..=255u8 {
                    let mut text = vec![b'a'; len];
                    text[at] = b;
                    text.push(b'"');
                    assert_eq!(plain_len(&text), naive(&text), "len {len}, byte {b:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn what_the_scanner_leaves_to_serde() {
        for message in [
            r#"{"sender_name":"a\"b","payloads":[]}"#,      // an escape
            r#"{"msg_id":"a","msg_id":"b","payloads":[]}"#, // a repeated field
            r#"{"unknown":1,"payloads":[]}"#,               // a field it does not know
            r#"{"payloads":[{"dataname":"d","payload_type":"text","transport":"direct","size":1.0,"data":""}]}"#,
            r#"{"payloads":[]} x"#, // trailing characters
        ] {
            assert!(scan(message).is_none(), "{message}");
        }
    }
}
