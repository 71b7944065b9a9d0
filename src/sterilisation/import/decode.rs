//! Device files as text: UTF-8 where the bytes are valid UTF-8, else Windows-1252 (the degree sign
//! of older devices arrives as the single byte 0xB0); NUL bytes dropped (some devices pad their
//! records with them) and line ends made `\n`. Only the text is changed: the stored bytes never
//! are.

/// The text of a device file, and which encoding it was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub text: String,
    pub encoding: &'static str,
}

pub fn decode(bytes: &[u8]) -> Text {
    let cleaned: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
    let cleaned = cleaned.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&cleaned);
    let (text, encoding) = match std::str::from_utf8(cleaned) {
        Ok(s) => (s.to_owned(), "UTF-8"),
        Err(_) => {
            let (s, _, _) = encoding_rs::WINDOWS_1252.decode(cleaned);
            (s.into_owned(), "Windows-1252")
        }
    };
    Text {
        text: text.replace("\r\n", "\n").replace('\r', "\n"),
        encoding,
    }
}

/// Whether the bytes look like text at all (a binary curve file such as Tuttnauer's `.cyc` or
/// SciCan's `.cpt` is kept but not read).
pub fn looks_like_text(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(4096)];
    let control = sample
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\n' | b'\r' | b'\t' | 0 | 0x0c | 0x1a))
        .count();
    control * 20 <= sample.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utf8_windows_1252_nuls_and_crlf() {
        let t = decode("Temp 273.2 °F\r\nNext".as_bytes());
        assert_eq!(
            (t.text.as_str(), t.encoding),
            ("Temp 273.2 °F\nNext", "UTF-8")
        );
        let t = decode(b"\0\0Temp 273.2 \xB0F\r\n");
        assert_eq!(
            (t.text.as_str(), t.encoding),
            ("Temp 273.2 °F\n", "Windows-1252")
        );
        assert!(!looks_like_text(&[
            0x40, 0x71, 0x1e, 0x01, 0x02, 0x03, 0x04, 0x05
        ]));
        assert!(looks_like_text(b"Cycle Num: 000812\n"));
    }
}
