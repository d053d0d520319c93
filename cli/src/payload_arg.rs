//! `-p TYPE:NAME=VALUE` payload arguments. VALUE `@path` reads a file (an image, audio, video
//! or binary file is read only while it is sent, so one of any size is never held whole);
//! dictionary and jsontable values are JSON; an arrowtable is an Arrow IPC stream file or JSON rows.

use bytes::Bytes;
use natsbridge::error::{Error, ErrorCode};
use natsbridge::io::{ByteSource, Outgoing};
use natsbridge::protocol::{Data, PayloadType, arrow};

pub fn parse_all(args: &[String]) -> Result<Vec<Outgoing>, Error> {
    args.iter().map(|a| parse(a)).collect()
}

fn parse(arg: &str) -> Result<Outgoing, Error> {
    let bad = |m: &str| Error::new(ErrorCode::InvalidPayloadType, format!("payload {arg:?}: {m}"));
    let (type_name, rest) = arg.split_once(':').ok_or_else(|| bad("expected TYPE:NAME=VALUE"))?;
    let (name, value) = rest.split_once('=').ok_or_else(|| bad("expected TYPE:NAME=VALUE"))?;
    let payload_type = PayloadType::parse(type_name)?;
    if let (true, Some(path)) = (payload_type.is_bytes(), value.strip_prefix('@')) {
        let source = ByteSource::file(path).map_err(|e| bad(&format!("cannot read {}", e.message)))?;
        return Outgoing::from_source(name, type_name, source);
    }
    let raw: Bytes = match value.strip_prefix('@') {
        Some(path) => std::fs::read(path).map(Bytes::from).map_err(|e| bad(&format!("cannot read {path}: {e}")))?,
        None => Bytes::copy_from_slice(value.as_bytes()),
    };
    let json = |raw: &Bytes| serde_json::from_slice(raw).map_err(|e| bad(&format!("not valid JSON: {e}")));
    let data = match payload_type {
        PayloadType::Text => Data::Text(String::from_utf8(raw.to_vec()).map_err(|_| bad("text must be UTF-8"))?),
        PayloadType::Dictionary | PayloadType::JsonTable => Data::Json(json(&raw)?),
        // An IPC stream starts with the 0xFFFFFFFF continuation marker; anything else is JSON rows.
        PayloadType::ArrowTable if raw.starts_with(&[0xff; 4]) => Data::Arrow(raw),
        PayloadType::ArrowTable => Data::Arrow(arrow::from_json_rows(&json(&raw)?)?),
        _ => Data::Bytes(raw),
    };
    Ok(Outgoing::new(name, data, payload_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_names_and_values() {
        let p = parse("text:msg=a=b").unwrap();
        assert_eq!((p.dataname.as_str(), p.data), ("msg", Data::Text("a=b".into())));
        let p = parse("dictionary:cfg={\"k\":[1]}").unwrap();
        assert_eq!(p.data, Data::Json(serde_json::json!({"k": [1]})));
        let p = parse("arrowtable:t=[{\"a\":1}]").unwrap();
        let Data::Arrow(ipc) = p.data else { panic!() };
        assert_eq!(arrow::num_rows(&ipc).unwrap(), 1);
        assert_eq!(parse("spreadsheet:x=1").unwrap_err().code, ErrorCode::InvalidPayloadType);
        assert_eq!(parse("text-no-name").unwrap_err().code, ErrorCode::InvalidPayloadType);
        assert_eq!(parse("dictionary:x={").unwrap_err().code, ErrorCode::InvalidPayloadType);
    }

    #[test]
    fn a_binary_file_is_left_to_the_send_to_read() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"12345").unwrap();
        let p = parse(&format!("binary:big=@{}", file.path().display())).unwrap();
        let source = p.source.expect("a source, not bytes read now");
        assert_eq!((source.size(), source.path()), (5, Some(file.path())));
        let p = parse(&format!("text:t=@{}", file.path().display())).unwrap();
        assert_eq!((p.data, p.source.is_none()), (Data::Text("12345".into()), true));
        let e = parse("binary:big=@/nonexistent/file").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidPayloadType);
        assert!(e.message.contains("cannot read /nonexistent/file"), "{}", e.message);
    }
}
