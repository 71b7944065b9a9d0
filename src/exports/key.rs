//! The installation's export signing key: Ed25519, kept as a PKCS#8 PEM file (never in the
//! database), created on first start where none exists yet.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Where the key lives when the configuration names no path: beside the default database.
pub const DEFAULT_PATH: &str = "data/export-key.pem";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("export signing key {path}: {reason}")]
    File { path: String, reason: String },
}

pub struct ExportKey {
    signing: SigningKey,
    pub path: PathBuf,
}

impl std::fmt::Debug for ExportKey {
    // The private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportKey")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl ExportKey {
    /// Loads the key at `path` (or [`DEFAULT_PATH`] when empty), creating it when the file does
    /// not exist yet. A file that exists but is not an Ed25519 PKCS#8 PEM key is an error: a
    /// new key would make every earlier export unverifiable.
    pub fn load_or_create(configured: &str) -> Result<Self, KeyError> {
        let path = PathBuf::from(match configured.trim() {
            "" => DEFAULT_PATH,
            p => p,
        });
        let fail = |reason: String| KeyError::File {
            path: path.display().to_string(),
            reason,
        };
        if path.exists() {
            let pem = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
            let signing = SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| fail(format!("not an Ed25519 PKCS#8 PEM private key ({e})")))?;
            return Ok(Self { signing, path });
        }
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        // PKCS#8 v1 (the private key alone), which every OpenSSL reads.
        let pem = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: signing.to_bytes(),
            public_key: None,
        }
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| fail(e.to_string()))?;
        write_private(&path, pem.as_bytes()).map_err(|e| fail(e.to_string()))?;
        tracing::info!(path = %path.display(), "created the export signing key");
        Ok(Self { signing, path })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key as SubjectPublicKeyInfo PEM, as `openssl pkey -pubin` reads it.
    pub fn public_pem(&self) -> String {
        self.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// SHA-256 of the raw 32-byte public key, hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.verifying_key().as_bytes()))
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }
}

/// Writes a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Verifier;

    #[test]
    fn a_key_is_created_once_and_loaded_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/export.pem");
        let first = ExportKey::load_or_create(path.to_str().unwrap()).unwrap();
        let again = ExportKey::load_or_create(path.to_str().unwrap()).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        let signature = ed25519_dalek::Signature::from_bytes(&again.sign(b"manifest"));
        first
            .verifying_key()
            .verify(b"manifest", &signature)
            .unwrap();
        assert!(first.public_pem().starts_with("-----BEGIN PUBLIC KEY-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("export.pem");
        std::fs::write(&path, "not a key").unwrap();
        let err = ExportKey::load_or_create(path.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("not an Ed25519"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key");
    }
}
