//! Everything the docs component serves is made here, at build time:
//! - `openapi.json`, from the dispatcher's route table and response types;
//! - `scalar.js` (and gzipped), Scalar's standalone bundle from the npm package `@scalar/api-reference`, at a
//!   pinned version whose checksum is checked, so the docs work with no internet access;
//! - `docs.html`, whose one inline script is allowed by its hash in the page's CSP.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256, Sha512};

const SCALAR_PACKAGE: &str = "@scalar/api-reference";
const SCALAR_VERSION: &str = "1.76.0";
/// The npm registry's `dist.integrity` for that version.
const SCALAR_INTEGRITY: &str =
    "sha512-pjqwnzmA9YK3ZX+IZSICMsywm4qI6HLSngR2py9H6TvFApHHuJjkTAd+gFJfnqJDzJuro8k7ji6JCtJ2U+Byng==";
const SCALAR_FILE: &str = "package/dist/browser/standalone.js";

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../src");
    println!("cargo:rerun-if-env-changed=SCALAR_TGZ");

    let document = libra_dispatcher::openapi::document();
    let json = serde_json::to_string_pretty(&document).expect("the document serialises");
    std::fs::write(out.join("openapi.json"), json).expect("OUT_DIR is writable");

    let script = scalar_bundle(&out);
    // Served to the browsers that accept it (all of them): 4.8 MB becomes about a quarter.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&script).expect("compresses in memory");
    std::fs::write(out.join("scalar.js.gz"), gzip.finish().expect("compresses in memory"))
        .expect("OUT_DIR is writable");
    std::fs::write(out.join("scalar.js"), script).expect("OUT_DIR is writable");

    // Everything that would reach Scalar's servers is off: fonts, telemetry, the AI agent, MCP,
    // and the developer-tools banner. The CSP would block them anyway; this keeps the page quiet.
    let init = "Scalar.createApiReference('#app', { url: '/openapi.json', favicon: '/favicon.ico', \
                withDefaultFonts: false, telemetry: false, hideClientButton: true, \
                showDeveloperTools: 'never', defaultOpenAllTags: true, agent: { disabled: true }, mcp: { disabled: true } });"
        .to_string();
    let hash = base64(&Sha256::digest(init.as_bytes()));
    let html = include_str!("src/docs.html")
        .replace("{{INIT}}", &init)
        .replace("{{TITLE}}", &format!("{} API", libra_dispatcher::SERVICE))
        .replace("{{VERSION}}", libra_dispatcher::VERSION);
    std::fs::write(out.join("docs.html"), html).expect("OUT_DIR is writable");
    std::fs::write(out.join("init-script-hash.txt"), format!("'sha256-{hash}'")).expect("OUT_DIR is writable");
}

/// Scalar's bundle with its licence notice in front. `SCALAR_TGZ` names an already downloaded
/// tarball (offline builds); otherwise `npm pack` fetches it. Either way the checksum must match.
fn scalar_bundle(out: &Path) -> Vec<u8> {
    let tarball = match std::env::var_os("SCALAR_TGZ") {
        Some(path) => PathBuf::from(path),
        None => npm_pack(out),
    };
    let bytes = std::fs::read(&tarball).unwrap_or_else(|e| panic!("cannot read {}: {e}", tarball.display()));
    let integrity = format!("sha512-{}", base64(&Sha512::digest(&bytes)));
    assert_eq!(
        integrity,
        SCALAR_INTEGRITY,
        "{} is not {SCALAR_PACKAGE}@{SCALAR_VERSION} as published",
        tarball.display()
    );
    let extract = out.join("scalar");
    std::fs::create_dir_all(&extract).expect("OUT_DIR is writable");
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&extract)
        .arg(SCALAR_FILE)
        .status()
        .expect("`tar` runs");
    assert!(
        status.success(),
        "cannot extract {SCALAR_FILE} from {}",
        tarball.display()
    );
    let mut script = format!(
        "/*! {SCALAR_PACKAGE} {SCALAR_VERSION} | MIT License | Copyright (c) 2023-present Scalar | https://github.com/scalar/scalar \
         (licence text: components/docs/THIRD_PARTY_LICENSES.md) */\n"
    )
    .into_bytes();
    script.extend(std::fs::read(extract.join(SCALAR_FILE)).expect("extracted"));
    script
}

fn npm_pack(out: &Path) -> PathBuf {
    let spec = format!("{SCALAR_PACKAGE}@{SCALAR_VERSION}");
    let output = Command::new("npm")
        .args(["pack", &spec, "--silent", "--pack-destination"])
        .arg(out)
        .output()
        .unwrap_or_else(|e| panic!("the docs component needs npm to fetch {spec} (or SCALAR_TGZ=<tarball>): {e}"));
    assert!(
        output.status.success(),
        "npm pack {spec} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let name = String::from_utf8_lossy(&output.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    out.join(name)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}
