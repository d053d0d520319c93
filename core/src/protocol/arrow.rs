//! Arrow IPC helpers: validation of stream bytes, and the JSON-rows view that hosts without an
//! Arrow library (CLI, Node's default `Array<Object>`) use. spec/PROTOCOL.md §Arrow fixes the
//! type mapping this view follows.

use super::ReceiveLimits;
use crate::error::{Error, ErrorCode, Result, err};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_schema::{ArrowError, DataType, FieldRef, SchemaRef, TimeUnit};
use bytes::Bytes;
use serde_json::Value;

const FILE_MAGIC: &[u8] = b"ARROW1";

fn decode_error(e: ArrowError) -> Error {
    Error::new(ErrorCode::DeserializationError, format!("invalid Arrow IPC stream: {e}"))
}

/// Decodes every batch of an IPC stream without copying column buffers.
pub fn read_stream(bytes: &Bytes) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let unlimited = ReceiveLimits {
        max_arrow_columns: usize::MAX,
        max_arrow_batches: usize::MAX,
        max_arrow_values: u64::MAX,
        ..ReceiveLimits::default()
    };
    read_stream_within(bytes, &unlimited)
}

/// Values an arrowtable may hold for each byte of its stream beyond `max_arrow_values`: two for
/// each bit of a boolean column (its value and its row), the densest encoding that carries data.
pub const ARROW_VALUES_PER_BYTE: u64 = 16;

/// [`read_stream`], PAYLOAD_TOO_LARGE as soon as the schema has more than `max_arrow_columns`
/// fields, the stream more than `max_arrow_batches` record batches, or the batches more values
/// than `max_arrow_values` plus [`ARROW_VALUES_PER_BYTE`] per byte of the stream ([`values_in`]).
fn read_stream_within(bytes: &Bytes, limits: &ReceiveLimits) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    // These bytes come off the wire, and arrow-ipc panics on some malformed layouts (a buffer
    // offset past the end, found by tests/arrow_mutations.rs): a panic here is bad input too.
    let decode = || decode_stream(bytes, limits);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)) {
        Ok(result) => result,
        Err(_) => err(ErrorCode::DeserializationError, "invalid Arrow IPC stream: malformed buffer layout"),
    }
}

