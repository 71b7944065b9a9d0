//! Access tokens (short-lived JWTs, one pinned algorithm) and refresh tokens (opaque, stored hashed).

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::AuthSettings;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// The user's token version when issued; a password change or deactivation bumps it.
    pub ver: i64,
    pub jti: String,
}

/// The longest access token `check` decodes: well above the few hundred bytes of an issued one.
const MAX_TOKEN_BYTES: usize = 2048;

/// Signs and checks access tokens with the configured secret.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_days: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid access token: {0}")]
pub struct InvalidToken(String);

impl TokenKeys {
    pub fn new(settings: &AuthSettings) -> Self {
        let secret = settings.jwt_secret.expose().as_bytes();
        // Pinning HS256 refuses `alg: none` and any algorithm-confusion trick; jsonwebtoken's
        // default leeway (60 s) is longer than we allow, and `aud` must be made mandatory.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = settings.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            access_ttl_secs: settings.access_token_ttl_secs,
            refresh_ttl_days: settings.refresh_token_ttl_days,
        }
    }

    pub fn issue(&self, user_id: &str, token_version: i64) -> Result<String, InvalidToken> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_owned(),
            iat: now,
            exp: now + self.access_ttl_secs as i64,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            ver: token_version,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| InvalidToken(e.to_string()))
    }

    pub fn check(&self, token: &str) -> Result<Claims, InvalidToken> {
        // Ours are a few hundred bytes; a huge one is not decoded at all.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(InvalidToken(
                "longer than any token this service issues".to_owned(),
            ));
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| InvalidToken(e.to_string()))?;
        // `iat` is required above; a token claiming to come from the future is forged or skewed.
        let now = chrono::Utc::now().timestamp();
        if data.claims.iat > now + self.validation.leeway as i64 {
            return Err(InvalidToken("issued in the future".to_owned()));
        }
        Ok(data.claims)
    }
}

/// A new opaque refresh token: 256 random bits, URL-safe.
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Refresh tokens are stored only as this hash, so a database leak does not leak sessions.
pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn settings(secret: &str) -> AuthSettings {
        AuthSettings {
            jwt_secret: Secret::new(secret),
            issuer: "aseptic".into(),
            audience: "aseptic-api".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 30,
            leeway_secs: 5,
            login_per_address_burst: 1,
            login_per_address_per_minute: 1,
            login_per_account_burst: 1,
            login_per_account_per_minute: 1,
            browser_idle_minutes: 30,
            browser_absolute_hours: 12,
        }
    }

    #[test]
    fn issued_tokens_check_and_foreign_ones_do_not() {
        let keys = TokenKeys::new(&settings("a-test-secret-that-is-long-enough-123"));
        let token = keys.issue("user-1", 3).unwrap();
        let claims = keys.check(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.ver), ("user-1", 3));
        assert_eq!(claims.exp - claims.iat, 900);

        let other = TokenKeys::new(&settings("another-secret-that-is-long-enough-456"));
        assert!(other.check(&token).is_err());
    }

    #[test]
    fn refresh_tokens_are_random_and_hashed() {
        let a = new_refresh_token();
        assert_ne!(a, new_refresh_token());
        assert_eq!(hash_refresh_token(&a).len(), 64);
        assert_ne!(hash_refresh_token(&a), a);
    }
}
