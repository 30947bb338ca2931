//! The edgehose regional Lambdas: the Firehose data-transformation function
//! that validates every event the edge sent ([`transform`]), and the handler
//! that wraps it for the Lambda runtime ([`transform_lambda`]).

pub mod analyst;
pub mod iceberg_row;
pub mod ingest;
pub mod metrics;
pub mod rejection_log;
pub mod schemas;
pub mod transform;
pub mod transform_lambda;
