//! Logging in, tokens and their refusal, refresh rotation, logout, throttling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use base64::Engine;
use common::{assert_problem, TestApp, PASSWORD};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let header: jsonwebtoken::Header = serde_json::from_value(header.clone()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A token with exactly this header, HMAC-SHA256 signed with `secret` whatever the header says
/// (the algorithm-confusion and key-injection tricks).
fn hmac_signed(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn claims(app: &TestApp, overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "sub": app.owner.user_id,
        "iat": now,
        "exp": now + 600,
        "iss": "aseptic",
        "aud": "aseptic-api",
        "ver": 1,
        "jti": "t",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

async fn me_status(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[actix_web::test]
async fn login_returns_tokens_and_me_shows_memberships() {
    let app = TestApp::spawn().await;
    let res = app.login("Owner@Ink.Example ", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);

    let me: Value = app
        .get("/api/v1/me", &app.owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "owner@ink.example");
    assert_eq!(
        me["memberships"],
        json!([{
            "clinic_id": app.clinic_id, "clinic_name": "Ink & Needle", "role": "owner", "active": true
        }])
    );
    let tech: Value = app
        .get("/api/v1/me", &app.technician)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tech["memberships"][0]["role"], "technician");
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = TestApp::spawn().await;
    let wrong = assert_problem(
        app.login("owner@ink.example", "not the password!").await,
        401,
        None,
    )
    .await;
    let unknown = assert_problem(app.login("nobody@ink.example", PASSWORD).await, 401, None).await;
    assert_eq!(
        wrong, unknown,
        "the answer must not reveal which emails have accounts"
    );
}

#[actix_web::test]
async fn malformed_login_bodies_name_the_field() {
    let app = TestApp::spawn().await;
    let post = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_problem(
        post(r#"{"email": "owner@ink.example"}"#).await.unwrap(),
        422,
        Some("password"),
    )
    .await;
    assert_problem(
        post(r#"{"email": 7, "password": "x"}"#).await.unwrap(),
        422,
        Some("email"),
    )
    .await;
    assert_problem(
        post(r#"{"email": "", "password": ""}"#).await.unwrap(),
        422,
        Some("email"),
    )
    .await;
    assert_problem(
        post(r#"{"email": "a@b.c", "password": "x", "role": "owner"}"#)
            .await
            .unwrap(),
        422,
        Some("role"),
    )
    .await;
    assert_problem(post(r#"{"email": "#).await.unwrap(), 400, None).await;
}

#[actix_web::test]
async fn forged_tampered_and_expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let secret = app.settings.auth.jwt_secret.expose().as_bytes().to_vec();
    let header = json!({"alg": "HS256", "typ": "JWT"});
    let now = chrono::Utc::now().timestamp();

    // A well-formed token from our own key works; everything below must not.
    assert_eq!(
        me_status(&app, &hs256(&header, &claims(&app, json!({})), &secret)).await,
        200
    );

    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(&app, json!({})).to_string().as_bytes())
    );
    let other_key = hs256(
        &header,
        &claims(&app, json!({})),
        b"another-key-of-sufficient-length-000",
    );
    let expired = hs256(
        &header,
        &claims(&app, json!({"iat": now - 1000, "exp": now - 31})),
        &secret,
    );
    let wrong_aud = hs256(
        &header,
        &claims(&app, json!({"aud": "someone-else"})),
        &secret,
    );
    let wrong_iss = hs256(&header, &claims(&app, json!({"iss": "evil"})), &secret);
    let no_aud = hs256(&header, &claims(&app, json!({"aud": null})), &secret);
    let no_exp = hs256(&header, &claims(&app, json!({"exp": null})), &secret);
    let future_nbf = hs256(&header, &claims(&app, json!({"nbf": now + 600})), &secret);
    let hs512 = hs256(
        &json!({"alg": "HS512", "typ": "JWT"}),
        &claims(&app, json!({})),
        &secret,
    );
    let old_version = hs256(&header, &claims(&app, json!({"ver": 0})), &secret);
    let unknown_user = hs256(
        &header,
        &claims(&app, json!({"sub": "no-such-user"})),
        &secret,
    );
    let attacker = b"attacker-key-of-sufficient-length-0";
    let ours = claims(&app, json!({}));
    let empty_key = hmac_signed(&header, &ours, b"");
    let rs256 = hmac_signed(&json!({"alg": "RS256", "typ": "JWT"}), &ours, &secret);
    let eddsa = hmac_signed(&json!({"alg": "EdDSA", "typ": "JWT"}), &ours, &secret);
    let kid = hmac_signed(
        &json!({"alg": "HS256", "typ": "JWT", "kid": "../../../../dev/null"}),
        &ours,
        b"",
    );
    let jku = hmac_signed(
        &json!({"alg": "HS256", "typ": "JWT", "jku": "https://attacker.example/jwks.json"}),
        &ours,
        attacker,
    );
    let jwk = hmac_signed(
        &json!({"alg": "HS256", "typ": "JWT", "jwk": {"kty": "oct", "k": b64(attacker)}}),
        &ours,
        attacker,
    );
    let future_iat = hs256(&header, &claims(&app, json!({"iat": now + 600})), &secret);
    let no_sub = hs256(&header, &claims(&app, json!({"sub": null})), &secret);
    let no_iat = hs256(&header, &claims(&app, json!({"iat": null})), &secret);
    let no_iss = hs256(&header, &claims(&app, json!({"iss": null})), &secret);
    // Even with our own key: nothing this size was ever issued, and it is not decoded.
    let oversized = hs256(
        &header,
        &claims(&app, json!({"pad": "x".repeat(8 * 1024)})),
        &secret,
    );
    let mut parts: Vec<String> = app.owner.token.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims(&app, json!({"sub": app.other_owner.user_id}))
        .to_string()
        .as_bytes());
    let tampered = parts.join(".");

    for (name, token) in [
        ("alg none", none),
        ("another key", other_key),
        ("expired beyond leeway", expired),
        ("wrong audience", wrong_aud),
        ("wrong issuer", wrong_iss),
        ("missing audience", no_aud),
        ("missing expiry", no_exp),
        ("not valid yet", future_nbf),
        ("another algorithm", hs512),
        ("old token version", old_version),
        ("unknown user", unknown_user),
        ("tampered payload", tampered),
        ("garbage", "not.a.token".to_owned()),
        ("empty key", empty_key),
        ("RS256 header over an HMAC signature", rs256),
        ("EdDSA header over an HMAC signature", eddsa),
        ("kid naming an empty file", kid),
        ("jku naming the attacker's keys", jku),
        ("jwk carrying the attacker's key", jwk),
        ("issued in the future", future_iat),
        ("missing subject", no_sub),
        ("missing issued-at", no_iat),
        ("missing issuer", no_iss),
        ("oversized", oversized),
    ] {
        let res = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{name}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{name}");
        assert_problem(res, 401, None).await;
    }
    let missing = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_problem(missing, 401, None).await;
    let basic = app
        .client
        .get(app.url("/api/v1/me"))
        .basic_auth("owner@ink.example", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_problem(basic, 401, None).await;
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let refresh = |token: String| {
        app.client
            .post(app.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": token}))
            .send()
    };
    let first = app.owner.refresh_token.clone();
    let res = refresh(first.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let pair: Value = res.json().await.unwrap();
    let second = pair["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(
        me_status(&app, pair["access_token"].as_str().unwrap()).await,
        200
    );

    // The first token was used: presenting it again looks like theft, so the family dies.
    assert_problem(refresh(first).await.unwrap(), 401, None).await;
    assert_problem(refresh(second).await.unwrap(), 401, None).await;
    assert_problem(refresh("made-up".into()).await.unwrap(), 401, None).await;
}

/// Racing refreshes of one token: one wins, the rest are reuse, and reuse ends the family (the
/// winner's new token too), so a stolen token raced against its owner gains nothing.
#[actix_web::test]
async fn racing_refreshes_of_one_token_get_one_answer_and_end_the_family() {
    let app = TestApp::spawn().await;
    let token = app.owner.refresh_token.clone();
    let attempts = (0..8).map(|_| {
        app.client
            .post(app.url("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": token}))
            .send()
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut won = Vec::new();
    for res in answers {
        let res = res.unwrap();
        match res.status().as_u16() {
            200 => won.push(res.json::<Value>().await.unwrap()),
            401 => {}
            other => panic!("refresh answered {other}"),
        }
    }
    assert_eq!(won.len(), 1, "one refresh wins: {won:?}");
    let new_token = won[0]["refresh_token"].as_str().unwrap().to_owned();
    let after = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": new_token}))
        .send()
        .await
        .unwrap();
    assert_problem(after, 401, None).await;
}

#[actix_web::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": app.owner.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let again = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": app.owner.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_problem(again, 401, None).await;
}

#[actix_web::test]
async fn a_password_change_ends_older_tokens_at_once() {
    let app = TestApp::spawn().await;
    let new_password = "a brand new passphrase for the owner";
    let weak = app
        .post(
            "/api/v1/me/password",
            &app.owner,
            &json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_problem(weak, 422, Some("new_password")).await;
    let wrong = app
        .post(
            "/api/v1/me/password",
            &app.owner,
            &json!({"current_password": "not it at all", "new_password": new_password}),
        )
        .await;
    assert_problem(wrong, 422, Some("current_password")).await;
    assert_eq!(
        me_status(&app, &app.owner.token).await,
        200,
        "failed attempts change nothing"
    );

    let res = app
        .post(
            "/api/v1/me/password",
            &app.owner,
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(me_status(&app, &app.owner.token).await, 401);
    let refresh = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": app.owner.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 401);
    assert_eq!(app.login("owner@ink.example", PASSWORD).await.status(), 401);
    assert_eq!(
        app.login("owner@ink.example", new_password).await.status(),
        200
    );
}

#[actix_web::test]
async fn login_is_throttled_per_account_with_retry_after() {
    let app = TestApp::spawn_with(|s| {
        s.auth.login_per_account_burst = 3;
        s.auth.login_per_account_per_minute = 1;
    })
    .await;
    // TestApp logged the technician in once; two more attempts spend the burst of three.
    for _ in 0..2 {
        assert_eq!(
            app.login("tech@ink.example", "wrong password guess")
                .await
                .status(),
            401
        );
    }
    let res = app.login("tech@ink.example", PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_problem(res, 429, None).await;
    // Another account from the same address is not locked out by this one.
    assert_eq!(app.login("owner@ink.example", PASSWORD).await.status(), 200);
}

#[actix_web::test]
async fn login_is_throttled_per_address() {
    let app = TestApp::spawn_with(|s| {
        s.auth.login_per_address_burst = 5;
        s.auth.login_per_address_per_minute = 1;
    })
    .await;
    // Four logins were spent by TestApp itself.
    assert_eq!(
        app.login("someone@ink.example", PASSWORD).await.status(),
        401
    );
    let res = app.login("another@ink.example", PASSWORD).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_problem(res, 429, None).await;
}
