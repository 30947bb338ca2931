//! The Firehose data-transformation Lambda.

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let transformer = edgehose_regional::transform_lambda::Transformer::from_env()?;
    lambda_runtime::run(lambda_runtime::service_fn(|event| transformer.handle(event))).await
}
