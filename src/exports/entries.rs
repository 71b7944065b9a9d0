//! The names a zip's central directory lists, read straight from its bytes.
//!
//! Zip readers keep one entry per name: with a name listed twice, a library that looks names up
//! checks one copy while `unzip` extracts the other. Counting the directory ourselves lets the
//! verifier refuse a zip whose listing is not exactly the manifest's.

use std::io::{Read, Seek, SeekFrom};

const END_OF_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_END_OF_DIRECTORY: u32 = 0x0606_4b50;
const DIRECTORY_ENTRY: u32 = 0x0201_4b50;
/// The end record (22 bytes) plus the longest comment it may carry.
const TAIL: u64 = 22 + 0xffff;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read_at<R: Read + Seek>(r: &mut R, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    r.seek(SeekFrom::Start(offset))
        .map_err(|e| format!("not a readable zip: {e}"))?;
    let mut buf = vec![0; len];
    r.read_exact(&mut buf)
        .map_err(|_| "not a readable zip: its directory runs past the end".to_owned())?;
    Ok(buf)
}

/// Every name in the central directory, in its order, duplicates kept.
pub fn listed_names<R: Read + Seek>(r: &mut R) -> Result<Vec<String>, String> {
    let size = r
        .seek(SeekFrom::End(0))
        .map_err(|e| format!("not a readable zip: {e}"))?;
    let start = size.saturating_sub(TAIL);
    let tail = read_at(r, start, usize::try_from(size - start).unwrap_or(0))?;
    let end = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(&tail, i) == Some(END_OF_DIRECTORY))
        .ok_or("not a readable zip: no end of central directory")?;
    let malformed = || "not a readable zip: its end record is cut short".to_owned();
    let mut count = u64::from(u16_at(&tail, end + 10).ok_or_else(malformed)?);
    let mut length = u64::from(u32_at(&tail, end + 12).ok_or_else(malformed)?);
    let mut offset = u64::from(u32_at(&tail, end + 16).ok_or_else(malformed)?);
    if count == 0xffff || length == 0xffff_ffff || offset == 0xffff_ffff {
        // Zip64: the locator sits just before the end record and points at the real one.
        let locator = end
            .checked_sub(20)
            .filter(|&at| u32_at(&tail, at) == Some(ZIP64_LOCATOR))
            .ok_or("not a readable zip: a zip64 end record is missing")?;
        let record_at = u64_at(&tail, locator + 8).ok_or_else(malformed)?;
        let record = read_at(r, record_at, 56)?;
        if u32_at(&record, 0) != Some(ZIP64_END_OF_DIRECTORY) {
            return Err("not a readable zip: a zip64 end record is missing".to_owned());
        }
        count = u64_at(&record, 32).ok_or_else(malformed)?;
        length = u64_at(&record, 40).ok_or_else(malformed)?;
        offset = u64_at(&record, 48).ok_or_else(malformed)?;
    }
    if offset.checked_add(length).is_none_or(|e| e > size) {
        return Err("not a readable zip: its directory runs past the end".to_owned());
    }
    let directory = read_at(r, offset, usize::try_from(length).unwrap_or(usize::MAX))?;
    let mut names = Vec::new();
    let mut at = 0usize;
    while at < directory.len() {
        if u32_at(&directory, at) != Some(DIRECTORY_ENTRY) {
            return Err("not a readable zip: its directory is damaged".to_owned());
        }
        let field = |n| u16_at(&directory, at + n).map(usize::from);
        let (Some(name), Some(extra), Some(comment)) = (field(28), field(30), field(32)) else {
            return Err("not a readable zip: its directory is cut short".to_owned());
        };
        let bytes = directory
            .get(at + 46..at + 46 + name)
            .ok_or("not a readable zip: its directory is cut short")?;
        names.push(String::from_utf8_lossy(bytes).into_owned());
        at += 46 + name + extra + comment;
    }
    if names.len() as u64 != count {
        return Err(format!(
            "the zip's directory says {count} entries but lists {}",
            names.len()
        ));
    }
    Ok(names)
}

/// Refuses a listing that is not exactly the manifest's files and the manifest itself, once each.
/// Entries made from the manifest itself (checked against it, so not listed in it): the manifest,
/// the bytes its signature covers, and the raw signature.
const DERIVED: [&str; 3] = ["manifest.json", "manifest.signed", "manifest.sig"];

pub fn check_listing(names: &[String], manifest_files: &[&str]) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        if !seen.insert(name.as_str()) {
            return Err(format!(
                "{name} is in the zip more than once: a reader may check one copy and extract another"
            ));
        }
        if !DERIVED.contains(&name.as_str()) && !manifest_files.contains(&name.as_str()) {
            return Err(format!("{name} is in the zip but not in the manifest"));
        }
    }
    if !names.iter().any(|n| n == "manifest.json") {
        return Err("manifest.json is missing".into());
    }
    let derived = names
        .iter()
        .filter(|n| DERIVED.contains(&n.as_str()))
        .count();
    if names.len() != manifest_files.len() + derived {
        return Err(format!(
            "the zip holds {} entries but the manifest lists {} files and itself",
            names.len(),
            manifest_files.len()
        ));
    }
    Ok(())
}
