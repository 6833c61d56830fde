//! The per-event context, in one table: the `/next` header each value comes from and the
//! environment variables a handler sees it in. The header parser, a plain handler's environment
//! and a framed runner's context frame are all derived from it. The context frame's keys are
//! the variables' names (`layers/PROTOCOL.md`), so that a runner sets each one, or unsets it when
//! it is `null`, and needs no table of its own.

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
    /// The environment variables a handler finds it in (each set only when Lambda sent it),
    /// which are also its keys in a framed runner's context frame.
    pub variables: &'static [&'static str],
}

/// Every per-event value, in the order of `Invocation::context_values`.
pub const FIELDS: [Field; 7] = [
    Field { header: HEADER_REQUEST_ID, variables: &["LAMBDA_RUNTIME_AWS_REQUEST_ID"] },
    Field { header: HEADER_DEADLINE_MS, variables: &["LAMBDA_RUNTIME_DEADLINE_MS"] },
    Field { header: HEADER_FUNCTION_ARN, variables: &["LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN"] },
    Field { header: HEADER_TRACE_ID, variables: &["LAMBDA_RUNTIME_TRACE_ID", "_X_AMZN_TRACE_ID"] },
    Field { header: HEADER_CLIENT_CONTEXT, variables: &["LAMBDA_RUNTIME_CLIENT_CONTEXT"] },
    Field { header: HEADER_COGNITO_IDENTITY, variables: &["LAMBDA_RUNTIME_COGNITO_IDENTITY"] },
    Field { header: HEADER_TENANT_ID, variables: &["LAMBDA_RUNTIME_AWS_TENANT_ID"] },
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

    /// The context frame: a flat JSON object whose keys are the per-event variables (in
    /// `FIELDS` order) and whose values are strings, or `null` for a variable to unset.
    pub fn context_json(&self) -> String {
        let mut out = String::from("{");
        for (name, value) in self.environment() {
            if out.len() > 1 {
                out.push(',');
            }
            out.push('"');
            out.push_str(name);
            out.push_str("\":");
            match value {
                Some(v) => {
                    out.push_str(&serde_json::to_string(&v).expect("BUG: strings serialize"))
                }
                None => out.push_str("null"),
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
    fn context_frames_are_the_per_event_variables_in_a_fixed_order() {
        assert_eq!(
            invocation().context_json(),
            r#"{"LAMBDA_RUNTIME_AWS_REQUEST_ID":"r-1","LAMBDA_RUNTIME_DEADLINE_MS":"1700000000000",\
               "LAMBDA_RUNTIME_INVOKED_FUNCTION_ARN":"arn:x","LAMBDA_RUNTIME_TRACE_ID":"Root=1",\
               "_X_AMZN_TRACE_ID":"Root=1","LAMBDA_RUNTIME_CLIENT_CONTEXT":"{\"a\":\"\\\"\"}",\
               "LAMBDA_RUNTIME_COGNITO_IDENTITY":null,"LAMBDA_RUNTIME_AWS_TENANT_ID":null}"#
                .replace("\\\n               ", "")
        );
        let parsed: serde_json::Value = serde_json::from_str(&invocation().context_json()).unwrap();
        assert_eq!(parsed.as_object().map(|o| o.len()), Some(variables().count()));
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
