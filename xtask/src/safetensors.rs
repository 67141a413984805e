//! A safetensors file read as its two parts, for comparing and fingerprinting weights: the JSON
//! header (tensor names, dtypes, shapes and offsets, and burn's `__metadata__`, whose keys burn
//! writes in an order that changes from process to process, so the header is compared as JSON,
//! never as bytes) and the tensor data that follows it.

use anyhow::Context;
use serde_json::{Map, Value};

/// The header and the data of the safetensors file `bytes`.
pub fn split(bytes: &[u8]) -> anyhow::Result<(Map<String, Value>, &[u8])> {
    let len = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .context("shorter than its 8-byte header length")?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(8))
        .filter(|&e| e <= bytes.len())
        .context("its header runs past the end of the file")?;
    let header = serde_json::from_slice(&bytes[8..end]).context("its header is not JSON")?;
    Ok((header, &bytes[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_splits_into_its_header_and_data_and_a_short_one_is_refused() {
        let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&1.0f32.to_le_bytes());
        let (map, data) = split(&bytes).expect("split");
        assert_eq!(map["w"]["shape"], serde_json::json!([1]));
        assert_eq!(data, 1.0f32.to_le_bytes());
        assert!(split(&bytes[..4]).is_err());
        assert!(split(&bytes[..20]).is_err());
    }
}