fn decode_stream(bytes: &Bytes, limits: &ReceiveLimits) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    if bytes.starts_with(FILE_MAGIC) {
        return err(
            ErrorCode::DeserializationError,
            "Arrow IPC file format (magic ARROW1) found; arrowtable payloads use the IPC stream format",
        );
    }
    let (max_columns, max_batches) = (limits.max_arrow_columns, limits.max_arrow_batches);
    let max_values = limits.max_arrow_values.saturating_add(ARROW_VALUES_PER_BYTE.saturating_mul(bytes.len() as u64));
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes.clone());
    let mut batches = Vec::new();
    let mut values = 0u64;
    while !buffer.is_empty() {
        let batch = decoder.decode(&mut buffer).map_err(decode_error)?;
        if let Some(columns) = decoder.schema().map(|s| s.fields().len()).filter(|&n| n > max_columns) {
            return err(
                ErrorCode::PayloadTooLarge,
                format!("Arrow table has {columns} columns, over the limit of {max_columns}"),
            );
        }
        if let Some(batch) = batch {
            if batches.len() == max_batches {
                return err(
                    ErrorCode::PayloadTooLarge,
                    format!("Arrow table has more than {max_batches} record batches"),
                );
            }
            // Unlimited (the sender's own check, the rows view of a stream already received):
            // nothing to count.
            if max_values != u64::MAX {
                values = values.saturating_add(values_in(&batch));
            }
            if values > max_values {
                return err(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "Arrow table of {} bytes holds over {values} values (rows, and the values of every \
                         column): over the limit of max_arrow_values ({}) plus {ARROW_VALUES_PER_BYTE} per byte",
                        bytes.len(),
                        limits.max_arrow_values
                    ),
                );
            }
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

/// What a row-by-row view of the batch writes: one object per row and every value of every
/// column, nested ones and a dictionary's included. Arrow holds some of these in no bytes at all
/// (a null-type column, a table without columns, run-end encoding), so a few hundred bytes can
/// claim 10^13 rows (found by fuzz/fuzz_targets/payload_arrow.rs).
fn values_in(batch: &RecordBatch) -> u64 {
    fn of(data: &arrow_data::ArrayData) -> u64 {
        data.child_data().iter().fold(data.len() as u64, |n, child| n.saturating_add(of(child)))
    }
    batch.columns().iter().fold(batch.num_rows() as u64, |n, column| n.saturating_add(of(&column.to_data())))
}

/// Checks that the bytes are a complete Arrow IPC stream.
pub fn validate_stream(bytes: &Bytes) -> Result<()> {
    read_stream(bytes).map(|_| ())
}

/// [`validate_stream`] within a receiver's limits (PAYLOAD_TOO_LARGE beyond them).
pub fn validate_stream_within(bytes: &Bytes, limits: &ReceiveLimits) -> Result<()> {
    read_stream_within(bytes, limits).map(|_| ())
}

/// Number of rows in an IPC stream.
pub fn num_rows(bytes: &Bytes) -> Result<usize> {
    Ok(read_stream(bytes)?.1.iter().map(RecordBatch::num_rows).sum())
}

/// The table as a JSON array of row objects (nulls kept as `null`, column order kept), following
/// spec/PROTOCOL.md §Arrow: zoned timestamps as UTC ISO 8601 with `Z`, integers beyond ±(2^53−1)
/// as decimal strings, NaN and ±Infinity as `null`.
pub fn to_json_rows(bytes: &Bytes) -> Result<Value> {
    let (_, batches) = read_stream(bytes)?;
    let text = write_rows(&batches)?;
    let mut rows: Value =
        serde_json::from_slice(&text).map_err(|e| Error::new(ErrorCode::DeserializationError, e.to_string()))?;
    unsafe_integers_to_strings(&mut rows);
    Ok(rows)
}

/// [`to_json_rows`] as JSON text, for hosts that parse the rows themselves (Node, the browser, C).
/// arrow-json's text is returned as it is unless a 64-bit integer needs the string rule: going
/// through `Value` cost Node 20–34 ms for 10,000 × 5 rows (bench/RESULTS-node.md).
pub fn to_json_rows_text(bytes: &Bytes) -> Result<String> {
    let (_, batches) = read_stream(bytes)?;
    if batches.iter().any(|b| !numbers_are_js_safe(b)) {
        return Ok(to_json_rows(bytes)?.to_string());
    }
    String::from_utf8(write_rows(&batches)?).map_err(|e| Error::new(ErrorCode::DeserializationError, e.to_string()))
}

/// arrow-json's rows (`[]` for no rows), zoned timestamps in UTC.
fn write_rows(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut writer = arrow_json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow_json::writer::JsonArray>(Vec::new());
    let batches = batches.iter().map(utc_batch).collect::<std::result::Result<Vec<_>, _>>().map_err(decode_error)?;
    for batch in &batches {
        writer.write(batch).map_err(decode_error)?;
    }
    writer.finish().map_err(decode_error)?;
    let out = writer.into_inner();
    // arrow-json writes a date or time it cannot format (a timestamp beyond chrono's years) as
    // the string "ERROR: …" in the value's place, unescaped, so the text may not even be JSON
    // (found by fuzz/fuzz_targets/payload_arrow.rs). A string value may hold those letters too,
    // so their presence only triggers the exact check.
    if memchr::memmem::find(&out, b"\"ERROR: ").is_some() {
        batches.iter().try_for_each(every_value_formats)?;
    }
    Ok(if out.is_empty() { b"[]".to_vec() } else { out })
}

/// DESERIALIZATION_ERROR for the first value of `batch` that arrow cannot format, as pyarrow
/// refuses to convert such a timestamp to Python.
fn every_value_formats(batch: &RecordBatch) -> Result<()> {
    use arrow_cast::display::{ArrayFormatter, FormatOptions};
    let mut text = String::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::new()).map_err(decode_error)?;
        for row in (0..column.len()).filter(|&i| column.is_valid(i)) {
            text.clear();
            formatter.value(row).write(&mut text).map_err(|e| {
                Error::new(
                    ErrorCode::DeserializationError,
                    format!("arrowtable column {:?}, row {row}: {e}", field.name()),
                )
            })?;
        }
    }
    Ok(())
}

