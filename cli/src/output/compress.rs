//! The `.gz` and `.br` siblings `nitro build` writes for compressible `public/` files, as
//! Nitro's `compressPublicAssets` does; `nitro start` serves them to clients that accept them.

use std::io::{self, Write as _};

/// Files smaller than this are not precompressed (as Nitro).
pub(crate) const COMPRESS_MIN: u64 = 1024;

/// Whether a file is worth precompressing, by extension: text formats, SVG, JSON, WebAssembly,
/// uncompressed fonts. Never source maps (as Nitro), nor formats that are compressed already.
pub(crate) fn compressible(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "html"
            | "htm"
            | "css"
            | "js"
            | "mjs"
            | "cjs"
            | "json"
            | "jsonld"
            | "webmanifest"
            | "xml"
            | "rss"
            | "atom"
            | "svg"
            | "txt"
            | "md"
            | "csv"
            | "tsv"
            | "wasm"
            | "ttf"
            | "otf"
            | "eot"
            | "ico"
            | "yaml"
            | "yml"
            | "toml"
    )
}

pub(crate) fn gzip(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

pub(crate) fn brotli(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        // Quality 11 (the best), window 22: what build tools use for static assets.
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 << 10, 11, 22);
        writer.write_all(data)?;
        writer.flush()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn what_gets_compressed() {
        for yes in [
            "app.js",
            "style.CSS",
            "data.json",
            "logo.svg",
            "a.b.html",
            "m.wasm",
        ] {
            assert!(compressible(yes), "{yes}");
        }
        for no in [
            "app.js.map",
            "photo.png",
            "font.woff2",
            "archive.gz",
            "README",
            "x.br",
        ] {
            assert!(!compressible(no), "{no}");
        }
    }

    #[test]
    fn compressors_round_trip() {
        let data = "hello nitro ".repeat(200).into_bytes();
        let gz = gzip(&data).unwrap();
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        let br = brotli(&data).unwrap();
        let mut back = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(br.len() < data.len() / 10 && gz.len() < data.len() / 10);
    }
}
