//! The pages' assets, built into the binary and served under a path that holds a hash of their
//! bytes: a browser may keep each for a year, and a new release's file has a new path.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/htmx-2.0.11.min.js"),
    },
];

/// Each asset's served path, `/assets/<first 16 hex of SHA-256>/<name>`.
fn paths() -> &'static Vec<String> {
    static PATHS: OnceLock<Vec<String>> = OnceLock::new();
    PATHS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let digest = hex::encode(Sha256::digest(a.bytes));
                format!("/assets/{}/{}", &digest[..16], a.name)
            })
            .collect()
    })
}

/// Where a page links an asset.
pub fn path(name: &str) -> &'static str {
    ASSETS
        .iter()
        .position(|a| a.name == name)
        .and_then(|i| paths().get(i))
        .map_or("/assets/missing", String::as_str)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/assets/{hash}/{name}", web::get().to(serve));
}

async fn serve(path: web::Path<(String, String)>) -> HttpResponse {
    let (hash, name) = path.into_inner();
    let wanted = format!("/assets/{hash}/{name}");
    match paths().iter().position(|p| *p == wanted) {
        Some(i) => HttpResponse::Ok()
            .content_type(ASSETS[i].content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .body(ASSETS[i].bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body("no such asset in this release"),
    }
}