/// True when arrow-json's text of `batch` has no integer beyond ±(2^53 − 1): every column is of
/// a flat type whose JSON is a string, a bool, a float or a small integer, or a 64-bit integer
/// column whose values are all in range. Anything else (nested types) takes the `Value` path.
fn numbers_are_js_safe(batch: &RecordBatch) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, UInt64Type};
    batch.columns().iter().all(|column| match column.data_type() {
        DataType::Int64 => {
            column.as_primitive::<Int64Type>().values().iter().all(|v| v.unsigned_abs() <= MAX_SAFE_INTEGER)
        }
        DataType::UInt64 => column.as_primitive::<UInt64Type>().values().iter().all(|&v| v <= MAX_SAFE_INTEGER),
        other => writes_no_large_integer(other),
    })
}

/// Types whose every JSON value is a string, a bool, null, a float or an integer of at most 32 bits.
fn writes_no_large_integer(data_type: &DataType) -> bool {
    match data_type {
        // Only the dictionary's values are written (apache-arrow JS encodes strings this way).
        DataType::Dictionary(_, values) => writes_no_large_integer(values),
        DataType::Null
        | DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Utf8View
        | DataType::Date32
        | DataType::Date64
        | DataType::Timestamp(_, _) => true,
        _ => false,
    }
}

/// Largest integer a JavaScript Number holds exactly (2^53 − 1).
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A JSON-rows view must read the same in every language: JavaScript's JSON.parse would round
/// 2^53 + 1, so integers beyond ±(2^53 − 1) become decimal strings.
fn unsafe_integers_to_strings(v: &mut Value) {
    match v {
        Value::Number(n) => {
            let unsafe_int = match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => i.unsigned_abs() > MAX_SAFE_INTEGER,
                (None, Some(u)) => u > MAX_SAFE_INTEGER,
                _ => false,
            };
            if unsafe_int {
                *v = Value::String(n.to_string());
            }
        }
        Value::Array(items) => items.iter_mut().for_each(unsafe_integers_to_strings),
        Value::Object(map) => map.values_mut().for_each(unsafe_integers_to_strings),
        _ => {}
    }
}

