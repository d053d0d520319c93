//! Arrow IPC helpers: validation of stream bytes, and the JSON-rows view that hosts without an
//! Arrow library (CLI, Node's default `Array<Object>`) use. spec/PROTOCOL.md §Arrow fixes the
//! type mapping this view follows.

use crate::error::{Error, ErrorCode, Result, err};
use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::{ArrowError, SchemaRef};
use bytes::Bytes;
use serde_json::Value;

const FILE_MAGIC: &[u8] = b"ARROW1";

fn decode_error(e: ArrowError) -> Error {
    Error::new(ErrorCode::DeserializationError, format!("invalid Arrow IPC stream: {e}"))
}

/// Decodes every batch of an IPC stream without copying column buffers.
pub fn read_stream(bytes: &Bytes) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if bytes.starts_with(FILE_MAGIC) {
        return err(
            ErrorCode::DeserializationError,
            "Arrow IPC file format (magic ARROW1) found; arrowtable payloads use the IPC stream format",
        );
    }
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes.clone());
    let mut batches = Vec::new();
    while !buffer.is_empty() {
        if let Some(batch) = decoder.decode(&mut buffer).map_err(decode_error)? {
            batches.push(batch);
        }
    }
    decoder.finish().map_err(decode_error)?;
    let schema = match decoder.schema() {
        Some(s) => s,
        None => return err(ErrorCode::DeserializationError, "invalid Arrow IPC stream: no schema message"),
    };
    Ok((schema, batches))
}

/// Checks that the bytes are a complete Arrow IPC stream.
pub fn validate_stream(bytes: &Bytes) -> Result<()> {
    read_stream(bytes).map(|_| ())
}

/// Number of rows in an IPC stream.
pub fn num_rows(bytes: &Bytes) -> Result<usize> {
    Ok(read_stream(bytes)?.1.iter().map(RecordBatch::num_rows).sum())
}

/// The table as a JSON array of row objects (nulls kept as `null`, column order kept).
pub fn to_json_rows(bytes: &Bytes) -> Result<Value> {
    let (_, batches) = read_stream(bytes)?;
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
    for batch in &batches {
        writer.write(batch).map_err(decode_error)?;
    }
    writer.finish().map_err(decode_error)?;
    let out = writer.into_inner();
    if out.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    serde_json::from_slice(&out).map_err(|e| Error::new(ErrorCode::DeserializationError, e.to_string()))
}

/// Builds an IPC stream from JSON rows, inferring the schema (int64, float64, utf8, bool, lists,
/// structs). Used by hosts that hold rows rather than an Arrow table (the CLI).
pub fn from_json_rows(rows: &Value) -> Result<Bytes> {
    let bad = |m: String| Error::new(ErrorCode::InvalidPayloadType, m);
    let Value::Array(items) = rows else {
        return Err(bad("an arrowtable built from JSON needs an array of row objects".into()));
    };
    let schema = arrow_json::reader::infer_json_schema_from_iterator(items.iter().map(|v| Ok(v.clone())))
        .map_err(|e| bad(format!("cannot infer an Arrow schema from the rows: {e}")))?;
    let schema = std::sync::Arc::new(schema);
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .build_decoder()
        .map_err(|e| bad(e.to_string()))?;
    decoder.serialize(items).map_err(|e| bad(format!("rows do not fit the inferred schema: {e}")))?;
    let mut out = Vec::new();
    {
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).map_err(|e| bad(e.to_string()))?;
        while let Some(batch) = decoder.flush().map_err(|e| bad(e.to_string()))? {
            writer.write(&batch).map_err(|e| bad(e.to_string()))?;
        }
        writer.finish().map_err(|e| bad(e.to_string()))?;
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_round_trip_with_nulls() {
        let rows = json!([{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": null, "score": 1.5}]);
        let ipc = from_json_rows(&rows).unwrap();
        assert_eq!(num_rows(&ipc).unwrap(), 2);
        assert_eq!(to_json_rows(&ipc).unwrap(), rows);
    }

    #[test]
    fn zero_rows() {
        let ipc = from_json_rows(&json!([])).unwrap();
        assert_eq!(num_rows(&ipc).unwrap(), 0);
        assert_eq!(to_json_rows(&ipc).unwrap(), json!([]));
    }

    #[test]
    fn truncated_stream_is_rejected() {
        let ipc = from_json_rows(&json!([{"a": 1}])).unwrap();
        let cut = ipc.slice(..ipc.len() / 2);
        assert_eq!(validate_stream(&cut).unwrap_err().code, ErrorCode::DeserializationError);
    }
}
