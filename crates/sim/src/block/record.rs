//! Block records in the original API's `blockinfo` JSON shape: reading them field by field so
//! that a malformed record is refused with the name of the field at fault.

use serde_json::{Map, Value};

use super::{Block, BlockError};

/// Parses one record or an array of records, and checks each (see [`Block::verify`]).
pub fn parse_records(text: &str) -> Result<Vec<Block>, BlockError> {
    let value: Value = serde_json::from_str(text).map_err(|e| BlockError::Json(e.to_string()))?;
    let blocks = match value {
        Value::Array(items) => items
            .iter()
            .map(parse_value)
            .collect::<Result<Vec<_>, _>>()?,
        other => vec![parse_value(&other)?],
    };
    if blocks.is_empty() {
        return Err(BlockError::Json("the array holds no records".into()));
    }
    Ok(blocks)
}

/// Parses and checks one record.
pub fn parse_record(text: &str) -> Result<Block, BlockError> {
    let value: Value = serde_json::from_str(text).map_err(|e| BlockError::Json(e.to_string()))?;
    parse_value(&value)
}

/// Reads a record from a JSON value, then checks it.
pub fn parse_value(value: &Value) -> Result<Block, BlockError> {
    let Value::Object(map) = value else {
        return Err(BlockError::Json("expected a JSON object".into()));
    };
    let block = Block {
        height: required(map, "height", integer)?,
        hash: required(map, "hash", string)?,
        nonce: required(map, "nonce", integer)?,
        confirmations: optional(map, "confirmations", integer)?,
        time: optional(map, "time", integer)?,
        merkleroot: optional(map, "merkleroot", string)?,
        difficulty: optional(map, "difficulty", float)?,
        size: optional(map, "size", integer)?,
        weight: optional(map, "weight", integer)?,
        version: optional(map, "version", integer)?,
        previousblockhash: optional(map, "previousblockhash", string)?,
        bits: optional(map, "bits", bits)?,
    };
    block.verify()?;
    Ok(block)
}

type Reader<T> = fn(&Value) -> Result<T, String>;

fn required<T>(
    map: &Map<String, Value>,
    field: &'static str,
    read: Reader<T>,
) -> Result<T, BlockError> {
    optional(map, field, read)?.ok_or_else(|| BlockError::field(field, "missing"))
}

fn optional<T>(
    map: &Map<String, Value>,
    field: &'static str,
    read: Reader<T>,
) -> Result<Option<T>, BlockError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value)
            .map(Some)
            .map_err(|problem| BlockError::field(field, problem)),
    }
}

fn integer<T: TryFrom<u64>>(value: &Value) -> Result<T, String> {
    let n = value
        .as_u64()
        .ok_or_else(|| format!("expected a non-negative integer, got {value}"))?;
    T::try_from(n).map_err(|_| format!("{n} is out of range"))
}

fn float(value: &Value) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or_else(|| format!("expected a number, got {value}"))
}

fn string(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, got {value}"))
}

/// `bits` as Bitcoin Core prints it (eight hex digits) or as a plain number.
fn bits(value: &Value) -> Result<String, String> {
    match value {
        Value::String(hex) if hex.len() == 8 && u32::from_str_radix(hex, 16).is_ok() => {
            Ok(hex.to_ascii_lowercase())
        }
        Value::Number(_) => integer::<u32>(value).map(|n| format!("{n:08x}")),
        other => Err(format!("expected eight hex digits, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS_RECORD: &str = r#"{
        "height": 0,
        "hash": "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f",
        "nonce": 2083236893,
        "confirmations": 1,
        "time": 1231006505,
        "merkleroot": "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b",
        "difficulty": 1,
        "size": 285,
        "weight": 1140,
        "version": 1,
        "previousblockhash": "0000000000000000000000000000000000000000000000000000000000000000",
        "bits": "1d00ffff"
    }"#;

    #[test]
    fn genesis_record_is_accepted() {
        let block = parse_record(GENESIS_RECORD).expect("genesis record is valid");
        assert_eq!(block.height, 0);
        assert_eq!(block.nonce, 2_083_236_893);
    }

    #[test]
    fn tampered_nonce_fails_the_hash_check() {
        let text = GENESIS_RECORD.replace("2083236893", "2083236894");
        let err = parse_record(&text).expect_err("the nonce no longer matches the hash");
        assert!(matches!(err, BlockError::HashMismatch { .. }), "{err}");
    }

    #[test]
    fn record_without_header_fields_is_accepted_unchecked() {
        let text = r#"{"height": 5, "hash": "00000000839a8e6886ab5951d76f411475428afc90947ee320161bbf18eb6048", "nonce": 1}"#;
        assert!(parse_record(text).is_ok());
    }

    #[test]
    fn malformed_field_is_named() {
        let text = GENESIS_RECORD.replace("\"nonce\": 2083236893", "\"nonce\": \"many\"");
        let err = parse_record(&text).expect_err("nonce is not a number");
        assert!(err.to_string().contains("`nonce`"), "{err}");
    }

    #[test]
    fn missing_required_field_is_named() {
        let err = parse_record(r#"{"height": 1, "nonce": 1}"#).expect_err("hash is missing");
        assert_eq!(err, BlockError::field("hash", "missing"));
    }

    #[test]
    fn partial_header_is_refused() {
        let text = GENESIS_RECORD.replace("\"version\": 1,", "");
        let err = parse_record(&text).expect_err("version is missing from the header");
        assert!(matches!(err, BlockError::IncompleteHeader { .. }), "{err}");
    }

    #[test]
    fn array_of_records_is_read_in_order() {
        let text = format!("[{GENESIS_RECORD}, {GENESIS_RECORD}]");
        assert_eq!(parse_records(&text).expect("two valid records").len(), 2);
    }
}