/// arrow-json formats zoned timestamps through chrono and, without a time-zone database, knows
/// only fixed offsets: a column tagged "UTC" (pandas' and pyarrow's usual tag) or "Asia/Tokyo"
/// fails. The stored values are UTC instants whatever the tag, so the view re-tags every zoned
/// timestamp "+00:00", which arrow-json renders with `Z`. The zone stays in the Arrow schema.
fn utc_batch(batch: &RecordBatch) -> std::result::Result<RecordBatch, ArrowError> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| has_zoned_timestamp(f.data_type())) {
        return Ok(batch.clone());
    }
    let columns = batch.columns().iter().map(utc_array).collect::<std::result::Result<Vec<_>, _>>()?;
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    let schema = std::sync::Arc::new(arrow_schema::Schema::new_with_metadata(fields, schema.metadata().clone()));
    RecordBatch::try_new_with_options(
        schema,
        columns,
        &arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

fn has_zoned_timestamp(t: &DataType) -> bool {
    match t {
        DataType::Timestamp(_, tz) => tz.is_some(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) | DataType::Map(f, _) => {
            has_zoned_timestamp(f.data_type())
        }
        DataType::Struct(fields) => fields.iter().any(|f| has_zoned_timestamp(f.data_type())),
        DataType::Dictionary(_, values) => has_zoned_timestamp(values),
        _ => false,
    }
}

fn utc_array(a: &ArrayRef) -> std::result::Result<ArrayRef, ArrowError> {
    use arrow_array::cast::AsArray as _;
    use arrow_array::types::*;
    use arrow_array::*;
    use std::sync::Arc;
    if !has_zoned_timestamp(a.data_type()) {
        return Ok(a.clone());
    }
    let retag =
        |f: &FieldRef, values: &ArrayRef| Arc::new(f.as_ref().clone().with_data_type(values.data_type().clone()));
    Ok(match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            Arc::new(a.as_primitive::<TimestampSecondType>().clone().with_timezone_utc())
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            Arc::new(a.as_primitive::<TimestampMillisecondType>().clone().with_timezone_utc())
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Arc::new(a.as_primitive::<TimestampMicrosecondType>().clone().with_timezone_utc())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            Arc::new(a.as_primitive::<TimestampNanosecondType>().clone().with_timezone_utc())
        }
        DataType::Struct(_) => {
            let (fields, columns, nulls) = a.as_struct().clone().into_parts();
            let columns = columns.iter().map(utc_array).collect::<std::result::Result<Vec<_>, _>>()?;
            let fields: Vec<FieldRef> = fields.iter().zip(&columns).map(|(f, c)| retag(f, c) as FieldRef).collect();
            Arc::new(StructArray::try_new(fields.into(), columns, nulls)?)
        }
        DataType::List(_) => {
            let (field, offsets, values, nulls) = a.as_list::<i32>().clone().into_parts();
            let values = utc_array(&values)?;
            Arc::new(ListArray::try_new(retag(&field, &values), offsets, values, nulls)?)
        }
        DataType::LargeList(_) => {
            let (field, offsets, values, nulls) = a.as_list::<i64>().clone().into_parts();
            let values = utc_array(&values)?;
            Arc::new(LargeListArray::try_new(retag(&field, &values), offsets, values, nulls)?)
        }
        DataType::FixedSizeList(_, _) => {
            let (field, size, values, nulls) = a.as_fixed_size_list().clone().into_parts();
            let values = utc_array(&values)?;
            Arc::new(FixedSizeListArray::try_new(retag(&field, &values), size, values, nulls)?)
        }
        DataType::Map(_, _) => {
            let (field, offsets, entries, nulls, ordered) = a.as_map().clone().into_parts();
            let entries = utc_array(&(Arc::new(entries) as ArrayRef))?;
            let field = retag(&field, &entries);
            Arc::new(MapArray::try_new(field, offsets, entries.as_struct().clone(), nulls, ordered)?)
        }
        DataType::Dictionary(_, _) => match a.as_any_dictionary_opt() {
            Some(d) => d.with_values(utc_array(d.values())?),
            None => a.clone(),
        },
        _ => a.clone(),
    })
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
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone()).build_decoder().map_err(|e| bad(e.to_string()))?;
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

    fn stream_of(batch: &RecordBatch) -> Bytes {
        let mut out = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        writer.write(batch).unwrap();
        writer.finish().unwrap();
        Bytes::from(out)
    }

    /// A few hundred bytes may claim any number of rows when no column needs a byte per row: the
    /// fuzzer sent a 524-byte table without columns and with 64,871,186,038,831 rows, whose JSON
    /// rows view ran out of memory. The receiver counts the values a row view would hold.
    #[test]
    fn rows_that_no_bytes_pay_for_are_too_large() {
        use arrow_array::{BooleanArray, NullArray, RecordBatchOptions};
        let limits = ReceiveLimits::default();
        let no_columns = |rows| {
            let schema = std::sync::Arc::new(arrow_schema::Schema::empty());
            let options = RecordBatchOptions::new().with_row_count(Some(rows));
            stream_of(&RecordBatch::try_new_with_options(schema, vec![], &options).unwrap())
        };
        let nulls = |rows| {
            stream_of(
                &RecordBatch::try_from_iter([("n", std::sync::Arc::new(NullArray::new(rows)) as ArrayRef)]).unwrap(),
            )
        };
        for bomb in [no_columns(64_871_186_038_831), nulls(1 << 40)] {
            assert!(bomb.len() < 600, "{} bytes", bomb.len());
            let started = std::time::Instant::now();
            let e = validate_stream_within(&bomb, &limits).unwrap_err();
            assert_eq!(e.code, ErrorCode::PayloadTooLarge, "{e}");
            assert!(e.message.contains("max_arrow_values"), "{e}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(5),
                "refused only after {:?}",
                started.elapsed()
            );
        }
        // Within the allowance they decode, and so does what a receiver allows on purpose.
        validate_stream_within(&no_columns(1000), &limits).unwrap();
        assert_eq!(to_json_rows(&no_columns(3)).unwrap(), json!([{}, {}, {}]));
        let roomy = ReceiveLimits { max_arrow_values: 1 << 41, ..ReceiveLimits::default() };
        validate_stream_within(&nulls(1 << 40), &roomy).unwrap();
        // The densest column that carries data, a boolean bit per row, is never refused.
        let bits = BooleanArray::from(vec![true; 8_000_000]);
        let booleans = stream_of(&RecordBatch::try_from_iter([("b", std::sync::Arc::new(bits) as ArrayRef)]).unwrap());
        let none = ReceiveLimits { max_arrow_values: 0, ..ReceiveLimits::default() };
        validate_stream_within(&booleans, &none).unwrap();
        assert_eq!(validate_stream_within(&no_columns(10_000), &none).unwrap_err().code, ErrorCode::PayloadTooLarge);
    }

    /// One Timestamp(ms) column, as an IPC stream.
    fn timestamps(values: Vec<Option<i64>>, tz: Option<&str>) -> Bytes {
        use arrow_array::TimestampMillisecondArray;
        let column = TimestampMillisecondArray::from(values).with_timezone_opt(tz);
        let batch = RecordBatch::try_from_iter([("at", std::sync::Arc::new(column) as ArrayRef)]).unwrap();
        let mut out = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema()).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn a_timestamp_beyond_the_calendar_is_refused_not_written_as_an_error_string() {
        // 32 million years after 1970: chrono has no such date. With a zone arrow-json's "ERROR: …"
        // text broke the JSON; without one it came back as the string value "ERROR: …".
        for tz in [Some("+00:00"), Some("UTC"), None] {
            let ipc = timestamps(vec![Some(1), None, Some(1_008_823_909_052_584_011)], tz);
            for e in [to_json_rows(&ipc).unwrap_err(), to_json_rows_text(&ipc).unwrap_err()] {
                assert_eq!(e.code, ErrorCode::DeserializationError, "{tz:?}: {e}");
                assert!(e.message.contains(r#"column "at", row 2"#), "{tz:?}: {e}");
            }
        }
        // In range, and a string value that reads like arrow-json's error text, still decode.
        let ipc = timestamps(vec![Some(1), None], Some("UTC"));
        assert_eq!(to_json_rows(&ipc).unwrap(), json!([{"at": "1970-01-01T00:00:00.001Z"}, {"at": null}]));
        let rows = json!([{"s": "ERROR: not one"}]);
        let ipc = from_json_rows(&rows).unwrap();
        assert_eq!(to_json_rows(&ipc).unwrap(), rows);
        assert_eq!(to_json_rows_text(&ipc).unwrap(), r#"[{"s":"ERROR: not one"}]"#);
    }

    #[test]
    fn rows_round_trip_with_nulls() {
        let rows = json!([{"id": 1, "name": "a", "score": 0.5}, {"id": 2, "name": null, "score": 1.5}]);
        let ipc = from_json_rows(&rows).unwrap();
        assert_eq!(num_rows(&ipc).unwrap(), 2);
        assert_eq!(to_json_rows(&ipc).unwrap(), rows);
    }

    #[test]
    fn rows_text_parses_to_the_rows_value() {
        let cases = [
            json!([{"id": 1, "name": "a", "x": 0.5, "ok": true}, {"id": null, "name": "é\"\n", "x": 1e300, "ok": null}]),
            json!([{"big": 9_007_199_254_740_993_i64, "f": 1_152_921_504_606_846_976.0_f64}]), // 2^53 + 1: a string
            json!([{"neg": -9_007_199_254_740_993_i64}, {"neg": 3}]),
            json!([{"nested": {"a": [1, 2]}, "s": "x"}]),
            json!([]),
        ];
        for rows in cases {
            let ipc = from_json_rows(&rows).unwrap();
            let text = to_json_rows_text(&ipc).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, to_json_rows(&ipc).unwrap(), "{text}");
        }
        let big = from_json_rows(&json!([{"big": 9_007_199_254_740_993_i64}])).unwrap();
        assert_eq!(to_json_rows_text(&big).unwrap(), r#"[{"big":"9007199254740993"}]"#);
    }

    #[test]
    fn dictionary_strings_take_the_text_path() {
        use arrow_array::types::Int32Type;
        use arrow_array::{DictionaryArray, Int64Array};
        let names: DictionaryArray<Int32Type> = ["a", "b", "a"].into_iter().collect();
        let batch = RecordBatch::try_from_iter([
            ("name", std::sync::Arc::new(names) as ArrayRef),
            ("n", std::sync::Arc::new(Int64Array::from(vec![1, -2, 3])) as ArrayRef),
        ])
        .unwrap();
        assert!(numbers_are_js_safe(&batch));
        let mut ipc = Vec::new();
        let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut ipc, &batch.schema()).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        let ipc = Bytes::from(ipc);
        let text = to_json_rows_text(&ipc).unwrap();
        assert_eq!(text, r#"[{"name":"a","n":1},{"name":"b","n":-2},{"name":"a","n":3}]"#);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), to_json_rows(&ipc).unwrap());
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
