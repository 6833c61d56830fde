//! The per-event context, in one table: the `/next` header each value comes from, the
//! environment variables a handler sees it in, and its key in a framed runner's context frame.
//! The header parser, the plain runner's environment and the framed runners' context are all
//! derived from it.

use super::Invocation;

/// `Lambda-Runtime-Aws-Request-Id`: the invocation id, used in the `/response` and `/error` paths.
pub const HEADER_REQUEST_ID: &str = "lambda-runtime-aws-request-id";
/// `Lambda-Runtime-Deadline-Ms`: the wall-clock deadline in Unix epoch milliseconds.
pub const HEADER_DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
/// `Lambda-Runtime-Invoked-Function-Arn`: the ARN the caller used.
pub const HEADER_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
/// `Lambda-Runtime-Trace-Id`: the X-Ray trace header, when tracing data exists.
pub const HEADER_TRACE_ID: &str = "lambda-runtime-trace-id";
/// `Lambda-Runtime-Client-Context`: JSON from mobile-SDK callers.
pub const HEADER_CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
/// `Lambda-Runtime-Cognito-Identity`: JSON from Cognito callers.
pub const HEADER_COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
/// `Lambda-Runtime-Aws-Tenant-Id`: the tenant of a tenant-isolated function.
pub const HEADER_TENANT_ID: &str = "lambda-runtime-aws-tenant-id";

/// One piece of per-event context.
#[derive(Debug)]
pub struct Field {
    /// The `/next` header, lower case.
    pub header: &'static str,
    /// The environment variables a handler finds it in (each set only when Lambda sent it).
    pub variables: &'static [&'static str],
    /// Its key in the context frame of a framed runner.
    pub frame_key: &'static str,
}

/// Every per-event value, in the order of `Invocation::context_values`.
pub const FIELDS: [Field; 7] = [
    Field {
        header: HEADER_REQUEST_ID,
        variables: &["LAMBDA_RUNTIME_AWS_REQUEST_ID"],
        frame_key: "aws_request_id",
    },
    Field {
        header: HEADER_DEADLINE_MS,
        variables: &["LAMBDA_RUNTIME_DEADLINE_MS"],
        frame_key: "deadline_ms",
    },
    Field {
        header: HEADER_FUNCTION_ARN,
        variables: &["LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN"],
        frame_key: "invoked_function_arn",
    },
    Field {
        header: HEADER_TRACE_ID,
        variables: &["LAMBDA_RUNTIME_TRACE_ID", "_X_AMZN_TRACE_ID"],
        frame_key: "trace_id",
    },
    Field {
        header: HEADER_CLIENT_CONTEXT,
        variables: &["LAMBDA_RUNTIME_CLIENT_CONTEXT"],
        frame_key: "client_context",
    },
    Field {
        header: HEADER_COGNITO_IDENTITY,
        variables: &["LAMBDA_RUNTIME_COGNITO_IDENTITY"],
        frame_key: "cognito_identity",
    },
    Field {
        header: HEADER_TENANT_ID,
        variables: &["LAMBDA_RUNTIME_AWS_TENANT_ID"],
        frame_key: "tenant_id",
    },
];

/// Every per-event variable, so that an inherited value can be removed.
pub fn variables() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().flat_map(|f| f.variables.iter().copied())
}

impl Invocation {
    /// The values of `FIELDS`, in order; `None` where Lambda sent nothing.
    pub fn context_values(&self) -> [Option<String>; 7] {
        [
            Some(self.request_id.to_string()),
            Some(self.deadline.epoch_ms().to_string()),
            self.invoked_function_arn.clone(),
            self.trace_id.clone(),
            self.client_context.clone(),
            self.cognito_identity.clone(),
            self.tenant_id.clone(),
        ]
    }

    /// Each per-event variable with its value for this invocation, `None` when unset.
    pub fn environment(&self) -> Vec<(&'static str, Option<String>)> {
        FIELDS
            .iter()
            .zip(self.context_values())
            .flat_map(|(field, value)| field.variables.iter().map(move |v| (*v, value.clone())))
            .collect()
    }

    /// The context frame: a flat JSON object, keys in `FIELDS` order. The deadline is a number,
    /// every other value a string or `null`.
    pub fn context_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (field, value)) in FIELDS.iter().zip(self.context_values()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("\"{}\":", field.frame_key));
            match value {
                Some(v) if field.header == HEADER_DEADLINE_MS => out.push_str(&v),
                value => {
                    out.push_str(&serde_json::to_string(&value).expect("BUG: strings serialize"))
                }
            }
        }
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::invocation::{Deadline, RequestId};

    fn invocation() -> Invocation {
        Invocation {
            request_id: RequestId::parse("r-1").unwrap(),
            deadline: Deadline::parse("1700000000000", SystemTime::now()).unwrap(),
            invoked_function_arn: Some("arn:x".into()),
            trace_id: Some("Root=1".into()),
            client_context: Some("{\"a\":\"\\\"\"}".into()),
            cognito_identity: None,
            tenant_id: None,
            event: Vec::new(),
        }
    }

    #[test]
    fn context_frames_keep_a_fixed_key_order() {
        assert_eq!(
            invocation().context_json(),
            "{\"aws_request_id\":\"r-1\",\"deadline_ms\":1700000000000,\"invoked_function_arn\":\"arn:x\",\
             \"trace_id\":\"Root=1\",\"client_context\":\"{\\\"a\\\":\\\"\\\\\\\"\\\"}\",\"cognito_identity\":null,\
             \"tenant_id\":null}"
        );
    }

    #[test]
    fn the_trace_id_reaches_both_of_its_variables_and_absent_values_are_unset() {
        let env = invocation().environment();
        let get = |name: &str| env.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(get("LAMBDA_RUNTIME_TRACE_ID"), Some(Some("Root=1".into())));
        assert_eq!(get("_X_AMZN_TRACE_ID"), Some(Some("Root=1".into())));
        assert_eq!(get("LAMBDA_RUNTIME_AWS_TENANT_ID"), Some(None));
        assert_eq!(env.len(), variables().count());
    }
}
