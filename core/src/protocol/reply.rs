//! Replies (spec/PROTOCOL.md §9.3): where a reply to a received request goes and which header it
//! carries, read from the request as core received it or as a host language holds it.

use super::{ErrorBody, Received, SendOptions, msg_purpose};
use crate::error::{Error, ErrorCode, Result};
use serde_json::Value;

/// What a reply needs of the request it answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplyTo {
    pub correlation_id: String,
    pub msg_id: String,
    pub sender_name: String,
    pub sender_id: String,
    /// The request envelope's `reply_to`.
    pub reply_to: String,
    /// The NATS reply subject the request arrived with.
    pub reply: Option<String>,
}

impl ReplyTo {
    pub fn of(request: &Received) -> ReplyTo {
        let e = &request.envelope;
        ReplyTo {
            correlation_id: e.correlation_id.clone(),
            msg_id: e.msg_id.clone(),
            sender_name: e.sender_name.clone(),
            sender_id: e.sender_id.clone(),
            reply_to: e.reply_to.clone(),
            reply: request.reply.clone(),
        }
    }

    /// From a received envelope as a host holds it (a Python dict, a JS object, converted to
    /// JSON): its header fields and `reply` (the NATS reply subject). INVALID_ARGUMENT when it is
    /// not an object or has no correlation_id.
    pub fn from_json(request: &Value) -> Result<ReplyTo> {
        let Value::Object(fields) = request else {
            return Err(Error::invalid_argument(
                "the request is a received envelope (an object), not JSON of another kind",
            ));
        };
        let field = |key: &str| -> Result<Option<String>> {
            match fields.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::invalid_argument(format!("the request's {key} is not a string: {other}"))),
            }
        };
        let Some(correlation_id) = field("correlation_id")?.filter(|c| !c.is_empty()) else {
            return Err(Error::invalid_argument("the request envelope has no correlation_id"));
        };
        Ok(ReplyTo {
            correlation_id,
            msg_id: field("msg_id")?.unwrap_or_default(),
            sender_name: field("sender_name")?.unwrap_or_default(),
            sender_id: field("sender_id")?.unwrap_or_default(),
            reply_to: field("reply_to")?.unwrap_or_default(),
            reply: field("reply")?.filter(|r| !r.is_empty()),
        })
    }

    /// The request's `reply_to`, else its NATS reply subject.
    pub fn subject(&self) -> Result<&str> {
        if !self.reply_to.is_empty() {
            return Ok(&self.reply_to);
        }
        match &self.reply {
            Some(r) => Ok(r),
            None => {
                Err(Error::new(ErrorCode::InvalidEnvelope, "the message has no reply_to and no NATS reply subject")
                    .with_correlation_id(&self.correlation_id))
            }
        }
    }

    /// A reply's options: the request's correlation id, `reply_to_msg_id` = its msg_id,
    /// `msg_purpose` ACK, and receiver fields naming its sender, unless `opts` sets them.
    pub fn options(&self, opts: &SendOptions) -> SendOptions {
        let mut opts = opts.clone();
        opts.correlation_id.get_or_insert_with(|| self.correlation_id.clone());
        opts.reply_to_msg_id.get_or_insert_with(|| self.msg_id.clone());
        opts.msg_purpose.get_or_insert_with(|| msg_purpose::ACK.to_owned());
        opts.receiver_name.get_or_insert_with(|| self.sender_name.clone());
        opts.receiver_id.get_or_insert_with(|| self.sender_id.clone());
        opts
    }

    /// A NACK's options and error body (`{code, message, details}`) reporting `error`.
    pub fn error_reply(&self, error: &Error) -> (SendOptions, ErrorBody) {
        let opts = SendOptions { msg_purpose: Some(msg_purpose::NACK.to_owned()), ..SendOptions::default() };
        let body = ErrorBody {
            code: error.code.as_str().to_owned(),
            message: error.message.clone(),
            details: serde_json::json!({ "correlation_id": self.correlation_id }),
        };
        (self.options(&opts), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_host_envelope_gives_the_reply_header() {
        let r = ReplyTo::from_json(&json!({"correlation_id": "c", "msg_id": "m", "sender_name": "svc",
            "reply_to": null, "reply": "_INBOX.1", "payloads": []}))
        .unwrap();
        assert_eq!(r.subject().unwrap(), "_INBOX.1");
        let opts = r.options(&SendOptions { msg_purpose: Some("event".into()), ..Default::default() });
        assert_eq!(opts.msg_purpose.as_deref(), Some("event"));
        assert_eq!((opts.correlation_id.as_deref(), opts.reply_to_msg_id.as_deref()), (Some("c"), Some("m")));
        assert_eq!(opts.receiver_name.as_deref(), Some("svc"));
        let (opts, body) = r.error_reply(&Error::new(ErrorCode::Timeout, "slow"));
        assert_eq!((opts.msg_purpose.as_deref(), body.code.as_str()), (Some("NACK"), "TIMEOUT"));
    }

    #[test]
    fn bad_requests_are_invalid_arguments() {
        for bad in [json!([]), json!({"msg_id": "m"}), json!({"correlation_id": 5})] {
            assert_eq!(ReplyTo::from_json(&bad).unwrap_err().code, ErrorCode::InvalidArgument, "{bad}");
        }
        let nowhere = ReplyTo::from_json(&json!({"correlation_id": "c"})).unwrap();
        assert_eq!(nowhere.subject().unwrap_err().code, ErrorCode::InvalidEnvelope);
    }
}
