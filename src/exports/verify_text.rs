//! `VERIFY.txt`: how an inspector checks an export with standard tools, in plain words.

use chrono::NaiveDateTime;

/// The guide for one export: the clinic, the period (UTC, as the manifest states it) and the
/// fingerprint of the key that signed it.
pub fn guide(clinic: &str, fingerprint: &str, from: NaiveDateTime, to: NaiveDateTime) -> String {
    let t = |x: NaiveDateTime| x.format("%Y-%m-%d %H:%M UTC").to_string();
    format!(
        "HOW TO CHECK THIS EXPORT
========================

This zip holds the infection-control records of {clinic} from {from} to {to}: the
records as CSV files, every change to them as an audit chain (audit.jsonl), and the same records
as a document (report.pdf). Nothing in it can be changed without the checks below failing.

What each file is
-----------------
  report.pdf            the records as a document, to read
  *.csv                 the records as tables, to process (UTF-8, one header row)
  audit.jsonl           every recorded change, one per line, each linked to the one before
  manifest.json         the list of files with their SHA-256, signed by the installation
  SHA256SUMS            the same hashes in the form sha256sum reads
  manifest.signed       the exact bytes of the manifest that were signed
  manifest.sig          the signature (Ed25519, 64 bytes)
  VERIFY.txt            this guide

1. Check that no file was changed
---------------------------------
Unzip the export into an empty folder and, in that folder, run:

    sha256sum -c SHA256SUMS

Every line must end in OK. (On a Mac: shasum -a 256 -c SHA256SUMS.)

2. Check that the list of files is the one the installation signed
-------------------------------------------------------------------
Fetch the installation's public key (the clinic can tell you its address):

    curl -s https://<installation address>/.well-known/aseptic/export-key?format=pem -o export-key.pem

Make sure it is the key that signed this export: its fingerprint must be

    {fingerprint}

    openssl pkey -pubin -in export-key.pem -outform DER | tail -c 32 | sha256sum

Then check the signature:

    openssl pkeyutl -verify -pubin -inkey export-key.pem -rawin -in manifest.signed -sigfile manifest.sig

It must print \"Signature Verified Successfully\". manifest.signed is manifest.json in canonical
form (RFC 8785, without its \"signature\" member); the hashes in it are the ones SHA256SUMS lists.

3. Check the audit chain (optional)
-----------------------------------
Each line of audit.jsonl carries the hash of the line before it (prev_hash) and its own (hash).
docs/audit-chain.md in the Aseptic source describes how each hash is computed, so the chain can
be recomputed with any language's SHA-256. The Aseptic program does all three checks at once:

    aseptic verify-export export.zip --key export-key.pem
",
        from = t(from),
        to = t(to),
    )
}
