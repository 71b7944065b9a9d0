//! A zip of a whole SD card or USB stick, unpacked in memory with limits: folders are walked,
//! and the archive is refused whole if it would unpack beyond the limits (a zip bomb), holds
//! another archive, or names a path that leaves its folder. Sizes are counted as the bytes come
//! out, never taken from the archive's own directory.

use std::io::Read;

use super::RawFile;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file, unpacked.
    pub file_bytes: u64,
    /// Everything unpacked together.
    pub total_bytes: u64,
    /// Files in one upload.
    pub files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            file_bytes: 4 * 1024 * 1024,
            total_bytes: 256 * 1024 * 1024,
            files: 20_000,
        }
    }
}

/// Why an upload was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Beyond a size limit (answered 413).
    TooLarge(String),
    /// Not acceptable as it is (answered 422).
    Unacceptable(String),
}

pub fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")
}

/// Files a computer adds to a card that are not the device's.
fn is_clutter(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("__macosx/")
        || lower.contains("/__macosx/")
        || lower.starts_with("system volume information/")
        || lower.rsplit('/').next().is_some_and(|n| {
            n == ".ds_store" || n == "thumbs.db" || n == "desktop.ini" || n.starts_with("._")
        })
}

pub fn unpack(bytes: &[u8], limits: &Limits) -> Result<Vec<RawFile>, Refusal> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| Refusal::Unacceptable(format!("the zip cannot be read: {e}")))?;
    if zip.len() > limits.files {
        return Err(Refusal::TooLarge(format!(
            "the zip holds {} entries; at most {} files are taken in one upload",
            zip.len(),
            limits.files
        )));
    }
    let mut files = Vec::new();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| Refusal::Unacceptable(format!("entry {} cannot be read: {e}", i + 1)))?;
        let raw_name = entry.name().to_owned();
        let Some(path) = entry.enclosed_name() else {
            return Err(Refusal::Unacceptable(format!(
                "\"{raw_name}\" points outside the archive's folder"
            )));
        };
        if entry.is_dir() {
            continue;
        }
        if entry.is_symlink() {
            return Err(Refusal::Unacceptable(format!(
                "\"{raw_name}\" is a link, not a file"
            )));
        }
        let name = path.to_string_lossy().replace('\\', "/");
        if is_clutter(&name) {
            continue;
        }
        let mut content = Vec::new();
        let read = entry
            .take(limits.file_bytes + 1)
            .read_to_end(&mut content)
            .map_err(|e| Refusal::Unacceptable(format!("\"{name}\" cannot be unpacked: {e}")))?;
        if read as u64 > limits.file_bytes {
            return Err(Refusal::TooLarge(format!(
                "\"{name}\" unpacks to more than {} MB, the most one file may be",
                limits.file_bytes / (1024 * 1024)
            )));
        }
        total += read as u64;
        if total > limits.total_bytes {
            return Err(Refusal::TooLarge(format!(
                "the zip unpacks to more than {} MB, the most one upload may be",
                limits.total_bytes / (1024 * 1024)
            )));
        }
        if is_zip(&content) || name.to_ascii_lowercase().ends_with(".zip") {
            return Err(Refusal::Unacceptable(format!(
                "\"{name}\" is a zip inside the zip: unpack it and upload its files"
            )));
        }
        files.push(RawFile {
            name,
            bytes: content,
        });
    }
    Ok(files)
}

/// The files of an upload with every zip among them unpacked (its entries named by their path
/// inside it), each file checked against the limits.
pub fn expand(files: Vec<RawFile>, limits: &Limits) -> Result<Vec<RawFile>, Refusal> {
    let mut out = Vec::new();
    for f in files {
        if is_zip(&f.bytes) {
            out.extend(unpack(&f.bytes, limits)?);
        } else if f.bytes.len() as u64 > limits.file_bytes {
            return Err(Refusal::TooLarge(format!(
                "\"{}\" is larger than {} MB, the most one file may be",
                f.name,
                limits.file_bytes / (1024 * 1024)
            )));
        } else {
            out.push(f);
        }
        if out.len() > limits.files {
            return Err(Refusal::TooLarge(format!(
                "the upload holds more than {} files, the most taken at once",
                limits.files
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn walks_folders_and_refuses_bombs_nesting_and_escapes() {
        let ok = zip_of(&[("TXT/cycle_000001.txt", b"a"), ("__MACOSX/._x", b"b")]);
        let files = unpack(&ok, &Limits::default()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "TXT/cycle_000001.txt");
        let bomb = zip_of(&[("big.txt", &vec![b'0'; 2_000_000])]);
        assert!(bomb.len() < 10_000);
        let small = Limits {
            file_bytes: 1_000_000,
            ..Limits::default()
        };
        assert!(matches!(unpack(&bomb, &small), Err(Refusal::TooLarge(_))));
        let nested = zip_of(&[("inner.zip", &ok)]);
        assert!(matches!(
            unpack(&nested, &Limits::default()),
            Err(Refusal::Unacceptable(_))
        ));
        let escape = zip_of(&[("../../etc/passwd", b"x")]);
        assert!(matches!(
            unpack(&escape, &Limits::default()),
            Err(Refusal::Unacceptable(_))
        ));
    }
}
